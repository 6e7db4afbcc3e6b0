//! The state a run carries between its steps, and how it lists its input
//! and runs a job. The steps themselves: [`super::staging`],
//! [`super::checks`], [`super::table_jobs`], [`super::commit`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::DataFrame;
use object_store::ObjectStore;
use tokio::sync::Semaphore;

use crate::error::{EtlError, Result};
use crate::extract::listing::{InputListing, list_input};
use crate::load::TableFormat;
use crate::load::publish::RunLayout;
use crate::load::writer::{WrittenFile, plain_schema, writer_of, written_files};
use crate::location::Location;
use crate::report::JobReport;
use crate::schema::InputKind;
use crate::tables::{TableDef, tables};

use super::lake::{resolve_store, store_of};
use super::{Engine, RunConfig};

/// A job ready to submit: its plan, and the client's seconds making it
/// (for a staging job, its file lists written to the store too).
pub(super) struct Planned {
    pub(super) plan: Arc<dyn ExecutionPlan>,
    pub(super) seconds: f64,
}

/// The state a run carries between its steps.
pub(super) struct Run<'a> {
    pub(super) ctx: &'a SessionContext,
    pub(super) engine: &'a dyn Engine,
    pub(super) config: &'a RunConfig,
    pub(super) layout: RunLayout,
    /// Each finished job, in the order they finished.
    pub(super) jobs: Mutex<Vec<JobReport>>,
    /// One permit per job allowed in flight.
    pub(super) in_flight: Semaphore,
    /// The five tables, songs in the configured layout.
    pub(super) tables: [TableDef; 5],
}

impl<'a> Run<'a> {
    pub(super) fn new(
        ctx: &'a SessionContext,
        engine: &'a dyn Engine,
        config: &'a RunConfig,
    ) -> Self {
        Self {
            ctx,
            engine,
            config,
            layout: RunLayout::new(config.output.clone(), config.table_format),
            jobs: Mutex::new(Vec::new()),
            in_flight: Semaphore::new(match config.concurrent_jobs {
                0 => Semaphore::MAX_PERMITS,
                n => n,
            }),
            tables: tables(config.songs_layout),
        }
    }

    pub(super) fn store(&self, location: &Location) -> Result<Arc<dyn ObjectStore>> {
        store_of(self.ctx, location)
    }

    /// Whether writers report Delta statistics for each file.
    pub(super) fn file_stats(&self) -> bool {
        self.config.table_format == TableFormat::Delta
    }

    pub(super) async fn list(&self, kind: InputKind) -> Result<InputListing> {
        let input = &self.config.input;
        let store = resolve_store(self.ctx, input).map_err(EtlError::InputStore)?;
        let started = Instant::now();
        let mut listing = list_input(store, input, kind).await?;
        listing.seconds = started.elapsed().as_secs_f64();
        Ok(listing)
    }

    /// Lists the songs and the events at once. When both fail, the songs'
    /// error is the one reported, whichever listing failed first: the same
    /// input gives the same message every time.
    pub(super) async fn list_inputs(&self) -> Result<(InputListing, InputListing)> {
        let (songs, events) =
            futures::join!(self.list(InputKind::Songs), self.list(InputKind::Events));
        Ok((songs?, events?))
    }

    /// Runs a planned job, records how it ran, and returns its output rows.
    pub(super) async fn run_job(&self, job: &str, planned: Planned) -> Result<Vec<RecordBatch>> {
        let _permit = self.in_flight.acquire().await.map_err(|e| {
            EtlError::plan(
                job,
                DataFusionError::Internal(format!("job queue closed: {e}")),
            )
        })?;
        let mut output = self
            .engine
            .run_job(job, planned.plan)
            .await
            .map_err(|error| EtlError::job(job, error))?;
        output.report.planning_seconds = planned.seconds;
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(output.report);
        Ok(output.batches)
    }

    /// Runs a job and reads back the files its writers reported.
    pub(super) async fn run_write_job(
        &self,
        job: &str,
        planned: Planned,
    ) -> Result<Vec<WrittenFile>> {
        let batches = self.run_job(job, planned).await?;
        let files = written_files(batches).map_err(|e| EtlError::plan(job, e))?;
        Ok(one_attempt_per_task(job, files))
    }

    /// A job's physical plan, and how long the client took to make it.
    pub(super) async fn physical_plan(&self, what: &str, plan: LogicalPlan) -> Result<Planned> {
        let started = Instant::now();
        let plan = self
            .ctx
            .state()
            .create_physical_plan(&plan)
            .await
            .map_err(|e| EtlError::plan(what, e))?;
        Ok(Planned {
            plan,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// The files of one job, with one attempt kept per writer task. After
/// Ballista loses an executor it reruns a stage whose earlier results it
/// still lists, so a job's result can name two attempts at one output
/// partition, each with all of its rows; the other attempt's files are
/// then unreported, and deleted at the commit.
fn one_attempt_per_task(job: &str, mut files: Vec<WrittenFile>) -> Vec<WrittenFile> {
    let keep = kept_attempts(&files);
    let dropped: Vec<&WrittenFile> = files
        .iter()
        .zip(&keep)
        .filter_map(|(file, &kept)| (!kept).then_some(file))
        .collect();
    if !dropped.is_empty() {
        tracing::warn!(
            "{job}: the engine reported a second attempt at {} output partitions; kept one attempt each, {} files of the others go",
            dropped
                .iter()
                .map(|f| &f.task)
                .collect::<std::collections::HashSet<_>>()
                .len(),
            dropped.len()
        );
    }
    // In place: at a million files a copy of the list is 600 MB.
    let mut keep = keep.into_iter();
    files.retain(|_| keep.next().unwrap_or(true));
    files
}

/// Whether each of `files` belongs to the attempt kept for its task: of
/// the writers that reported files for a task, the least writer id.
fn kept_attempts(files: &[WrittenFile]) -> Vec<bool> {
    let mut kept: HashMap<(&str, &str), &str> = HashMap::new();
    for file in files {
        let writer = writer_of(&file.path).unwrap_or_default();
        let entry = kept
            .entry((file.table.as_str(), file.task.as_str()))
            .or_insert(writer);
        if writer < *entry {
            *entry = writer;
        }
    }
    files
        .iter()
        .map(|file| {
            kept.get(&(file.table.as_str(), file.task.as_str()))
                .copied()
                == Some(writer_of(&file.path).unwrap_or_default())
        })
        .collect()
}

/// The schema a table's rows are written with, as Arrow, view types as
/// their plain forms (what the writer puts in the files).
pub(super) fn plain_arrow_schema(rows: &DataFrame) -> Arc<Schema> {
    Arc::new(plain_schema(rows.schema().as_arrow()))
}
