//! How a table write enters a DataFusion plan: a logical node the client
//! builds on top of a table's query, and the planner that turns it into a
//! [`ParquetWriterExec`]. Because the writer states the distribution and
//! ordering it needs, DataFusion's own optimizer adds the hash shuffle and the
//! sort in front of it; nothing here hand-builds physical plans.

use std::fmt;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, DFSchemaRef, Result, internal_err};
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use datafusion::prelude::DataFrame;

use super::writer::{ParquetWriterExec, WriteSpec, written_files_schema};

static WRITTEN_FILES: LazyLock<DFSchemaRef> = LazyLock::new(|| {
    Arc::new(
        DFSchema::try_from(written_files_schema().as_ref().clone())
            .expect("static schema is valid"),
    )
});

/// "Write this query's rows as the table described by `spec`."
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd)]
pub struct WriteNode {
    spec: WriteSpec,
    input: LogicalPlan,
}

impl WriteNode {
    /// Wraps a table's query in a write.
    pub fn plan(spec: WriteSpec, table: DataFrame) -> LogicalPlan {
        let input = table.into_unoptimized_plan();
        LogicalPlan::Extension(Extension {
            node: Arc::new(WriteNode { spec, input }),
        })
    }
}

impl UserDefinedLogicalNodeCore for WriteNode {
    fn name(&self) -> &str {
        "WriteTable"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &WRITTEN_FILES
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "WriteTable: table={}, location={}, partition_by=[{}]",
            self.spec.table,
            self.spec.location,
            self.spec.partition_by.join(", ")
        )
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        match inputs.pop() {
            Some(input) if inputs.is_empty() => Ok(Self {
                spec: self.spec.clone(),
                input,
            }),
            _ => internal_err!("WriteTable takes exactly one input"),
        }
    }

    /// The writer writes every column it is given; none may be pruned.
    fn necessary_children_exprs(&self, _output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        Some(vec![(0..self.input.schema().fields().len()).collect()])
    }
}

/// Plans [`WriteNode`]s.
#[derive(Debug)]
struct WriterPlanner;

#[async_trait]
impl ExtensionPlanner for WriterPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(write) = node.as_any().downcast_ref::<WriteNode>() else {
            return Ok(None);
        };
        let [input] = physical_inputs else {
            return internal_err!("WriteTable takes exactly one input");
        };
        Ok(Some(Arc::new(ParquetWriterExec::try_new(
            write.spec.clone(),
            Arc::clone(input),
        )?)))
    }
}

/// DataFusion's planner, taught to plan table writes.
#[derive(Debug)]
pub struct LakeQueryPlanner;

#[async_trait]
impl QueryPlanner for LakeQueryPlanner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(WriterPlanner)])
            .create_physical_plan(plan, session)
            .await
    }
}
