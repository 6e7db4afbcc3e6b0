//! The steps of a run: listing, staging, the table jobs, their checks,
//! and the commits, on the state a run carries between them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::Schema;
use datafusion::common::cast::as_int64_array;
use datafusion::datasource::provider_as_source;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionContext;
use datafusion::functions_aggregate::expr_fn::{count, count_distinct};
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{DataFrame, col, lit};
use futures::future::try_join_all;
use object_store::ObjectStore;
use tokio::sync::Semaphore;

use crate::error::{EtlError, Result};
use crate::extract::file_list::{FileList, ListFiles};
use crate::extract::listing::{InputListing, list_input};
use crate::extract::scan::{RawScanExec, ScanSpec};
use crate::load::TableFormat;
use crate::load::delta::table::DeltaTarget;
use crate::load::delta::{Publication, TableFiles, remove_attempt_files};
use crate::load::lake_log::{Lease, RunRecord};
use crate::load::plan::WriteNode;
use crate::load::publish::{self, RunLayout};
use crate::load::staged::StagedFiles;
use crate::load::writer::{
    Clustering, ParquetWriterExec, WriteSpec, WrittenFile, plain_schema, writer_of, written_files,
};
use crate::location::Location;
use crate::report::{InputReport, JobReport, RunReport, TableReport, plays};
use crate::schema::{InputKind, RECORD_ID, STATUS, STATUS_OK, STATUS_REJECTED, reject_fields};
use crate::tables::{Staged, TableDef, tables};

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

    /// The Delta table `name` of this run's output.
    pub(super) fn delta_target(&self, name: &str) -> DeltaTarget {
        DeltaTarget {
            name: name.to_string(),
            location: self.layout.table(name),
            store: self
                .store(&self.config.output)
                .expect("the output's store was resolved at the start"),
        }
    }

    /// The rejects table's part of a Delta publication: the reject files
    /// among `written`, appended.
    pub(super) fn rejects_table(
        &self,
        schema: Arc<Schema>,
        written: &[WrittenFile],
    ) -> Result<TableFiles> {
        let rejects: Vec<WrittenFile> = written
            .iter()
            .filter(|f| f.table.starts_with(publish::DELTA_REJECTS))
            .cloned()
            .collect();
        let target = self.delta_target(publish::DELTA_REJECTS);
        TableFiles::written(target, schema, vec![], &rejects, false)
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

    /// Step 1: raw files of one kind to staged Parquet.
    pub(super) async fn stage(
        &self,
        kind: InputKind,
        listing: &InputListing,
    ) -> Result<Vec<WrittenFile>> {
        let started = Instant::now();
        let (plan, file_list) = self.stage_plan(kind, listing)?;
        let store = self.store(&self.config.output)?;
        let store = &store;
        try_join_all(
            file_list
                .into_iter()
                .map(|(path, bytes)| async move { publish::put(store, &path, bytes).await }),
        )
        .await?;
        let planned = Planned {
            plan,
            seconds: started.elapsed().as_secs_f64(),
        };
        self.run_write_job(&format!("stage {}", kind.name()), planned)
            .await
    }

    /// The staging job: the raw scan, sharded by file, into the writer; and
    /// the scan's file list, which must be in the store when the job starts.
    pub(super) fn stage_plan(
        &self,
        kind: InputKind,
        listing: &InputListing,
    ) -> Result<(Arc<dyn ExecutionPlan>, ListFiles)> {
        let what = || format!("staging {}", kind.name());
        let scan = ScanSpec {
            kind,
            root: self.config.input.url(),
            rejects: self.config.rejects,
        };
        let file_list = FileList::new(
            &listing.files,
            self.config.partitions,
            &self.layout.file_lists(kind),
        )
        .map_err(|e| EtlError::plan(what(), e))?;
        let scan =
            RawScanExec::try_new(scan, file_list.plan).map_err(|e| EtlError::plan(what(), e))?;
        let spec = WriteSpec {
            table: format!("_staging/{}", kind.name()),
            location: self.layout.staging(kind).url(),
            partition_by: vec![STATUS.to_string()],
            sort_by: vec![],
            clustering: Clustering::AsIs,
            target_file_bytes: self.config.target_file_bytes,
            attempts: None,
            file_stats: false,
        };
        let plan = ParquetWriterExec::try_new(spec, Arc::new(scan))
            .map_err(|e| EtlError::plan(what(), e))?;
        Ok((Arc::new(plan), file_list.files))
    }

    /// The files staging would write for `listing`, for `--explain`: one per
    /// partition, sized as the input's share.
    pub(super) fn expected_staging(
        &self,
        kind: InputKind,
        listing: &InputListing,
    ) -> Vec<WrittenFile> {
        let partitions = self.config.partitions.max(1);
        let table = format!("_staging/{}", kind.name());
        (0..partitions)
            .map(|i| WrittenFile {
                path: format!(
                    "{}/{STATUS}={STATUS_OK}/part-{i:05}.parquet",
                    self.layout.staging(kind).object_path()
                ),
                table: table.clone(),
                partition: format!("{STATUS}={STATUS_OK}"),
                rows: 0,
                bytes: listing.bytes() / partitions as u64,
                task: i.to_string(),
                stats: String::new(),
            })
            .collect()
    }

    /// The staged files of one status as a DataFrame, read by the engine.
    pub(super) fn read_status(
        &self,
        kind: InputKind,
        staged: &[WrittenFile],
        status: &str,
    ) -> Result<DataFrame> {
        let what = || format!("reading staged {} records", kind.name());
        let schema = Arc::new(staged_file_schema(kind));
        let partition = format!("{STATUS}={status}");
        let files: Vec<WrittenFile> = staged
            .iter()
            .filter(|f| f.partition == partition)
            .cloned()
            .collect();
        let read = if files.is_empty() {
            // A scan of no files has no partitions, which a count's
            // single-partition aggregate cannot take.
            self.ctx.read_batch(RecordBatch::new_empty(schema))
        } else {
            let store = self.config.output.object_store_url();
            let table = StagedFiles::new(schema, store, &files, self.config.partitions);
            // Named, so plans (`--explain`) say which records they scan.
            let name = format!("staged_{}_{status}", kind.name());
            LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(table)), None)
                .and_then(|scan| scan.build())
                .map(|plan| DataFrame::new(self.ctx.state(), plan))
        };
        read.map_err(|e| EtlError::plan(what(), e))
    }

    /// Step 2: the rejected records of one kind, with the run and input
    /// they came from; and their schema.
    pub(super) async fn write_rejects(
        &self,
        kind: InputKind,
        staged: &[WrittenFile],
    ) -> Result<(Vec<WrittenFile>, Arc<Schema>)> {
        let mut columns = vec![
            lit(self.layout.run_id.as_str()).alias("run_id"),
            lit(kind.name()).alias("input"),
        ];
        columns.extend(reject_fields().iter().map(|f| col(f.name())));
        let rejects = self
            .read_status(kind, staged, STATUS_REJECTED)?
            .select(columns)
            .map_err(|e| EtlError::plan("rejects", e))?;
        let schema = plain_arrow_schema(&rejects);
        let spec = WriteSpec {
            table: format!("_rejects/{}", kind.name()),
            location: self.layout.rejects(kind).url(),
            partition_by: vec![],
            sort_by: vec![],
            clustering: Clustering::AsIs,
            target_file_bytes: self.config.target_file_bytes,
            attempts: Some(self.layout.attempts().url()),
            file_stats: self.file_stats(),
        };
        let job = format!("rejects {}", kind.name());
        let planned = self
            .physical_plan(&job, WriteNode::plan(spec, rejects))
            .await?;
        Ok((self.run_write_job(&job, planned).await?, schema))
    }

    /// Stops the run when an input has more rejects than `--max-rejects`
    /// allows, or has records and every one was rejected (unless
    /// `--allow-empty`): its tables would be replaced by empty ones.
    pub(super) fn check_rejects(&self, inputs: &[InputReport]) -> Result<()> {
        if let Some(limit) = self.config.max_rejects
            && let Some(input) = inputs.iter().find(|i| !limit.allows(i.rejected, i.records))
        {
            return Err(EtlError::TooManyRejects {
                input: input.input,
                rejected: input.rejected,
                records: input.records,
                limit: limit.to_string(),
                rejects: input.rejects_location.clone().unwrap_or_default(),
            });
        }
        let all_rejected = inputs
            .iter()
            .find(|i| i.records > 0 && i.rejected == i.records);
        match all_rejected {
            Some(input) if !self.config.allow_empty => Err(EtlError::Empty(format!(
                "all {} {} records were rejected (they are in {})",
                input.records,
                input.input,
                input.rejects_location.clone().unwrap_or_default()
            ))),
            _ => Ok(()),
        }
    }

    /// Stops the run when a table would be empty while the input it is
    /// built from has records, unless `--allow-empty`.
    pub(super) fn check_not_empty(
        &self,
        expected_rows: &[u64],
        inputs: &[InputReport],
    ) -> Result<()> {
        if self.config.allow_empty {
            return Ok(());
        }
        for (table, rows) in self.tables.iter().zip(expected_rows) {
            let input = inputs.iter().find(|i| i.input == table.input.name());
            if let Some(input) = input
                && *rows == 0
                && input.loaded > 0
            {
                return Err(EtlError::Empty(format!(
                    "the {} table would be empty, though {} {} records were loaded",
                    table.name, input.loaded, input.input
                )));
            }
        }
        Ok(())
    }

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

    /// The rows each table must have, in `self.tables` order, from one job
    /// of cheap counts over the staged records. The same job checks that
    /// every staged record id is distinct: a staging task's output kept
    /// twice would otherwise flow into every table (see
    /// [`one_attempt_per_task`]), so a duplicate stops the run here.
    pub(super) async fn expected_rows(
        &self,
        staged: &Staged,
        inputs: &[InputReport],
    ) -> Result<Vec<u64>> {
        let what = "expected row counts";
        let plan_error = |e| EtlError::plan(what, e);
        let mut counts = Vec::new();
        for table in &self.tables {
            counts.push((table.expected_rows)(staged).map_err(plan_error)?);
        }
        for records in [&staged.songs, &staged.events] {
            counts.push(distinct_ids(records).map_err(plan_error)?);
        }
        let mut numbered = Vec::new();
        for (index, counted) in counts.into_iter().enumerate() {
            let counted = counted
                .select(vec![lit(index as i64).alias("count"), col("rows")])
                .map_err(plan_error)?;
            numbered.push(counted);
        }
        // One job for all counts, as a union; but a count over an input
        // with no good record runs inline in a union's last stage, where
        // Ballista 55 sizes the task metrics wrongly and the job never
        // ends: then each count is a job of its own.
        let jobs = if inputs.iter().any(|input| input.records == input.rejected) {
            numbered
        } else {
            let mut union = numbered.into_iter();
            let first = union.next().expect("there are counts");
            vec![
                union
                    .try_fold(first, |all, counted| all.union(counted))
                    .map_err(plan_error)?,
            ]
        };
        let mut batches = Vec::new();
        let single = jobs.len() == 1;
        for done in try_join_all(jobs.into_iter().enumerate().map(|(index, job)| async move {
            // Jobs of one run need names of their own: the engine finds
            // each job's report by its name.
            let name = match single {
                true => what.to_string(),
                false => format!("{what} {}", index + 1),
            };
            let planned = self
                .physical_plan(&name, job.logical_plan().clone())
                .await?;
            self.run_job(&name, planned).await
        }))
        .await?
        {
            batches.extend(done);
        }
        let mut values = vec![None; self.tables.len() + 2];
        for batch in &batches {
            let (counts, rows) = (
                int64_column(batch, "count", what)?,
                int64_column(batch, "rows", what)?,
            );
            for (count, rows) in counts.values().iter().zip(rows.values()) {
                values[*count as usize] = Some(*rows as u64);
            }
        }
        // A count over no records can come back as no row at all (an
        // aggregate over a source with no partitions): that is a zero.
        let mut values: Vec<u64> = values.into_iter().map(|rows| rows.unwrap_or(0)).collect();
        let duplicates = values.split_off(self.tables.len());
        for (kind, duplicated) in InputKind::ALL.into_iter().zip(duplicates) {
            if duplicated > 0 {
                return Err(EtlError::DuplicateRecords {
                    input: kind.name(),
                    duplicated,
                });
            }
        }
        Ok(values)
    }

    /// The written tables, each checked against the rows it must have. A
    /// table whose writers reported other counts is written again once (its
    /// first files are not committed, so the commit deletes them); a second
    /// mismatch fails the run, unpublished.
    pub(super) async fn checked(
        &self,
        written: Vec<(TableReport, Vec<WrittenFile>, Arc<Schema>)>,
        expected_rows: &[u64],
        staged: &Staged,
    ) -> Result<Vec<(TableReport, Vec<WrittenFile>, Arc<Schema>)>> {
        let mut checked = Vec::with_capacity(written.len());
        for ((table, expected), first) in self.tables.iter().zip(expected_rows).zip(written) {
            if first.0.rows == *expected {
                checked.push(first);
                continue;
            }
            // The last net: one attempt per task is kept at the source
            // (`one_attempt_per_task`), so this firing is a bug to report.
            tracing::error!(
                "{}: the writers reported {} rows where the staged records give {expected}; writing it again",
                table.name,
                first.0.rows
            );
            let again = self.write_table(table, staged).await?;
            if again.0.rows != *expected {
                return Err(EtlError::RowCount {
                    table: table.name,
                    written: again.0.rows,
                    expected: *expected,
                });
            }
            checked.push(again);
        }
        Ok(checked)
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

    /// Step 4 (Parquet): report next to the tables, then commit.
    pub(super) async fn publish(
        &self,
        report: &RunReport,
        files: &[WrittenFile],
        lease: &Lease,
    ) -> Result<()> {
        tracing::info!("{}: publishing {} files", self.layout.run_id, files.len());
        self.write_report(report).await?;
        let store = self.store(&self.config.output)?;
        publish::commit(&store, &self.layout, files, lease).await
    }

    /// `_report.json` and `_report.html` in the run's folder.
    pub(super) async fn write_report(&self, report: &RunReport) -> Result<()> {
        let store = self.store(&self.config.output)?;
        let json = serde_json::to_vec_pretty(report)
            .map_err(|e| EtlError::plan("report", DataFusionError::External(e.into())))?;
        let path = self.layout.run_dir().object_path().join("_report.json");
        publish::put(&store, &path, json).await?;
        let page = crate::report::html::render(report);
        let path = self.layout.run_dir().object_path().join("_report.html");
        publish::put(&store, &path, page.into_bytes()).await
    }

    /// Step 4 (Delta): the files of failed attempts go, then the tables are
    /// committed in order ([`crate::load::delta`]), then expired files go.
    pub(super) async fn publish_delta(
        &self,
        tables: Vec<TableFiles>,
        files: &[WrittenFile],
        base: Option<u64>,
        action: &str,
    ) -> Result<RunRecord> {
        tracing::info!("{}: committing {} files", self.layout.run_id, files.len());
        let store = self.store(&self.config.output)?;
        let unreported = publish::discard_working_files(&store, &self.layout, files).await?;
        if !unreported.is_empty() {
            let locations: Vec<Location> =
                tables.iter().map(|t| t.target.location.clone()).collect();
            let deleted = remove_attempt_files(&store, &locations, &unreported).await?;
            tracing::info!(
                "{}: {} task attempts were not kept; deleted their {deleted} files",
                self.layout.run_id,
                unreported.len()
            );
        }
        let publication = Publication {
            store,
            output: self.config.output.clone(),
            run_id: self.layout.run_id.clone(),
            base,
            claim_timeout: self.config.claim_timeout,
            retain: self.config.retain,
        };
        let targets: Vec<DeltaTarget> = tables.iter().map(|t| t.target.clone()).collect();
        let record = publication.commit(tables, action, files).await?;
        publication.remove_expired(&targets).await;
        Ok(record)
    }
}

/// `rows`: how many staged records share their record id with another
/// (0 when every id is distinct).
fn distinct_ids(records: &DataFrame) -> datafusion::error::Result<DataFrame> {
    records
        .clone()
        .aggregate(
            vec![],
            vec![
                count(lit(1)).alias("records"),
                count_distinct(col(RECORD_ID)).alias("ids"),
            ],
        )?
        .select(vec![(col("records") - col("ids")).alias("rows")])
}

/// Column `name` of a job's result batch, which the job's plan makes Int64.
fn int64_column<'a>(batch: &'a RecordBatch, name: &str, what: &str) -> Result<&'a Int64Array> {
    batch
        .column_by_name(name)
        .ok_or_else(|| DataFusionError::Internal(format!("no column '{name}' in the result")))
        .and_then(|column| as_int64_array(column))
        .map_err(|e| EtlError::plan(what, e))
}

/// The files of one job, with one attempt kept per writer task. After
/// Ballista loses an executor it reruns a stage whose earlier results it
/// still lists, so a job's result can name two attempts at one output
/// partition, each with all of its rows; the other attempt's files are
/// then unreported, and deleted at the commit.
fn one_attempt_per_task(job: &str, files: Vec<WrittenFile>) -> Vec<WrittenFile> {
    let mut kept: HashMap<(&str, &str), &str> = HashMap::new();
    for file in &files {
        let writer = writer_of(&file.path).unwrap_or_default();
        let entry = kept
            .entry((file.table.as_str(), file.task.as_str()))
            .or_insert(writer);
        if writer < *entry {
            *entry = writer;
        }
    }
    let keep = |file: &WrittenFile| {
        kept.get(&(file.table.as_str(), file.task.as_str()))
            .copied()
            == Some(writer_of(&file.path).unwrap_or_default())
    };
    let (kept_files, dropped): (Vec<_>, Vec<_>) = files.iter().partition(|f| keep(f));
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
    kept_files.into_iter().cloned().collect()
}

/// The schema a table's rows are written with, as Arrow, view types as
/// their plain forms (what the writer puts in the files).
fn plain_arrow_schema(rows: &DataFrame) -> Arc<Schema> {
    Arc::new(plain_schema(rows.schema().as_arrow()))
}

/// Columns of a staged file: the staged schema without the `status`
/// partition column, which lives in the directory name.
fn staged_file_schema(kind: InputKind) -> Schema {
    let staged = kind.staged_schema();
    let fields: Vec<_> = staged
        .fields()
        .iter()
        .filter(|f| f.name() != STATUS)
        .cloned()
        .collect();
    Schema::new(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field};

    async fn repeated_ids(ids: Vec<i64>) -> i64 {
        let schema = Arc::new(Schema::new(vec![Field::new(
            RECORD_ID,
            DataType::Int64,
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(ids))]).unwrap();
        let records = SessionContext::new().read_batch(batch).unwrap();
        let batches = distinct_ids(&records).unwrap().collect().await.unwrap();
        int64_column(&batches[0], "rows", "test").unwrap().value(0)
    }

    #[tokio::test]
    async fn staged_records_with_a_repeated_id_are_counted() {
        assert_eq!(repeated_ids(vec![1, 2, 3]).await, 0);
        assert_eq!(repeated_ids(vec![1, 2, 2, 3, 3]).await, 2);
    }
}
