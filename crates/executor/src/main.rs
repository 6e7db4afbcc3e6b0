//! `executor`: Ballista's executor with Sparkify Lake's codec and object
//! stores. It takes the flags of Ballista's own `ballista-executor`, except
//! that it binds to 127.0.0.1 unless `--bind-host` says otherwise, and serves
//! the same `/healthz` and `/readyz` probes on `--bind-health-port`.

use std::net::SocketAddr;
use std::process::ExitCode;

use ballista_executor::config::Config;
use ballista_executor::executor_process::ExecutorProcessConfig;
use ballista_executor::health::spawn_health_server;
use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    cluster::disable_transparent_huge_pages();
    let command = Config::command()
        .name("executor")
        .about("Ballista executor for Sparkify Lake jobs")
        .mut_arg("bind_host", |arg| arg.default_value("127.0.0.1"));
    let options = match Config::from_arg_matches(&command.get_matches()) {
        Ok(options) => options,
        Err(e) => e.exit(),
    };
    cluster::logging::init(
        &options.log_level_setting,
        options.log_dir.as_deref(),
        "executor",
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let result = runtime
        .map_err(|e| e.to_string())
        .and_then(|r| r.block_on(serve(options)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(options: Config) -> Result<(), String> {
    let health_address: SocketAddr = format!("{}:{}", options.bind_host, options.bind_health_port)
        .parse()
        .map_err(|e| format!("invalid --bind-host/--bind-health-port: {e}"))?;
    let config = ExecutorProcessConfig::try_from(options).map_err(|e| e.to_string())?;
    let config = cluster::executor::with_lake_setup(config);
    let (stop_health, health_stopped) = tokio::sync::oneshot::channel();
    let health = spawn_health_server(health_address, config.health.clone(), health_stopped);
    let result = cluster::executor::run(config)
        .await
        .map_err(|e| e.to_string());
    let _ = stop_health.send(());
    let _ = health.await;
    result
}
