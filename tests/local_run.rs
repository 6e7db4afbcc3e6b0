//! The ETL run by `submit` with its in-process Ballista, on the real
//! Sparkify input, read back from the published Parquet.

use std::path::Path;

use e2e::expect::{
    FULL_S3, WORKSPACE, check_counts, check_event_facts, check_keys, check_types,
    check_workspace_match,
};
use e2e::tables::Published;
use e2e::{assert_success, run_locally, shared_data, submit, workspace_root};

fn assert_hive_layout(run_dir: &str) {
    let run = Path::new(run_dir.strip_prefix("file://").unwrap());
    let songplays = run.join("songplays/year=2018/month=11");
    let files: Vec<_> = std::fs::read_dir(&songplays)
        .expect("songplays/year=2018/month=11/ exists")
        .collect();
    assert!(!files.is_empty());
    assert!(run.join("time/year=2018/month=11").is_dir());
    assert!(run.join("songs/year=0").is_dir());
    assert!(run.join("_SUCCESS").is_file() && run.join("_report.json").is_file());
    assert!(
        !run.join("_staging").exists(),
        "staging is removed on commit"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn workspace_subset_gives_the_reference_tables() {
    let output = tempfile::tempdir().unwrap();
    run_locally(&shared_data("udacity-workspace"), output.path(), &[]);
    let tables = Published::local(output.path()).await;
    check_counts(&tables, &WORKSPACE).await;
    check_keys(&tables).await;
    check_types(&tables).await;
    check_event_facts(&tables).await;
    assert_hive_layout(&tables.run_dir);
    check_workspace_match(&tables).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn full_s3_copy_gives_the_reference_tables() {
    let output = tempfile::tempdir().unwrap();
    run_locally(&shared_data("udacity-s3"), output.path(), &[]);
    let tables = Published::local(output.path()).await;
    check_counts(&tables, &FULL_S3).await;
    check_keys(&tables).await;
    check_event_facts(&tables).await;
    // JSON numbers in string fields are read as the text Spark gives them.
    let numeric_titles = tables
        .rows("SELECT title FROM songs WHERE title IN ('66', '4.6') ORDER BY title")
        .await;
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
    run_locally(&input, output.path(), &[]);
    let first = Published::local(output.path()).await;
    let first_ids = first
        .rows("SELECT songplay_id FROM songplays ORDER BY songplay_id")
        .await;
    run_locally(&input, output.path(), &[]);
    let second = Published::local(output.path()).await;
    assert_ne!(first.run_id, second.run_id);
    check_counts(&second, &WORKSPACE).await;
    assert_eq!(
        second
            .rows("SELECT songplay_id FROM songplays ORDER BY songplay_id")
            .await,
        first_ids
    );
    run_locally(&input, output.path(), &[]);
    let runs: Vec<String> = std::fs::read_dir(output.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("run-"))
        .collect();
    assert_eq!(
        runs.len(),
        2,
        "the latest and the previous run are kept: {runs:?}"
    );
    assert!(!runs.contains(&first.run_id), "the oldest run is removed");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_run_uses_the_shipped_sample_data() {
    let cwd = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        workspace_root().join("sample-data"),
        cwd.path().join("sample-data"),
    )
    .unwrap();
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
    let missing = submit(
        &[
            "--input",
            "/nonexistent/sparkify",
            "--output",
            "/tmp/unused",
        ],
        &[],
        &root,
    );
    assert_eq!(missing.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("no input files under file:///nonexistent/sparkify/song_data"),
        "{stderr}"
    );

    let malformed = submit(&["--input", "s3://", "--output", "/tmp/unused"], &[], &root);
    assert_eq!(malformed.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&malformed.stderr);
    assert!(
        stderr.contains("names no bucket") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn help_explains_every_option() {
    let help = submit(&["--help"], &[], &workspace_root());
    let text = String::from_utf8_lossy(&help.stdout);
    for option in [
        "--input",
        "--output",
        "--scheduler",
        "--partitions",
        "--strict",
        "--max-rejects",
        "Exit codes",
    ] {
        assert!(text.contains(option), "--help mentions {option}:\n{text}");
    }
}
