//! The raw input scan: an operator that reads its share of the input files,
//! many at once, and yields staged records (good ones and rejected ones).
//!
//! DataFusion's JSON reader cannot read a JSON number into a string column,
//! which the real song files need, and stops at the first bad record. This
//! operator decodes with [`RecordDecoder`] instead. It carries only file
//! paths in the plan; each task fetches its files itself, so the client never
//! touches the data.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, new_null_array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::Sender;

use super::decode::{Decoded, Reject, RecordDecoder, SourceFile, record_id};
use super::listing::InputFile;
use crate::load::writer::store_url_of;
use crate::schema::{InputKind, STATUS_OK, STATUS_REJECTED};

/// Files fetched at once by one task: enough to hide S3 latency for tiny files.
const FETCHES_IN_FLIGHT: usize = 64;
/// A decode group closes at this many bytes or files, whichever comes first.
const GROUP_BYTES: usize = 8 * 1024 * 1024;
const GROUP_FILES: usize = 2048;

/// Starts the error of a job stopped by `--strict`, so callers can tell it
/// from other failures.
pub const STRICT_REJECT: &str = "rejected input record";

/// What to do with a record that cannot be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectPolicy {
    /// Keep it, with its reason, in the `rejected` staging partition.
    Quarantine,
    /// Fail the job at the first one, naming file and line.
    Strict,
}

/// The files of one scan task. Ordinals are contiguous, so only the first is sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanPartition {
    pub first_ordinal: u32,
    pub files: Vec<String>,
}

/// Everything a scan task needs, sent with the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanSpec {
    pub kind: InputKind,
    /// URL of the input root, for locating the store and for messages.
    pub root: String,
    pub partitions: Vec<ScanPartition>,
    pub rejects: RejectPolicy,
}

impl ScanSpec {
    /// Splits a sorted listing into `partitions` contiguous runs of about equal bytes.
    pub fn new(kind: InputKind, root: &str, files: &[InputFile], partitions: usize, rejects: RejectPolicy) -> Self {
        let total: u64 = files.iter().map(|f| f.size.max(1)).sum();
        let partitions = partitions.clamp(1, files.len().max(1));
        let per_partition = total.div_ceil(partitions as u64);
        let mut runs: Vec<ScanPartition> = Vec::with_capacity(partitions);
        let mut filled = 0u64;
        for (ordinal, file) in files.iter().enumerate() {
            let start_new = match runs.last() {
                None => true,
                Some(_) => filled >= per_partition && runs.len() < partitions,
            };
            if start_new {
                runs.push(ScanPartition {
                    first_ordinal: ordinal as u32,
                    files: Vec::new(),
                });
                filled = 0;
            }
            filled += file.size.max(1);
            runs.last_mut().expect("pushed above").files.push(file.path.clone());
        }
        if runs.is_empty() {
            runs.push(ScanPartition { first_ordinal: 0, files: Vec::new() });
        }
        Self {
            kind,
            root: root.to_string(),
            partitions: runs,
            rejects,
        }
    }
}

/// The scan operator. See the module documentation.
#[derive(Debug)]
pub struct RawScanExec {
    spec: ScanSpec,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl RawScanExec {
    pub fn new(spec: ScanSpec) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(spec.kind.staged_schema()),
            Partitioning::UnknownPartitioning(spec.partitions.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            spec,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    pub fn spec(&self) -> &ScanSpec {
        &self.spec
    }
}

impl DisplayAs for RawScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let files: usize = self.spec.partitions.iter().map(|p| p.files.len()).sum();
        write!(
            f,
            "RawScanExec: input={}, root={}, files={files}, partitions={}, rejects={:?}",
            self.spec.kind.name(),
            self.spec.root,
            self.spec.partitions.len(),
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
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let task = self.spec.partitions.get(partition).cloned().ok_or_else(|| {
            DataFusionError::Internal(format!("RawScanExec has no partition {partition}"))
        })?;
        let store = context.runtime_env().object_store(store_url_of(&self.spec.root)?)?;
        let schema = self.schema();
        let staging = Staging {
            kind: self.spec.kind,
            schema: schema.clone(),
            decoder: RecordDecoder::new(self.spec.kind),
            rejects: self.spec.rejects,
            batch_size: context.session_config().batch_size(),
            metrics: ScanMetrics::new(&self.metrics, partition),
        };
        let mut builder = RecordBatchReceiverStreamBuilder::new(schema, 2);
        let sender = builder.tx();
        builder.spawn(async move { staging.run(store, task, sender).await });
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
    batch_size: usize,
    metrics: ScanMetrics,
}

impl Staging {
    async fn run(self, store: Arc<dyn ObjectStore>, task: ScanPartition, sender: Sender<Result<RecordBatch>>) -> Result<()> {
        let first = task.first_ordinal;
        let mut fetched = futures::stream::iter(task.files.into_iter().enumerate())
            .map(|(i, path)| fetch(Arc::clone(&store), first + i as u32, path))
            .buffered(FETCHES_IN_FLIGHT);
        let mut group: Vec<SourceFile> = Vec::new();
        let mut group_bytes = 0;
        while let Some(file) = fetched.try_next().await? {
            group_bytes += file.bytes.len();
            group.push(file);
            if group_bytes >= GROUP_BYTES || group.len() >= GROUP_FILES {
                self.stage_group(std::mem::take(&mut group), &sender).await?;
                group_bytes = 0;
            }
        }
        if !group.is_empty() {
            self.stage_group(group, &sender).await?;
        }
        Ok(())
    }

    async fn stage_group(&self, group: Vec<SourceFile>, sender: &Sender<Result<RecordBatch>>) -> Result<()> {
        self.metrics.files.add(group.len());
        self.metrics.bytes.add(group.iter().map(|f| f.bytes.len()).sum());
        let ordinals: Vec<u32> = group.iter().map(|f| f.ordinal).collect();
        let Decoded { batch, rejects } = self.decoder.decode_files(&group)?;
        if let (RejectPolicy::Strict, Some(first)) = (self.rejects, rejects.first()) {
            return Err(DataFusionError::Execution(format!("{STRICT_REJECT} ({}) at {first}", self.kind.name())));
        }
        self.metrics.rejected.add(rejects.len());
        let good = self.good_records(batch)?;
        let bad = self.rejected_records(&rejects, &group, &ordinals)?;
        for batch in [good, bad] {
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
    fn rejected_records(&self, rejects: &[Reject], group: &[SourceFile], ordinals: &[u32]) -> Result<RecordBatch> {
        let rows = rejects.len();
        let json_fields = self.kind.json_schema().fields().len();
        let mut columns: Vec<ArrayRef> = self.schema.fields()[..json_fields]
            .iter()
            .map(|f| new_null_array(f.data_type(), rows))
            .collect();
        let ordinal_of = |file: &str| {
            group
                .iter()
                .zip(ordinals)
                .find(|(f, _)| f.location == file)
                .map_or(0, |(_, &o)| o)
        };
        columns.push(Arc::new(Int64Array::from_iter_values(
            rejects.iter().map(|r| record_id(ordinal_of(&r.file), r.line as usize)),
        )));
        columns.push(Arc::new(StringArray::from_iter_values(rejects.iter().map(|r| r.file.as_str()))));
        columns.push(Arc::new(Int64Array::from_iter_values(rejects.iter().map(|r| r.line as i64))));
        columns.push(Arc::new(Int64Array::from_iter_values(rejects.iter().map(|r| r.byte_offset as i64))));
        columns.push(Arc::new(StringArray::from_iter_values(rejects.iter().map(|r| r.reason.as_str()))));
        columns.push(Arc::new(StringArray::from_iter_values(rejects.iter().map(|r| r.raw.as_str()))));
        columns.push(Arc::new(StringArray::from(vec![STATUS_REJECTED; rows])));
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// Reads one file whole. Song files are a few hundred bytes, log files a few
/// megabytes: one GET each is cheaper than ranged reads.
async fn fetch(store: Arc<dyn ObjectStore>, ordinal: u32, path: String) -> Result<SourceFile> {
    let location = Path::from(path.as_str());
    let read = async { store.get(&location).await?.bytes().await };
    let bytes = read
        .await
        .map_err(|e| DataFusionError::External(format!("reading {path}: {e}").into()))?;
    Ok(SourceFile { ordinal, location: path, bytes })
}
