//! `executor`: Ballista's executor with Sparkify Lake's codec and object
//! stores. It takes the flags of Ballista's own `ballista-executor`, except
//! that it binds to 127.0.0.1 unless `--bind-host` says otherwise, and serves
//! the same `/healthz` and `/readyz` probes on `--bind-health-port`. It adds
//! `--allowed-locations` and `--log-format` ([`cluster::flags`]).

use std::net::SocketAddr;
use std::process::ExitCode;

use ballista_executor::config::Config;
use ballista_executor::executor_process::ExecutorProcessConfig;
use ballista_executor::health::spawn_health_server;
use clap::CommandFactory;
use cluster::flags::LakeFlags;
use cluster::role::{self, BallistaLogging};

fn main() -> ExitCode {
    cluster::disable_transparent_huge_pages();
    let command = Config::command()
        .name("executor")
        .about("Ballista executor for Sparkify Lake jobs")
        .mut_arg("bind_host", |arg| arg.default_value("127.0.0.1"));
    let started = role::start(command, "executor", |options: &Config| BallistaLogging {
        level: &options.log_level_setting,
        dir: options.log_dir.as_deref(),
        rotation: options.log_rotation_policy,
        thread_info: options.print_thread_info,
    });
    let (options, flags) = match started {
        Ok(started) => started,
        Err(e) => return role::fail(&e),
    };
    if options.memory_pool_size.is_some() {
        cluster::return_freed_memory_at_once();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    role::run(runtime, serve(options, flags))
}

async fn serve(options: Config, flags: LakeFlags) -> Result<(), String> {
    let health_address: SocketAddr = format!("{}:{}", options.bind_host, options.bind_health_port)
        .parse()
        .map_err(|e| format!("invalid --bind-host/--bind-health-port: {e}"))?;
    let config = ExecutorProcessConfig::try_from(options).map_err(|e| e.to_string())?;
    tracing::info!("plans may touch {}", flags.allowed);
    let config = cluster::executor::with_lake_setup(config, flags.allowed);
    let (stop_health, health_stopped) = tokio::sync::oneshot::channel();
    let health = spawn_health_server(health_address, config.health.clone(), health_stopped);
    let result = cluster::executor::run(config)
        .await
        .map_err(|e| e.to_string());
    let _ = stop_health.send(());
    let _ = health.await;
    result
}
