//! `scheduler`: Ballista's scheduler with Sparkify Lake's codec and object
//! stores. It takes the flags of Ballista's own `ballista-scheduler`, except
//! that it binds to 127.0.0.1 unless `--bind-host` says otherwise, spreads
//! tasks round-robin over executors unless `--task-distribution` says
//! otherwise, and refuses `--disable-rest-api`, which `submit` cannot do without. It adds
//! `--allowed-locations` and `--log-format` ([`cluster::flags`]).

use std::process::ExitCode;

use ballista_scheduler::config::{Config, SchedulerConfig};
use clap::CommandFactory;
use cluster::flags::LakeFlags;
use cluster::role::{self, BallistaLogging};

fn main() -> ExitCode {
    cluster::disable_transparent_huge_pages();
    let command = Config::command()
        .name("scheduler")
        .about("Ballista scheduler for Sparkify Lake jobs")
        .mut_arg("bind_host", |arg| arg.default_value("127.0.0.1"))
        // Spread a stage's tasks over all executors instead of filling one first.
        .mut_arg("task_distribution", |arg| arg.default_value("round-robin"));
    let started = role::start(command, "scheduler", |options: &Config| BallistaLogging {
        level: &options.log_level_setting,
        dir: options.log_dir.as_deref(),
        rotation: options.log_rotation_policy,
        thread_info: options.print_thread_info,
    });
    let (options, flags) = match started.and_then(|(o, f)| supported(&o).map(|()| (o, f))) {
        Ok(started) => started,
        Err(e) => return role::fail(&e),
    };
    // Deep physical plans recurse while they are decoded; Ballista's binary uses 32 MiB too.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
        .build();
    role::run(runtime, serve(options, flags))
}

/// Refuses Ballista flags this scheduler accepts but cannot honour, so
/// that no flag is silently ignored. (Flags of features it is built
/// without, such as `--flight-sql`, do not exist here at all.)
fn supported(options: &Config) -> Result<(), String> {
    if options.disable_rest_api {
        return Err(
            "--disable-rest-api: submit follows its jobs through the REST API; keep the \
             scheduler's port private instead (docs/operations.md)"
                .into(),
        );
    }
    Ok(())
}

async fn serve(options: Config, flags: LakeFlags) -> Result<(), String> {
    let address = format!("{}:{}", options.bind_host, options.bind_port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let config = SchedulerConfig::try_from(options).map_err(|e| e.to_string())?;
    tracing::info!(
        "Sparkify Lake scheduler listening on {address}; plans may touch {}",
        flags.allowed
    );
    let config = cluster::scheduler::with_lake_setup(config, flags.allowed);
    cluster::scheduler::serve(config, listener)
        .await
        .map_err(|e| e.to_string())
}
