//! What a run needs of an engine: running a physical plan as a job, and
//! explaining how it would.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::physical_plan::ExecutionPlan;

use crate::report::JobReport;

/// Runs physical plans: Ballista in-process or on a cluster.
#[async_trait]
pub trait Engine: Send + Sync {
    /// Runs `plan` as one job named `name`: its output rows, and how it ran.
    async fn run_job(
        &self,
        name: &str,
        plan: Arc<dyn ExecutionPlan>,
    ) -> datafusion::error::Result<JobOutput>;

    /// How the engine would run `plan`: its stages, what each shuffles on,
    /// and how many partitions each has.
    fn explain(&self, plan: Arc<dyn ExecutionPlan>) -> datafusion::error::Result<String>;
}

/// What a job gave back.
pub struct JobOutput {
    pub batches: Vec<RecordBatch>,
    pub report: JobReport,
}
