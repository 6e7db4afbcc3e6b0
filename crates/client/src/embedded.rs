//! A whole Ballista cluster inside the client process: one scheduler and one
//! executor on loopback ports, built by the same functions as the standalone
//! binaries, so the default run exercises the same code as a real cluster.

use ballista_core::config::TaskSchedulingPolicy;
use std::net::TcpListener as StdListener;

use ballista_executor::executor_process::ExecutorProcessConfig;
use ballista_scheduler::config::SchedulerConfig;
use etl::allowed::AllowedLocations;
use tokio::net::TcpListener;

use crate::error::ClusterError;
use cluster::{executor, scheduler};

const LOOPBACK: &str = "127.0.0.1";

/// The running in-process cluster. It runs until the async runtime shuts
/// down, which stops all of its tasks at once: aborting only the two
/// top-level tasks would leave Ballista's inner tasks (the executor's gRPC
/// service) running against closed channels, and its executor panics on that.
pub struct EmbeddedCluster {
    address: String,
    _work_dir: tempfile::TempDir,
}

impl EmbeddedCluster {
    /// Starts a scheduler and an executor with `vcores` task slots and a
    /// memory pool of `memory` bytes (Ballista's default when `None`).
    pub async fn start(vcores: usize, memory: Option<u64>) -> Result<Self, ClusterError> {
        let embedded = |e: std::io::Error| ClusterError::Embedded(e.to_string());
        let listener = TcpListener::bind((LOOPBACK, 0)).await.map_err(embedded)?;
        let port = listener.local_addr().map_err(embedded)?.port();
        let scheduler_config = scheduler::with_lake_setup(
            SchedulerConfig::default()
                .with_hostname(LOOPBACK)
                .with_port(port)
                .with_scheduler_policy(TaskSchedulingPolicy::PushStaged),
            AllowedLocations::anywhere(),
        );
        tokio::spawn(async move {
            if let Err(e) = scheduler::serve(scheduler_config, listener).await {
                tracing::error!("in-process scheduler stopped: {e}");
            }
        });

        let work_dir = tempfile::Builder::new()
            .prefix("sparkify-executor-")
            .tempdir()
            .map_err(embedded)?;
        let executor = InProcessExecutor {
            scheduler_port: port,
            vcores: vcores.max(1),
            memory,
            work_dir: work_dir.path().display().to_string(),
        };
        tokio::spawn(executor.keep_running());
        Ok(Self {
            address: format!("{LOOPBACK}:{port}"),
            _work_dir: work_dir,
        })
    }

    /// The scheduler's `host:port`.
    pub fn scheduler(&self) -> &str {
        &self.address
    }
}

/// How often the in-process executor is started before the cluster gives
/// up on it.
const EXECUTOR_STARTS: usize = 3;

/// What the in-process executor is started with, each time.
struct InProcessExecutor {
    scheduler_port: u16,
    vcores: usize,
    memory: Option<u64>,
    work_dir: String,
}

impl InProcessExecutor {
    /// Runs the executor, and starts it again on new ports when it stops
    /// on its own. Ballista's executor binds the ports it is given a moment
    /// after they are chosen, and another process can take one in between:
    /// the executor then fails to start, or registers and stops again when
    /// its Flight service cannot bind, leaving the scheduler without
    /// executors and the run's jobs waiting. A new executor registers
    /// under a new id, and the scheduler runs the lost tasks on it.
    async fn keep_running(self) {
        for start in 1..=EXECUTOR_STARTS {
            let config = match free_ports() {
                Ok(ports) => self.config(ports),
                Err(e) => {
                    tracing::error!("in-process executor: no free ports: {e}");
                    return;
                }
            };
            match executor::run(config).await {
                Ok(()) => tracing::warn!("in-process executor stopped (start {start})"),
                Err(e) => tracing::warn!("in-process executor stopped (start {start}): {e}"),
            }
        }
        tracing::error!(
            "in-process executor stopped {EXECUTOR_STARTS} times; not starting it again"
        );
    }

    /// The executor's configuration with its Flight and gRPC ports.
    fn config(&self, [flight, grpc]: [u16; 2]) -> ExecutorProcessConfig {
        executor::with_lake_setup(
            ExecutorProcessConfig {
                bind_host: LOOPBACK.into(),
                external_host: Some(LOOPBACK.into()),
                port: flight,
                grpc_port: grpc,
                scheduler_host: LOOPBACK.into(),
                scheduler_port: self.scheduler_port,
                scheduler_connect_timeout_seconds: 10,
                vcores: self.vcores,
                memory_pool_size: self.memory,
                work_dir: Some(self.work_dir.clone()),
                print_thread_info: false,
                task_scheduling_policy: TaskSchedulingPolicy::PushStaged,
                ..ExecutorProcessConfig::default()
            },
            AllowedLocations::anywhere(),
        )
    }
}

/// Two different ports nothing listens on right now. The executor binds
/// them itself a moment later (Ballista's executor takes ports, not
/// listeners). Both are held open until both are known: a port asked for
/// after the first was released could be that same port, and the executor
/// would then fail to bind its second service.
fn free_ports() -> std::io::Result<[u16; 2]> {
    let held = [
        StdListener::bind((LOOPBACK, 0))?,
        StdListener::bind((LOOPBACK, 0))?,
    ];
    Ok([held[0].local_addr()?.port(), held[1].local_addr()?.port()])
}
