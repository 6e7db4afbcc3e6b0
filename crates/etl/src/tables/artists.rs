//! `artists(artist_id, name, location, latitude, longitude)`: one row per
//! artist_id. Songs of one artist disagree on the name's spelling and on the
//! location (440 artist_ids of the full set carry several names), so the row
//! is taken whole from the artist's song with the smallest song_id: a choice
//! that does not depend on file order and never mixes two songs' fields.

use datafusion::error::Result;
use datafusion::prelude::{DataFrame, col};

use super::{Clustering, Staged, TableDef, Update, distinct_count, first_per_key};
use crate::schema::InputKind;

pub const TABLE: TableDef = TableDef {
    name: "artists",
    input: InputKind::Songs,
    partition_by: &[],
    sort_by: &["artist_id"],
    clustering: Clustering::Single,
    plan: artists_plan,
    update: Update::Rebuild,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::fixture::{expected_rows, staged, table};

    const COLUMNS: [&str; 5] = [
        "artist_id: Utf8",
        "name: Utf8",
        "location: Utf8",
        "latitude: Float64",
        "longitude: Float64",
    ];

    #[tokio::test]
    async fn an_artist_is_taken_whole_from_its_smallest_song_id() {
        let staged = staged(
            &[
                r#"{"song_id":"SOB","artist_id":"AR1","artist_name":"Name on B","artist_location":"Paris","artist_latitude":1.5,"artist_longitude":2.5,"record_id":1}"#,
                r#"{"song_id":"SOA","artist_id":"AR1","artist_name":"Name on A","record_id":2}"#,
                r#"{"song_id":"SOC","artist_id":"AR2","artist_name":"Other","artist_location":"Oslo","artist_longitude":10.0,"record_id":0}"#,
            ],
            &[],
        );
        let (rows, columns) = table(&TABLE, &staged).await;
        assert_eq!(columns, COLUMNS);
        // AR1's location and coordinates stay null: never mixed in from SOB.
        assert_eq!(
            rows,
            [
                "AR1, Name on A, null, null, null",
                "AR2, Other, Oslo, null, 10.0"
            ]
        );
        assert_eq!(expected_rows(&TABLE, &staged).await, 2);
    }
}
