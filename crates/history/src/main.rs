//! `history`: Ballista's history server over the event logs a scheduler
//! writes with `--event-log-dir`. It answers the scheduler's own REST
//! routes (`/api/jobs`, `/api/job/{id}`, `/api/job/{id}/stages`, …) for
//! jobs that finished, also after the scheduler restarted, which keeps no
//! job state of its own. Ballista ships the same server as a binary of its
//! scheduler crate; this one builds with our workspace and logs as our
//! other roles do.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ballista_scheduler::history::{HistoryStore, history_router, spawn_refresh_task};
use clap::Parser;
use cluster::logging::{LogFormat, LogSettings};

/// Serve a Ballista scheduler's finished jobs from its event logs.
#[derive(Debug, Parser)]
#[command(name = "history", version)]
struct Args {
    /// The scheduler's --event-log-dir.
    #[arg(long, env = "SPARKIFY_EVENT_LOG_DIR")]
    event_log_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1")]
    bind_host: String,
    #[arg(long, default_value_t = 50060)]
    bind_port: u16,
    /// Seconds between rescans of the folder for newly finished jobs; 0
    /// serves what was there at start.
    #[arg(long, default_value_t = 10)]
    update_interval_seconds: u64,
    /// Log lines as text, or as one JSON object each.
    #[arg(long, env = "SPARKIFY_LOG_FORMAT", value_enum, default_value_t)]
    log_format: LogFormat,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Logging to stderr cannot fail.
    let _ = cluster::logging::init(&LogSettings::stderr("info", "history", args.log_format));
    // Indexing walks the folder with blocking reads: before the runtime.
    let store = match HistoryStore::load(&args.event_log_dir) {
        Ok(store) => Arc::new(store),
        Err(e) => return fail(&format!("{}: {e}", args.event_log_dir.display())),
    };
    tracing::info!(
        "indexed {} finished jobs in {}",
        store.len(),
        args.event_log_dir.display()
    );
    let served = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|runtime| runtime.block_on(serve(&args, store)));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

async fn serve(args: &Args, store: Arc<HistoryStore>) -> Result<(), String> {
    if args.update_interval_seconds > 0 {
        spawn_refresh_task(
            Arc::clone(&store),
            Duration::from_secs(args.update_interval_seconds),
        );
    }
    let address = format!("{}:{}", args.bind_host, args.bind_port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    tracing::info!("history server listening on http://{address}");
    axum::serve(listener, history_router(store))
        .await
        .map_err(|e| e.to_string())
}
