//! What a writer task answers with: one row per file it wrote (never the
//! rows themselves), sent in bounded batches, and read back by the client.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::cast::{as_int64_array, as_string_array};
use datafusion::common::{DataFusionError, Result};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::Sender;

/// One file a writer task wrote, as it reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenFile {
    pub table: String,
    /// Object path within the store, e.g. `out/run-…/songs/year=0/…/part-….parquet`.
    pub path: String,
    /// The partition directory (`year=2018/month=11`), empty when unpartitioned.
    pub partition: String,
    pub rows: u64,
    pub bytes: u64,
    /// The engine's task (`<stage>/<task>`, attempt numbers left out):
    /// every attempt at it writes the same rows, so the client keeps one
    /// attempt's files per task.
    pub task: String,
    /// Delta statistics (JSON), empty unless the spec asked for them.
    pub stats: String,
}

#[cfg(test)]
impl WrittenFile {
    /// A file of `table` in `partition`.
    pub fn example(table: &str, partition: &str, rows: u64, bytes: u64) -> Self {
        Self {
            table: table.into(),
            path: format!("{table}/{partition}/part-0.parquet"),
            partition: partition.into(),
            rows,
            bytes,
            task: String::new(),
            stats: String::new(),
        }
    }
}

/// Schema of the writer's output: one row per file written.
pub fn written_files_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("table", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("partition", DataType::Utf8, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("bytes", DataType::Int64, false),
        Field::new("task", DataType::Utf8, false),
        Field::new("stats", DataType::Utf8, false),
    ]))
}

/// Reads the writer's output rows back into [`WrittenFile`]s, dropping each
/// batch once read: at a million files the batches are hundreds of MB.
pub fn written_files(batches: Vec<RecordBatch>) -> Result<Vec<WrittenFile>> {
    let mut files = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    for batch in batches {
        // By name: a client and executors of different builds fail here
        // with the missing column's name, not with a wrong value.
        let column = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| {
                DataFusionError::Execution(format!(
                    "the writer's result has no '{name}' column: are the client and the executors the same build?"
                ))
            })
        };
        let text = |name: &str| column(name).and_then(|c| as_string_array(c));
        let number = |name: &str| column(name).and_then(|c| as_int64_array(c));
        let (table, path, partition) = (text("table")?, text("path")?, text("partition")?);
        let (rows, bytes) = (number("rows")?, number("bytes")?);
        let (task, stats) = (text("task")?, text("stats")?);
        for i in 0..batch.num_rows() {
            files.push(WrittenFile {
                table: table.value(i).to_string(),
                path: path.value(i).to_string(),
                partition: partition.value(i).to_string(),
                rows: rows.value(i) as u64,
                bytes: bytes.value(i) as u64,
                task: task.value(i).to_string(),
                stats: stats.value(i).to_string(),
            });
        }
    }
    Ok(files)
}

fn files_batch(files: &[WrittenFile]) -> Result<RecordBatch> {
    let strings = |f: fn(&WrittenFile) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(files.iter().map(f)))
    };
    let numbers = |f: fn(&WrittenFile) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            files.iter().map(|w| f(w) as i64),
        ))
    };
    Ok(RecordBatch::try_new(
        written_files_schema(),
        vec![
            strings(|f| &f.table),
            strings(|f| &f.path),
            strings(|f| &f.partition),
            numbers(|f| f.rows),
            numbers(|f| f.bytes),
            strings(|f| &f.task),
            strings(|f| &f.stats),
        ],
    )?)
}

/// A writer task reports the files it wrote in batches of at most this
/// many: at a million files, one report at the end would hold them all at
/// once, twice (as structs and as the batch), in each task.
pub(super) const REPORT_FILES: usize = 16 * 1024;

/// Sends `files` to the task's output in batches of at most
/// [`REPORT_FILES`] (a batch of local writes can take a report past it).
pub(super) async fn report(sender: &Sender<Result<RecordBatch>>, files: &[WrittenFile]) {
    for files in files.chunks(REPORT_FILES) {
        // A closed receiver means the consumer stopped reading: nothing to
        // report to, and the task is being torn down.
        let _ = sender.send(files_batch(files)).await;
    }
}
