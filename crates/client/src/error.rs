//! What can go wrong between the client and the cluster.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("scheduler address '{0}' is not host:port")]
    SchedulerAddress(String),

    #[error("cannot reach the Ballista scheduler at {scheduler}: {reason}")]
    SchedulerUnreachable { scheduler: String, reason: String },

    #[error("no executor registered with the scheduler at {scheduler} within {}s", waited.as_secs())]
    NoExecutors { scheduler: String, waited: Duration },

    /// The scheduler stopped or restarted while a job ran: the job is gone
    /// with it, and nothing of the run was published.
    #[error(
        "the Ballista scheduler at {scheduler} {what} while job '{job}' ran; nothing was published, \
         submit again once it is back"
    )]
    SchedulerLost {
        scheduler: String,
        job: String,
        what: &'static str,
    },

    #[error("starting the in-process cluster: {0}")]
    Embedded(String),
}

impl ClusterError {
    pub fn unreachable(scheduler: &str, error: reqwest::Error) -> Self {
        // reqwest's own message repeats the URL; the cause chain says why.
        let error = error.without_url();
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            reason = cause.to_string();
            source = cause.source();
        }
        ClusterError::SchedulerUnreachable {
            scheduler: scheduler.to_string(),
            reason,
        }
    }
}
