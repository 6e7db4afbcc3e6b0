//! `artists(artist_id, name, location, latitude, longitude)`: one row per
//! artist_id. Songs of one artist disagree on the name's spelling and on the
//! location (440 artist_ids of the full set carry several names), so the row
//! is taken whole from the artist's song with the smallest song_id: a choice
//! that does not depend on file order and never mixes two songs' fields.

use datafusion::error::Result;
use datafusion::prelude::{DataFrame, col};

use super::{Clustering, Staged, TableDef, distinct_count, first_per_key};

pub const TABLE: TableDef = TableDef {
    name: "artists",
    partition_by: &[],
    sort_by: &["artist_id"],
    clustering: Clustering::Single,
    plan: artists_plan,
    expected_rows,
    charts: &[],
};

fn artists_plan(staged: &Staged) -> Result<DataFrame> {
    first_per_key(
        staged.songs.clone(),
        "artist_id",
        vec![
            ("name", col("artist_name")),
            ("location", col("artist_location")),
            ("latitude", col("artist_latitude")),
            ("longitude", col("artist_longitude")),
        ],
        vec![
            col("song_id").sort(true, false),
            col("record_id").sort(true, false),
        ],
    )
}

/// One row per artist_id.
fn expected_rows(staged: &Staged) -> Result<DataFrame> {
    distinct_count(staged.songs.clone(), col("artist_id"))
}
