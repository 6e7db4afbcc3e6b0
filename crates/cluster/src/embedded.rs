//! A whole Ballista cluster inside the client process: one scheduler and one
//! executor on loopback ports, built by the same functions as the standalone
//! binaries, so the default run exercises the same code as a real cluster.

use ballista_core::config::TaskSchedulingPolicy;
use std::net::TcpListener as StdListener;

use ballista_executor::executor_process::ExecutorProcessConfig;
use ballista_scheduler::config::SchedulerConfig;
use tokio::net::TcpListener;

use crate::error::ClusterError;
use crate::{executor, scheduler};

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
        let [port_for_flight, port_for_grpc] = free_ports().map_err(embedded)?;
        let executor_config = executor::with_lake_setup(ExecutorProcessConfig {
            bind_host: LOOPBACK.into(),
            external_host: Some(LOOPBACK.into()),
            port: port_for_flight,
            grpc_port: port_for_grpc,
            scheduler_host: LOOPBACK.into(),
            scheduler_port: port,
            scheduler_connect_timeout_seconds: 10,
            vcores: vcores.max(1),
            memory_pool_size: memory,
            work_dir: Some(work_dir.path().display().to_string()),
            print_thread_info: false,
            task_scheduling_policy: TaskSchedulingPolicy::PushStaged,
            ..ExecutorProcessConfig::default()
        });
        tokio::spawn(async move {
            if let Err(e) = executor::run(executor_config).await {
                tracing::error!("in-process executor stopped: {e}");
            }
        });
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
