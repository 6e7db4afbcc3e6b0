//! `scheduler`: Ballista's scheduler with Sparkify Lake's codec and object
//! stores. It takes the flags of Ballista's own `ballista-scheduler`, except
//! that it binds to 127.0.0.1 unless `--bind-host` says otherwise and spreads
//! tasks round-robin over executors unless `--task-distribution` says otherwise.

use std::process::ExitCode;

use ballista_scheduler::config::{Config, SchedulerConfig};
use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    cluster::disable_transparent_huge_pages();
    let command = Config::command()
        .name("scheduler")
        .about("Ballista scheduler for Sparkify Lake jobs")
        .mut_arg("bind_host", |arg| arg.default_value("127.0.0.1"))
        // Spread a stage's tasks over all executors instead of filling one first.
        .mut_arg("task_distribution", |arg| arg.default_value("round-robin"));
    let options = match Config::from_arg_matches(&command.get_matches()) {
        Ok(options) => options,
        Err(e) => e.exit(),
    };
    cluster::logging::init(
        &options.log_level_setting,
        options.log_dir.as_deref(),
        "scheduler",
    );
    // Deep physical plans recurse while they are decoded; Ballista's binary uses 32 MiB too.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
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
    let address = format!("{}:{}", options.bind_host, options.bind_port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let config = SchedulerConfig::try_from(options).map_err(|e| e.to_string())?;
    tracing::info!("Sparkify Lake scheduler listening on {address}");
    cluster::scheduler::serve(cluster::scheduler::with_lake_setup(config), listener)
        .await
        .map_err(|e| e.to_string())
}
