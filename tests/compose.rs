//! The cluster of `docker-compose.yml`, in containers: the images built from
//! this machine's debug binaries, an S3 store, a scheduler and two executors;
//! the one-shot job loads `sample-data/` into the store and runs the ETL. The
//! tables are read back from the store. Then the job runs again and one
//! executor container is killed while it runs: the job still completes with
//! the same tables. The cluster runs the Terraform fleet's scheduling flags
//! (pull-staged, a short lost-executor timeout), a fence of allowed
//! locations, and the scheduler's Prometheus scrape is read. It needs a Docker engine, so it is `#[ignore]`d by
//! default and CI runs it: where Docker is expected, its absence fails.

use std::fs::File;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::expect::{Expected, check_counts, check_keys};
use e2e::http::{http_request, prometheus_value};
use e2e::tables::Published;
use e2e::{binary, free_ports, workspace_root};
use object_store::aws::{AmazonS3, AmazonS3Builder};

/// What the ETL makes of `sample-data/` (written by datagen with seed 7).
const SAMPLE: Expected = Expected {
    songs: 150,
    artists: 77,
    users: 27,
    time: 1_213,
    songplays: 1_213,
    matched_songplays: 257,
    song_partitions: 143,
};

/// Where docker-compose.yml's job publishes: s3://lake/sparkify.
const BUCKET: &str = "lake";
const OUTPUT_PREFIX: &str = "sparkify";

/// The tests' own image tag, so that a user's `latest` images stay as built.
const IMAGE_TAG: &str = "e2e";

/// The scheduler declares a killed executor lost after this many seconds
/// without a poll (a busy executor polls every 5 s).
const EXECUTOR_LOST_SECONDS: &str = "10";

const JOB: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Docker engine; CI runs it"]
async fn the_compose_cluster_runs_the_etl_and_survives_a_killed_executor() {
    assert!(
        succeeds("docker", &["info"]),
        "no Docker engine answers (`docker info` failed)"
    );
    let started = Instant::now();
    build_images();
    println!("images built in {:.0?}", started.elapsed());

    let compose = Compose::new();
    let started = Instant::now();
    // The README's command, detached: the cluster comes up and the job runs.
    compose.expect_success(&["up", "-d", "--scale", "executor=2"]);
    let job = compose.containers("etl");
    assert_eq!(job.len(), 1, "one etl container: {job:?}");
    let exit_code = compose.wait_for_exit(&job[0], JOB);
    assert_eq!(exit_code, 0, "the job failed:\n{}", compose.logs());
    println!("cluster up and first run in {:.0?}", started.elapsed());
    let first = compose.published().await;
    check_counts(&first, &SAMPLE).await;
    check_keys(&first).await;
    // The scheduler's Prometheus scrape counts the run's jobs, all completed.
    let (status, scrape) =
        http_request(compose.scheduler_port, "GET", "/api/metrics").expect("the scheduler answers");
    assert_eq!(status, 200, "{scrape}");
    let completed = metric(&scrape, "job_completed_total");
    assert!(completed >= 1.0, "{scrape}");
    assert_eq!(
        metric(&scrape, "job_submitted_total"),
        completed,
        "{scrape}"
    );
    assert_eq!(metric(&scrape, "job_failed_total"), 0.0, "{scrape}");

    let started = Instant::now();
    let executors = compose.containers("executor");
    assert_eq!(executors.len(), 2, "two executors: {executors:?}");
    let logs = tempfile::tempdir().unwrap();
    let mut rerun = compose.spawn(&["run", "-T", "--rm", "--no-deps", "etl"], logs.path());
    let (busy, task) = compose.wait_for_task_in_flight(&mut rerun, &executors);
    docker(&["kill", &busy]);
    println!("killed the executor running task {task}");
    let status = wait_for_exit(&mut rerun, JOB);
    assert!(
        status.is_some_and(|s| s.success()),
        "the job did not survive a killed executor ({status:?}):\n{}\n{}",
        std::fs::read_to_string(logs.path().join("job.log")).unwrap_or_default(),
        compose.logs()
    );
    println!(
        "second run, one executor killed, in {:.0?}",
        started.elapsed()
    );
    let second = compose.published().await;
    assert_ne!(second.run_id, first.run_id, "the rerun published a new run");
    check_counts(&second, &SAMPLE).await;
    check_keys(&second).await;
}

/// The value of a Prometheus counter in a scrape.
fn metric(scrape: &str, name: &str) -> f64 {
    prometheus_value(scrape, name).unwrap_or_else(|| panic!("no {name} in the scrape:\n{scrape}"))
}

fn docker(args: &[&str]) -> Output {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        output.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Builds sparkify-lake and sparkify-s3 from the debug binaries the tests use.
fn build_images() {
    let binaries = binary("submit")
        .parent()
        .expect("binaries have a folder")
        .to_path_buf();
    let script = workspace_root().join("deploy/docker/build-images.sh");
    let output = Command::new(&script)
        .env("PROFILE", "debug")
        .env("BIN_DIR", &binaries)
        .env("SPARKIFY_IMAGE_TAG", IMAGE_TAG)
        .current_dir(workspace_root())
        .output()
        .expect("build-images.sh runs");
    assert!(
        output.status.success(),
        "{} failed:\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One compose project of `docker-compose.yml`, named for this test process
/// and on free localhost ports; taken down with its volumes when dropped.
struct Compose {
    program: Vec<String>,
    project: String,
    scheduler_port: u16,
    s3_port: u16,
}

impl Compose {
    fn new() -> Self {
        let program = if succeeds("docker-compose", &["version"]) {
            vec!["docker-compose".to_string()]
        } else {
            vec!["docker".to_string(), "compose".to_string()]
        };
        let [scheduler_port, s3_port] = free_ports();
        Self {
            program,
            project: format!("sparkifytest{}", std::process::id()),
            scheduler_port,
            s3_port,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let file = workspace_root().join("docker-compose.yml");
        let mut command = Command::new(&self.program[0]);
        command
            .args(&self.program[1..])
            .arg("--file")
            .arg(file)
            .args(["--project-name", &self.project])
            .args(args)
            .env("SPARKIFY_SCHEDULER_PORT", self.scheduler_port.to_string())
            .env("SPARKIFY_S3_PORT", self.s3_port.to_string())
            .env("SPARKIFY_EXECUTOR_LOST_SECONDS", EXECUTOR_LOST_SECONDS)
            .env("SPARKIFY_IMAGE_TAG", IMAGE_TAG)
            .stdin(Stdio::null());
        command
    }

    fn expect_success(&self, args: &[&str]) -> Output {
        let output = self.command(args).output().expect("compose runs");
        assert!(
            output.status.success(),
            "compose {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.logs()
        );
        output
    }

    /// Starts `compose args` with its output going to `<log_dir>/job.log`.
    fn spawn(&self, args: &[&str], log_dir: &std::path::Path) -> Child {
        let log = File::create(log_dir.join("job.log")).expect("log file");
        self.command(args)
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("compose runs")
    }

    /// The ids of a service's containers, running or exited.
    fn containers(&self, service: &str) -> Vec<String> {
        let output = self.expect_success(&["ps", "-q", service]);
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// Waits for a container to exit; its exit code.
    fn wait_for_exit(&self, container: &str, timeout: Duration) -> i64 {
        let deadline = Instant::now() + timeout;
        loop {
            let state = docker(&[
                "inspect",
                "--format",
                "{{.State.Status}} {{.State.ExitCode}}",
                container,
            ]);
            let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
            if let Some(code) = state.strip_prefix("exited ") {
                return code.parse().expect("an exit code");
            }
            assert!(
                Instant::now() < deadline,
                "{container} still {state} after {timeout:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until one of `executors` has received a task of a running job
    /// and not finished it (by its log), failing if `client` exits first;
    /// that executor's container and the task.
    fn wait_for_task_in_flight(
        &self,
        client: &mut Child,
        executors: &[String],
    ) -> (String, String) {
        let deadline = Instant::now() + JOB;
        loop {
            for job in self.running_jobs() {
                for container in executors {
                    if let Some(task) = task_in_flight(&container_log(container), &job) {
                        return (container.clone(), task);
                    }
                }
            }
            if let Ok(Some(status)) = client.try_wait() {
                panic!(
                    "the job ended ({status}) before a task was seen in flight:\n{}",
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no task in flight after {JOB:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The ids of the jobs the scheduler lists as running.
    fn running_jobs(&self) -> Vec<String> {
        let jobs = http_request(self.scheduler_port, "GET", "/api/jobs")
            .and_then(|(_, body)| serde_json::from_str::<Vec<serde_json::Value>>(&body).ok())
            .unwrap_or_default();
        jobs.iter()
            .filter(|job| job["status"] == "Running")
            .filter_map(|job| job["job_id"].as_str())
            .map(str::to_string)
            .collect()
    }

    /// The published lake's bucket, through the store's localhost port.
    /// The Delta tables the job published, as the other readers see them.
    async fn published(&self) -> Published {
        let env = [
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.s3_port),
            ),
            ("AWS_ACCESS_KEY_ID", "sparkify".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "sparkify-local-secret".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
        ];
        let bucket = format!("s3://{BUCKET}");
        Published::in_delta_store(self.lake(), &bucket, OUTPUT_PREFIX, &env).await
    }

    fn lake(&self) -> Arc<AmazonS3> {
        let store = AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_endpoint(format!("http://127.0.0.1:{}", self.s3_port))
            .with_allow_http(true)
            .with_access_key_id("sparkify")
            .with_secret_access_key("sparkify-local-secret")
            .with_region("us-east-1")
            .build()
            .expect("S3 client");
        Arc::new(store)
    }

    /// The last lines every service logged.
    fn logs(&self) -> String {
        let output = self
            .command(&["logs", "--no-color", "--tail=60"])
            .output()
            .expect("compose runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = self
            .command(&["down", "--volumes", "--remove-orphans", "--timeout", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Everything a container has written to stdout and stderr.
fn container_log(container: &str) -> String {
    let output = docker(&["logs", container]);
    let mut log = String::from_utf8_lossy(&output.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&output.stderr));
    log
}

/// A task of `job` an executor's log shows received and not finished
/// (Ballista logs `Received task: [TID <job>/<stage>/<partition>]` and
/// `Finished task : [TID …]`).
fn task_in_flight(log: &str, job: &str) -> Option<String> {
    let prefix = format!("Received task: [TID {job}/");
    log.lines()
        .filter_map(|line| line.split_once(&prefix))
        .filter_map(|(_, rest)| rest.split_once(']'))
        .map(|(task, _)| format!("TID {job}/{task}"))
        .find(|task| !log.contains(&format!("Finished task : [{task}]")))
}

/// Whether `program args` runs and exits with success.
fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Waits for a child to exit; its status, or `None` (and the child killed)
/// if it runs longer than `timeout`.
fn wait_for_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("child status") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
