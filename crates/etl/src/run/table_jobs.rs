//! The table jobs: which tables a run writes and from which records, each
//! table's query ending in its write, and the small aggregate the report
//! charts.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::logical_expr::LogicalPlan;

use crate::error::{EtlError, Result};
use crate::load::TableFormat;
use crate::load::delta::TableFiles;
use crate::load::plan::WriteNode;
use crate::load::writer::{WriteSpec, WrittenFile};
use crate::report::{TableReport, plays};
use crate::schema::{InputKind, STATUS_OK};
use crate::tables::{Staged, TableDef, Update};

use super::LateSongs;
use super::increment::Scope;
use super::steps::{Run, plain_arrow_schema};

/// A table a job wrote.
pub(super) struct WrittenTable {
    pub(super) report: TableReport,
    pub(super) files: Vec<WrittenFile>,
    /// With Delta output, the change to commit. Made when the job ends,
    /// it takes the files' statistics into its compressed Add lines: at a
    /// million songs files they were 320 MB held while the other tables'
    /// jobs ran.
    pub(super) delta: Option<TableFiles>,
}

/// One table's job in a run: the records it is built from, and whether its
/// rows replace the table's or are appended to them.
pub(super) struct TableJob<'a> {
    pub(super) table: &'a TableDef,
    pub(super) staged: Staged,
    pub(super) replace: bool,
}

impl Run<'_> {
    /// The tables this run writes, in the order of `self.tables`, given
    /// what it loads (`scope`) and the files it staged of each input. A
    /// full run rebuilds every table from its staged records; an
    /// incremental one updates each table whose input has new records as
    /// its [`Update`] says, on top of the records staged before.
    pub(super) async fn table_jobs(
        &self,
        scope: &Scope,
        new_songs: &[WrittenFile],
        new_events: &[WrittenFile],
    ) -> Result<Vec<TableJob<'_>>> {
        let read = |kind, files: &[WrittenFile]| self.read_status(kind, files, STATUS_OK);
        let everything = Staged {
            songs: read(
                InputKind::Songs,
                &[&scope.earlier_songs[..], new_songs].concat(),
            )?,
            events: read(
                InputKind::Events,
                &[&scope.earlier_events[..], new_events].concat(),
            )?,
            published_times: None,
        };
        let rebuild = |table| TableJob {
            table,
            staged: everything.clone(),
            replace: true,
        };
        if scope.full {
            return Ok(self.tables.iter().map(rebuild).collect());
        }
        // Only new events make append jobs: without them the time table's
        // log is not read at all.
        let published_times = match new_events.is_empty() {
            true => None,
            false => Some(self.published_times().await?),
        };
        let increment = Staged {
            events: read(InputKind::Events, new_events)?,
            published_times,
            ..everything.clone()
        };
        let has_new = |kind| match kind {
            InputKind::Songs => !new_songs.is_empty(),
            InputKind::Events => !new_events.is_empty(),
        };
        let rematch = has_new(InputKind::Songs) && self.config.late_songs == LateSongs::Rematch;
        let mut jobs = Vec::new();
        for table in &self.tables {
            match table.update {
                Update::Rebuild if has_new(table.input) => jobs.push(rebuild(table)),
                Update::Append {
                    matches_songs: true,
                } if rematch => jobs.push(rebuild(table)),
                Update::Append { .. } if has_new(table.input) => jobs.push(TableJob {
                    table,
                    staged: increment.clone(),
                    replace: false,
                }),
                _ => {}
            }
        }
        Ok(jobs)
    }

    /// The start times the time table holds now, read by the engine.
    async fn published_times(&self) -> Result<datafusion::prelude::DataFrame> {
        let target = self.delta_target(crate::tables::time::TABLE.name);
        let files = target.current_files().await?.unwrap_or_default();
        let start_time = Field::new(
            "start_time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        );
        self.read_files(
            "published_times",
            Arc::new(Schema::new(vec![start_time])),
            &files,
        )
        .map_err(|e| EtlError::plan("reading the published start times", e))
    }

    /// Step 3: one table, as one job: how it went, its files, and with
    /// Delta output its change to the table, made as soon as the job ends.
    pub(super) async fn write_table(&self, job: &TableJob<'_>) -> Result<WrittenTable> {
        let (table, staged) = (job.table, &job.staged);
        let started = Instant::now();
        let rows = (table.plan)(staged).map_err(|e| EtlError::plan(table.name, e))?;
        let schema = plain_arrow_schema(&rows);
        let logical = self.table_logical_plan(table, staged)?;
        let planned = self.physical_plan(table.name, logical).await?;
        let mut files = self.run_write_job(table.name, planned).await?;
        let report = TableReport::new(
            table.name,
            self.layout.table(table.name).url(),
            &files,
            started.elapsed().as_secs_f64(),
        );
        let delta = match self.config.table_format {
            TableFormat::Delta => Some(TableFiles::written(
                self.delta_target(table.name),
                schema,
                table.partition_by.iter().map(|c| c.to_string()).collect(),
                &mut files,
                job.replace,
            )?),
            TableFormat::Parquet => None,
        };
        Ok(WrittenTable {
            report,
            files,
            delta,
        })
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

    /// Songplays per user among the plays the run writes, for the report
    /// ([`plays`]); none when it writes no songplays.
    pub(super) async fn plays_per_user(
        &self,
        staged: Option<&Staged>,
    ) -> Result<Option<Vec<(u64, u64)>>> {
        let Some(staged) = staged else {
            return Ok(None);
        };
        let distribution = plays::query(staged).map_err(|e| EtlError::plan(plays::JOB, e))?;
        let planned = self
            .physical_plan(plays::JOB, distribution.logical_plan().clone())
            .await?;
        let batches = self.run_job(plays::JOB, planned).await?;
        plays::pairs(&batches)
            .map(Some)
            .map_err(|e| EtlError::plan(plays::JOB, e))
    }
}
