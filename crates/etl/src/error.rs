//! What can go wrong in a run, in words a user can act on.

use datafusion::error::DataFusionError;

pub type Result<T, E = EtlError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum EtlError {
    /// A location given by the user is not a path or URL we can use.
    #[error("{0}")]
    Location(String),

    /// The input folder holds no input files.
    #[error(
        "no input files under {location} (want *.json or *.json.gz; {ignored} other objects there)"
    )]
    NoInput { location: String, ignored: usize },

    /// An object store request failed; `context` says what we were doing.
    #[error("{context}: {error}")]
    Store {
        context: String,
        error: object_store::Error,
    },

    /// The output location cannot be written to.
    #[error("output {location} is not writable: {error}")]
    OutputNotWritable {
        location: String,
        error: object_store::Error,
    },

    /// More records were rejected than the run allows.
    #[error(
        "{rejected} of {records} {input} records were rejected, more than --max-rejects {limit} allows; \
         they are in {rejects}. Nothing was published"
    )]
    TooManyRejects {
        input: &'static str,
        rejected: u64,
        records: u64,
        limit: String,
        rejects: String,
    },

    /// A job on the engine failed; the message is the engine's reason.
    #[error("{job} failed: {error}")]
    Job { job: String, error: DataFusionError },

    /// Building a plan failed (a bug, or an input schema we cannot handle).
    #[error("planning {what}: {error}")]
    Plan {
        what: String,
        error: DataFusionError,
    },
}

impl EtlError {
    pub fn store(context: impl Into<String>, source: object_store::Error) -> Self {
        EtlError::Store {
            context: context.into(),
            error: source,
        }
    }

    pub fn plan(what: impl Into<String>, source: DataFusionError) -> Self {
        EtlError::Plan {
            what: what.into(),
            error: source,
        }
    }
}
