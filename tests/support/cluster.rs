//! Real clusters for tests: an S3 API server (moto) and a Ballista
//! scheduler with executors, each a separate process on loopback.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::http::{answers, http_request};
use crate::{Daemon, binary, free_port, free_ports, workspace_input};

const STARTUP: Duration = Duration::from_secs(60);

/// moto's S3-compatible server.
pub struct S3Server {
    pub port: u16,
    _daemon: Daemon,
}

impl S3Server {
    pub fn start(log_dir: &Path) -> Self {
        Self::start_with("moto", &[], log_dir)
    }

    /// A server that checks every request's credentials against its own
    /// IAM users, of which it has none: every signed request is denied.
    pub fn start_denying(log_dir: &Path) -> Self {
        Self::start_with(
            "moto-denying",
            &[("INITIAL_NO_AUTH_ACTION_COUNT", "0")],
            log_dir,
        )
    }

    fn start_with(name: &str, env: &[(&str, &str)], log_dir: &Path) -> Self {
        let port = free_port();
        let mut command = Command::new("moto_server");
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied());
        let mut daemon = Daemon::spawn(name, command, log_dir);
        daemon.wait_until(STARTUP, "answering", || answers(port, "/moto-api/"));
        Self {
            port,
            _daemon: daemon,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The AWS variables every role gets: the test's fake credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "sparkify-test-key".into()),
            ("AWS_SECRET_ACCESS_KEY", "sparkify-test-secret".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    pub fn create_bucket(&self, bucket: &str) {
        let (status, body) =
            http_request(self.port, "PUT", &format!("/{bucket}")).expect("moto answers");
        assert!(
            (200..300).contains(&status),
            "creating bucket {bucket}: {status} {body}"
        );
    }

    pub fn bucket(&self, bucket: &str) -> Arc<AmazonS3> {
        let store = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_access_key_id("sparkify-test-key")
            .with_secret_access_key("sparkify-test-secret")
            .with_region("us-east-1")
            .build()
            .expect("S3 client");
        Arc::new(store)
    }

    /// A server whose bucket `lake` holds the workspace input under `raw/`
    /// (`s3://lake/raw`), the start of every test of a run from S3.
    pub async fn with_workspace_input(log_dir: &Path) -> Self {
        let s3 = Self::start(log_dir);
        s3.create_bucket("lake");
        s3.upload("lake", &workspace_input(), "raw").await;
        s3
    }

    /// Copies a local folder into `bucket` under `prefix`; returns the object count.
    pub async fn upload(&self, bucket: &str, local: &Path, prefix: &str) -> usize {
        let store = self.bucket(bucket);
        let mut count = 0;
        for file in files_under(local) {
            let relative = file
                .strip_prefix(local)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&file).unwrap();
            let key = ObjectPath::from(format!("{prefix}/{relative}"));
            store
                .put(&key, PutPayload::from(bytes))
                .await
                .expect("upload");
            count += 1;
        }
        count
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A scheduler and executors, each its own process.
pub struct Cluster {
    pub scheduler_port: u16,
    pub executors: Vec<Daemon>,
    pub scheduler: Daemon,
}

impl Cluster {
    /// Starts a scheduler and `executors` executors with `vcores` slots each,
    /// all with `env`, and waits until every executor has registered.
    pub fn start(executors: usize, vcores: usize, env: &[(&str, String)], log_dir: &Path) -> Self {
        Self::start_with(&[], &[], executors, vcores, env, log_dir)
    }

    /// A scheduler started with `scheduler_args` and `executors` executors
    /// of `vcores` task slots started with `executor_args`, all with `env`;
    /// returns once all registered.
    pub fn start_with(
        scheduler_args: &[&str],
        executor_args: &[&str],
        executors: usize,
        vcores: usize,
        env: &[(&str, String)],
        log_dir: &Path,
    ) -> Self {
        let scheduler_port = free_port();
        let scheduler = start_scheduler("scheduler", scheduler_port, scheduler_args, env, log_dir);
        let mut cluster = Self {
            scheduler_port,
            executors: Vec::new(),
            scheduler,
        };
        for index in 0..executors {
            cluster.add_executor(index, vcores, executor_args, env, log_dir);
        }
        cluster.wait_for_executors(executors);
        cluster
    }

    /// Kills the scheduler (SIGKILL) and starts a new one on the same port,
    /// logging to `scheduler-restarted.log`.
    pub fn restart_scheduler(&mut self, args: &[&str], env: &[(&str, String)], log_dir: &Path) {
        self.scheduler.kill();
        self.scheduler = start_scheduler(
            "scheduler-restarted",
            self.scheduler_port,
            args,
            env,
            log_dir,
        );
    }

    /// Waits until the scheduler lists `expected` executors.
    pub fn wait_for_executors(&mut self, expected: usize) {
        let port = self.scheduler_port;
        self.scheduler
            .wait_until(STARTUP, "seeing every executor", || {
                http_request(port, "GET", "/api/executors")
                    .and_then(|(_, body)| {
                        serde_json::from_str::<Vec<serde_json::Value>>(&body).ok()
                    })
                    .is_some_and(|list| list.len() == expected)
            });
    }

    /// Starts one more executor, named `executor-<index>`, with `args` and `env`.
    pub fn add_executor(
        &mut self,
        index: usize,
        vcores: usize,
        args: &[&str],
        env: &[(&str, String)],
        log_dir: &Path,
    ) {
        let work_dir = log_dir.join(format!("executor-{index}-work"));
        std::fs::create_dir_all(&work_dir).unwrap();
        let [flight, grpc, health] = free_ports();
        let mut command = Command::new(binary("executor"));
        command
            .args(["--scheduler-port", &self.scheduler_port.to_string()])
            .args(["--bind-port", &flight.to_string()])
            .args(["--bind-grpc-port", &grpc.to_string()])
            .args(["--bind-health-port", &health.to_string()])
            .args(["--vcores", &vcores.to_string()])
            // A heartbeat a second, so a scheduler with a short executor
            // timeout does not declare healthy executors lost (push mode;
            // a pulling executor's polls are its heartbeats).
            .args(["--executor-heartbeat-interval-seconds", "1"])
            .args(args)
            .args(["--work-dir", work_dir.to_str().unwrap()])
            .envs(env.iter().map(|(k, v)| (k, v)));
        self.executors.push(Daemon::spawn(
            &format!("executor-{index}"),
            command,
            log_dir,
        ));
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.scheduler_port)
    }
}

/// A scheduler on `port`, once it answers.
fn start_scheduler(
    name: &str,
    port: u16,
    args: &[&str],
    env: &[(&str, String)],
    log_dir: &Path,
) -> Daemon {
    let mut command = Command::new(binary("scheduler"));
    command
        .args(["--bind-port", &port.to_string()])
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)));
    let mut scheduler = Daemon::spawn(name, command, log_dir);
    scheduler.wait_until(STARTUP, "answering", || answers(port, "/api/version"));
    scheduler
}

/// Our `fault-proxy` in front of an S3 server: it delays, fails or drops
/// requests as its arguments say.
pub struct FaultProxy {
    pub port: u16,
    _daemon: Daemon,
}

impl FaultProxy {
    pub fn start(s3: &S3Server, args: &[&str], log_dir: &Path) -> Self {
        let port = free_port();
        let mut command = Command::new(binary("fault-proxy"));
        command
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--upstream", &format!("127.0.0.1:{}", s3.port)])
            .args(args);
        let mut daemon = Daemon::spawn("fault-proxy", command, log_dir);
        daemon.wait_until(STARTUP, "answering", || answers(port, "/_proxy/stats"));
        Self {
            port,
            _daemon: daemon,
        }
    }

    /// `s3`'s environment with the proxy as the endpoint.
    pub fn env(&self, s3: &S3Server) -> Vec<(&'static str, String)> {
        let mut env = s3.env();
        env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
        env.push((
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", self.port),
        ));
        env
    }

    /// What the proxy has done so far: requests, errors injected, drops.
    pub fn stats(&self) -> serde_json::Value {
        let (_, body) = http_request(self.port, "GET", "/_proxy/stats").expect("proxy answers");
        serde_json::from_str(&body).expect("stats are JSON")
    }
}

/// Lists an S3 prefix.
pub async fn list(store: &dyn ObjectStore, prefix: &str) -> Vec<String> {
    use futures::TryStreamExt;
    store
        .list(Some(&ObjectPath::from(prefix)))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .expect("listing")
}
