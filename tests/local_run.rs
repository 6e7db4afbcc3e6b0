//! The ETL run by `submit` with its in-process Ballista, on the real
//! Sparkify input, read back from the published Parquet.

use std::collections::BTreeSet;
use std::path::Path;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use e2e::tables::Published;
use e2e::{assert_success, shared_data, submit, workspace_root};

/// Row counts the reference implementation gives (../shared/data/README.md).
struct Expected {
    songs: i64,
    artists: i64,
    users: i64,
    time: i64,
    songplays: i64,
    matched_songplays: i64,
    song_partitions: i64,
}

const WORKSPACE: Expected = Expected {
    songs: 71,
    artists: 69,
    users: 96,
    time: 6_813,
    songplays: 6_820,
    matched_songplays: 1,
    song_partitions: 69,
};

const FULL_S3: Expected = Expected {
    songs: 14_896,
    artists: 9_553,
    users: 96,
    time: 6_813,
    songplays: 6_820,
    matched_songplays: 319,
    song_partitions: 12_620,
};

fn run_in_process(input: &Path, output: &Path) {
    let output_text = submit(
        &["--input", input.to_str().unwrap(), "--output", output.to_str().unwrap()],
        &[],
        &workspace_root(),
    );
    assert_success(&output_text);
}

async fn check_counts(tables: &Published, expected: &Expected) {
    assert_eq!(tables.count("songs").await, expected.songs);
    assert_eq!(tables.count("artists").await, expected.artists);
    assert_eq!(tables.count("users").await, expected.users);
    assert_eq!(tables.count("time").await, expected.time);
    assert_eq!(tables.count("songplays").await, expected.songplays);
    let matched = "SELECT count(*) FROM songplays WHERE song_id IS NOT NULL AND artist_id IS NOT NULL";
    assert_eq!(tables.number(matched).await, expected.matched_songplays);
    let partitions = "SELECT count(*) FROM (SELECT DISTINCT year, artist_id FROM songs)";
    assert_eq!(tables.number(partitions).await, expected.song_partitions);
}

/// Every table keeps one row per key, and songplay ids are unique.
async fn check_keys(tables: &Published) {
    for (table, key) in [
        ("songs", "song_id"),
        ("artists", "artist_id"),
        ("users", "user_id"),
        ("time", "start_time"),
        ("songplays", "songplay_id"),
    ] {
        let distinct = tables.number(&format!("SELECT count(DISTINCT {key}) FROM {table}")).await;
        assert_eq!(distinct, tables.count(table).await, "{table}.{key} is not unique");
    }
}

async fn check_types(tables: &Published) {
    let utc_ms = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let expected: [(&str, &[(&str, DataType)]); 5] = [
        ("songs", &[("song_id", DataType::Utf8), ("title", DataType::Utf8), ("duration", DataType::Float64), ("year", DataType::Int32), ("artist_id", DataType::Utf8)]),
        ("artists", &[("artist_id", DataType::Utf8), ("name", DataType::Utf8), ("location", DataType::Utf8), ("latitude", DataType::Float64), ("longitude", DataType::Float64)]),
        ("users", &[("user_id", DataType::Int32), ("first_name", DataType::Utf8), ("last_name", DataType::Utf8), ("gender", DataType::Utf8), ("level", DataType::Utf8)]),
        ("time", &[("start_time", utc_ms.clone()), ("hour", DataType::Int32), ("day", DataType::Int32), ("week", DataType::Int32), ("weekday", DataType::Int32), ("year", DataType::Int32), ("month", DataType::Int32)]),
        ("songplays", &[("songplay_id", DataType::Int64), ("start_time", utc_ms), ("user_id", DataType::Int32), ("level", DataType::Utf8), ("song_id", DataType::Utf8), ("artist_id", DataType::Utf8), ("session_id", DataType::Int64), ("location", DataType::Utf8), ("user_agent", DataType::Utf8), ("year", DataType::Int32), ("month", DataType::Int32)]),
    ];
    for (table, columns) in expected {
        let schema = tables.schema(table).await;
        let actual: BTreeSet<(String, String)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect();
        let wanted: BTreeSet<(String, String)> =
            columns.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
        assert_eq!(actual, wanted, "columns of {table}");
    }
}

/// Facts about the November 2018 logs that hold for both copies.
async fn check_event_facts(tables: &Published) {
    let levels = tables.rows("SELECT level, count(*) FROM users GROUP BY level ORDER BY level").await;
    assert_eq!(levels, [["free", "74"], ["paid", "22"]]);
    let months = tables.rows("SELECT DISTINCT year, month FROM songplays").await;
    assert_eq!(months, [["2018", "11"]]);
    // 2018-11-21 21:56:47.796 UTC was a Wednesday: Spark's dayofweek says 4.
    let time = tables
        .rows("SELECT hour, day, week, month, year, weekday FROM time WHERE start_time = to_timestamp_millis(1542837407796)")
        .await;
    assert_eq!(time, [["21", "21", "47", "11", "2018", "4"]]);
}

fn assert_hive_layout(run_dir: &str) {
    let run = Path::new(run_dir.strip_prefix("file://").unwrap());
    let songplays = run.join("songplays/year=2018/month=11");
    let files: Vec<_> = std::fs::read_dir(&songplays).expect("songplays/year=2018/month=11/ exists").collect();
    assert!(!files.is_empty());
    assert!(run.join("time/year=2018/month=11").is_dir());
    assert!(run.join("songs/year=0").is_dir());
    assert!(run.join("_SUCCESS").is_file() && run.join("_report.json").is_file());
    assert!(!run.join("_staging").exists(), "staging is removed on commit");
}

#[tokio::test(flavor = "multi_thread")]
async fn workspace_subset_gives_the_reference_tables() {
    let output = tempfile::tempdir().unwrap();
    run_in_process(&shared_data("udacity-workspace"), output.path());
    let tables = Published::local(output.path()).await;
    check_counts(&tables, &WORKSPACE).await;
    check_keys(&tables).await;
    check_types(&tables).await;
    check_event_facts(&tables).await;
    assert_hive_layout(&tables.run_dir);
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

#[tokio::test(flavor = "multi_thread")]
async fn full_s3_copy_gives_the_reference_tables() {
    let output = tempfile::tempdir().unwrap();
    run_in_process(&shared_data("udacity-s3"), output.path());
    let tables = Published::local(output.path()).await;
    check_counts(&tables, &FULL_S3).await;
    check_keys(&tables).await;
    check_event_facts(&tables).await;
    // JSON numbers in string fields are read as the text Spark gives them.
    let numeric_titles = tables.rows("SELECT title FROM songs WHERE title IN ('66', '4.6') ORDER BY title").await;
    assert_eq!(numeric_titles, [["4.6"], ["66"]]);
    let changed_level = tables
        .rows(
            "SELECT DISTINCT user_id FROM songplays GROUP BY user_id HAVING count(DISTINCT level) > 1 ORDER BY user_id",
        )
        .await;
    let changed: Vec<&str> = changed_level.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(changed, ["15", "16", "29", "36", "49", "80", "85", "88"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_replaces_the_tables_without_duplicates() {
    let output = tempfile::tempdir().unwrap();
    let input = shared_data("udacity-workspace");
    run_in_process(&input, output.path());
    let first = Published::local(output.path()).await;
    let first_ids = first.rows("SELECT songplay_id FROM songplays ORDER BY songplay_id").await;
    run_in_process(&input, output.path());
    let second = Published::local(output.path()).await;
    assert_ne!(first.run_id, second.run_id);
    check_counts(&second, &WORKSPACE).await;
    assert_eq!(second.rows("SELECT songplay_id FROM songplays ORDER BY songplay_id").await, first_ids);
    run_in_process(&input, output.path());
    let runs: Vec<String> = std::fs::read_dir(output.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("run-"))
        .collect();
    assert_eq!(runs.len(), 2, "the latest and the previous run are kept: {runs:?}");
    assert!(!runs.contains(&first.run_id), "the oldest run is removed");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_run_uses_the_shipped_sample_data() {
    let cwd = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(workspace_root().join("sample-data"), cwd.path().join("sample-data")).unwrap();
    let output = submit(&[], &[], cwd.path());
    assert_success(&output);
    let report = String::from_utf8_lossy(&output.stdout);
    for table in ["songs", "artists", "users", "time", "songplays"] {
        assert!(report.contains(table), "report lists {table}:\n{report}");
    }
    let tables = Published::local(&cwd.path().join("output")).await;
    for table in ["songs", "artists", "users", "time", "songplays"] {
        assert!(tables.count(table).await > 10, "{table} is not trivial");
    }
    assert!(tables.number("SELECT count(song_id) FROM songplays").await >= 3);
}

#[test]
fn bad_locations_fail_with_one_line_and_an_exit_code() {
    let root = workspace_root();
    let missing = submit(&["--input", "/nonexistent/sparkify", "--output", "/tmp/unused"], &[], &root);
    assert_eq!(missing.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no input files under file:///nonexistent/sparkify/song_data"), "{stderr}");

    let malformed = submit(&["--input", "s3://", "--output", "/tmp/unused"], &[], &root);
    assert_eq!(malformed.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&malformed.stderr);
    assert!(stderr.contains("names no bucket") && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn help_explains_every_option() {
    let help = submit(&["--help"], &[], &workspace_root());
    let text = String::from_utf8_lossy(&help.stdout);
    for option in ["--input", "--output", "--scheduler", "--partitions", "--strict", "--max-rejects", "Exit codes"] {
        assert!(text.contains(option), "--help mentions {option}:\n{text}");
    }
}
