//! Crash points, for the tests that kill a run part-way and check what
//! readers see afterwards. With `SPARKIFY_CRASH_AT=<point>` in a process's
//! environment, the process kills itself with SIGKILL on reaching that point:
//! no destructor runs, nothing is flushed or cleaned up, as when a machine is
//! lost. Without the variable, a point costs one environment lookup.
//!
//! The same points can hold a run instead, so a test can line up two runs
//! deterministically: with `SPARKIFY_HOLD_AT=<point>` and
//! `SPARKIFY_HOLD_DIR=<dir>`, the process creates `<dir>/reached-<pid>` on
//! reaching the point and goes on once `<dir>/release` exists.

/// After `_STARTED` is written, before any job.
pub const STARTED: &str = "started";
/// After the raw input is staged, before the tables are built.
pub const STAGED: &str = "staged";
/// In a writer task of a table, right after one of its files is uploaded.
pub const MID_WRITE: &str = "mid-write";
/// After every table is written, before the run is committed.
pub const WRITTEN: &str = "written";
/// Parquet: after the `_SUCCESS` manifest, before `_LATEST` is replaced.
/// Delta: after the run claimed the lake, before its first table commit.
pub const COMMITTING: &str = "committing";
/// Delta: after each table commit (so after the first, the run is killed
/// with one table committed and four not).
pub const BETWEEN_COMMITS: &str = "between-commits";

/// The environment variable that arms a crash point.
pub const ENV: &str = "SPARKIFY_CRASH_AT";

/// The environment variables that hold a run at a point, and where.
pub const HOLD_ENV: &str = "SPARKIFY_HOLD_AT";
pub const HOLD_DIR_ENV: &str = "SPARKIFY_HOLD_DIR";

/// Kills the process if `ENV` names this point; holds it if `HOLD_ENV` does.
pub fn point(name: &str) {
    if std::env::var(HOLD_ENV).is_ok_and(|held| held == name) {
        hold(name);
    }
    if std::env::var(ENV).is_ok_and(|armed| armed == name) {
        tracing::error!("crash point {name} reached: killing the process");
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Announces that the run reached `name` and waits for the test's release
/// (see the module documentation). The wait polls a file: this is a test
/// hook, never armed in production.
fn hold(name: &str) {
    let Ok(dir) = std::env::var(HOLD_DIR_ENV).map(std::path::PathBuf::from) else {
        return;
    };
    tracing::info!(
        "hold point {name} reached: waiting for {}",
        dir.join("release").display()
    );
    let reached = dir.join(format!("reached-{}", std::process::id()));
    if let Err(e) = std::fs::write(&reached, name) {
        tracing::error!("hold point {name}: cannot write {}: {e}", reached.display());
        return;
    }
    while !dir.join("release").exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
