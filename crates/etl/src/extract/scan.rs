//! The raw input scan: an operator that reads its share of the input files,
//! many at once, and yields staged records (good ones and rejected ones).
//!
//! DataFusion's JSON reader cannot read a JSON number into a string column,
//! which the real song files need, and stops at the first bad record. This
//! operator decodes with [`RecordDecoder`] instead. Each task fetches its
//! files itself, so the client never touches the data.
//!
//! The files to read are the operator's input, not its settings: a
//! [`file_list`](super::file_list) with one partition per scan task, which
//! says why.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, new_null_array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties, SendableRecordBatchStream,
};
use futures::stream::FuturesOrdered;
use futures::{FutureExt, Stream, StreamExt, TryStreamExt};
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::Sender;

use super::decode::{Decoded, RecordDecoder, Reject, SourceFile};
use super::file_list::{ListedFile, files_of};
use super::listing::record_id;
use crate::error::STRICT_REJECT;
use crate::location::Location;
use crate::schema::{InputKind, STATUS_OK, STATUS_REJECTED};
use crate::storage::{ReadShape, Storage};

/// A task reads its files in chunks of at most its storage's
/// [`ReadShape::files`], each closed early once it holds this many bytes.
/// At least [`MIN_CHUNKS_IN_FLIGHT`] chunks are going (one is read while
/// the task decodes the other), and more, up to [`ReadShape::reads`],
/// while the bytes of those going stay within [`READ_BUDGET_BYTES`].
/// Without the byte limits a task would read a month of event logs at
/// once and hold all of them (at 10 million events, 4.3 GiB over two
/// tasks).
const READ_CHUNK_BYTES: u64 = 32 * 1024 * 1024;
const MIN_CHUNKS_IN_FLIGHT: usize = 2;
const READ_BUDGET_BYTES: u64 = 2 * READ_CHUNK_BYTES;
/// A decode group closes at this many bytes or files, whichever comes first.
const GROUP_BYTES: usize = 8 * 1024 * 1024;
const GROUP_FILES: usize = 2048;

/// What to do with a record that cannot be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectPolicy {
    /// Keep it, with its reason, in the `rejected` staging partition.
    Quarantine,
    /// Fail the job at the first one, naming file and line.
    Strict,
}

/// Everything a scan task needs besides its files, sent with the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanSpec {
    pub kind: InputKind,
    /// URL of the input root, for locating the store and for messages.
    pub root: String,
    pub rejects: RejectPolicy,
}

/// Refuses a file list naming a file outside the scan's root: the root is
/// what `--allowed-locations` checked ([`crate::allowed`]).
fn within_root(root: &Location, files: &[ListedFile]) -> Result<()> {
    let prefix = root.object_path();
    match files
        .iter()
        .find(|file| !Path::from(file.path.as_str()).prefix_matches(&prefix))
    {
        Some(file) => Err(DataFusionError::Plan(format!(
            "plan refused: its scan of {} lists {}, outside that folder",
            root.url(),
            root.object_url(&file.path)
        ))),
        None => Ok(()),
    }
}

/// The scan operator. See the module documentation.
#[derive(Debug)]
pub struct RawScanExec {
    spec: ScanSpec,
    /// The file list, possibly restricted to one task's partitions.
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl RawScanExec {
    pub fn try_new(spec: ScanSpec, input: Arc<dyn ExecutionPlan>) -> Result<Self> {
        if input.schema().fields() != super::file_list::schema().fields() {
            return Err(DataFusionError::Internal(
                "RawScanExec input is not a file list".into(),
            ));
        }
        let properties = PlanProperties::new(
            EquivalenceProperties::new(spec.kind.staged_schema()),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(Self {
            spec,
            input,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    pub fn spec(&self) -> &ScanSpec {
        &self.spec
    }
}

impl DisplayAs for RawScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "RawScanExec: input={}, root={}, partitions={}, rejects={:?}",
            self.spec.kind.name(),
            self.spec.root,
            self.properties.output_partitioning().partition_count(),
            self.spec.rejects
        )
    }
}

impl ExecutionPlan for RawScanExec {
    fn name(&self) -> &str {
        "RawScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match <[_; 1]>::try_from(children) {
            Ok([input]) => Ok(Arc::new(Self::try_new(self.spec.clone(), input)?)),
            Err(_) => Err(DataFusionError::Internal(
                "RawScanExec takes exactly one input".into(),
            )),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let file_list = self.input.execute(partition, Arc::clone(&context))?;
        let root = Location::of_plan(&self.spec.root)?;
        let store = root.task_store(&context)?;
        let schema = self.schema();
        let staging = Staging {
            kind: self.spec.kind,
            schema: schema.clone(),
            decoder: RecordDecoder::new(self.spec.kind),
            rejects: self.spec.rejects,
            storage: Storage::of(&root, store),
            batch_size: context.session_config().batch_size(),
            metrics: ScanMetrics::new(&self.metrics, partition),
        };
        let mut builder = RecordBatchReceiverStreamBuilder::new(schema, 2);
        let sender = builder.tx();
        let prefix = root.store_url();
        builder.spawn(async move {
            let files = files_of(&file_list.try_collect::<Vec<_>>().await?)?;
            within_root(&root, &files)?;
            staging.run(prefix, files, sender).await
        });
        Ok(builder.build())
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// Counters a scan task publishes with its status.
struct ScanMetrics {
    files: Count,
    bytes: Count,
    rejected: Count,
    baseline: BaselineMetrics,
}

impl ScanMetrics {
    fn new(set: &ExecutionPlanMetricsSet, partition: usize) -> Self {
        Self {
            files: MetricBuilder::new(set).counter("input_files", partition),
            bytes: MetricBuilder::new(set).counter("input_bytes", partition),
            rejected: MetricBuilder::new(set).counter("rejected_records", partition),
            baseline: BaselineMetrics::new(set, partition),
        }
    }
}

/// One scan task at work.
struct Staging {
    kind: InputKind,
    schema: SchemaRef,
    decoder: RecordDecoder,
    rejects: RejectPolicy,
    /// Where the input's files are read from.
    storage: Storage,
    batch_size: usize,
    metrics: ScanMetrics,
}

impl Staging {
    /// Fetches, decodes and sends the task's files; `store_url` prefixes
    /// object paths in messages (`s3://bucket`).
    async fn run(
        self,
        store_url: String,
        files: Vec<ListedFile>,
        sender: Sender<Result<RecordBatch>>,
    ) -> Result<()> {
        let storage = self.storage.clone();
        let mut fetched = Box::pin(read_in_chunks(files, storage.read_shape(), move |chunk| {
            read_chunk(storage.clone(), store_url.clone(), chunk)
        }));
        let mut group: Vec<SourceFile> = Vec::new();
        let mut group_bytes = 0;
        while let Some(file) = fetched.try_next().await? {
            group_bytes += file.bytes.len();
            group.push(file);
            if group_bytes >= GROUP_BYTES || group.len() >= GROUP_FILES {
                self.stage_group(std::mem::take(&mut group), &sender)
                    .await?;
                group_bytes = 0;
            }
        }
        if !group.is_empty() {
            self.stage_group(group, &sender).await?;
        }
        Ok(())
    }

    async fn stage_group(
        &self,
        group: Vec<SourceFile>,
        sender: &Sender<Result<RecordBatch>>,
    ) -> Result<()> {
        self.metrics.files.add(group.len());
        self.metrics
            .bytes
            .add(group.iter().map(|f| f.bytes.len()).sum());
        let keys: Vec<i64> = group.iter().map(|f| f.key).collect();
        let Decoded { batches, rejects } = self.decoder.decode_files(&group)?;
        if let (RejectPolicy::Strict, Some(first)) = (self.rejects, rejects.first()) {
            return Err(DataFusionError::Execution(format!(
                "{STRICT_REJECT} ({}) at {first}",
                self.kind.name()
            )));
        }
        self.metrics.rejected.add(rejects.len());
        let mut staged = batches
            .into_iter()
            .map(|batch| self.good_records(batch))
            .collect::<Result<Vec<_>>>()?;
        staged.push(self.rejected_records(&rejects, &group, &keys)?);
        for batch in staged {
            let mut offset = 0;
            while offset < batch.num_rows() {
                let len = self.batch_size.min(batch.num_rows() - offset);
                self.metrics.baseline.record_output(len);
                if sender.send(Ok(batch.slice(offset, len))).await.is_err() {
                    return Ok(());
                }
                offset += len;
            }
        }
        Ok(())
    }

    /// Decoded records with empty reject columns and status `ok`.
    fn good_records(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let rows = batch.num_rows();
        let mut columns = batch.columns().to_vec();
        let reject_start = columns.len();
        for field in &self.schema.fields()[reject_start..self.schema.fields().len() - 1] {
            columns.push(new_null_array(field.data_type(), rows));
        }
        columns.push(Arc::new(StringArray::from(vec![STATUS_OK; rows])));
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }

    /// Rejected records: no fields, the reject columns and status `rejected`.
    fn rejected_records(
        &self,
        rejects: &[Reject],
        group: &[SourceFile],
        keys: &[i64],
    ) -> Result<RecordBatch> {
        let rows = rejects.len();
        let json_fields = self.kind.json_schema().fields().len();
        let mut columns: Vec<ArrayRef> = self.schema.fields()[..json_fields]
            .iter()
            .map(|f| new_null_array(f.data_type(), rows))
            .collect();
        let key_of = |file: &str| {
            group
                .iter()
                .zip(keys)
                .find(|(f, _)| f.location == file)
                .map_or(0, |(_, &o)| o)
        };
        columns.push(Arc::new(Int64Array::from_iter_values(
            rejects
                .iter()
                .map(|r| record_id(self.kind, key_of(&r.file), r.line as usize)),
        )));
        columns.push(Arc::new(StringArray::from_iter_values(
            rejects.iter().map(|r| r.file.as_str()),
        )));
        columns.push(Arc::new(Int64Array::from_iter_values(
            rejects.iter().map(|r| r.line as i64),
        )));
        columns.push(Arc::new(Int64Array::from_iter_values(
            rejects.iter().map(|r| r.byte_offset as i64),
        )));
        columns.push(Arc::new(StringArray::from_iter_values(
            rejects.iter().map(|r| r.reason.as_str()),
        )));
        columns.push(Arc::new(StringArray::from_iter_values(
            rejects.iter().map(|r| r.raw.as_str()),
        )));
        columns.push(Arc::new(StringArray::from(vec![STATUS_REJECTED; rows])));
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// `files`, in listing order, read a chunk at a time by `read`, with as
/// many chunks going as `shape` and the byte budget allow (see
/// [`READ_CHUNK_BYTES`]).
fn read_in_chunks<Read, Reading>(
    files: Vec<ListedFile>,
    shape: ReadShape,
    mut read: Read,
) -> impl Stream<Item = Result<SourceFile>>
where
    Read: FnMut(Vec<ListedFile>) -> Reading,
    Reading: Future<Output = Result<Vec<SourceFile>>>,
{
    let waiting = chunks(files, shape.files).into_iter().peekable();
    let state = (waiting, FuturesOrdered::new(), 0u64);
    futures::stream::unfold(state, move |(mut waiting, mut going, mut bytes)| {
        while let Some(next) = waiting.peek() {
            let size: u64 = next.iter().map(|f| f.size).sum();
            let room = going.len() < MIN_CHUNKS_IN_FLIGHT
                || (going.len() < shape.reads && bytes + size <= READ_BUDGET_BYTES);
            if !room {
                break;
            }
            bytes += size;
            let chunk = waiting.next().expect("peeked");
            going.push_back(read(chunk).map(move |done| (size, done)));
        }
        async move {
            let (size, done) = going.next().await?;
            Some((done, (waiting, going, bytes - size)))
        }
    })
    .map_ok(|read| futures::stream::iter(read.into_iter().map(Ok)))
    .try_flatten()
}

/// `files` in runs of at most `max_files`, each closed once it holds
/// [`READ_CHUNK_BYTES`]: a run is at most one file past the limit.
fn chunks(files: Vec<ListedFile>, max_files: usize) -> Vec<Vec<ListedFile>> {
    let mut chunks: Vec<Vec<ListedFile>> = Vec::new();
    let mut bytes = 0;
    for file in files {
        match chunks.last_mut() {
            Some(chunk) if chunk.len() < max_files && bytes < READ_CHUNK_BYTES => {
                bytes += file.size;
                chunk.push(file);
            }
            _ => {
                bytes = file.size;
                chunks.push(vec![file]);
            }
        }
    }
    chunks
}

/// Reads a chunk of files whole, each named by its URL for messages.
async fn read_chunk(
    storage: Storage,
    store_url: String,
    chunk: Vec<ListedFile>,
) -> Result<Vec<SourceFile>> {
    let paths = chunk
        .iter()
        .map(|file| Path::from(file.path.as_str()))
        .collect();
    let contents = storage.read_all(paths).await.map_err(|(i, e)| {
        DataFusionError::External(format!("reading {store_url}/{}: {e}", chunk[i].path).into())
    })?;
    Ok(chunk
        .into_iter()
        .zip(contents)
        .map(|(file, bytes)| SourceFile {
            key: file.key,
            location: format!("{store_url}/{}", file.path),
            bytes,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(sizes: &[u64]) -> Vec<ListedFile> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| ListedFile {
                key: i as i64,
                path: format!("f{i}"),
                size,
            })
            .collect()
    }

    fn chunk_lengths(sizes: &[u64]) -> Vec<usize> {
        chunks(files(sizes), 256).iter().map(Vec::len).collect()
    }

    /// The most chunks `read_in_chunks` had started and not finished,
    /// checking that every file comes back once, in listing order.
    async fn most_chunks_going(sizes: &[u64], shape: ReadShape) -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (started, finished, most) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let read = |chunk: Vec<ListedFile>| {
            let going =
                started.fetch_add(1, Ordering::SeqCst) + 1 - finished.load(Ordering::SeqCst);
            most.fetch_max(going, Ordering::SeqCst);
            let finished = finished.clone();
            async move {
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(chunk
                    .into_iter()
                    .map(|file| SourceFile {
                        key: file.key,
                        location: file.path,
                        bytes: Default::default(),
                    })
                    .collect())
            }
        };
        let keys: Vec<i64> = read_in_chunks(files(sizes), shape, read)
            .map_ok(|file| file.key)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(keys, (0..sizes.len() as i64).collect::<Vec<_>>());
        most.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn small_files_keep_many_reads_going_and_large_ones_two() {
        const MIB: u64 = 1024 * 1024;
        let store = ReadShape {
            files: 16,
            reads: 8,
        };
        assert_eq!(most_chunks_going(&[300; 1000], store).await, 8);
        // Reads past two start only while their bytes fit the budget.
        assert_eq!(most_chunks_going(&[146 * MIB; 5], store).await, 2);
        assert_eq!(most_chunks_going(&[MIB; 200], store).await, 4);
        let local = ReadShape {
            files: 256,
            reads: 2,
        };
        assert_eq!(most_chunks_going(&[300; 1000], local).await, 2);
        assert_eq!(most_chunks_going(&[300; 10], local).await, 1);
    }

    #[test]
    fn reads_are_chunked_by_count_and_by_bytes() {
        assert_eq!(chunk_lengths(&[300; 600]), [256, 256, 88]);
        const MIB: u64 = 1024 * 1024;
        // A chunk closes once it holds the byte limit.
        assert_eq!(
            chunk_lengths(&[20 * MIB, 20 * MIB, 1, 146 * MIB, 146 * MIB, 1, 1]),
            [2, 2, 1, 2]
        );
        let keys: Vec<i64> = chunks(files(&[5 * MIB; 20]), 256)
            .into_iter()
            .flatten()
            .map(|f| f.key)
            .collect();
        assert_eq!(keys, (0..20).collect::<Vec<_>>(), "in listing order");
        assert!(chunks(Vec::new(), 256).is_empty());
    }
}
