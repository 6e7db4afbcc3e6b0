//! The table jobs: each table's query ending in its write, and the small
//! aggregate the report charts.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::Schema;
use datafusion::logical_expr::LogicalPlan;

use crate::error::{EtlError, Result};
use crate::load::plan::WriteNode;
use crate::load::writer::{WriteSpec, WrittenFile};
use crate::report::{TableReport, plays};
use crate::tables::{Staged, TableDef};

use super::steps::{Run, plain_arrow_schema};

impl Run<'_> {
    /// Step 3: one table, as one job: how it went, its files, its schema.
    pub(super) async fn write_table(
        &self,
        table: &TableDef,
        staged: &Staged,
    ) -> Result<(TableReport, Vec<WrittenFile>, Arc<Schema>)> {
        let started = Instant::now();
        let rows = (table.plan)(staged).map_err(|e| EtlError::plan(table.name, e))?;
        let schema = plain_arrow_schema(&rows);
        let logical = self.table_logical_plan(table, staged)?;
        let planned = self.physical_plan(table.name, logical).await?;
        let files = self.run_write_job(table.name, planned).await?;
        let report = TableReport::new(
            table.name,
            self.layout.table(table.name).url(),
            &files,
            started.elapsed().as_secs_f64(),
        );
        Ok((report, files, schema))
    }

    /// A table's query, ending in its write.
    pub(super) fn table_logical_plan(
        &self,
        table: &TableDef,
        staged: &Staged,
    ) -> Result<LogicalPlan> {
        let rows = (table.plan)(staged).map_err(|e| EtlError::plan(table.name, e))?;
        let spec = WriteSpec {
            table: table.name.to_string(),
            location: self.layout.table(table.name).url(),
            partition_by: table.partition_by.iter().map(|c| c.to_string()).collect(),
            sort_by: table.sort_by.iter().map(|c| c.to_string()).collect(),
            clustering: table.clustering,
            target_file_bytes: self.config.target_file_bytes,
            attempts: Some(self.layout.attempts().url()),
            file_stats: self.file_stats(),
        };
        Ok(WriteNode::plan(spec, rows))
    }

    /// Songplays per user, for the report ([`plays`]).
    pub(super) async fn plays_per_user(&self, staged: &Staged) -> Result<Vec<(u64, u64)>> {
        let distribution = plays::query(staged).map_err(|e| EtlError::plan(plays::JOB, e))?;
        let planned = self
            .physical_plan(plays::JOB, distribution.logical_plan().clone())
            .await?;
        let batches = self.run_job(plays::JOB, planned).await?;
        plays::pairs(&batches).map_err(|e| EtlError::plan(plays::JOB, e))
    }
}
