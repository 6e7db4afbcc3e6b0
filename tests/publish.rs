//! Writing and publishing: a run killed at any point leaves readers on
//! committed tables (Delta) or the previous run's (Parquet), the next run
//! cleans up after it, two runs at once publish one, and large partitions
//! are split into several files.

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use e2e::expect::{WORKSPACE, check_counts};
use e2e::tables::Published;
use e2e::{
    ended_within, parquet_files, run_locally, spawn_submit, submit, workspace_input, workspace_root,
};

/// Crash points of a run, in the order a run reaches them (see `etl::crash`).
const CRASH_POINTS: [&str; 5] = ["started", "staged", "mid-write", "written", "committing"];
/// The Delta run's, with one more between its first and second table commit.
const DELTA_CRASH_POINTS: [&str; 6] = [
    "started",
    "staged",
    "mid-write",
    "written",
    "committing",
    "between-commits",
];
const TABLES: [&str; 5] = ["songs", "artists", "users", "time", "songplays"];

/// The arguments of a `--table-format parquet` run from `input` to `output`.
fn parquet_run<'a>(input: &'a Path, output: &'a Path) -> [&'a str; 6] {
    [
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--table-format",
        "parquet",
    ]
}

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
async fn a_parquet_run_killed_at_any_point_leaves_the_published_tables_intact() {
    let output = tempfile::tempdir().unwrap();
    let input = workspace_input();
    let parquet = ["--table-format", "parquet"];
    run_locally(&input, output.path(), &parquet);
    let plays = "SELECT songplay_id, user_id, song_id FROM songplays ORDER BY songplay_id";
    let first_plays = Published::local(output.path()).await.rows(plays).await;

    for point in CRASH_POINTS {
        let published = Published::local(output.path()).await;
        let runs_before = run_dirs(output.path());
        let args = parquet_run(&input, output.path());
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

        // The killed run still holds the output: the next run refuses to
        // start until the claim lapses, then publishes and removes what
        // the killed run left.
        let blocked = submit(&args, &[], &workspace_root());
        assert_eq!(blocked.status.code(), Some(8), "after {point}: {blocked:?}");
        let stderr = String::from_utf8_lossy(&blocked.stderr);
        assert!(stderr.contains("holds file://"), "{stderr}");
        run_locally(
            &input,
            output.path(),
            &[&parquet[..], &["--claim-timeout", "0s"]].concat(),
        );
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

/// The newest version of each Delta table in a local output, as delta-rs reads it.
fn versions(output: &Path) -> Vec<i64> {
    let url = format!("file://{}", output.canonicalize().unwrap().display());
    let views = e2e::tables::delta_views(&url, &TABLES, None, &[]);
    TABLES.iter().map(|t| views[*t].version).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delta_run_killed_at_any_point_leaves_every_table_at_a_committed_version() {
    let output = tempfile::tempdir().unwrap();
    let input = workspace_input();
    run_locally(&input, output.path(), &[]);
    assert_eq!(
        versions(output.path()),
        [0; 5],
        "the first run creates every table"
    );
    let plays = "SELECT songplay_id, user_id, song_id FROM songplays ORDER BY songplay_id";
    let first_plays = Published::local(output.path()).await.rows(plays).await;

    for point in DELTA_CRASH_POINTS {
        let before = versions(output.path());
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
            "killed at {point}: {killed:?}"
        );

        let after = versions(output.path());
        let moved: Vec<i64> = before.iter().zip(&after).map(|(b, a)| a - b).collect();
        let expected_moves = if point == "between-commits" {
            [1, 0, 0, 0, 0]
        } else {
            [0; 5]
        };
        assert_eq!(
            moved, expected_moves,
            "killed at {point}, versions {before:?} -> {after:?}"
        );
        // Whatever version each table is at, it is a whole one.
        let now = Published::local(output.path()).await;
        check_counts(&now, &WORKSPACE).await;
        assert_eq!(now.rows(plays).await, first_plays, "killed at {point}");

        // A claim left by a run killed in its commits holds the lake until
        // it lapses; a run killed before claiming holds nothing.
        let rerun = submit(&args, &[], &workspace_root());
        if matches!(point, "committing" | "between-commits") {
            assert_eq!(
                rerun.status.code(),
                Some(8),
                "the claim still holds: {rerun:?}"
            );
            let stderr = String::from_utf8_lossy(&rerun.stderr);
            assert!(stderr.contains("holds file://"), "{stderr}");
            run_locally(&input, output.path(), &["--claim-timeout", "0s"]);
        } else {
            e2e::assert_success(&rerun);
        }
        let after_rerun = versions(output.path());
        assert!(
            after_rerun.iter().zip(&after).all(|(r, a)| r > a),
            "after {point}, the rerun committed every table: {after:?} -> {after_rerun:?}"
        );
        let rerun = Published::local(output.path()).await;
        assert_eq!(
            rerun.rows(plays).await,
            first_plays,
            "the rerun after {point}"
        );
    }
}

/// Two runs on one output, both held once their tables are written (so
/// both started from the same lake), then released together.
fn two_runs_at_once(input: &Path, output: &str) -> [(std::process::ExitStatus, String); 2] {
    let hold = tempfile::tempdir().unwrap();
    let hold_dir = hold.path().to_str().unwrap();
    let args = ["--input", input.to_str().unwrap(), "--output", output];
    let env = [
        ("SPARKIFY_HOLD_AT", "written"),
        ("SPARKIFY_HOLD_DIR", hold_dir),
    ];
    let runs = [spawn_submit(&args, &env), spawn_submit(&args, &env)];
    let reached = || std::fs::read_dir(hold.path()).unwrap().count();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while reached() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "both runs reach their hold point"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::write(hold.path().join("release"), "").unwrap();
    runs.map(|run| ended_within(run, std::time::Duration::from_secs(300), "its release"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parquet_run_holds_the_output_and_a_second_one_refuses_to_start() {
    let output = tempfile::tempdir().unwrap();
    let input = workspace_input();
    let hold = tempfile::tempdir().unwrap();
    let args = parquet_run(&input, output.path());
    let env = [
        ("SPARKIFY_HOLD_AT", "written"),
        ("SPARKIFY_HOLD_DIR", hold.path().to_str().unwrap()),
    ];
    let first = spawn_submit(&args, &env);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while std::fs::read_dir(hold.path()).unwrap().count() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run reaches its hold point"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The first run has written its tables and not published them yet.
    let second = submit(&args, &[], &workspace_root());
    assert_eq!(second.status.code(), Some(8), "{second:?}");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("holds file://"), "{stderr}");

    std::fs::write(hold.path().join("release"), "").unwrap();
    let (status, stderr) = ended_within(first, std::time::Duration::from_secs(300), "its release");
    assert!(status.success(), "{stderr}");
    let tables = Published::local(output.path()).await;
    check_counts(&tables, &WORKSPACE).await;
    // Nothing of the refused run is left but what the next run removes,
    // and the next run starts: the first one settled its lease.
    run_locally(&input, output.path(), &args[4..]);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runs_at_once_publish_one_and_the_other_exits_8() {
    let output = tempfile::tempdir().unwrap();
    let input = workspace_input();
    run_locally(&input, output.path(), &[]);
    for round in 1..=3 {
        let before = versions(output.path());
        let ended = two_runs_at_once(&input, output.path().to_str().unwrap());
        let codes: Vec<Option<i32>> = ended.iter().map(|(status, _)| status.code()).collect();
        let mut sorted = codes.clone();
        sorted.sort();
        assert_eq!(sorted, [Some(0), Some(8)], "round {round}: {ended:?}");
        let (_, loser) = &ended[codes.iter().position(|c| *c == Some(8)).unwrap()];
        assert_eq!(loser.lines().count(), 1, "one line: {loser}");
        assert!(loser.contains("committed to file://"), "{loser}");
        assert!(loser.ends_with("this run published nothing\n"), "{loser}");

        let after = versions(output.path());
        let moved: Vec<i64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        assert_eq!(
            moved, [1; 5],
            "round {round}: one run committed each table once"
        );
        let tables = Published::local(output.path()).await;
        check_counts(&tables, &WORKSPACE).await;
        e2e::expect::check_keys(&tables).await;
        let loser_files = parquet_files(output.path())
            .into_iter()
            .filter(|f| {
                let path = f.to_string_lossy();
                !["/_runs/", "/_staged/", "/_ingested/"]
                    .iter()
                    .any(|own| path.contains(own))
            })
            .count();
        // The lake's own tables hold a file per run (the ingest record) or
        // as many as staging's tasks wrote (the staged records): counted
        // apart, by the runs that committed.
        let ingested = parquet_files(&output.path().join("_ingested")).len();
        assert_eq!(
            ingested,
            round + 1,
            "round {round}: one ingest record per committed run"
        );
        let committed: usize = tables.delta.values().map(|v| v.files.len()).sum();
        // Each committed run wrote the same files, and files a commit
        // replaced stay for --retain: the loser's were deleted.
        assert_eq!(
            loser_files,
            committed * (round + 1),
            "round {round}: the loser deleted its files; the committed runs' stay"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_is_version_1_and_version_0_still_reads_whole() {
    let output = tempfile::tempdir().unwrap();
    let input = workspace_input();
    run_locally(&input, output.path(), &[]);
    let first = Published::local(output.path()).await;
    run_locally(&input, output.path(), &[]);
    assert_eq!(versions(output.path()), [1; 5]);
    let old = Published::local_delta(output.path(), Some(0)).await;
    check_counts(&old, &WORKSPACE).await;
    let plays = "SELECT songplay_id, user_id, level FROM songplays ORDER BY songplay_id";
    assert_eq!(old.rows(plays).await, first.rows(plays).await);

    // The lake lists both runs, and rolls back to the first as a new run.
    let list = submit(
        &["--output", output.path().to_str().unwrap(), "--list-runs"],
        &[],
        &workspace_root(),
    );
    e2e::assert_success(&list);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.contains(&first.run_id), "{listed}");
    assert_eq!(listed.matches("| run-").count(), 2, "{listed}");
    let rollback = submit(
        &[
            "--output",
            output.path().to_str().unwrap(),
            "--rollback",
            &first.run_id,
        ],
        &[],
        &workspace_root(),
    );
    e2e::assert_success(&rollback);
    assert_eq!(versions(output.path()), [2; 5]);
    let rolled = Published::local(output.path()).await;
    check_counts(&rolled, &WORKSPACE).await;
    assert_eq!(rolled.rows(plays).await, first.rows(plays).await);
    let files = |published: &Published| -> Vec<Vec<String>> {
        TABLES
            .iter()
            .map(|t| {
                let mut files = published.delta[*t].files.clone();
                files.sort();
                files
            })
            .collect()
    };
    assert_eq!(
        files(&rolled),
        files(&old),
        "the rollback holds the first run's files"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_partition_is_split_at_the_target_file_size() {
    let output = tempfile::tempdir().unwrap();
    run_locally(
        &workspace_input(),
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

/// The data files in each of `TABLES` of a local lake, relative to the table.
fn files_on_disk(output: &Path) -> Vec<BTreeSet<String>> {
    TABLES
        .iter()
        .map(|table| {
            let dir = output.join(table);
            parquet_files(&dir)
                .iter()
                .map(|f| f.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
                .collect()
        })
        .collect()
}

/// The files each of `TABLES` names at its newest version, as delta-rs reads it.
fn files_named(output: &Path) -> Vec<BTreeSet<String>> {
    let url = format!("file://{}", output.canonicalize().unwrap().display());
    let views = e2e::tables::delta_views(&url, &TABLES, None, &[]);
    TABLES
        .iter()
        .map(|t| views[*t].files.iter().cloned().collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn vacuums_delete_replaced_files_and_every_nth_what_killed_runs_left() {
    let output = tempfile::tempdir().unwrap();
    let input = workspace_input();
    let vacuum = ["--retain", "0s", "--full-vacuum-every", "4"];
    // Lake run 1 creates the tables; a run killed once its files are
    // written leaves files no log names.
    run_locally(&input, output.path(), &vacuum);
    let args = [
        &[
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.path().to_str().unwrap(),
        ][..],
        &vacuum,
    ]
    .concat();
    let killed = submit(
        &args,
        &[("SPARKIFY_CRASH_AT", "written")],
        &workspace_root(),
    );
    assert_eq!(killed.status.signal(), Some(9), "{killed:?}");
    let first = files_named(output.path());
    let strays: Vec<BTreeSet<String>> = files_on_disk(output.path())
        .iter()
        .zip(&first)
        .map(|(on_disk, named)| on_disk - named)
        .collect();
    assert!(strays.iter().all(|s| !s.is_empty()), "{strays:?}");
    let but_named_and_strays = |others: &[&Vec<BTreeSet<String>>]| -> Vec<BTreeSet<String>> {
        let mut expected: Vec<BTreeSet<String>> = files_named(output.path())
            .iter()
            .zip(&strays)
            .map(|(named, strays)| named | strays)
            .collect();
        for other in others {
            for (expected, other) in expected.iter_mut().zip(other.iter()) {
                expected.extend(other.iter().cloned());
            }
        }
        expected
    };

    // Lake run 2 (Lite, before its commit): no Remove in the log yet, so
    // every file stays; the first run's are removed by this commit.
    run_locally(&input, output.path(), &vacuum);
    let second = files_named(output.path());
    assert!(second.iter().zip(&first).all(|(s, f)| s.is_disjoint(f)));
    assert_eq!(
        files_on_disk(output.path()),
        but_named_and_strays(&[&first])
    );
    assert_eq!(versions(output.path()), [1; 5]);

    // Lake run 3 (Lite): the first run's files go before its commit
    // (vacuumed at 2 and 3, committed at 4); the second run's, which that
    // commit removed, and the killed run's, which nothing names, stay.
    run_locally(&input, output.path(), &vacuum);
    assert_eq!(
        files_on_disk(output.path()),
        but_named_and_strays(&[&second])
    );
    assert_eq!(versions(output.path()), [4; 5]);

    // Lake run 4 (Full, the fourth, after its commit at 5): every file
    // no version names goes, the killed run's too (vacuumed at 6 and 7).
    run_locally(&input, output.path(), &vacuum);
    assert_eq!(files_on_disk(output.path()), files_named(output.path()));
    assert_eq!(versions(output.path()), [7; 5]);
    let tables = Published::local(output.path()).await;
    check_counts(&tables, &WORKSPACE).await;
    e2e::expect::check_keys(&tables).await;
    // The run's record, and so its report, name the versions after the vacuum.
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            output
                .path()
                .join("_runs")
                .join(&tables.run_id)
                .join("_report.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for table in TABLES {
        assert_eq!(report["versions"][table], 7, "{table}: {report}");
    }
}
