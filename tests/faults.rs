//! Bad input and faults: every record is loaded or quarantined and counted,
//! limits on rejects hold, transient S3 failures are retried, a job
//! survives the loss of an executor, and a scheduler restart fails a run
//! clearly without publishing any of it.

use std::io::Write;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use e2e::cluster::{Cluster, FaultProxy, S3Server, list};
use e2e::expect::{WORKSPACE, check_counts, check_keys, check_workspace_match};
use e2e::http::http_request;
use e2e::tables::Published;
use e2e::{
    SubmitRun, assert_success, ended_within, interrupt, run_locally, spawn_submit, submit,
    workspace_input, workspace_root,
};

const SONG: &str = r#"{"num_songs": 1, "artist_id": "ARBAD01", "artist_latitude": null, "artist_longitude": null, "artist_location": "", "artist_name": "Bad Input Band", "song_id": "SOBAD01", "title": "Corpus", "duration": 200.5, "year": 2001}"#;
const EVENT: &str = r#"{"artist":"Bad Input Band","auth":"Logged In","firstName":"Ada","gender":"F","itemInSession":0,"lastName":"Lovelace","length":200.5,"level":"free","location":"London","method":"PUT","page":"NextSong","registration":1540000000000.0,"sessionId":7,"song":"Corpus","status":200,"ts":1542000000000,"userAgent":"test","userId":"42"}"#;

/// A corpus of bad and awkward input, with how many records of each kind
/// must be loaded and how many rejected.
struct Corpus {
    songs_loaded: i64,
    songs_rejected: i64,
    events_loaded: i64,
    events_rejected: i64,
}

fn write(root: &Path, relative: &str, bytes: &[u8]) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

/// Writes the corpus under `root`: each case in its own file, named for it.
fn bad_input_corpus(root: &Path) -> Corpus {
    let song = |id: &str| SONG.replace("SOBAD01", id);
    // Read correctly.
    write(root, "song_data/A/plain.json", song("SO01").as_bytes());
    write(
        root,
        "song_data/A/pretty.json",
        song("SO02").replace(", ", ",\n    ").as_bytes(),
    );
    write(
        root,
        "song_data/A/bom.json",
        format!("\u{FEFF}{}", song("SO03")).as_bytes(),
    );
    write(
        root,
        "song_data/A/crlf.json",
        format!("{}\r\n", song("SO04")).as_bytes(),
    );
    write(root, "song_data/A/compressed.json.gz", &gzip(&song("SO05")));
    write(
        root,
        "song_data/A/extra.json",
        song("SO06")
            .replace("\"year\"", "\"mood\": \"sad\", \"year\"")
            .as_bytes(),
    );
    write(
        root,
        "song_data/A/number-title.json",
        song("SO07").replace("\"Corpus\"", "66").as_bytes(),
    );
    write(
        root,
        "song_data/A/folder.json/inside.json",
        song("SO08").as_bytes(),
    );
    write(root, "song_data/A/empty.json", b"");
    // Rejected.
    write(
        root,
        "song_data/B/truncated.json",
        &song("SO09").as_bytes()[..60],
    );
    write(
        root,
        "song_data/B/year-as-text.json",
        song("SO10").replace("2001", "\"two thousand\"").as_bytes(),
    );
    write(
        root,
        "song_data/B/no-song-id.json",
        SONG.replace("\"song_id\": \"SOBAD01\", ", "").as_bytes(),
    );
    write(root, "song_data/B/not-json.json", b"this is not json\n");
    // Not input at all: listed as ignored.
    for name in ["_SUCCESS", ".DS_Store", "part-0000.crc", ".hidden/x.json"] {
        write(root, &format!("song_data/{name}"), song("SO99").as_bytes());
    }

    let event = |ts: u64| EVENT.replace("1542000000000", &ts.to_string());
    let good: Vec<String> = (0..5).map(|i| event(1_542_000_000_000 + i)).collect();
    let mut day = good.join("\n");
    day.push('\n');
    day.push_str("{\"ts\": 1542000000099, \"page\": \"NextSong\",, broken\n"); // malformed line
    day.push_str(&format!(
        "{}\n",
        EVENT.replace("1542000000000", "\"yesterday\"")
    )); // ts as text
    day.push_str(&format!(
        "{}\n",
        EVENT.replace("\"userId\":\"42\"", "\"userId\":42")
    )); // userId as number: read
    day.push_str(&format!(
        "{}\n",
        EVENT.replace("\"page\":\"NextSong\",", "")
    )); // no page
    write(
        root,
        "log_data/2018/11/2018-11-01-events.json",
        day.as_bytes(),
    );
    write(
        root,
        "log_data/2018/11/2018-11-02-events.json",
        format!("\u{FEFF}{}\r\n{}\r\n", good[0], good[1]).as_bytes(),
    );
    write(
        root,
        "log_data/2018/11/2018-11-03-events.json.gz",
        &gzip(&format!("{}\n", good[2])),
    );
    write(
        root,
        "log_data/2018/11/2018-11-04-events.json",
        &format!("{}\n", good[3]).as_bytes()[..40],
    );
    write(root, "log_data/2018/11/_SUCCESS", b"");
    Corpus {
        songs_loaded: 8,
        songs_rejected: 4,
        events_loaded: 5 + 1 + 2 + 1,
        events_rejected: 3 + 1,
    }
}

/// The report the published run wrote.
/// The report of the newest run recorded in a local Delta lake.
fn report(output: &Path) -> serde_json::Value {
    let run = e2e::tables::last_run_id(output);
    let path = output.join("_runs").join(run).join("_report.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn input_report<'a>(report: &'a serde_json::Value, input: &str) -> &'a serde_json::Value {
    report["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["input"] == input)
        .unwrap_or_else(|| panic!("no {input} in {report}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_record_is_read_or_quarantined_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    let output = dir.path().join("output");
    let corpus = bad_input_corpus(&input);
    run_locally(&input, &output, &[]);

    let report = report(&output);
    for (kind, loaded, rejected) in [
        ("songs", corpus.songs_loaded, corpus.songs_rejected),
        ("events", corpus.events_loaded, corpus.events_rejected),
    ] {
        let counts = input_report(&report, kind);
        assert_eq!(counts["loaded"], loaded, "{kind}: {counts}");
        assert_eq!(counts["rejected"], rejected, "{kind}: {counts}");
        assert_eq!(counts["records"], loaded + rejected, "{kind}: {counts}");
    }
    let ignored = input_report(&report, "songs")["ignored_files"].to_string();
    for name in ["_SUCCESS", ".DS_Store", "part-0000.crc", ".hidden/x.json"] {
        assert!(
            ignored.contains(name),
            "{name} is listed as ignored: {ignored}"
        );
    }

    let tables = Published::local(&output).await;
    assert_eq!(tables.count("songs").await, corpus.songs_loaded);
    let titles = tables
        .rows("SELECT title FROM songs WHERE song_id = 'SO07'")
        .await;
    assert_eq!(titles, [["66"]], "a numeric title is read as its text");

    // The rejects are one Delta table, each row naming its run and input.
    for (kind, expected) in [
        ("songs", corpus.songs_rejected),
        ("events", corpus.events_rejected),
    ] {
        let sql = format!(
            "CREATE VIEW rejects_{kind} AS SELECT * FROM rejects WHERE input = '{kind}' AND run_id = '{}'",
            tables.run_id
        );
        tables.query(&sql).await;
        assert_eq!(tables.count(&format!("rejects_{kind}")).await, expected);
    }
    let malformed = tables
        .rows("SELECT reject_file, reject_line, reject_reason, reject_raw FROM rejects_events WHERE reject_line = 6")
        .await;
    assert_eq!(malformed.len(), 1, "{malformed:?}");
    assert!(
        malformed[0][0].ends_with("log_data/2018/11/2018-11-01-events.json"),
        "{malformed:?}"
    );
    assert!(
        malformed[0][2].starts_with("malformed JSON"),
        "{malformed:?}"
    );
    assert!(malformed[0][3].contains(",, broken"), "{malformed:?}");
    let reasons = tables
        .rows("SELECT reject_file, reject_reason FROM rejects_songs ORDER BY reject_file")
        .await;
    let reason_of = |file: &str| {
        reasons
            .iter()
            .find(|r| r[0].ends_with(file))
            .unwrap_or_else(|| panic!("{file} is rejected: {reasons:?}"))[1]
            .clone()
    };
    assert!(
        reason_of("year-as-text.json").contains("year"),
        "{reasons:?}"
    );
    assert!(
        reason_of("no-song-id.json").contains("song_id"),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reject_limits_and_strict_mode_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    bad_input_corpus(&input);
    let args = |output: &str, extra: &[&'static str]| {
        let mut args = vec![
            "--input".to_string(),
            input.to_str().unwrap().to_string(),
            "--output".to_string(),
            dir.path().join(output).to_str().unwrap().to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        submit(&args, &[], &workspace_root())
    };

    let within = run(args("within", &["--max-rejects", "4"]));
    assert_success(&within);

    let over = run(args("over", &["--max-rejects", "3"]));
    assert_eq!(over.status.code(), Some(7), "{over:?}");
    let stderr = String::from_utf8_lossy(&over.stderr);
    assert!(
        stderr.contains("rejected") && stderr.contains("--max-rejects 3 allows"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("over/songs/_delta_log").exists(),
        "no table is published"
    );
    let quarantine = Published::local(&dir.path().join("over")).await;
    assert_eq!(
        quarantine.count("rejects").await as u64,
        4 + 4,
        "the rejects of a stopped run are committed for inspection"
    );

    let fraction = run(args("fraction", &["--max-rejects", "10%"]));
    assert_eq!(
        fraction.status.code(),
        Some(7),
        "4 of 12 songs is over 10%: {fraction:?}"
    );

    let strict = run(args("strict", &["--strict"]));
    assert_eq!(strict.status.code(), Some(7), "{strict:?}");
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(
        stderr.contains(".json:"),
        "names the file and line: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_s3_faults_are_retried() {
    let logs = tempfile::tempdir().unwrap();
    let s3 = S3Server::with_workspace_input(logs.path()).await;

    let args = [
        "--error-rate",
        "0.08",
        "--drop-rate",
        "0.04",
        "--latency-ms",
        "5",
        "--seed",
        "7",
    ];
    let proxy = FaultProxy::start(&s3, &args, logs.path());
    let env = proxy.env(&s3);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let output = submit(
        &["--input", "s3://lake/raw", "--output", "s3://lake/out"],
        &env,
        &workspace_root(),
    );
    assert_success(&output);

    let stats = proxy.stats();
    assert!(stats["errors_injected"].as_u64().unwrap() > 0, "{stats}");
    assert!(
        stats["connections_dropped"].as_u64().unwrap() > 0,
        "{stats}"
    );

    let tables = Published::in_delta_store(s3.bucket("lake"), "s3://lake", "out", &s3.env()).await;
    check_counts(&tables, &WORKSPACE).await;
    check_keys(&tables).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_survives_an_executor_killed_in_the_middle() {
    let logs = tempfile::tempdir().unwrap();
    let output = logs.path().join("output");
    // The scheduler declares an executor lost after 10 s without a poll:
    // pulling executors' polls are their heartbeats, 5 s apart at most
    // while every slot is busy (a task waiting on the dead executor's
    // shuffle files retries for 9 s). Executors pull tasks, the policy that
    // reruns a lost executor's stages.
    let scheduler_args = [
        "--executor-timeout-seconds",
        "10",
        "--expire-dead-executor-interval-seconds",
        "1",
        "--scheduler-policy",
        "pull-staged",
    ];
    let pull = ["--task-scheduling-policy", "pull-staged"];
    let mut cluster = Cluster::start_with(&scheduler_args, &pull, 1, 2, &[], logs.path());
    // The second executor kills itself (SIGKILL) once it has uploaded a table file.
    cluster.add_executor(
        1,
        2,
        &pull,
        &[("SPARKIFY_CRASH_AT", "mid-write".to_string())],
        logs.path(),
    );
    cluster.wait_for_executors(2);

    let input = workspace_input();
    let args = [
        "--scheduler",
        &cluster.address(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ];
    let result = submit(&args, &[("RUST_LOG", "etl::run=info")], &workspace_root());
    assert_success(&result);
    let killed = cluster.executors[1].log();
    assert!(
        killed.contains("crash point mid-write reached"),
        "the armed executor was killed mid-write:\n{killed}"
    );
    // The killed attempt had marked itself and written a file it never
    // reported: publishing searched the tables' folders and deleted it.
    let log = String::from_utf8_lossy(&result.stderr);
    let deleted = log
        .split_once("task attempts were not kept")
        .and_then(|(_, rest)| rest.split_once("deleted their "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        deleted.is_some_and(|n| n > 0),
        "publishing found the killed attempt's files:\n{log}"
    );

    let tables = Published::local(&output).await;
    check_counts(&tables, &WORKSPACE).await;
    check_keys(&tables).await;
    check_workspace_match(&tables).await;
}

/// A run stopped while its jobs run on a cluster cancels them: the cluster
/// is not left working for a run that will never commit.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_cancels_the_runs_jobs_on_the_cluster() {
    let (status, stderr) = stop_while_jobs_run(&[], interrupt).await;
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
}

/// `--timeout` stops a run that would otherwise wait ten minutes, with one
/// line that says what it was waiting for and `timeout(1)`'s exit code, and
/// cancels its jobs like Ctrl-C.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_out_of_time_stops_says_where_and_cancels_its_jobs() {
    let (status, stderr) = stop_while_jobs_run(&["--timeout", "40s"], |run| {
        ended_within(run, Duration::from_secs(60), "a job was seen running")
    })
    .await;
    assert_eq!(status.code(), Some(124), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("the run took longer than --timeout 40s: the run stopped unpublished"),
        "{stderr}"
    );
    // Both staging jobs (one stage each, no shuffle) wait on their scans'
    // first S3 reads: nothing of them has finished, and the executor's two
    // slots hold a task of one job or of each (Ballista may bind one task
    // to both slots).
    let mut running = 0;
    for job in ["stage songs", "stage events"] {
        let state = format!("{job}: Running, 0 of 1 stages done, tasks: ");
        let clause = stderr
            .split("; ")
            .find_map(|clause| clause.trim_end().split_once(&state))
            .unwrap_or_else(|| panic!("the error says where {job} stood: {stderr}"));
        let tasks = clause.1.strip_suffix(" running, 0 done").expect(clause.1);
        running += tasks.parse::<usize>().expect(tasks);
    }
    assert!(running >= 1, "{stderr}");
}

/// In-process too, `--timeout` ends a run that waits on S3 (every request
/// answered after ten minutes, so the input listing never ends) on time:
/// one line, exit code 124, and no job to describe.
#[test]
fn an_in_process_run_out_of_time_ends_on_time() {
    let logs = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(logs.path());
    s3.create_bucket("lake");
    let proxy = FaultProxy::start(&s3, &["--latency-ms", "600000"], logs.path());
    let output = tempfile::tempdir().unwrap();
    let env = proxy.env(&s3);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = [
        "--input",
        "s3://lake/raw",
        "--output",
        output.path().to_str().unwrap(),
        "--timeout",
        "5s",
    ];
    let started = std::time::Instant::now();
    let run = submit(&args, &env, &workspace_root());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(124), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "ended {:?} after starting, S3 answers after ten minutes",
        started.elapsed()
    );
    assert_eq!(
        stderr.trim(),
        "error: the run took longer than --timeout 5s: the run stopped unpublished (readers still see the previous run, unless its commit had already completed)"
    );
    assert!(!output.path().join("_LATEST").exists(), "nothing published");
}

/// Starts a run with `args` on a cluster whose executors' S3 requests wait
/// ten minutes at the proxy (the client lists the input directly), so its
/// jobs are surely running when `stop` is called, once one is seen
/// running. Checks that no job of the run is left queued or running and
/// that nothing is published; returns how `stop` says the run ended.
async fn stop_while_jobs_run(
    args: &[&str],
    stop: impl FnOnce(SubmitRun) -> (ExitStatus, String),
) -> (ExitStatus, String) {
    let logs = tempfile::tempdir().unwrap();
    let s3 = S3Server::with_workspace_input(logs.path()).await;
    let proxy = FaultProxy::start(&s3, &["--latency-ms", "600000"], logs.path());
    let mut cluster = Cluster::start(1, 2, &proxy.env(&s3), logs.path());
    let scheduler = cluster.address();
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut run_args = vec![
        "--scheduler",
        &scheduler,
        "--input",
        "s3://lake/raw",
        "--output",
        "s3://lake/out",
    ];
    run_args.extend_from_slice(args);
    let run = spawn_submit(&run_args, &env);
    let port = cluster.scheduler_port;
    let jobs = || http_request(port, "GET", "/api/jobs").map(|(_, body)| body);
    // The run submits its two staging jobs together; both are listed
    // before it is stopped, as a job whose submission is still on its way
    // cannot be cancelled (README).
    let running = |body: &str| body.matches("\"Running\"").count();
    cluster.scheduler.wait_until(
        Duration::from_secs(120),
        "running both staging jobs",
        || jobs().is_some_and(|body| running(&body) >= 2),
    );

    let ended = stop(run);
    // Ballista applies a cancellation in its event loop, a moment after
    // accepting it; without one the jobs would run for ten minutes more.
    let unfinished = |body: &str| {
        let listed: serde_json::Value = serde_json::from_str(body).expect("jobs are JSON");
        let listed = listed.as_array().expect("a list of jobs").clone();
        assert!(!listed.is_empty(), "the run's jobs are listed");
        listed
            .iter()
            .filter(|job| ["Queued", "Running"].contains(&job["status"].as_str().unwrap()))
            .count()
    };
    cluster
        .scheduler
        .wait_until(Duration::from_secs(30), "cancelling the jobs", || {
            jobs().is_some_and(|body| unfinished(&body) == 0)
        });
    assert!(
        list(s3.bucket("lake").as_ref(), "out/_LATEST")
            .await
            .is_empty(),
        "the stopped run published nothing"
    );
    ended
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduler_restart_fails_the_run_clearly_and_a_rerun_publishes_once() {
    let logs = tempfile::tempdir().unwrap();
    let s3 = S3Server::with_workspace_input(logs.path()).await;
    // Every S3 request waits 100 ms, so a run lasts seconds: long enough to
    // restart the scheduler while a job of it is seen running.
    let proxy = FaultProxy::start(&s3, &["--latency-ms", "100"], logs.path());
    let env = proxy.env(&s3);
    let mut cluster = Cluster::start(1, 2, &env, logs.path());
    let args: Vec<String> = [
        "--scheduler",
        &cluster.address(),
        "--input",
        "s3://lake/raw",
        "--output",
        "s3://lake/out",
    ]
    .map(String::from)
    .to_vec();
    let run = {
        let (args, env) = (args.clone(), env.clone());
        std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            submit(&args, &env, &workspace_root())
        })
    };
    let port = cluster.scheduler_port;
    cluster
        .scheduler
        .wait_until(Duration::from_secs(120), "running a job", || {
            http_request(port, "GET", "/api/jobs")
                .is_some_and(|(_, body)| body.contains("\"Running\""))
        });
    cluster.restart_scheduler(&[], &env, logs.path());

    let failed = run.join().unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(5), "{stderr}");
    let stderr = stderr.trim();
    // Whether the new scheduler answers yet when `submit` looks decides
    // between the two words; both are the truth at that moment.
    let scheduler = format!("error: the Ballista scheduler at {}", cluster.address());
    assert!(
        [" restarted while job", " stopped while job"]
            .iter()
            .any(|what| stderr.starts_with(&format!("{scheduler}{what}")))
            && stderr.ends_with("nothing was published, submit again once it is back"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        list(s3.bucket("lake").as_ref(), "out/_LATEST")
            .await
            .is_empty(),
        "the failed run published nothing"
    );

    // The executor registers with the new scheduler on its next heartbeat.
    cluster.wait_for_executors(1);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let rerun = submit(&args, &env, &workspace_root());
    assert_success(&rerun);
    let tables = Published::in_delta_store(s3.bucket("lake"), "s3://lake", "out", &s3.env()).await;
    check_counts(&tables, &WORKSPACE).await;
    check_keys(&tables).await;
}
