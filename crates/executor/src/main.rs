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
use clap::{CommandFactory, FromArgMatches};
use cluster::flags::LakeFlags;
use cluster::logging::LogSettings;

fn main() -> ExitCode {
    cluster::disable_transparent_huge_pages();
    let command = cluster::flags::add(Config::command())
        .name("executor")
        .about("Ballista executor for Sparkify Lake jobs")
        .mut_arg("bind_host", |arg| arg.default_value("127.0.0.1"));
    let matches = command.get_matches();
    let (options, flags) = match Config::from_arg_matches(&matches) {
        Ok(options) => match cluster::flags::read(&matches) {
            Ok(flags) => (options, flags),
            Err(e) => return fail(&e),
        },
        Err(e) => e.exit(),
    };
    let logging = cluster::logging::init(&LogSettings {
        level: &options.log_level_setting,
        dir: options.log_dir.as_deref(),
        role: "executor",
        rotation: options.log_rotation_policy,
        thread_info: options.print_thread_info,
        format: flags.log_format,
    });
    if let Err(e) = logging {
        return fail(&e);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let result = runtime
        .map_err(|e| e.to_string())
        .and_then(|r| r.block_on(serve(options, flags)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
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
