//! How the scheduler and the executor start and end: Ballista's flags with
//! ours ([`crate::flags`]), logging from both, a runtime, and a failure as
//! one line on stderr.

use std::future::Future;
use std::process::ExitCode;

use ballista_core::config::LogRotationPolicy;
use clap::{Command, FromArgMatches};
use tokio::runtime::Runtime;

use crate::flags::LakeFlags;
use crate::logging::LogSettings;

/// Ballista's logging flags, which both roles' configurations carry.
pub struct BallistaLogging<'a> {
    pub level: &'a str,
    pub dir: Option<&'a str>,
    pub rotation: LogRotationPolicy,
    pub thread_info: bool,
}

/// Parses a role's command line (Ballista's flags `C` and ours) and starts
/// its logging; a command line clap rejects exits here with clap's message.
pub fn start<C: FromArgMatches>(
    command: Command,
    role: &str,
    logging: impl for<'a> Fn(&'a C) -> BallistaLogging<'a>,
) -> Result<(C, LakeFlags), String> {
    let matches = crate::flags::add(command).get_matches();
    let options = C::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let flags = crate::flags::read(&matches)?;
    let log = logging(&options);
    crate::logging::init(&LogSettings {
        level: log.level,
        dir: log.dir,
        role,
        rotation: log.rotation,
        thread_info: log.thread_info,
        format: flags.log_format,
    })?;
    Ok((options, flags))
}

/// Runs a role until `serve` ends, on `runtime`; an error is one line.
pub fn run(
    runtime: std::io::Result<Runtime>,
    serve: impl Future<Output = Result<(), String>>,
) -> ExitCode {
    let result = runtime
        .map_err(|e| e.to_string())
        .and_then(|r| r.block_on(serve));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// A role that cannot start or stopped with an error: one line on stderr.
pub fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
