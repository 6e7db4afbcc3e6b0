//! Crash points, for the tests that kill a run part-way and check what
//! readers see afterwards. With `SPARKIFY_CRASH_AT=<point>` in a process's
//! environment, the process kills itself with SIGKILL on reaching that point:
//! no destructor runs, nothing is flushed or cleaned up, as when a machine is
//! lost. Without the variable, a point costs one environment lookup.

/// After `_STARTED` is written, before any job.
pub const STARTED: &str = "started";
/// After the raw input is staged, before the tables are built.
pub const STAGED: &str = "staged";
/// In a writer task of a table, right after one of its files is uploaded.
pub const MID_WRITE: &str = "mid-write";
/// After every table is written, before the run is committed.
pub const WRITTEN: &str = "written";
/// After the `_SUCCESS` manifest, before `_LATEST` is replaced.
pub const COMMITTING: &str = "committing";

/// The environment variable that arms a crash point.
pub const ENV: &str = "SPARKIFY_CRASH_AT";

/// Kills the process if `ENV` names this point.
pub fn point(name: &str) {
    if std::env::var(ENV).is_ok_and(|armed| armed == name) {
        tracing::error!("crash point {name} reached: killing the process");
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
