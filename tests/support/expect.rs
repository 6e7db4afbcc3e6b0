//! What the published tables must hold, as data: the reference results
//! of ../shared/data/README.md, checked against Parquet read back.

use std::collections::BTreeSet;

use datafusion::arrow::datatypes::{DataType, TimeUnit};

use crate::tables::Published;

/// Row counts the reference implementation gives (../shared/data/README.md).
pub struct Expected {
    pub songs: i64,
    pub artists: i64,
    pub users: i64,
    pub time: i64,
    pub songplays: i64,
    pub matched_songplays: i64,
    pub song_partitions: i64,
}

pub const WORKSPACE: Expected = Expected {
    songs: 71,
    artists: 69,
    users: 96,
    time: 6_813,
    songplays: 6_820,
    matched_songplays: 1,
    song_partitions: 69,
};

pub const FULL_S3: Expected = Expected {
    songs: 14_896,
    artists: 9_553,
    users: 96,
    time: 6_813,
    songplays: 6_820,
    matched_songplays: 319,
    song_partitions: 12_620,
};

pub async fn check_counts(tables: &Published, expected: &Expected) {
    for (table, rows) in [
        ("songs", expected.songs),
        ("artists", expected.artists),
        ("users", expected.users),
        ("time", expected.time),
        ("songplays", expected.songplays),
    ] {
        let Some(view) = tables.delta.get(table) else {
            continue;
        };
        assert_eq!(view.rows_deltalake, rows, "{table} as delta-rs reads it");
        if let Some(duckdb) = view.rows_duckdb {
            assert_eq!(duckdb, rows, "{table} as DuckDB reads it");
        }
    }
    assert_eq!(tables.count("songs").await, expected.songs);
    assert_eq!(tables.count("artists").await, expected.artists);
    assert_eq!(tables.count("users").await, expected.users);
    assert_eq!(tables.count("time").await, expected.time);
    assert_eq!(tables.count("songplays").await, expected.songplays);
    let matched =
        "SELECT count(*) FROM songplays WHERE song_id IS NOT NULL AND artist_id IS NOT NULL";
    assert_eq!(tables.number(matched).await, expected.matched_songplays);
    let partitions = "SELECT count(*) FROM (SELECT DISTINCT year, artist_id FROM songs)";
    assert_eq!(tables.number(partitions).await, expected.song_partitions);
}

/// Every table keeps one row per key, and songplay ids are unique.
pub async fn check_keys(tables: &Published) {
    for (table, key) in [
        ("songs", "song_id"),
        ("artists", "artist_id"),
        ("users", "user_id"),
        ("time", "start_time"),
        ("songplays", "songplay_id"),
    ] {
        let distinct = tables
            .number(&format!("SELECT count(DISTINCT {key}) FROM {table}"))
            .await;
        assert_eq!(
            distinct,
            tables.count(table).await,
            "{table}.{key} is not unique"
        );
    }
}

pub async fn check_types(tables: &Published) {
    let utc_ms = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let expected: [(&str, &[(&str, DataType)]); 5] = [
        (
            "songs",
            &[
                ("song_id", DataType::Utf8),
                ("title", DataType::Utf8),
                ("duration", DataType::Float64),
                ("year", DataType::Int32),
                ("artist_id", DataType::Utf8),
            ],
        ),
        (
            "artists",
            &[
                ("artist_id", DataType::Utf8),
                ("name", DataType::Utf8),
                ("location", DataType::Utf8),
                ("latitude", DataType::Float64),
                ("longitude", DataType::Float64),
            ],
        ),
        (
            "users",
            &[
                ("user_id", DataType::Int32),
                ("first_name", DataType::Utf8),
                ("last_name", DataType::Utf8),
                ("gender", DataType::Utf8),
                ("level", DataType::Utf8),
            ],
        ),
        (
            "time",
            &[
                ("start_time", utc_ms.clone()),
                ("hour", DataType::Int32),
                ("day", DataType::Int32),
                ("week", DataType::Int32),
                ("weekday", DataType::Int32),
                ("year", DataType::Int32),
                ("month", DataType::Int32),
            ],
        ),
        (
            "songplays",
            &[
                ("songplay_id", DataType::Int64),
                ("start_time", utc_ms),
                ("user_id", DataType::Int32),
                ("level", DataType::Utf8),
                ("song_id", DataType::Utf8),
                ("artist_id", DataType::Utf8),
                ("session_id", DataType::Int64),
                ("location", DataType::Utf8),
                ("user_agent", DataType::Utf8),
                ("year", DataType::Int32),
                ("month", DataType::Int32),
            ],
        ),
    ];
    for (table, columns) in expected {
        let schema = tables.schema(table).await;
        let actual: BTreeSet<(String, String)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect();
        let wanted: BTreeSet<(String, String)> = columns
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        assert_eq!(actual, wanted, "columns of {table}");
    }
}

/// Facts about the November 2018 logs that hold for both copies.
pub async fn check_event_facts(tables: &Published) {
    let levels = tables
        .rows("SELECT level, count(*) FROM users GROUP BY level ORDER BY level")
        .await;
    assert_eq!(levels, [["free", "74"], ["paid", "22"]]);
    let months = tables
        .rows("SELECT DISTINCT year, month FROM songplays")
        .await;
    assert_eq!(months, [["2018", "11"]]);
    // 2018-11-21 21:56:47.796 UTC was a Wednesday: Spark's dayofweek says 4.
    let time = tables
        .rows("SELECT hour, day, week, month, year, weekday FROM time WHERE start_time = to_timestamp_millis(1542837407796)")
        .await;
    assert_eq!(time, [["21", "21", "47", "11", "2018", "4"]]);
}

/// The one workspace song play that matches a song.
pub async fn check_workspace_match(tables: &Published) {
    let matched = tables
        .rows(
            "SELECT s.title, a.name, p.user_id, p.start_time, p.song_id, p.artist_id, p.level, p.session_id \
             FROM songplays p JOIN songs s USING (song_id) JOIN artists a ON a.artist_id = p.artist_id",
        )
        .await;
    assert_eq!(
        matched,
        [[
            "Setanta matins",
            "Elena",
            "15",
            "2018-11-21T21:56:47.796Z",
            "SOZCTXZ12AB0182364",
            "AR5KOSW1187FB35FF4",
            "paid",
            "818"
        ]]
    );
}
