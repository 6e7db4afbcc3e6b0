//! Operating a shared cluster: every role refuses plans that touch
//! locations it was not deployed for (`--allowed-locations`), the scheduler
//! answers health probes and Prometheus scrapes and keeps an event log that
//! the history server serves, roles log JSON on request, and flags that
//! cannot be honoured are refused rather than ignored.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use e2e::cluster::Cluster;
use e2e::http::{answers, http_request, prometheus_value};
use e2e::{Daemon, assert_success, binary, free_port, submit, workspace_input, workspace_root};

/// `submit` to `cluster` from `input` to `output`, plus `extra`.
fn run_on(cluster: &Cluster, input: &Path, output: &Path, extra: &[&str]) -> Output {
    let address = cluster.address();
    let mut args = vec![
        "--scheduler",
        address.as_str(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    submit(&args, &[], &workspace_root())
}

/// A failed run's one line on stderr.
fn error_line(output: &Output) -> String {
    assert!(!output.status.success(), "the run was refused");
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

/// Asserts that a run was refused, in one line, for touching `location`
/// (`what` it did there: `reads`, `writes`); returns the line.
fn assert_refused(output: &Output, what: &str, location: &Path) -> String {
    let refused = error_line(output);
    let expected = format!("plan refused: it {what} file://{}", location.display());
    assert!(refused.contains(&expected), "{refused}");
    refused
}

/// The input under another name (a symbolic link): the same files, at a
/// location outside the allowed ones.
fn input_elsewhere(dir: &Path) -> std::path::PathBuf {
    let elsewhere = dir.join("elsewhere");
    std::os::unix::fs::symlink(workspace_input(), &elsewhere).unwrap();
    elsewhere
}

#[test]
fn a_fenced_cluster_runs_its_own_locations_and_refuses_any_other() {
    let logs = tempfile::tempdir().unwrap();
    let lake = tempfile::tempdir().unwrap();
    let output = lake.path().join("sparkify");
    let allowed = format!(
        "file://{},file://{}",
        workspace_input().display(),
        output.display()
    );
    let fence = ["--allowed-locations", allowed.as_str()];
    let cluster = Cluster::start_with(&fence, &fence, 1, 2, &[], logs.path());

    assert_success(&run_on(&cluster, &workspace_input(), &output, &[]));
    assert!(output.join("songs/_delta_log").exists());

    let elsewhere = input_elsewhere(lake.path());
    let refused = assert_refused(
        &run_on(&cluster, &elsewhere, &output, &[]),
        "reads",
        &elsewhere,
    );
    assert!(
        refused.contains("outside the allowed locations"),
        "{refused}"
    );

    let other_output = lake.path().join("other");
    assert_refused(
        &run_on(&cluster, &workspace_input(), &other_output, &[]),
        "writes",
        &other_output,
    );
    for table in ["songs", "artists", "users", "time", "songplays"] {
        assert!(
            !other_output.join(table).exists(),
            "{table} was written outside the fence"
        );
    }
}

/// A scheduler without the flag passes a plan on; the executor's own fence
/// refuses it when it decodes the task.
#[test]
fn an_executor_refuses_what_an_open_scheduler_passes_on() {
    let logs = tempfile::tempdir().unwrap();
    let lake = tempfile::tempdir().unwrap();
    let output = lake.path().join("sparkify");
    let allowed = format!("file://{}", output.display());
    let fence = ["--allowed-locations", allowed.as_str()];
    // The fleet's scheduling: executors poll for tasks and decode them.
    let scheduler = ["--scheduler-policy", "pull-staged"];
    let executor = [&fence[..], &["--task-scheduling-policy", "pull-staged"]].concat();
    let cluster = Cluster::start_with(&scheduler, &executor, 1, 2, &[], logs.path());
    let elsewhere = input_elsewhere(lake.path());
    assert_refused(
        &run_on(&cluster, &elsewhere, &output, &[]),
        "reads",
        &elsewhere,
    );
    assert!(
        cluster.executors[0].log().contains("plan refused"),
        "the executor refused it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduler_serves_probes_metrics_and_an_event_log_for_the_history_server() {
    let logs = tempfile::tempdir().unwrap();
    let lake = tempfile::tempdir().unwrap();
    let events = lake.path().join("events");
    std::fs::create_dir(&events).unwrap();
    let scheduler_args = [
        "--event-log-dir",
        events.to_str().unwrap(),
        "--log-format",
        "json",
    ];
    let mut cluster = Cluster::start_with(&scheduler_args, &[], 0, 2, &[], logs.path());
    let port = cluster.scheduler_port;
    assert!(answers(port, "/healthz"));
    let (status, body) = http_request(port, "GET", "/readyz").unwrap();
    assert_eq!(
        (status, body.trim()),
        (
            503,
            "not ready: fewer than 1 executors registered (--min-ready-executors)"
        )
    );
    cluster.add_executor(0, 2, &[], &[], logs.path());
    cluster.wait_for_executors(1);
    assert!(answers(port, "/readyz"));

    let output = lake.path().join("sparkify");
    let conf = ["--conf", "datafusion.execution.batch_size=4096"];
    assert_success(&run_on(&cluster, &workspace_input(), &output, &conf));
    let report = e2e::tables::Published::local_delta(&output, None).await;
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(output.join(format!("_runs/{}/_report.json", report.run_id))).unwrap(),
    )
    .unwrap();
    let jobs: Vec<String> = report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["job_id"].as_str().unwrap().to_string())
        .collect();
    assert!(!jobs.is_empty());

    // The --conf setting travelled with the jobs.
    let (status, config) =
        http_request(port, "GET", &format!("/api/job/{}/config", jobs[0])).unwrap();
    assert_eq!(status, 200, "{config}");
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert!(
        config
            .to_string()
            .contains(r#""datafusion.execution.batch_size":"4096""#),
        "{config}"
    );

    let (status, scrape) = http_request(port, "GET", "/api/metrics").unwrap();
    assert_eq!(status, 200, "{scrape}");
    assert_eq!(
        prometheus_value(&scrape, "job_submitted_total"),
        Some(jobs.len() as f64),
        "{scrape}"
    );
    assert_eq!(
        prometheus_value(&scrape, "job_completed_total"),
        Some(jobs.len() as f64),
        "{scrape}"
    );
    assert_eq!(
        prometheus_value(&scrape, "job_failed_total"),
        Some(0.0),
        "{scrape}"
    );

    let history_port = free_port();
    let mut command = Command::new(binary("history"));
    command.args([
        "--event-log-dir",
        events.to_str().unwrap(),
        "--bind-port",
        &history_port.to_string(),
        "--update-interval-seconds",
        "1",
    ]);
    let mut history = Daemon::spawn("history", command, logs.path());
    // The scheduler writes a job's log as the job ends, and the history
    // server rescans each second: wait until it lists every job of the run.
    history.wait_until(Duration::from_secs(60), "listing the run's jobs", || {
        http_request(history_port, "GET", "/api/jobs")
            .filter(|(status, _)| *status == 200)
            .is_some_and(|(_, body)| jobs.iter().all(|job| body.contains(job.as_str())))
    });
    let (status, stages) =
        http_request(history_port, "GET", &format!("/api/job/{}/stages", jobs[0])).unwrap();
    assert_eq!(status, 200, "{stages}");
    assert!(stages.contains("stage_id"), "{stages}");

    let log = cluster.scheduler.log();
    assert!(!log.trim().is_empty());
    for line in log.lines().filter(|line| !line.trim().is_empty()) {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a scheduler log line is not JSON ({e}): {line}"));
        assert!(
            entry["level"].is_string() && entry["fields"].is_object(),
            "{line}"
        );
    }
}

#[test]
fn flags_a_role_cannot_honour_are_refused_with_one_line() {
    let refused = |program: &str, args: &[&str]| -> String {
        let output = Command::new(binary(program)).args(args).output().unwrap();
        assert!(!output.status.success(), "{program} {args:?} started");
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        stderr
    };
    let port = free_port().to_string();
    let rest = refused("scheduler", &["--bind-port", &port, "--disable-rest-api"]);
    assert!(rest.contains("--disable-rest-api"), "{rest}");
    let fence = refused("executor", &["--allowed-locations", "ftp://lake/raw"]);
    assert!(
        fence.contains("--allowed-locations") && fence.contains("ftp"),
        "{fence}"
    );

    let protected = submit(
        &["--conf", "datafusion.optimizer.prefer_hash_join=false"],
        &[],
        &workspace_root(),
    );
    assert_eq!(protected.status.code(), Some(2));
    assert!(error_line(&protected).contains("not changeable"));
    let unknown = submit(&["--conf", "datafusion.no.such=1"], &[], &workspace_root());
    assert_eq!(unknown.status.code(), Some(2));
    assert!(error_line(&unknown).contains("--conf datafusion.no.such=1"));
}
