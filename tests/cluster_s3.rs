//! The ETL submitted to a real cluster: a scheduler and two executors, each
//! its own process, reading from and writing to an S3 API server (moto), all
//! on loopback. The output is read back from S3.

use std::time::Duration;

use e2e::cluster::{Cluster, S3Server, list};
use e2e::expect::{
    WORKSPACE, check_counts, check_event_facts, check_keys, check_types, check_workspace_match,
};
use e2e::http::http_request;
use e2e::tables::Published;
use e2e::{
    Daemon, assert_success, free_port, interrupt, spawn_submit, submit, workspace_input,
    workspace_root,
};

/// Runs `submit` against `cluster`; returns its output.
fn submit_to(cluster: &Cluster, s3: &S3Server, extra: &[&str]) -> std::process::Output {
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let scheduler = cluster.address();
    let mut args = vec!["--scheduler", scheduler.as_str()];
    args.extend_from_slice(extra);
    submit(&args, &env, &workspace_root())
}

/// Job ids an executor's log says it ran tasks of.
fn jobs_run_by(executor: &Daemon) -> Vec<String> {
    executor
        .log()
        .lines()
        .filter_map(|line| line.split("Execute task  : [TID ").nth(1))
        .filter_map(|rest| rest.split('/').next())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_etl_runs_sharded_over_two_executors_from_s3_to_s3() {
    let logs = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(logs.path());
    s3.create_bucket("lake");
    let uploaded = s3.upload("lake", &workspace_input(), "raw").await;
    assert_eq!(uploaded, 71 + 30);
    let cluster = Cluster::start(2, 2, &s3.env(), logs.path());

    // One job at a time: every stage then starts with all four task slots
    // free, and the scheduler deals its tasks out over both executors.
    let output = submit_to(
        &cluster,
        &s3,
        &[
            "--input",
            "s3://lake/raw",
            "--output",
            "s3://lake/out",
            "--concurrent-jobs",
            "1",
        ],
    );
    assert_success(&output);

    let tables = Published::in_delta_store(s3.bucket("lake"), "s3://lake", "out", &s3.env()).await;
    check_counts(&tables, &WORKSPACE).await;
    check_keys(&tables).await;
    check_types(&tables).await;
    check_event_facts(&tables).await;
    check_workspace_match(&tables).await;

    let run = format!("out/_runs/{}", tables.run_id);
    let objects = list(s3.bucket("lake").as_ref(), "out").await;
    assert!(
        objects
            .iter()
            .any(|o| o.starts_with("out/songplays/year=2018/month=11/part-"))
    );
    for table in ["songs", "artists", "users", "time", "songplays"] {
        let first_commit = format!("out/{table}/_delta_log/00000000000000000000.json");
        assert!(objects.contains(&first_commit), "{first_commit}");
    }
    assert!(objects.contains(&"out/_runs/_log/00000000000000000001.json".to_string()));
    assert!(objects.contains(&format!("{run}/_report.json")));
    assert!(
        !objects.iter().any(|o| o.contains("/_staging/")),
        "staging is removed on commit"
    );

    for executor in &cluster.executors {
        assert!(
            !jobs_run_by(executor).is_empty(),
            "an executor ran no task:\n{}",
            executor.log()
        );
    }
    // Each songs file is named for the writer task that wrote it, and each
    // executor logs the writers it ran: the table came from both.
    let writers: Vec<String> = objects
        .iter()
        .filter(|o| o.starts_with("out/songs/") && !o.contains("_delta_log"))
        .filter_map(|o| o.rsplit('/').next()?.strip_prefix("part-"))
        .filter_map(|name| name.split('-').next().map(str::to_string))
        .collect();
    assert!(!writers.is_empty());
    for executor in &cluster.executors {
        let log = executor.log();
        assert!(
            writers
                .iter()
                .any(|writer| log.contains(&format!("songs: writer {writer} "))),
            "no songs file was written by this executor:\n{log}"
        );
    }
    check_shuffle_report(&cluster, &s3, &run).await;
    let secret = "sparkify-test-secret";
    for daemon in cluster.executors.iter().chain([&cluster.scheduler]) {
        assert!(!daemon.log().contains(secret), "a log shows the secret key");
    }
    assert!(!String::from_utf8_lossy(&output.stdout).contains(secret));
    assert!(!String::from_utf8_lossy(&output.stderr).contains(secret));
}

/// The bytes each stage shuffled, in the run's `_report.json`, are what our
/// scheduler's `/api/job/{id}/shuffle` says, and that endpoint counts the
/// same rows per stage as Ballista's own stage metrics: every block counted
/// once.
async fn check_shuffle_report(cluster: &Cluster, s3: &S3Server, run: &str) {
    use object_store::ObjectStoreExt;
    let report = s3
        .bucket("lake")
        .get(&format!("{run}/_report.json").into())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    let port: u16 = cluster
        .address()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let get = |path: String| -> serde_json::Value {
        let (status, body) = http_request(port, "GET", &path).expect("the scheduler answers");
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    };
    let mut multi_block_stages = 0;
    for job in report["jobs"].as_array().unwrap() {
        let id = job["job_id"].as_str().unwrap();
        let shuffle = get(format!("/api/job/{id}/shuffle"));
        let ballista = get(format!("/api/job/{id}/stages"));
        let by_id = |stages: &serde_json::Value, key: &str, id: &str| {
            stages["stages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s[key].to_string().trim_matches('"') == id)
                .cloned()
                .unwrap_or_else(|| panic!("stage {id} of {}", job["job"]))
        };
        for stage in job["stages"].as_array().unwrap() {
            let stage_id = stage["stage"].as_str().unwrap();
            let wrote = by_id(&shuffle, "stage_id", stage_id);
            let counted = by_id(&ballista, "stage_id", stage_id);
            assert_eq!(
                wrote["rows"], counted["output_rows"],
                "{}: {wrote}",
                job["job"]
            );
            assert_eq!(wrote["bytes"], stage["shuffle_bytes"]);
            assert_eq!(wrote["blocks"], stage["shuffle_blocks"]);
            assert!(stage["shuffle_bytes"].as_u64().unwrap() > 0, "{stage}");
            multi_block_stages += usize::from(stage["shuffle_blocks"].as_u64().unwrap() > 1);
        }
    }
    assert!(
        multi_block_stages > 0,
        "some stage shuffles in several blocks"
    );
}

#[test]
fn an_unreachable_scheduler_is_one_clear_line() {
    let address = format!("127.0.0.1:{}", free_port());
    let output = submit(&["--scheduler", &address], &[], &workspace_root());
    assert_eq!(output.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(&format!(
            "error: cannot reach the Ballista scheduler at {address}"
        )),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn a_scheduler_without_executors_times_out_clearly() {
    let logs = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(0, 1, &[], logs.path());
    let started = std::time::Instant::now();
    let output = submit(
        &["--scheduler", &cluster.address(), "--executor-timeout", "1"],
        &[],
        &workspace_root(),
    );
    assert_eq!(output.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no executor registered with the scheduler")
            && stderr.contains("within 1s"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// Ctrl-C stops a run at once with one line and the shell's exit code,
/// whatever it waits for: here, executors that never come. (The in-process
/// executor also stops on it; before, a run then waited out the scheduler's
/// 180 s grace for lost executors and blamed them.)
#[test]
fn ctrl_c_stops_a_run_at_once_and_says_so() {
    let logs = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(0, 1, &[], logs.path());
    let scheduler = cluster.address();
    let run = spawn_submit(
        &["--scheduler", &scheduler, "--executor-timeout", "600"],
        &[],
    );
    let (status, stderr) = interrupt(run);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.starts_with("error: interrupted by SIGINT: the run stopped unpublished"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_job_reports_the_reason_from_the_cluster() {
    let logs = tempfile::tempdir().unwrap();
    let s3 = S3Server::with_workspace_input(logs.path()).await;
    let bad_log = logs.path().join("bad");
    std::fs::create_dir_all(bad_log.join("log_data/2018/12")).unwrap();
    std::fs::write(
        bad_log.join("log_data/2018/12/2018-12-01-events.json"),
        "{\"ts\": 1}\n{\"ts\": \n",
    )
    .unwrap();
    s3.upload("lake", &bad_log, "raw").await;
    let cluster = Cluster::start(1, 2, &s3.env(), logs.path());

    let output = submit_to(
        &cluster,
        &s3,
        &[
            "--strict",
            "--input",
            "s3://lake/raw",
            "--output",
            "s3://lake/out",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "raw/log_data/2018/12/2018-12-01-events.json:1: missing required field 'page'"
        ),
        "{stderr}"
    );

    let unwritable = submit_to(
        &cluster,
        &s3,
        &[
            "--input",
            "s3://lake/raw",
            "--output",
            "s3://no-such-bucket/out",
        ],
    );
    assert_eq!(unwritable.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&unwritable.stderr);
    assert!(
        stderr.contains("output s3://no-such-bucket/out is not writable"),
        "{stderr}"
    );
}

/// `submit` in-process with `env` only, reading `input`; its exit code and
/// its one line of error.
fn failing_run(env: &[(&str, String)], input: &str) -> (Option<i32>, String) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let output = submit(
        &["--input", input, "--output", "s3://lake/out"],
        &env,
        &workspace_root(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("sparkify-test-secret"), "{stderr}");
    (output.status.code(), stderr)
}

#[test]
fn credential_and_bucket_errors_are_one_clear_line() {
    let logs = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(logs.path());
    s3.create_bucket("lake");

    let mut no_keys = s3.env();
    no_keys.retain(|(k, _)| !k.starts_with("AWS_ACCESS_KEY") && !k.starts_with("AWS_SECRET"));
    let (code, stderr) = failing_run(&no_keys, "s3://lake/raw");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("no AWS credentials for S3 bucket 'lake'"),
        "{stderr}"
    );

    let (code, stderr) = failing_run(&s3.env(), "s3://no-such-bucket/raw");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("s3://no-such-bucket/raw") && stderr.contains("the bucket does not exist"),
        "{stderr}"
    );

    let denying = S3Server::start_denying(logs.path());
    let (code, stderr) = failing_run(&denying.env(), "s3://lake/raw");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("s3://lake/raw") && stderr.contains("access denied"),
        "{stderr}"
    );
}

/// `--incremental` on the cluster, from S3 to S3: the workspace subset in
/// three arrivals (ten log days each, the songs in two halves), each
/// increment's lake equal to a full run's over the input so far, as
/// delta-rs reads both from S3.
#[tokio::test(flavor = "multi_thread")]
async fn increments_on_the_cluster_equal_full_runs_on_s3() {
    use e2e::arrivals::{add, arrivals};
    use e2e::tables::assert_same_tables;

    let logs = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(logs.path());
    s3.create_bucket("lake");
    let cluster = Cluster::start(2, 2, &s3.env(), logs.path());
    let source = workspace_input();
    let days = arrivals(&source, 11);
    let input = tempfile::tempdir().unwrap();
    for (number, step) in days.chunks(10).enumerate() {
        add(&source, input.path(), &step.concat());
        // Files uploaded again keep their ETag (their content's MD5): the
        // lake has loaded them, and they are skipped.
        s3.upload("lake", input.path(), "raw").await;
        let run = |output: &str, mode: &str| {
            let output = format!("s3://lake/{output}");
            let args = ["--input", "s3://lake/raw", "--output", &output, mode];
            let out = submit_to(&cluster, &s3, &args);
            assert_success(&out);
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let increment = run("lake", "--incremental");
        if number > 0 {
            assert!(
                increment.contains("incremental: ")
                    && increment.contains(" input files were loaded by earlier runs"),
                "{increment}"
            );
        }
        run("full", "--full");
        assert_same_tables(
            "s3://lake/lake",
            "s3://lake/full",
            &s3.env(),
            &format!("after arrival {number}"),
        );
    }
}
