//! `songplays`: the fact table, one row per song play, partitioned by year
//! and month.
//!
//! An event names its song by title, artist name and length. It is matched
//! to the song records (not to the deduplicated artists table, whose one
//! spelling per artist would lose matches) on title = song, the record's own
//! artist_name = artist and duration = length, exactly. The song side is
//! first reduced to one row per (title, artist_name, duration), keeping the
//! smallest song_id, so a left join can never fan an event out; an event that
//! matches nothing keeps null song_id and artist_id.
//!
//! `songplay_id` is the event's record id (its file's key and its position
//! in the file): unique, the same on every rerun and unchanged when files are
//! added, and a way back to the line the play was read from (`_ingested`
//! maps the key, `songplay_id >> 23`, to the file). An incremental run
//! appends the plays of its new events, matched against every song staged.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::JoinType;
use datafusion::error::Result;
use datafusion::functions::expr_fn::nullif;
use datafusion::functions_aggregate::expr_fn::{first_value, min};
use datafusion::prelude::{DataFrame, Expr, cast, col, ident, lit};

use super::{
    Clustering, PartitionChart, Staged, TableDef, Update, song_plays, start_time, time_part,
};
use crate::schema::InputKind;

pub const TABLE: TableDef = TableDef {
    name: "songplays",
    input: InputKind::Events,
    partition_by: &["year", "month"],
    sort_by: &["start_time", "songplay_id"],
    clustering: Clustering::Spread,
    plan: songplays_plan,
    update: Update::Append {
        matches_songs: true,
    },
    expected_rows,
    charts: &[PartitionChart::RowsBy(&["year", "month"])],
};

fn songplays_plan(staged: &Staged) -> Result<DataFrame> {
    let plays = song_plays(&staged.events)?.select(vec![
        col("record_id").alias("songplay_id"),
        start_time().alias("start_time"),
        user_id().alias("user_id"),
        col("level"),
        col("song"),
        col("artist"),
        col("length"),
        ident("sessionId").alias("session_id"),
        col("location"),
        ident("userAgent").alias("user_agent"),
    ])?;
    plays
        .join(
            song_keys(staged)?,
            JoinType::Left,
            &["song", "artist", "length"],
            &["title", "artist_name", "duration"],
            None,
        )?
        .select(vec![
            col("songplay_id"),
            col("start_time"),
            col("user_id"),
            col("level"),
            col("song_id"),
            col("artist_id"),
            col("session_id"),
            col("location"),
            col("user_agent"),
            time_part("year").alias("year"),
            time_part("month").alias("month"),
        ])
}

/// One row per (title, artist_name, duration) with the smallest song_id and its artist.
fn song_keys(staged: &Staged) -> Result<DataFrame> {
    staged.songs.clone().aggregate(
        vec![col("title"), col("artist_name"), col("duration")],
        vec![
            min(col("song_id")).alias("song_id"),
            first_value(col("artist_id"), vec![col("song_id").sort(true, false)])
                .alias("artist_id"),
        ],
    )
}

/// One row per play: the join to songs never adds or drops one.
fn expected_rows(staged: &Staged) -> Result<DataFrame> {
    use datafusion::functions_aggregate::expr_fn::count;
    song_plays(&staged.events)?.aggregate(vec![], vec![count(lit(1)).alias("rows")])
}

/// The user of a play: `userId` as an int, null for a logged-out one.
pub fn user_id() -> Expr {
    cast(nullif(ident("userId"), lit("")), DataType::Int32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::fixture::{expected_rows, staged, table};

    const COLUMNS: [&str; 11] = [
        "songplay_id: Int64",
        r#"start_time: Timestamp(ms, "UTC")"#,
        "user_id: Int32",
        "level: Utf8",
        "song_id: Utf8",
        "artist_id: Utf8",
        "session_id: Int64",
        "location: Utf8",
        "user_agent: Utf8",
        "year: Int32",
        "month: Int32",
    ];

    #[tokio::test]
    async fn a_play_matches_one_song_by_title_artist_and_length_exactly() {
        let song = |id: &str, artist: &str, duration: f64| {
            format!(
                r#"{{"song_id":"{id}","title":"Song","artist_id":"{artist}","artist_name":"Band","duration":{duration},"record_id":0}}"#
            )
        };
        // SOA and SOB share a key: the play matches SOA (smallest song_id)
        // and SOA's artist, once. SOC's length differs by half a second.
        let songs = [
            song("SOB", "AR2", 100.0),
            song("SOA", "AR1", 100.0),
            song("SOC", "AR3", 100.5),
        ];
        let play = |artist: &str, user: &str, record: i64| {
            format!(
                r#"{{"page":"NextSong","song":"Song","artist":"{artist}","length":100.0,"userId":"{user}","level":"free","sessionId":3,"location":"Here","userAgent":"UA","ts":1541105830796,"record_id":{record}}}"#
            )
        };
        let events = [
            play("Band", "7", 11),
            // Another spelling of the artist matches nothing; logged out.
            play("band", "", 12),
            r#"{"page":"Home","userId":"7","ts":1541105830000,"record_id":13}"#.into(),
        ];
        let songs: Vec<&str> = songs.iter().map(String::as_str).collect();
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        let staged = staged(&songs, &events);
        let (rows, columns) = table(&TABLE, &staged).await;
        assert_eq!(columns, COLUMNS);
        assert_eq!(
            rows,
            [
                "11, 2018-11-01T20:57:10.796Z, 7, free, SOA, AR1, 3, Here, UA, 2018, 11",
                "12, 2018-11-01T20:57:10.796Z, null, free, null, null, 3, Here, UA, 2018, 11",
            ]
        );
        assert_eq!(expected_rows(&TABLE, &staged).await, 2);
    }
}
