//! Log output for every binary: `tracing`, filtered by `RUST_LOG`, with
//! Ballista's and DataFusion's `log` records routed through it.

use tracing_subscriber::EnvFilter;

/// Logs at `default_level` (unless `RUST_LOG` says otherwise) to stderr, or
/// to a daily file `<log_dir>/<file_prefix>.<date>` when a folder is given.
pub fn init(default_level: &str, log_dir: Option<&str>, file_prefix: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    // A second initialisation (tests, embedded use) keeps the first.
    let _ = match log_dir {
        Some(dir) => builder
            .with_writer(tracing_appender::rolling::daily(dir, file_prefix))
            .try_init(),
        // A closed stderr (`submit -v 2>&1 | head`) drops log lines: by
        // default the subscriber reports its write error to stderr itself,
        // and that report panics on the same closed pipe.
        None => builder
            .with_writer(std::io::stderr)
            .log_internal_errors(false)
            .try_init(),
    };
}
