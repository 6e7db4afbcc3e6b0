//! The writer operator: what DataFusion and Ballista see of a write. It
//! runs once per input partition, on the executor that holds it, and
//! answers with the files it wrote.

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, internal_err};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{
    EquivalenceProperties, LexRequirement, OrderingRequirements, PhysicalExpr,
    PhysicalSortRequirement,
};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::expressions::Column;
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    Partitioning, PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;

use super::sink::{PartitionedSink, WriterMetrics};
use super::spec::{Clustering, WriteSpec};
use super::written::{report, written_files_schema};
use crate::location::Location;

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
        let store = Location::of_plan(&self.spec.location)?.task_store(&context)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::super::written::{REPORT_FILES, written_files};

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
