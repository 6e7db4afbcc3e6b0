//! Writing and publishing: a run killed at any point leaves readers on the
//! previous run's complete tables, the next run cleans up after it, and large
//! partitions are split into several files.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use e2e::expect::{WORKSPACE, check_counts};
use e2e::tables::Published;
use e2e::{parquet_files, run_locally, shared_data, submit, workspace_root};

/// Crash points of a run, in the order a run reaches them (see `etl::crash`).
const CRASH_POINTS: [&str; 5] = ["started", "staged", "mid-write", "written", "committing"];

/// Names of the run folders under `output`.
fn run_dirs(output: &Path) -> Vec<String> {
    let mut runs: Vec<String> = std::fs::read_dir(output)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("run-"))
        .collect();
    runs.sort();
    runs
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_at_any_point_leaves_the_published_tables_intact() {
    let output = tempfile::tempdir().unwrap();
    let input = shared_data("udacity-workspace");
    run_locally(&input, output.path(), &[]);
    let plays = "SELECT songplay_id, user_id, song_id FROM songplays ORDER BY songplay_id";
    let first_plays = Published::local(output.path()).await.rows(plays).await;

    for point in CRASH_POINTS {
        let published = Published::local(output.path()).await;
        let runs_before = run_dirs(output.path());
        let args = [
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.path().to_str().unwrap(),
        ];
        let killed = submit(&args, &[("SPARKIFY_CRASH_AT", point)], &workspace_root());
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "the run was killed at {point}: {killed:?}"
        );
        let unfinished: Vec<String> = run_dirs(output.path())
            .into_iter()
            .filter(|r| !runs_before.contains(r))
            .collect();
        assert_eq!(
            unfinished.len(),
            1,
            "killed at {point}, the run left its folder behind: {unfinished:?}"
        );
        if point == "mid-write" {
            let written: Vec<_> = parquet_files(&output.path().join(&unfinished[0]))
                .into_iter()
                .filter(|f| !f.to_string_lossy().contains("/_staging/"))
                .collect();
            assert!(
                !written.is_empty(),
                "killed mid-write, some table files exist"
            );
        }

        let now = Published::local(output.path()).await;
        assert_eq!(
            now.run_id, published.run_id,
            "killed at {point}, readers still see the previous run"
        );
        check_counts(&now, &WORKSPACE).await;
        assert_eq!(now.rows(plays).await, first_plays, "killed at {point}");

        // The next run publishes and removes what the killed run left.
        run_locally(&input, output.path(), &[]);
        let rerun = Published::local(output.path()).await;
        assert_eq!(
            rerun.rows(plays).await,
            first_plays,
            "the rerun after {point} gives the same rows"
        );
        assert!(
            !run_dirs(output.path()).contains(&unfinished[0]),
            "the run killed at {point} is cleaned up"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_partition_is_split_at_the_target_file_size() {
    let output = tempfile::tempdir().unwrap();
    run_locally(
        &shared_data("udacity-workspace"),
        output.path(),
        // One writer task, so the November files come from the size target
        // alone, not from several tasks sharing the month.
        &["--target-file-size", "64KiB", "--partitions", "1"],
    );
    let tables = Published::local(output.path()).await;
    check_counts(&tables, &WORKSPACE).await;

    let run = Path::new(tables.run_dir.strip_prefix("file://").unwrap());
    let november = parquet_files(&run.join("songplays/year=2018/month=11"));
    assert!(
        november.len() >= 3,
        "6,820 plays in one month make several 64 KiB files: {november:?}"
    );
    for file in &november {
        let bytes = std::fs::metadata(file).unwrap().len();
        // A file is closed once it passes the target: it exceeds it by at most one row group's worth.
        assert!(
            bytes < 4 * 64 * 1024,
            "{} has {bytes} bytes",
            file.display()
        );
    }
    let songs = parquet_files(&run.join("songs"));
    let song_dirs = tables
        .number("SELECT count(*) FROM (SELECT DISTINCT year, artist_id FROM songs)")
        .await;
    assert_eq!(
        songs.len() as i64,
        song_dirs,
        "a small partition is one file"
    );
    assert_eq!(
        parquet_files(&run.join("users")).len(),
        1,
        "users, a small table, is one file"
    );
}
