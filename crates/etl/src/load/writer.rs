//! The partitioned Parquet writer: an operator that every task of a write
//! stage runs on its executor, writing its share of a table's hive partitions
//! straight to the object store.
//!
//! DataFusion's own write operator needs its whole input in one partition, so
//! on Ballista every row of a table would travel to one executor. This one
//! runs once per input partition instead. Each task names its files with its
//! own random id, so names cannot collide across tasks, executors or retries,
//! and it answers with the list of files it wrote (path, rows, bytes), never
//! with the rows themselves. Files of a failed attempt are never in a list
//! that reaches the client, which is how [`crate::load::publish`] tells them
//! apart from committed ones.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::partition;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::cast::{as_int64_array, as_string_array};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, internal_err};
use datafusion::execution::TaskContext;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::parquet::arrow::arrow_writer::ArrowWriterOptions;
use datafusion::parquet::arrow::{
    ArrowSchemaConverter, ArrowWriter, add_encoded_arrow_schema_to_metadata,
};
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::{
    EnabledStatistics, WriterProperties, WriterPropertiesBuilder,
};
use datafusion::parquet::schema::types::SchemaDescriptor;
use datafusion::physical_expr::{
    EquivalenceProperties, LexRequirement, OrderingRequirements, PhysicalExpr,
    PhysicalSortRequirement,
};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::expressions::Column;
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    Partitioning, PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::Sender;
use tokio::task::JoinSet;

use super::hive;

/// Uploads one task keeps in flight at once. Small partition files are
/// latency-bound on S3, so many must be in the air to keep a task busy.
const MAX_UPLOADS_IN_FLIGHT: usize = 32;

/// Local files written per blocking call ([`crate::local_disk`]), fewer
/// when they reach [`LOCAL_WRITE_BYTES`] first.
const LOCAL_WRITE_FILES: usize = 256;
const LOCAL_WRITE_BYTES: usize = 16 * 1024 * 1024;
/// Blocking batches of local writes one task keeps going: one writes while
/// the task encodes the next.
const LOCAL_WRITES_IN_FLIGHT: usize = 2;

/// Rows written between two checks of a file's size against the target:
/// a file ends at most this many rows past it.
const SIZE_CHECK_ROWS: usize = 1024;

/// A partition of clustered input with at most this many rows is written in
/// the small-file format ([`FileFormat::small_writer`]). Such a file is
/// written in one go, so each column is one data page.
const SMALL_FILE_ROWS: usize = SIZE_CHECK_ROWS;

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
    /// ([`super::delta::stats`]): for tables committed to a Delta log.
    pub file_stats: bool,
}

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

/// The writer operator. See the module documentation.
#[derive(Debug)]
pub struct ParquetWriterExec {
    spec: WriteSpec,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl ParquetWriterExec {
    pub fn try_new(spec: WriteSpec, input: Arc<dyn ExecutionPlan>) -> Result<Self> {
        for column in spec.partition_by.iter().chain(&spec.sort_by) {
            input.schema().index_of(column)?;
        }
        let partitions = input.output_partitioning().partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(written_files_schema()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(Self {
            spec,
            input,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    pub fn spec(&self) -> &WriteSpec {
        &self.spec
    }

    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }

    fn column(&self, name: &str) -> Result<Arc<dyn PhysicalExpr>> {
        let index = self.input.schema().index_of(name)?;
        Ok(Arc::new(Column::new(name, index)))
    }

    /// Whether each task sees a partition directory's rows as one run, so a
    /// file can be closed as soon as the partition changes.
    fn clustered(&self) -> bool {
        matches!(
            self.spec.clustering,
            Clustering::ByPartition | Clustering::Spread
        ) && !self.spec.partition_by.is_empty()
    }

    /// Whether rows are hash-shuffled by the partition columns before the
    /// writer tasks, so that each directory is written by one task.
    fn shuffled_by_partition(&self) -> bool {
        self.spec.clustering == Clustering::ByPartition && !self.spec.partition_by.is_empty()
    }
}

impl DisplayAs for ParquetWriterExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "ParquetWriterExec: table={}, partition_by=[{}], clustering={:?}, target_file_bytes={}",
            self.spec.table,
            self.spec.partition_by.join(", "),
            self.spec.clustering,
            self.spec.target_file_bytes
        )
    }
}

impl ExecutionPlan for ParquetWriterExec {
    fn name(&self) -> &str {
        "ParquetWriterExec"
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

    fn required_input_distribution(&self) -> Vec<Distribution> {
        if self.spec.clustering == Clustering::Single {
            return vec![Distribution::SinglePartition];
        }
        if !self.shuffled_by_partition() {
            return vec![Distribution::UnspecifiedDistribution];
        }
        let keys = self
            .spec
            .partition_by
            .iter()
            .map(|c| self.column(c))
            .collect();
        match keys {
            Ok(keys) => vec![Distribution::KeyPartitioned(keys)],
            Err(_) => vec![Distribution::UnspecifiedDistribution],
        }
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        if self.spec.clustering == Clustering::AsIs {
            return vec![None];
        }
        let requirements: Result<Vec<_>> = self
            .spec
            .partition_by
            .iter()
            .chain(&self.spec.sort_by)
            .map(|c| Ok(PhysicalSortRequirement::new(self.column(c)?, None)))
            .collect();
        let requirement = requirements.ok().and_then(LexRequirement::new);
        vec![requirement.map(OrderingRequirements::new)]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![self.shuffled_by_partition()]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match <[_; 1]>::try_from(children) {
            Ok([input]) => Ok(Arc::new(Self::try_new(self.spec.clone(), input)?)),
            Err(_) => internal_err!("ParquetWriterExec takes exactly one input"),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let (_, store) = task_store(&self.spec.location, &context)?;
        let metrics = WriterMetrics::new(&self.metrics, partition);
        let mut sink = PartitionedSink::try_new(
            self.spec.clone(),
            store,
            input.schema(),
            self.clustered(),
            metrics,
        )?;
        sink.task = task_of(&context, partition);

        let mut builder = RecordBatchReceiverStreamBuilder::new(written_files_schema(), 1);
        let sender = builder.tx();
        builder.spawn(async move {
            let mut input = input;
            while let Some(batch) = input.next().await {
                sink.write(&batch?).await?;
                if let Some(files) = sink.full_report() {
                    report(&sender, &files).await;
                }
            }
            let (table, writer, task) = (
                sink.spec.table.clone(),
                sink.task_id.clone(),
                sink.task.clone(),
            );
            let (files, rows) = (sink.metrics.files.clone(), sink.metrics.rows.clone());
            let last = sink.finish().await?;
            // The writer id starts the name of every file this task wrote.
            tracing::info!(
                "{table}: writer {writer} (task {task}) wrote {} files, {} rows",
                files.value(),
                rows.value()
            );
            report(&sender, &last).await;
            Ok(())
        });
        Ok(builder.build())
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// The task and partition a writer runs as, the same for every attempt at
/// it. Ballista names a task `TID <job>/<stage>.<stage attempt>/<task>.<task
/// attempt>` and numbers the partitions of each task's own plan from 0, so
/// the partition number alone says nothing there; elsewhere (plain
/// DataFusion) it is the task.
fn task_of(context: &TaskContext, partition: usize) -> String {
    let attempt_free = |part: &str| part.split('.').next().unwrap_or_default().to_string();
    match context.task_id() {
        Some(id) if id.starts_with("TID ") => {
            let parts: Vec<&str> = id.split('/').collect();
            match parts.as_slice() {
                [_, stage, task] => {
                    format!("{}/{}#{partition}", attempt_free(stage), attempt_free(task))
                }
                _ => id,
            }
        }
        _ => partition.to_string(),
    }
}

/// The name of a writer task's `n`th file: its writer id first, so that
/// every file names the task attempt that wrote it ([`writer_of`]).
fn file_name(task_id: &str, n: usize) -> String {
    format!("part-{task_id}-{n:05}.parquet")
}

/// The writer id in the name of a file at `path` ([`file_name`]), if it is
/// one of a writer's files.
pub fn writer_of(path: &str) -> Option<&str> {
    let name = path.rsplit('/').next()?;
    let (task_id, _) = name.strip_prefix("part-")?.rsplit_once('-')?;
    Some(task_id)
}

/// Where a file of hive partition `partition` goes. The partition's parts
/// are already escaped the Hive way (`artist_id=AR%2FX`), so they are taken
/// as they are: joining them as raw text would escape each `%` again.
fn file_path(table: &Path, partition: &str, name: &str) -> Result<Path> {
    let path = [table.as_ref(), partition, name]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    Path::parse(&path)
        .map_err(|e| DataFusionError::Execution(format!("invalid output path '{path}': {e}")))
}

/// The object store a task reaches `location` through, with its URL.
pub fn task_store(
    location: &str,
    context: &TaskContext,
) -> Result<(ObjectStoreUrl, Arc<dyn ObjectStore>)> {
    let url = store_url_of(location)?;
    let store = context.runtime_env().object_store(&url)?;
    Ok((url, store))
}

/// The store URL (scheme and authority) part of a location URL.
pub fn store_url_of(location: &str) -> Result<ObjectStoreUrl> {
    let url = url::Url::parse(location).map_err(|e| {
        DataFusionError::Configuration(format!("invalid location '{location}': {e}"))
    })?;
    ObjectStoreUrl::parse(format!("{}://{}", url.scheme(), url.authority()))
}

/// The object path part of a location URL.
pub fn object_path_of(location: &str) -> Result<Path> {
    let url = url::Url::parse(location).map_err(|e| {
        DataFusionError::Configuration(format!("invalid location '{location}': {e}"))
    })?;
    Path::from_url_path(url.path())
        .map_err(|e| DataFusionError::Configuration(format!("invalid path in '{location}': {e}")))
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
const REPORT_FILES: usize = 16 * 1024;

/// Sends `files` to the task's output in batches of at most
/// [`REPORT_FILES`] (a batch of local writes can take a report past it).
async fn report(sender: &Sender<Result<RecordBatch>>, files: &[WrittenFile]) {
    for files in files.chunks(REPORT_FILES) {
        // A closed receiver means the consumer stopped reading: nothing to
        // report to, and the task is being torn down.
        let _ = sender.send(files_batch(files)).await;
    }
}

/// Counters a writer task publishes with its status.
struct WriterMetrics {
    files: Count,
    rows: Count,
    bytes: Count,
}

impl WriterMetrics {
    fn new(set: &ExecutionPlanMetricsSet, partition: usize) -> Self {
        Self {
            files: MetricBuilder::new(set).counter("files_written", partition),
            rows: MetricBuilder::new(set).output_rows(partition),
            bytes: MetricBuilder::new(set).counter("bytes_written", partition),
        }
    }
}

/// A Parquet file being filled in memory.
struct OpenFile {
    partition: String,
    writer: ArrowWriter<Vec<u8>>,
    rows: u64,
}

/// How every file of a task is written, worked out once per task. Each file
/// would otherwise convert the Arrow schema to Parquet's and encode it for
/// the footer again, which for a one-row partition file costs about as much
/// as the row; the files come out the same byte for byte.
struct FileFormat {
    arrow_schema: SchemaRef,
    parquet_schema: SchemaDescriptor,
    /// Both with the encoded Arrow schema already in the footer metadata.
    properties: WriterProperties,
    small_file_properties: WriterProperties,
}

impl FileFormat {
    fn try_new(arrow_schema: SchemaRef) -> Result<Self> {
        let properties = writer_properties();
        let parquet_schema = ArrowSchemaConverter::new()
            .with_coerce_types(properties.coerce_types())
            .convert(&arrow_schema)?;
        let with_schema = |mut properties: WriterProperties| {
            add_encoded_arrow_schema_to_metadata(&arrow_schema, &mut properties);
            properties
        };
        Ok(Self {
            properties: with_schema(properties),
            small_file_properties: with_schema(small_file_properties()),
            arrow_schema,
            parquet_schema,
        })
    }

    /// A writer for one new file, in memory.
    fn writer(&self) -> Result<ArrowWriter<Vec<u8>>> {
        self.writer_with(&self.properties)
    }

    /// A writer for one new file of at most [`SMALL_FILE_ROWS`] rows, written
    /// in one go ([`small_file_properties`]).
    fn small_writer(&self) -> Result<ArrowWriter<Vec<u8>>> {
        self.writer_with(&self.small_file_properties)
    }

    fn writer_with(&self, properties: &WriterProperties) -> Result<ArrowWriter<Vec<u8>>> {
        let options = ArrowWriterOptions::new()
            .with_properties(properties.clone())
            .with_parquet_schema(self.parquet_schema.clone())
            .with_skip_arrow_metadata(true);
        Ok(ArrowWriter::try_new_with_options(
            Vec::new(),
            Arc::clone(&self.arrow_schema),
            options,
        )?)
    }
}

/// Compression and the name written into every file.
fn writer_properties() -> WriterProperties {
    properties_builder().build()
}

/// For a file whose columns are one data page each: the column chunk's
/// statistics (min, max, nulls) say all that a page index would, and a
/// dictionary of a few values only adds a page. Without both, a one-row file
/// is 20% smaller and costs about half as much to encode, and readers prune
/// it by the same statistics.
fn small_file_properties() -> WriterProperties {
    properties_builder()
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_offset_index_disabled(true)
        .build()
}

fn properties_builder() -> WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("sparkify-lake {}", env!("CARGO_PKG_VERSION")))
}

/// Where a writer task's closed files go.
enum Destination {
    /// An object store (S3): one upload per file through the task's store,
    /// many in flight.
    Store,
    /// Local disk: closed files wait here and are written a batch per
    /// blocking call ([`crate::local_disk`]).
    LocalDisk(Vec<(std::path::PathBuf, Vec<u8>, WrittenFile)>),
}

impl Destination {
    fn new(store_url: &ObjectStoreUrl) -> Self {
        if crate::local_disk::is_local(store_url) {
            Destination::LocalDisk(Vec::new())
        } else {
            Destination::Store
        }
    }
}

/// The state of one writer task: its open files and its uploads in flight.
struct PartitionedSink {
    spec: WriteSpec,
    /// The task's store: its uploads and its attempt marker.
    store: Arc<dyn ObjectStore>,
    destination: Destination,
    /// `s3://bucket` or `file://`, for messages.
    store_url: String,
    table_path: Path,
    /// Indices of the partition columns in the input, and of the data columns.
    partition_indices: Vec<usize>,
    data_indices: Vec<usize>,
    data_schema: SchemaRef,
    format: FileFormat,
    /// With clustered input a partition never comes back once left, so only
    /// one file is open at a time.
    one_open_file: bool,
    /// The latest run of clustered input, not written yet ([`Self::hold_back`]).
    held: Option<(String, RecordBatch)>,
    open: HashMap<String, OpenFile>,
    task_id: String,
    /// The output partition this task writes ([`WrittenFile::task`]).
    task: String,
    files_started: usize,
    /// Uploads, or batches of local writes, in flight.
    uploads: JoinSet<Result<Vec<WrittenFile>>>,
    written: Vec<WrittenFile>,
    metrics: WriterMetrics,
}

impl PartitionedSink {
    fn try_new(
        spec: WriteSpec,
        store: Arc<dyn ObjectStore>,
        input_schema: SchemaRef,
        one_open_file: bool,
        metrics: WriterMetrics,
    ) -> Result<Self> {
        let partition_indices = spec
            .partition_by
            .iter()
            .map(|c| input_schema.index_of(c))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let data_indices: Vec<usize> = (0..input_schema.fields().len())
            .filter(|i| !partition_indices.contains(i))
            .collect();
        let data_schema = Arc::new(plain_schema(&input_schema.project(&data_indices)?));
        let format = FileFormat::try_new(Arc::clone(&data_schema))?;
        let store_url = store_url_of(&spec.location)?;
        Ok(Self {
            table_path: object_path_of(&spec.location)?,
            destination: Destination::new(&store_url),
            store,
            store_url: store_url.as_str().trim_end_matches('/').to_string(),
            spec,
            partition_indices,
            data_indices,
            data_schema,
            format,
            one_open_file,
            held: None,
            open: HashMap::new(),
            task_id: uuid::Uuid::now_v7().simple().to_string(),
            task: String::new(),
            files_started: 0,
            uploads: JoinSet::new(),
            written: Vec::new(),
            metrics,
        })
    }

    /// Routes each run of rows with equal partition values to its file.
    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        // Cast once per batch: a batch of one-row partitions has thousands of runs.
        let data = with_schema(batch.project(&self.data_indices)?, &self.data_schema)?;
        for (partition, rows) in self.partition_runs(batch)? {
            let rows = data.slice(rows.start, rows.len());
            if self.one_open_file {
                self.hold_back(partition, rows).await?;
            } else {
                self.write_in_slices(partition, &rows, false).await?;
            }
        }
        Ok(())
    }

    /// Keeps a run of clustered input back until the next run shows whether
    /// its partition goes on. Clustered input never comes back to a partition
    /// it left, so a held run followed by another partition's, or by the end
    /// of the input, ends its partition: all of it is then in hand.
    async fn hold_back(&mut self, partition: String, rows: RecordBatch) -> Result<()> {
        if let Some((held, held_rows)) = self.held.take() {
            let whole = held != partition;
            self.write_in_slices(held, &held_rows, whole).await?;
        }
        self.held = Some((partition, rows));
        Ok(())
    }

    /// Consecutive rows that share a partition directory. Runs are found by
    /// comparing the partition columns' values (Arrow's `partition` kernel),
    /// and each run's directory name is formatted once, into a reused buffer:
    /// a songs batch is thousands of one-row runs.
    fn partition_runs(&self, batch: &RecordBatch) -> Result<Vec<(String, std::ops::Range<usize>)>> {
        if self.partition_indices.is_empty() {
            return Ok(vec![(String::new(), 0..batch.num_rows())]);
        }
        let columns: Vec<ArrayRef> = self
            .partition_indices
            .iter()
            .map(|&i| Arc::clone(batch.column(i)))
            .collect();
        let options = FormatOptions::default();
        let formatters = columns
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let (mut dir, mut value) = (String::new(), String::new());
        let mut runs: Vec<(String, std::ops::Range<usize>)> = Vec::new();
        for range in partition(&columns)?.ranges() {
            dir.clear();
            for (i, name) in self.spec.partition_by.iter().enumerate() {
                let shown = shown_value(&columns[i], &formatters[i], range.start, &mut value)?;
                hive::push_partition(&mut dir, name, shown);
            }
            // A null and an empty value share the default partition's name.
            match runs.last_mut() {
                Some((last, run)) if *last == dir => run.end = range.end,
                _ => runs.push((dir.clone(), range)),
            }
        }
        Ok(runs)
    }

    /// Appends `rows` to the partition's open file, opening one if needed:
    /// in the small-file format when `small`.
    async fn write_to_partition(
        &mut self,
        partition: String,
        rows: &RecordBatch,
        small: bool,
    ) -> Result<()> {
        if self.one_open_file && !self.open.contains_key(&partition) {
            let finished: Vec<String> = self.open.keys().cloned().collect();
            for key in finished {
                self.close(&key).await?;
            }
        }
        if !self.open.contains_key(&partition) {
            let writer = if small {
                self.format.small_writer()?
            } else {
                self.format.writer()?
            };
            self.open.insert(
                partition.clone(),
                OpenFile {
                    partition: partition.clone(),
                    writer,
                    rows: 0,
                },
            );
        }
        let file = self.open.get_mut(&partition).expect("inserted above");
        file.writer.write(rows)?;
        file.rows += rows.num_rows() as u64;
        let size = file.writer.bytes_written() + file.writer.in_progress_size();
        if size as u64 >= self.spec.target_file_bytes {
            self.close(&partition).await?;
        }
        Ok(())
    }

    /// Writes `rows` in slices of [`SIZE_CHECK_ROWS`], so that a file is
    /// closed close to the target size even when one batch holds far more.
    /// `whole`: no rows of the partition come after these, so with no file
    /// open for it yet they are all of it.
    async fn write_in_slices(
        &mut self,
        partition: String,
        rows: &RecordBatch,
        whole: bool,
    ) -> Result<()> {
        let small = whole && rows.num_rows() <= SMALL_FILE_ROWS;
        let mut start = 0;
        while start < rows.num_rows() {
            let len = SIZE_CHECK_ROWS.min(rows.num_rows() - start);
            self.write_to_partition(partition.clone(), &rows.slice(start, len), small)
                .await?;
            start += len;
        }
        Ok(())
    }

    /// Finishes a file and starts its upload (on local disk: adds it to
    /// the next batch).
    async fn close(&mut self, partition: &str) -> Result<()> {
        let Some(mut file) = self.open.remove(partition) else {
            return Ok(());
        };
        let (bytes, stats) = if self.spec.file_stats {
            // `finish` leaves the finished file in the buffer, where
            // `into_inner` would write the footer a second time.
            let metadata = file.writer.finish()?;
            let stats = super::delta::stats::file_stats(&self.data_schema, &metadata)?;
            (std::mem::take(file.writer.inner_mut()), stats)
        } else {
            (file.writer.into_inner()?, String::new())
        };
        if self.files_started == 0 {
            self.mark_attempt().await?;
        }
        let name = file_name(&self.task_id, self.files_started);
        self.files_started += 1;
        let path = file_path(&self.table_path, &file.partition, &name)?;
        let written = WrittenFile {
            table: self.spec.table.clone(),
            path: path.to_string(),
            partition: file.partition,
            rows: file.rows,
            bytes: bytes.len() as u64,
            task: self.task.clone(),
            stats,
        };
        match &mut self.destination {
            Destination::LocalDisk(batch) => {
                batch.push((crate::local_disk::file_of(&path)?, bytes, written));
                let batch_bytes: usize = batch.iter().map(|(_, b, _)| b.len()).sum();
                if batch.len() >= LOCAL_WRITE_FILES || batch_bytes >= LOCAL_WRITE_BYTES {
                    self.write_local_batch().await?;
                }
            }
            Destination::Store => self.start_upload(path, bytes, written).await?,
        }
        Ok(())
    }

    /// Leaves this attempt's marker ([`WriteSpec::attempts`]), before any
    /// of its files is written: an attempt that wrote anything has one.
    async fn mark_attempt(&mut self) -> Result<()> {
        let Some(attempts) = &self.spec.attempts else {
            return Ok(());
        };
        let path = object_path_of(attempts)?.join(self.task_id.as_str());
        let url = format!("{attempts}/{}", self.task_id);
        let table = self.spec.table.clone().into_bytes();
        upload(Arc::clone(&self.store), path, &url, table).await
    }

    /// Starts one upload, waiting first if too many are already in flight.
    async fn start_upload(
        &mut self,
        path: Path,
        bytes: Vec<u8>,
        written: WrittenFile,
    ) -> Result<()> {
        while self.uploads.len() >= MAX_UPLOADS_IN_FLIGHT {
            self.collect_one_upload().await?;
        }
        let url = format!("{}/{path}", self.store_url);
        let store = Arc::clone(&self.store);
        self.uploads.spawn(async move {
            upload(store, path, &url, bytes).await?;
            Ok(vec![written])
        });
        Ok(())
    }

    /// Starts writing the local files waiting for a batch, in one blocking call.
    async fn write_local_batch(&mut self) -> Result<()> {
        let batch = match &mut self.destination {
            Destination::LocalDisk(batch) if !batch.is_empty() => std::mem::take(batch),
            _ => return Ok(()),
        };
        while self.uploads.len() >= LOCAL_WRITES_IN_FLIGHT {
            self.collect_one_upload().await?;
        }
        let (contents, written): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|(file, bytes, written)| ((file, bytes), written))
            .unzip();
        let store_url = self.store_url.clone();
        self.uploads.spawn(async move {
            crate::local_disk::write_all(contents)
                .await
                .map_err(|(i, e)| {
                    let url = format!("{store_url}/{}", written[i].path);
                    DataFusionError::External(format!("writing {url}: {e}").into())
                })?;
            Ok(written)
        });
        Ok(())
    }

    async fn collect_one_upload(&mut self) -> Result<()> {
        if let Some(done) = self.uploads.join_next().await {
            let files = done.map_err(|e| DataFusionError::External(Box::new(e)))??;
            for file in files {
                self.metrics.files.add(1);
                self.metrics.rows.add(file.rows as usize);
                self.metrics.bytes.add(file.bytes as usize);
                self.written.push(file);
            }
            if !self.spec.table.starts_with('_') {
                crate::crash::point(crate::crash::MID_WRITE);
            }
        }
        Ok(())
    }

    /// The files written so far, once there are at least [`REPORT_FILES`].
    fn full_report(&mut self) -> Option<Vec<WrittenFile>> {
        (self.written.len() >= REPORT_FILES).then(|| std::mem::take(&mut self.written))
    }

    /// Closes every open file, waits for all uploads, and gives the files
    /// not reported yet.
    async fn finish(mut self) -> Result<Vec<WrittenFile>> {
        if let Some((partition, rows)) = self.held.take() {
            self.write_in_slices(partition, &rows, true).await?;
        }
        let keys: Vec<String> = self.open.keys().cloned().collect();
        for key in keys {
            self.close(&key).await?;
        }
        self.write_local_batch().await?;
        while !self.uploads.is_empty() {
            self.collect_one_upload().await?;
        }
        Ok(self.written)
    }
}

/// The text of `column`'s value at `row`, written into `buffer` (reused
/// across rows); `None` for a null.
fn shown_value<'a>(
    column: &ArrayRef,
    formatter: &ArrayFormatter,
    row: usize,
    buffer: &'a mut String,
) -> Result<Option<&'a str>> {
    if column.is_null(row) {
        return Ok(None);
    }
    buffer.clear();
    formatter.value(row).write(buffer)?;
    Ok(Some(buffer))
}

/// The schema a file is written with: view types as their plain forms
/// (`Utf8View` as `Utf8`). Parquet stores both alike, but the Arrow schema
/// kept in the file decides what pyarrow, Polars and DataFusion read back,
/// and older readers do not know view types.
pub fn plain_schema(schema: &Schema) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            let plain = match field.data_type() {
                DataType::Utf8View => DataType::Utf8,
                DataType::BinaryView => DataType::Binary,
                other => other.clone(),
            };
            field.as_ref().clone().with_data_type(plain)
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// `batch` with its columns cast to `schema`'s types where they differ.
fn with_schema(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| datafusion::arrow::compute::cast(column, field.data_type()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// One PUT for a small file, a multipart upload for a large one.
async fn upload(store: Arc<dyn ObjectStore>, path: Path, url: &str, bytes: Vec<u8>) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let failed =
        |e: &dyn std::fmt::Display| DataFusionError::External(format!("writing {url}: {e}").into());
    let mut writer = BufWriter::with_capacity(store, path, 16 * 1024 * 1024);
    writer.put(bytes.into()).await.map_err(|e| failed(&e))?;
    writer.shutdown().await.map_err(|e| failed(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two songs rows, out of order, one duration missing.
    fn two_songs() -> RecordBatch {
        use datafusion::arrow::array::Float64Array;
        let schema = Schema::new(vec![
            Field::new("song_id", DataType::Utf8, false),
            Field::new("duration", DataType::Float64, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec!["SOB", "SOA"])),
                Arc::new(Float64Array::from(vec![Some(218.5), None])),
            ],
        )
        .unwrap()
    }

    /// The file `writer` makes of `batch`.
    fn written(mut writer: ArrowWriter<Vec<u8>>, batch: &RecordBatch) -> Vec<u8> {
        writer.write(batch).unwrap();
        writer.into_inner().unwrap()
    }

    #[test]
    fn files_from_the_task_format_equal_those_of_a_fresh_writer() {
        let batch = two_songs();
        let format = FileFormat::try_new(batch.schema()).unwrap();
        let fresh =
            ArrowWriter::try_new(Vec::new(), batch.schema(), Some(writer_properties())).unwrap();
        let expected = written(fresh, &batch);
        assert_eq!(written(format.writer().unwrap(), &batch), expected);
        assert_eq!(
            written(format.writer().unwrap(), &batch),
            expected,
            "and again"
        );
    }

    #[test]
    fn small_files_keep_chunk_statistics_without_dictionary_or_page_index() {
        use datafusion::parquet::arrow::arrow_reader::{
            ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
        };
        use datafusion::parquet::file::metadata::PageIndexPolicy;
        use datafusion::parquet::file::statistics::Statistics;
        let batch = two_songs();
        let format = FileFormat::try_new(batch.schema()).unwrap();
        let (small, regular) = (
            bytes::Bytes::from(written(format.small_writer().unwrap(), &batch)),
            bytes::Bytes::from(written(format.writer().unwrap(), &batch)),
        );
        assert!(
            small.len() < regular.len(),
            "{} < {}",
            small.len(),
            regular.len()
        );

        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
        let reader =
            ParquetRecordBatchReaderBuilder::try_new_with_options(small, options.clone()).unwrap();
        let metadata = Arc::clone(reader.metadata());
        let read: Vec<RecordBatch> = reader.build().unwrap().map(|b| b.unwrap()).collect();
        assert_eq!(read, vec![batch.clone()], "the same rows and Arrow schema");
        let chunk = metadata.row_group(0).column(0);
        assert_eq!(chunk.dictionary_page_offset(), None);
        assert!(metadata.column_index().is_none() && metadata.offset_index().is_none());
        let Some(Statistics::ByteArray(song_ids)) = chunk.statistics() else {
            panic!("song_id has chunk statistics: {:?}", chunk.statistics());
        };
        assert_eq!(
            (
                song_ids.min_opt().unwrap().as_utf8().unwrap(),
                song_ids.max_opt().unwrap().as_utf8().unwrap()
            ),
            ("SOA", "SOB")
        );
        let durations = metadata.row_group(0).column(1).statistics().unwrap();
        assert_eq!(durations.null_count_opt(), Some(1));

        let regular =
            ParquetRecordBatchReaderBuilder::try_new_with_options(regular, options).unwrap();
        let regular = regular.metadata();
        assert!(
            regular
                .row_group(0)
                .column(0)
                .dictionary_page_offset()
                .is_some()
        );
        assert!(regular.column_index().is_some() && regular.offset_index().is_some());
    }

    #[test]
    fn a_file_names_the_writer_that_wrote_it() {
        let path = format!("out/run-1/songs/year=0/{}", file_name("01a23f5d9c62", 12));
        assert_eq!(writer_of(&path), Some("01a23f5d9c62"));
        assert_eq!(writer_of("out/run-1/_SUCCESS"), None);
    }

    #[test]
    fn escaped_partition_values_are_not_escaped_again() {
        let partition = crate::load::hive::partition_dir(
            &["year".into(), "artist_id".into()],
            &[Some("0".into()), Some("AR/X=1".into())],
        );
        let path = file_path(
            &Path::from("out/run-1/songs"),
            &partition,
            "part-a-00000.parquet",
        )
        .unwrap();
        assert_eq!(
            path.as_ref(),
            "out/run-1/songs/year=0/artist_id=AR%2FX%3D1/part-a-00000.parquet"
        );
        let unpartitioned =
            file_path(&Path::from("out/run-1/users"), "", "part-a-00000.parquet").unwrap();
        assert_eq!(
            unpartitioned.as_ref(),
            "out/run-1/users/part-a-00000.parquet"
        );
    }

    #[test]
    fn rows_run_together_while_their_partition_directory_stays_the_same() {
        use datafusion::arrow::array::Int32Array;
        let schema = Arc::new(Schema::new(vec![
            Field::new("year", DataType::Int32, true),
            Field::new("artist_id", DataType::Utf8, true),
            Field::new("song_id", DataType::Utf8, false),
        ]));
        let (years, artists): (Vec<Option<i32>>, Vec<Option<&str>>) = [
            (Some(0), Some("A/1")),
            (Some(0), Some("A/1")),
            (Some(0), Some("B")),
            (Some(2018), None),
            (Some(2018), Some("")),
            (None, Some("B")),
        ]
        .into_iter()
        .unzip();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int32Array::from(years)),
                Arc::new(StringArray::from(artists)),
                Arc::new(StringArray::from_iter_values(
                    (0..6).map(|i| format!("S{i}")),
                )),
            ],
        )
        .unwrap();
        let spec = WriteSpec {
            table: "songs".into(),
            location: "memory:///songs".into(),
            partition_by: vec!["year".into(), "artist_id".into()],
            sort_by: vec!["song_id".into()],
            clustering: Clustering::ByPartition,
            target_file_bytes: 1 << 20,
            attempts: None,
            file_stats: false,
        };
        let metrics = WriterMetrics::new(&ExecutionPlanMetricsSet::new(), 0);
        let store = Arc::new(object_store::memory::InMemory::new());
        let sink = PartitionedSink::try_new(spec, store, schema, true, metrics).unwrap();

        let runs = sink.partition_runs(&batch).unwrap();
        let default = hive::NULL_PARTITION;
        assert_eq!(
            runs,
            vec![
                ("year=0/artist_id=A%2F1".to_string(), 0..2),
                ("year=0/artist_id=B".to_string(), 2..3),
                (format!("year=2018/artist_id={default}"), 3..5),
                (format!("year={default}/artist_id=B"), 5..6),
            ]
        );
    }

    #[tokio::test]
    async fn a_task_reports_every_file_once_in_bounded_batches() {
        use datafusion::datasource::memory::MemorySourceConfig;
        use datafusion::prelude::SessionContext;
        // One row per partition, sorted as clustered input is: each file
        // closes as the next partition starts, so reports fill up mid-task.
        let partitions = REPORT_FILES + 100;
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Int64, false),
        ]));
        let keys: Vec<String> = (0..partitions).map(|i| format!("{i:06}")).collect();
        let input = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from_iter_values(&keys)),
                Arc::new(Int64Array::from_iter_values(0..partitions as i64)),
            ],
        )
        .unwrap();
        let batches: Vec<RecordBatch> = (0..partitions)
            .step_by(1000)
            .map(|start| input.slice(start, 1000.min(partitions - start)))
            .collect();
        let source = MemorySourceConfig::try_new_exec(&[batches], schema, None).unwrap();
        let folder = std::env::temp_dir().join(format!("writer-{}", uuid::Uuid::new_v4()));
        let spec = WriteSpec {
            table: "t".into(),
            location: format!("file://{}", folder.display()),
            partition_by: vec!["key".into()],
            sort_by: vec![],
            clustering: Clustering::ByPartition,
            target_file_bytes: 1 << 20,
            attempts: None,
            file_stats: false,
        };
        let writer = ParquetWriterExec::try_new(spec, source).unwrap();
        let context = SessionContext::new().task_ctx();
        let reports: Vec<RecordBatch> = writer
            .execute(0, context)
            .unwrap()
            .map(|batch| batch.unwrap())
            .collect()
            .await;

        let sizes: Vec<usize> = reports.iter().map(|b| b.num_rows()).collect();
        assert!(sizes.len() > 1, "reported in pieces: {sizes:?}");
        assert!(sizes.iter().all(|&n| n <= REPORT_FILES), "{sizes:?}");
        let files = written_files(reports).unwrap();
        let paths: std::collections::HashSet<&str> =
            files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!((files.len(), paths.len()), (partitions, partitions));
        assert_eq!(files.iter().map(|f| f.rows).sum::<u64>(), partitions as u64);
        assert!(
            files
                .iter()
                .all(|f| std::path::Path::new(&format!("/{}", f.path)).is_file())
        );
        std::fs::remove_dir_all(folder).unwrap();
    }
}
