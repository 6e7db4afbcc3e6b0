//! `songs(song_id, title, artist_id, year, duration)`: one row per song_id,
//! partitioned by year and artist_id as the Spark job wrote it. When a song_id
//! appears in several records, the one with the smallest record id wins: a
//! rule of the records alone, so a full run and a series of incremental
//! runs over the same files agree.
//!
//! [`BY_YEAR`] is the same table in fewer files: partitioned by year only and
//! sorted by artist_id, so Parquet's row-group statistics still prune a
//! query for one artist. One file per year instead of one per artist and
//! year: a few dozen files at any scale instead of hundreds of thousands.

use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::prelude::{DataFrame, cast, col};

use super::{Clustering, PartitionChart, Staged, TableDef, Update, distinct_count, first_per_key};
use crate::schema::InputKind;

/// The Spark job's layout: `songs/year=…/artist_id=…/`.
pub const TABLE: TableDef = TableDef {
    name: "songs",
    input: InputKind::Songs,
    partition_by: &["year", "artist_id"],
    sort_by: &["song_id"],
    clustering: Clustering::ByPartition,
    plan: songs_plan,
    update: Update::Rebuild,
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
    first_per_key(
        staged.songs.clone(),
        "song_id",
        vec![
            ("title", col("title")),
            ("artist_id", col("artist_id")),
            ("year", cast(col("year"), DataType::Int32)),
            ("duration", col("duration")),
        ],
        vec![col("record_id").sort(true, false)],
    )
}

/// One row per song_id.
fn expected_rows(staged: &Staged) -> Result<DataFrame> {
    distinct_count(staged.songs.clone(), col("song_id"))
}

/// The layout with few files: `songs/year=…/`, rows sorted by artist_id.
pub const BY_YEAR: TableDef = TableDef {
    partition_by: &["year"],
    sort_by: &["artist_id", "song_id"],
    charts: &[PartitionChart::RowsBy(&["year"])],
    ..TABLE
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::fixture::{expected_rows, staged, table};

    /// The table's columns, as readers see them.
    const COLUMNS: [&str; 5] = [
        "song_id: Utf8",
        "title: Utf8",
        "artist_id: Utf8",
        "year: Int32",
        "duration: Float64",
    ];

    #[tokio::test]
    async fn a_song_id_keeps_the_record_with_the_smallest_id() {
        let staged = staged(
            &[
                r#"{"song_id":"SOB","title":"B larger id","artist_id":"AR1","year":2000,"duration":200.5,"record_id":7}"#,
                r#"{"song_id":"SOB","title":"B smaller id","artist_id":"AR1","year":2001,"duration":201.0,"record_id":3}"#,
                r#"{"song_id":"SOA","title":"A","artist_id":"AR2","year":0,"record_id":5}"#,
            ],
            &[],
        );
        let (rows, columns) = table(&TABLE, &staged).await;
        assert_eq!(columns, COLUMNS);
        assert_eq!(
            rows,
            [
                "SOA, A, AR2, 0, null",
                "SOB, B smaller id, AR1, 2001, 201.0"
            ]
        );
        assert_eq!(expected_rows(&TABLE, &staged).await, 2);
        let (by_year, _) = table(&BY_YEAR, &staged).await;
        assert_eq!(by_year, rows, "the same rows in the by-year layout");
    }
}
