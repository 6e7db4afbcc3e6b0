//! A table's checkpoint, written straight from its log: the kernel delta-rs
//! is built on reconciles the actions, and this module streams them into
//! the Parquet file.
//!
//! delta-rs's `create_checkpoint` loads the table's files first, and the
//! kernel's own writer makes uncompressed row groups of up to a million
//! rows, each held whole until it is flushed. A replaced table of a million
//! files checkpoints its Adds and a week of Removes (a million a run), so
//! here the row groups are small and Snappy-compressed, as Spark writes
//! checkpoints: the file is a fraction of the size and its writer holds one
//! small row group.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::arrow_writer::ArrowWriterOptions;
use datafusion::parquet::arrow::async_writer::AsyncArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use delta_kernel::checkpoint::LastCheckpointHintStats;
use delta_kernel::engine::arrow_data::ArrowEngineData;
use deltalake_core::logstore::LogStoreRef;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;

/// Rows per row group: a writer holds one row group until it flushes it.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Why a checkpoint was not written. The commit stands either way: readers
/// replay more of the log until the next checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("replaying the log: {0}")]
    Log(#[from] delta_kernel::Error),
    #[error("writing the checkpoint file: {0}")]
    File(#[from] datafusion::parquet::errors::ParquetError),
    #[error("{0}")]
    Incomplete(&'static str),
    #[error("the checkpoint's task stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Writes the checkpoint of `version` of the table behind `log_store`,
/// then its `_last_checkpoint` hint.
pub async fn write(log_store: &LogStoreRef, version: u64) -> Result<(), CheckpointError> {
    let engine = log_store.engine(None);
    let store = log_store.object_store(None);
    let mut root = log_store.root_url().clone();
    if !root.path().ends_with('/') {
        // The kernel joins log paths onto the root as a URL.
        root.set_path(&format!("{}/", root.path()));
    }
    let runtime = tokio::runtime::Handle::current();
    // The kernel's log replay is blocking: it runs off the async threads,
    // and hands each batch to the async Parquet writer.
    tokio::task::spawn_blocking(move || {
        let snapshot = delta_kernel::Snapshot::builder_for(root)
            .at_version(version)
            .build(engine.as_ref())?;
        let writer = snapshot.create_checkpoint_writer(engine.as_ref())?;
        let path = Path::from(format!("_delta_log/{version:020}.checkpoint.parquet"));
        let mut actions = writer.checkpoint_data(engine.as_ref())?;
        let state = actions.state();
        let mut parquet = None;
        for batch in &mut actions {
            let batch = batch
                .and_then(|b| b.apply_selection_vector())
                .and_then(ArrowEngineData::try_from_engine_data)?;
            let batch: RecordBatch = (*batch).into();
            let parquet = match &mut parquet {
                Some(parquet) => parquet,
                None => parquet.insert(parquet_writer(&store, &path, &batch)?),
            };
            runtime.block_on(parquet.write(&batch))?;
        }
        drop(actions);
        let mut parquet =
            parquet.ok_or(CheckpointError::Incomplete("a checkpoint with no actions"))?;
        runtime.block_on(parquet.finish())?;
        // Every byte of the file went through the writer, footer included:
        // the store need not be asked its size.
        let size = parquet.bytes_written() as u64;
        let state = Arc::into_inner(state).ok_or(CheckpointError::Incomplete(
            "the checkpoint's actions are still read",
        ))?;
        let stats = LastCheckpointHintStats::from_reconciliation_state(state, size, 0)?;
        writer.finalize(engine.as_ref(), &stats)?;
        Ok(())
    })
    .await?
}

/// A writer of the checkpoint at `path`, in the schema of its first batch
/// (without Arrow's schema in the footer, as the kernel writes it).
fn parquet_writer(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    first: &RecordBatch,
) -> Result<AsyncArrowWriter<BufWriter>, CheckpointError> {
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let options = ArrowWriterOptions::new()
        .with_properties(properties)
        .with_skip_arrow_metadata(true);
    Ok(AsyncArrowWriter::try_new_with_options(
        BufWriter::new(Arc::clone(store), path.clone()),
        first.schema(),
        options,
    )?)
}
