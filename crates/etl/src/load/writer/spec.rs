//! What a writer task is told to write: the part of the plan that travels
//! to the executors with the operator.

use serde::{Deserialize, Serialize};

/// How a table's rows reach the writer tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Serialize, Deserialize)]
pub enum Clustering {
    /// Rows are hash-partitioned by the partition columns and sorted by them
    /// within each task: every partition directory is written by exactly one
    /// task, one file at a time, so a small partition becomes one file.
    ByPartition,
    /// Rows stay in the tasks the upstream join or aggregation spread them
    /// over, and are sorted there by the partition and sort columns: every
    /// task writes its own share of each partition directory, in order, and
    /// no shuffle runs just to write. Right for a table whose rows pile into
    /// a few partitions (nearly every play falls in one month), where
    /// `ByPartition` would leave one task to sort and write almost all of it.
    Spread,
    /// All rows go to one task, sorted by `sort_by`: one file (split at the
    /// target size). Right for small dimension tables, which would otherwise
    /// become one tiny file per task.
    Single,
    /// Each input partition is written where it is, without a shuffle.
    /// Right for staging, where every scan task writes its own records.
    AsIs,
}

/// What to write where: everything a writer task needs, sent with the plan.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Serialize, Deserialize)]
pub struct WriteSpec {
    /// Table name, reported back with each file.
    pub table: String,
    /// URL of the table's directory (`s3://bucket/out/run-…/songs`).
    pub location: String,
    /// Hive partition columns, outermost first; they go into directory names,
    /// not into the files.
    pub partition_by: Vec<String>,
    /// Order of rows inside a file, after the partition columns.
    pub sort_by: Vec<String>,
    pub clustering: Clustering,
    /// A file is closed and a new one started once it reaches this size.
    pub target_file_bytes: u64,
    /// URL of the folder where each task attempt leaves a marker, named by
    /// its writer id, before its first file: publishing compares the
    /// markers with the files reported and searches for leftovers of an
    /// attempt only when one went unreported ([`crate::load::publish`]).
    /// `None` where the whole folder is discarded anyway (staging).
    pub attempts: Option<String>,
    /// Whether each file reports its statistics in Delta's form
    /// ([`crate::load::delta::stats`]): for tables committed to a Delta log.
    pub file_stats: bool,
}
