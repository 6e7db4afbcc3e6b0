//! What can go wrong in a run, in words a user can act on.

use datafusion::error::DataFusionError;

/// Starts the error of a job stopped by `--strict` (raised by the scan
/// tasks), so callers can tell it from other failures.
pub const STRICT_REJECT: &str = "rejected input record";

pub type Result<T, E = EtlError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum EtlError {
    /// A location given by the user is not a path or URL we can use.
    #[error("{0}")]
    Location(String),

    /// The input's object store cannot be set up (no credentials, say).
    #[error("{0}")]
    InputStore(String),

    /// The output's object store cannot be set up.
    #[error("{0}")]
    OutputStore(String),

    /// The input folder holds no input files.
    #[error(
        "no input files under {location} (want *.json or *.json.gz; {ignored} other objects there)"
    )]
    NoInput { location: String, ignored: usize },

    /// Reading the input failed; `context` says what we were doing.
    #[error("{context}: {}", store_reason(error))]
    Input {
        context: String,
        error: object_store::Error,
    },

    /// An object store request about the output failed; `context` says
    /// what we were doing.
    #[error("{context}: {}", store_reason(error))]
    Store {
        context: String,
        error: object_store::Error,
    },

    /// The output location cannot be written to.
    #[error("output {location} is not writable: {}", store_reason(error))]
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

    /// The run would replace tables with empty ones: every record of an
    /// input was rejected, or a table has no rows while its input has
    /// records (`--allow-empty` accepts it).
    #[error("{0}; nothing was published (--allow-empty publishes it anyway)")]
    Empty(String),

    /// `--strict` stopped the run at a record that cannot be loaded.
    #[error("{0}")]
    StrictReject(String),

    /// The engine itself failed while running a job (its scheduler went
    /// away, say): its own error says what happened.
    #[error("{0}")]
    Engine(Box<dyn std::error::Error + Send + Sync>),

    /// A job on the engine failed; the message is the engine's reason.
    #[error("{job} failed: {error}")]
    Job { job: String, error: DataFusionError },

    /// Staged records share a record id: a staging task's output was kept
    /// twice. Nothing is published.
    #[error(
        "{duplicated} staged {input} records repeat another's record id (a staging task's output \
         was kept twice); nothing was published"
    )]
    DuplicateRecords {
        input: &'static str,
        duplicated: u64,
    },

    /// A table's writers reported other rows than its records give, twice.
    #[error(
        "{table}: the writers reported {written} rows where the staged records give {expected}, \
         also when written again; nothing was published"
    )]
    RowCount {
        table: &'static str,
        written: u64,
        expected: u64,
    },

    /// Building a plan failed (a bug, or an input schema we cannot handle).
    #[error("{0}")]
    Delta(String),

    #[error("{0}; this run published nothing")]
    ConcurrentRun(String),

    /// Input the run cannot load as it is: a file an incremental run
    /// loaded earlier has changed, or two files share a file key.
    #[error("{0}; nothing was published")]
    InputConflict(String),

    #[error("planning {what}: {error}")]
    Plan {
        what: String,
        error: DataFusionError,
    },
}

/// An object store error in the words a user acts on: a missing bucket and
/// denied access say so; anything else keeps the store's own message, on
/// one line. S3's answers arrive as text inside the error (the XML body),
/// so that is what is matched.
fn store_reason(error: &object_store::Error) -> String {
    let text = error.to_string();
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if has(&["NoSuchBucket"]) {
        "the bucket does not exist".to_string()
    } else if has(&[
        "403 Forbidden",
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
    ]) || matches!(
        error,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) {
        "access denied (check the credentials and the bucket's policy)".to_string()
    } else {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

impl EtlError {
    pub fn store(context: impl Into<String>, source: object_store::Error) -> Self {
        tracing::debug!("object store error: {source:?}");
        EtlError::Store {
            context: context.into(),
            error: source,
        }
    }

    /// The same failure, about the input: exit code 3 where the output's
    /// failures exit 4.
    pub fn about_input(self) -> Self {
        match self {
            EtlError::Store { context, error } => EtlError::Input { context, error },
            other => other,
        }
    }

    /// A local disk error where the store's would be (see
    /// [`crate::local_disk`]), worded the same way.
    pub fn local(context: impl Into<String>, source: std::io::Error) -> Self {
        let source = object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(source),
        };
        Self::store(context, source)
    }

    /// A failed job. When `--strict` stopped it, the error is the one line
    /// that names the record's file, line and reason: Ballista hands the
    /// executor's error to the client wrapped in its own words and in the
    /// debug form of the error types it passed through.
    pub fn job(job: impl Into<String>, error: DataFusionError) -> Self {
        if let DataFusionError::External(engine) = error {
            return EtlError::Engine(engine);
        }
        let text = error.to_string();
        match text.find(STRICT_REJECT) {
            Some(start) => {
                let record = text[start..].trim_end_matches(')');
                let record = record.strip_suffix('"').unwrap_or(record);
                EtlError::StrictReject(record.replace("\\\"", "\"").replace("\\\\", "\\"))
            }
            None => EtlError::Job {
                job: job.into(),
                error,
            },
        }
    }

    pub fn plan(what: impl Into<String>, source: DataFusionError) -> Self {
        EtlError::Plan {
            what: what.into(),
            error: source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strict_reject_is_unwrapped_to_its_record() {
        let executor = DataFusionError::Execution(format!(
            "{STRICT_REJECT} (events) at file:/in/log_data/a.json:6: malformed JSON: \"x\" is not a key"
        ));
        let wrapped = DataFusionError::Execution(format!(
            "Job 038G failed: Task failed due to runtime execution error: DataFusionError(Shared(External({executor:?})))"
        ));
        let error = EtlError::job("stage events", wrapped);
        assert_eq!(
            error.to_string(),
            format!(
                "{STRICT_REJECT} (events) at file:/in/log_data/a.json:6: malformed JSON: \"x\" is not a key"
            )
        );
    }

    #[test]
    fn other_job_failures_keep_the_engine_reason() {
        let error = EtlError::job("songs", DataFusionError::Execution("disk full".into()));
        assert_eq!(
            error.to_string(),
            "songs failed: Execution error: disk full"
        );
    }
}
