//! `songs(song_id, title, artist_id, year, duration)`: one row per song_id,
//! partitioned by year and artist_id as the Spark job wrote it. When a song_id
//! appears in several files, the record read first (by file path) wins.

use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::prelude::{DataFrame, cast, col};

use super::{Clustering, PartitionChart, Staged, TableDef, distinct_count};

pub const TABLE: TableDef = TableDef {
    name: "songs",
    partition_by: &["year", "artist_id"],
    sort_by: &["song_id"],
    clustering: Clustering::ByPartition,
    plan: songs_plan,
    expected_rows,
    charts: &[
        PartitionChart::RowsBy(&["year"]),
        PartitionChart::ValuesPerCount {
            column: "artist_id",
            title: "songs per artist",
            key: "artist",
        },
    ],
};

fn songs_plan(staged: &Staged) -> Result<DataFrame> {
    staged.songs.clone().distinct_on(
        vec![col("song_id")],
        vec![
            col("song_id"),
            col("title"),
            col("artist_id"),
            cast(col("year"), DataType::Int32).alias("year"),
            col("duration"),
        ],
        Some(vec![
            col("song_id").sort(true, false),
            col("record_id").sort(true, false),
        ]),
    )
}

/// One row per song_id.
fn expected_rows(staged: &Staged) -> Result<DataFrame> {
    distinct_count(staged.songs.clone(), col("song_id"))
}
