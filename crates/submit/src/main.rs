//! `submit`: runs the Sparkify ETL on Ballista and prints what it did.
//!
//! Without `--scheduler` it starts a scheduler and an executor inside this
//! process; with it, it submits to a running cluster. Either way the client
//! only lists the input, plans the jobs, and commits the files the executors
//! report: table data never passes through it.

mod cli;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use client::embedded::EmbeddedCluster;
use client::engine::{BallistaEngine, SessionJobs};
use client::error::ClusterError;
use client::rest::SchedulerRest;
use cluster::logging::LogSettings;
use cluster::object_stores::LakeObjectStores;
use cluster::session::{planning_context, session_config, with_settings};
use etl::run::{explain_run, run_etl};
use indicatif::{MultiProgress, ProgressDrawTarget};

use cli::{Args, Usage, exit_code};

fn main() -> ExitCode {
    cluster::disable_transparent_huge_pages();
    let args = Args::parse();
    // In-process, the executor's budget is this process's.
    if args.scheduler.is_none() && args.executor_memory.is_some() {
        cluster::return_freed_memory_at_once();
    }
    // Ballista logs a failed job at ERROR before `submit` reports it in its
    // own one line, and the Delta kernel logs a table that does not exist
    // yet (a first run) at ERROR; `-v` shows their view too, but not the
    // kernel's several lines a table read (`-vv` does).
    let level = match args.verbose {
        0 => {
            "warn,ballista_core=off,ballista_scheduler=off,ballista_executor=off,buoyant_kernel=off"
        }
        1 => "info,buoyant_kernel=warn",
        2 => "debug",
        _ => "trace",
    };
    // Logging to stderr cannot fail.
    let _ = cluster::logging::init(&LogSettings::stderr(level, "submit", args.log_format));
    log_ballista_panics();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            say_error(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let mut in_process = None;
    let outcome = runtime.block_on(run_to_end(args, &mut in_process));
    // The in-process cluster's tasks end with the runtime, all at once and
    // without waiting for work a failed job left in flight; only then does
    // its work folder go.
    runtime.shutdown_background();
    drop(in_process);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            say_error(&format!("{error:#}"));
            match error.downcast_ref::<Stopped>() {
                Some(stopped) => stopped.exit_code(),
                None => exit_code(&error),
            }
        }
    }
}

/// Runs the ETL until it ends, a signal comes or `--timeout` passes. A run
/// out of time says where its jobs stood; on a cluster, a run that did not
/// end well cancels its jobs still queued or running there.
async fn run_to_end(args: Args, in_process: &mut Option<EmbeddedCluster>) -> anyhow::Result<()> {
    let mut session_jobs = None;
    let (timeout, on_cluster) = (args.timeout, args.scheduler.is_some());
    let mut outcome = tokio::select! {
        outcome = submit(args, in_process, &mut session_jobs) => outcome,
        stopped = interrupted() => Err(anyhow::Error::new(stopped)),
        stopped = out_of_time(timeout) => Err(anyhow::Error::new(stopped)),
    };
    if let (Err(error), Some(jobs)) = (&mut outcome, &session_jobs) {
        if let Some(Stopped::OutOfTime { waiting, .. }) = error.downcast_mut::<Stopped>() {
            *waiting = describe_unfinished(jobs).await;
        }
        if on_cluster {
            cancel_unfinished(jobs).await;
        }
    }
    outcome
}

/// A run stopped from outside before it ended. Tables are published by one
/// final commit, so stopping at once leaves nothing half-published; the
/// next run clears what this one staged.
#[derive(Debug, thiserror::Error)]
enum Stopped {
    /// By a signal; the exit code is the shell's 128 + signal.
    #[error("interrupted by {name}: {UNPUBLISHED}")]
    Interrupted { name: &'static str, number: i32 },
    /// By `--timeout`, while `waiting` on the jobs it describes; the exit
    /// code is `timeout(1)`'s, 124.
    #[error(
        "the run took longer than --timeout {}: {UNPUBLISHED}{}",
        humantime::format_duration(*limit),
        still_running(waiting)
    )]
    OutOfTime {
        limit: Duration,
        waiting: Vec<String>,
    },
}

/// The jobs a run out of time was waiting on, as the end of its error line.
fn still_running(jobs: &[String]) -> String {
    match jobs {
        [] => String::new(),
        jobs => format!("; still running then: {}", jobs.join("; ")),
    }
}

/// What a stopped run leaves, in its error line.
const UNPUBLISHED: &str = "the run stopped unpublished (readers still see the previous run, unless its commit had already completed)";

impl Stopped {
    fn exit_code(&self) -> ExitCode {
        match self {
            Stopped::Interrupted { number, .. } => ExitCode::from(128 + *number as u8),
            Stopped::OutOfTime { .. } => ExitCode::from(124),
        }
    }
}

/// Waits for SIGINT or SIGTERM and says which. Ballista's in-process
/// executor listens for both and stops on them; without this, a run would
/// wait for its lost executor (the scheduler's 180 s grace) and then blame
/// it.
async fn interrupted() -> Stopped {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => Stopped::Interrupted { name: "SIGINT", number: libc::SIGINT },
        _ = term.recv() => Stopped::Interrupted { name: "SIGTERM", number: libc::SIGTERM },
    }
}

/// Ends when `limit` has passed, never without one. A scheduled run must
/// not hang its pipeline: Ballista 55 has ways for a job to stay running
/// with no task left to run (a task status lost between executor and
/// scheduler, for one), and nothing in it bounds them.
async fn out_of_time(limit: Option<Duration>) -> Stopped {
    match limit {
        Some(limit) => {
            tokio::time::sleep(limit).await;
            Stopped::OutOfTime {
                limit,
                waiting: Vec::new(),
            }
        }
        None => std::future::pending().await,
    }
}

/// How long a stopped run waits for the scheduler to describe or cancel
/// its jobs.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the unfinished jobs of a run out of time stand, for its error
/// line; nothing when the scheduler cannot say.
async fn describe_unfinished(jobs: &SessionJobs) -> Vec<String> {
    ask_scheduler("describe", jobs.describe_unfinished())
        .await
        .unwrap_or_default()
}

/// Cancels the jobs a failed or interrupted run left on a cluster.
async fn cancel_unfinished(jobs: &SessionJobs) {
    if let Some(cancelled) = ask_scheduler("cancel", jobs.cancel_unfinished()).await {
        tracing::info!(?cancelled, "cancelled the run's unfinished jobs");
    }
}

/// The scheduler's answer about a stopped run's jobs, within
/// [`CANCEL_TIMEOUT`]. A failure goes to the log (`-v`), not stderr: the
/// run's own error stays its one line, also when the scheduler it would
/// ask is gone.
async fn ask_scheduler<T>(
    to: &str,
    answer: impl Future<Output = Result<T, ClusterError>>,
) -> Option<T> {
    match tokio::time::timeout(CANCEL_TIMEOUT, answer).await {
        Ok(Ok(answer)) => Some(answer),
        Ok(Err(e)) => {
            tracing::info!("could not {to} the run's unfinished jobs: {e}");
            None
        }
        Err(_) => {
            tracing::info!(
                "the scheduler did not {to} the run's unfinished jobs in {CANCEL_TIMEOUT:?}"
            );
            None
        }
    }
}

/// Sends panics raised inside Ballista's own code to the log, under
/// Ballista's target (shown with `-v`), instead of stderr. Ballista 55's
/// in-process executor can panic on a background thread while the tasks of
/// a job that already failed are torn down (it unwraps a send to its closed
/// task queue); the user needs the job's error, which `submit` prints, and
/// the exit code comes from the run's result, never from such a panic.
fn log_ballista_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_ballista = info
            .location()
            .is_some_and(|at| at.file().contains("/ballista-"));
        if in_ballista {
            tracing::error!(target: "ballista_executor", "{info}");
        } else {
            default(info);
        }
    }));
}

/// Runs the ETL on the scheduler `args` names, or on an in-process cluster
/// left in `in_process` for the caller to stop after the runtime. The
/// session's jobs are left in `session_jobs`, for the caller to describe
/// and, on a cluster, cancel should the run stop early (an in-process
/// cluster ends with the process).
async fn submit(
    args: Args,
    in_process: &mut Option<EmbeddedCluster>,
    session_jobs: &mut Option<SessionJobs>,
) -> anyhow::Result<()> {
    let config = args.run_config()?;
    // Refused settings stop the run before it reaches a cluster.
    with_settings(session_config(1), &args.conf).map_err(Usage)?;
    if args.list_runs || args.rollback.is_some() {
        return manage_lake(&args, &config).await;
    }
    let progress = MultiProgress::with_draw_target(if args.quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });

    let scheduler = match &args.scheduler {
        Some(address) => address.clone(),
        None => in_process
            .insert(
                EmbeddedCluster::start(
                    args.in_process_vcores(),
                    args.executor_memory.map(|m| m.as_u64()),
                )
                .await?,
            )
            .scheduler()
            .to_string(),
    };
    let (rest, executors) =
        SchedulerRest::connect(&scheduler, Duration::from_secs(args.executor_timeout)).await?;
    let partitions = args
        .partitions
        .unwrap_or_else(|| executors.iter().map(|e| e.vcores()).sum());
    let session = with_settings(session_config(partitions), &args.conf).map_err(Usage)?;
    let engine = BallistaEngine::new(rest, session.clone(), progress).await?;
    *session_jobs = Some(engine.jobs());
    let ctx = planning_context(session, Arc::new(LakeObjectStores::new()))?;
    let config = etl::run::RunConfig {
        partitions,
        ..config
    };

    if args.explain {
        return print_out(&explain_run(&ctx, &engine, &config).await?);
    }
    let report = run_etl(&ctx, &engine, &config).await?;
    print_out(&format!("{}\n", report.to_text()))
}

/// `--list-runs` and `--rollback`: the lake's history, read or rolled
/// back by the client alone, with no cluster.
async fn manage_lake(args: &Args, config: &etl::run::RunConfig) -> anyhow::Result<()> {
    let ctx = planning_context(session_config(1), Arc::new(LakeObjectStores::new()))?;
    if let Some(run_id) = &args.rollback {
        let record = etl::run::roll_back(&ctx, config, run_id).await?;
        let versions: Vec<String> = record
            .tables
            .iter()
            .map(|(table, version)| format!("{table} v{version}"))
            .collect();
        return print_out(&format!(
            "rolled {} back to {run_id} as {}: {}\n",
            config.output,
            record.run_id,
            versions.join(", ")
        ));
    }
    print_out(&format!(
        "{}\n",
        etl::run::list_runs(&ctx, &config.output).await?
    ))
}

/// Prints to stdout. A reader that closed it (`submit | head`) has seen
/// what it wanted: the run's outcome stands (its report is also in the
/// run's `_report.json`), so a broken pipe is not an error; `print!` would
/// panic instead.
fn print_out(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing the report to stdout"))
        }
        _ => Ok(()),
    }
}

/// Prints the one line of a failed run to stderr; with stderr closed the
/// exit code still tells, where `eprintln!` would panic.
fn say_error(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "error: {message}");
}
