//! Log output for every binary: `tracing`, filtered by `RUST_LOG`, with
//! Ballista's and DataFusion's `log` records routed through it, as text or
//! as one JSON object per line (`--log-format json`) for log collectors.

use ballista_core::config::LogRotationPolicy;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per event, with its fields, for CloudWatch, Loki, jq.
    Json,
}

/// Where and how a process logs: Ballista's logging flags and ours.
pub struct LogSettings<'a> {
    /// Filter when `RUST_LOG` is unset (`info`, `warn,ballista=off`).
    pub level: &'a str,
    /// A folder for log files, `<dir>/<role>.log…`; stderr when unset.
    pub dir: Option<&'a str>,
    pub role: &'a str,
    /// When a log file is closed and the next one started (`--log-rotation-policy`).
    pub rotation: LogRotationPolicy,
    /// Thread ids and names on each line (`--print-thread-info`).
    pub thread_info: bool,
    pub format: LogFormat,
}

impl<'a> LogSettings<'a> {
    /// Plain settings for a process that logs to stderr.
    pub fn stderr(level: &'a str, role: &'a str, format: LogFormat) -> Self {
        Self {
            level,
            dir: None,
            role,
            rotation: LogRotationPolicy::Never,
            thread_info: false,
            format,
        }
    }
}

/// Starts logging. A second call (tests, embedded use) keeps the first.
/// Fails only when the log folder cannot be created.
pub fn init(settings: &LogSettings) -> Result<(), String> {
    match settings.dir {
        Some(dir) => {
            let rotation = match settings.rotation {
                LogRotationPolicy::Minutely => Rotation::MINUTELY,
                LogRotationPolicy::Hourly => Rotation::HOURLY,
                LogRotationPolicy::Daily => Rotation::DAILY,
                LogRotationPolicy::Never => Rotation::NEVER,
            };
            let file = RollingFileAppender::builder()
                .rotation(rotation)
                .filename_prefix(format!("{}.log", settings.role))
                .build(dir)
                .map_err(|e| format!("--log-dir {dir}: {e}"))?;
            start(settings, file);
        }
        None => start(settings, std::io::stderr),
    }
    Ok(())
}

fn start<W>(settings: &LogSettings, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(settings.level));
    // A closed stderr (`submit -v 2>&1 | head`) drops log lines: by default
    // the subscriber reports its write error to stderr itself, and that
    // report panics on the same closed pipe.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_thread_ids(settings.thread_info)
        .with_thread_names(settings.thread_info)
        .log_internal_errors(false)
        .with_writer(writer);
    let _ = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
