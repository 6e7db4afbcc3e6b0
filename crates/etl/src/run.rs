//! One run of the ETL, from raw input to published tables.
//!
//! A run is a few Ballista jobs, each a physical plan built here on the
//! client and executed by the engine:
//!
//! 1. **stage** (one job per input kind): the raw scan reads the JSON files,
//!    sharded by file across tasks, and writes every record, good or
//!    rejected, as Parquet into the run's `_staging/` area, partitioned by
//!    `status`. This is the only time the raw input is read: Ballista has no
//!    remote cache, so the song records that feed songs, artists and the
//!    songplays join are materialised once instead, as a help table.
//! 2. **rejects** (only when some records were rejected): the rejected rows,
//!    with file, line, reason and text, become `_rejects/<input>/`.
//! 3. **tables** (one job per table, all submitted at once): each table's
//!    query over the staged records, ending in the partitioned writer.
//! 4. **publish**: the files the jobs reported are committed (see
//!    [`crate::load::publish`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::Schema;
use datafusion::datasource::provider_as_source;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionContext;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{DataFrame, col, lit};
use futures::future::try_join_all;
use object_store::ObjectStore;
use tokio::sync::Semaphore;

use crate::crash;
use crate::error::{EtlError, Result};
use crate::extract::listing::{InputListing, list_input};
use crate::extract::scan::{RawScanExec, RejectPolicy, ScanSpec, file_list};
use crate::load::TableFormat;
use crate::load::delta::history;
use crate::load::delta::table::DeltaTarget;
use crate::load::delta::{Publication, TableFiles, remove_attempt_files};
use crate::load::lake_log::{LakeLog, Lease, RunRecord};
use crate::load::plan::WriteNode;
use crate::load::publish::{self, RunLayout};
use crate::load::staged::StagedFiles;
use crate::load::writer::{
    Clustering, ParquetWriterExec, WriteSpec, WrittenFile, plain_schema, writer_of, written_files,
};
use crate::location::Location;
use crate::report::{InputReport, JobReport, RunReport, TableReport, charts};
use crate::schema::{InputKind, STATUS, STATUS_OK, STATUS_REJECTED, reject_fields};
use crate::tables::{SongsLayout, Staged, TableDef, songplays, tables};

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

/// How much rejected input a run tolerates before it fails unpublished.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RejectLimit {
    Count(u64),
    Fraction(f64),
}

impl RejectLimit {
    /// `100` is a count, `0.01` or `1%` a fraction of the records of an input.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        let fraction = |v: f64| {
            (0.0..=1.0)
                .contains(&v)
                .then_some(RejectLimit::Fraction(v))
                .ok_or_else(|| format!("'{text}' is not a fraction between 0 and 1"))
        };
        if let Some(percent) = text.strip_suffix('%') {
            let value: f64 = percent
                .trim()
                .parse()
                .map_err(|_| format!("'{text}' is not a percentage"))?;
            return fraction(value / 100.0);
        }
        if let Ok(count) = text.parse::<u64>() {
            return Ok(RejectLimit::Count(count));
        }
        match text.parse::<f64>() {
            Ok(value) => fraction(value),
            Err(_) => Err(format!(
                "'{text}' is neither a count (100) nor a fraction (0.01, 1%)"
            )),
        }
    }

    fn allows(&self, rejected: u64, records: u64) -> bool {
        match *self {
            RejectLimit::Count(limit) => rejected <= limit,
            RejectLimit::Fraction(limit) => {
                records == 0 || rejected as f64 <= limit * records as f64
            }
        }
    }
}

impl std::fmt::Display for RejectLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectLimit::Count(n) => write!(f, "{n}"),
            // Rounded: 7% is 0.07, which times 100 is 7.000000000000001.
            RejectLimit::Fraction(v) => write!(f, "{}%", (v * 100.0 * 1e9).round() / 1e9),
        }
    }
}

/// What a run reads, where it writes, and how.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub input: Location,
    pub output: Location,
    /// Tasks per stage: scan shards, shuffle partitions, writer tasks.
    pub partitions: usize,
    pub rejects: RejectPolicy,
    /// `None`: any number of rejected records is accepted (and reported).
    pub max_rejects: Option<RejectLimit>,
    /// Publish tables that are empty while their input is not.
    pub allow_empty: bool,
    pub target_file_bytes: u64,
    /// Jobs submitted at once: 0 for all of a step's jobs (the five tables
    /// together), 1 for one after the other.
    pub concurrent_jobs: usize,
    pub songs_layout: SongsLayout,
    pub table_format: TableFormat,
    /// Delta: files a commit removed are deleted once this much older.
    pub retain: Duration,
    /// Delta: an unfinished claim on the lake lapses after this long.
    pub claim_timeout: Duration,
}

/// Runs the ETL and publishes its tables. `ctx` is the client's planning
/// context (see [`crate::planning_context`]); `engine` runs the jobs.
pub async fn run_etl(
    ctx: &SessionContext,
    engine: &dyn Engine,
    config: &RunConfig,
) -> Result<RunReport> {
    let started = Instant::now();
    let run = Run::new(ctx, engine, config);
    let (songs, events) = run.list_inputs().await?;
    let output_store = run.store(&config.output)?;
    publish::begin(&output_store, &run.layout).await?;
    let log = LakeLog::new(output_store, &config.output);
    match config.table_format {
        // Delta runs claim the lake only to commit (optimistically).
        TableFormat::Delta => {
            let hold = Hold::Delta(log.last_claimed().await?);
            build_and_publish(&run, songs, events, hold, started).await
        }
        // Parquet runs hold the output from start to publication.
        TableFormat::Parquet => {
            let lease = log.lease(&run.layout.run_id, config.claim_timeout).await?;
            let built =
                build_and_publish(&run, songs, events, Hold::Parquet(&lease), started).await;
            let action = if built.is_ok() { "run" } else { "failed" };
            if let Err(e) = lease.settle(action).await {
                tracing::warn!(
                    "{}: the output stays held until --claim-timeout: {e}",
                    run.layout.run_id
                );
            }
            built
        }
    }
}

/// How a run holds the output while it builds its tables.
enum Hold<'a> {
    /// Delta: the last claim seen at the start; the run claims the next
    /// one when it commits.
    Delta(Option<u64>),
    /// Parquet: held since the start.
    Parquet(&'a Lease),
}

/// Stages the input, builds the tables, and publishes them.
async fn build_and_publish(
    run: &Run<'_>,
    songs: InputListing,
    events: InputListing,
    hold: Hold<'_>,
    started: Instant,
) -> Result<RunReport> {
    let config = run.config;
    let (base, lease) = match hold {
        Hold::Delta(base) => (base, None),
        Hold::Parquet(lease) => (None, Some(lease)),
    };
    crash::point(crash::STARTED);
    let (staged_songs, staged_events) = futures::try_join!(
        run.stage(InputKind::Songs, &songs),
        run.stage(InputKind::Events, &events)
    )?;
    crash::point(crash::STAGED);
    let mut inputs = vec![
        InputReport::new(InputKind::Songs, &songs, &staged_songs),
        InputReport::new(InputKind::Events, &events, &staged_events),
    ];
    let mut committed: Vec<WrittenFile> = Vec::new();
    let mut rejects_schema = None;
    let staged_kinds = [
        (InputKind::Songs, &staged_songs),
        (InputKind::Events, &staged_events),
    ];
    for (input, (kind, staged)) in inputs.iter_mut().zip(staged_kinds) {
        if input.rejected > 0 {
            let (files, schema) = run.write_rejects(kind, staged).await?;
            committed.extend(files);
            rejects_schema = Some(schema);
            input.rejects_location = Some(run.layout.rejects(kind).url());
        }
    }
    if let Err(too_many) = run.check_rejects(&inputs) {
        // The tables stay as they are; the quarantine becomes queryable.
        if let (TableFormat::Delta, Some(schema)) = (config.table_format, rejects_schema) {
            let rejects = run.rejects_table(schema, &committed)?;
            run.publish_delta(vec![rejects], &committed, base, "rejects only")
                .await?;
        }
        return Err(too_many);
    }

    let staged = Staged {
        songs: run.read_status(InputKind::Songs, &staged_songs, STATUS_OK)?,
        events: run.read_status(InputKind::Events, &staged_events, STATUS_OK)?,
    };
    let (written, plays_per_user, expected_rows) = futures::try_join!(
        try_join_all(
            run.tables
                .iter()
                .map(|table| run.write_table(table, &staged))
        ),
        run.plays_per_user(&staged),
        run.expected_rows(&staged)
    )?;
    run.check_not_empty(&expected_rows, &inputs)?;
    let written = run.checked(written, &expected_rows, &staged).await?;
    let mut tables = Vec::new();
    let mut charts = Vec::new();
    let mut delta_tables = Vec::new();
    for (table, (report, files, schema)) in run.tables.iter().zip(written) {
        charts.extend(
            table
                .charts
                .iter()
                .map(|chart| chart.draw(table.name, &files)),
        );
        tables.push(report);
        if config.table_format == TableFormat::Delta {
            let partition_by = table.partition_by.iter().map(|c| c.to_string()).collect();
            let target = run.delta_target(table.name);
            delta_tables.push(TableFiles::written(
                target,
                schema,
                partition_by,
                &files,
                true,
            )?);
        }
        committed.extend(files);
    }
    if let (TableFormat::Delta, Some(schema)) = (config.table_format, rejects_schema) {
        delta_tables.push(run.rejects_table(schema, &committed)?);
    }
    charts.push(charts::keys_per_count(
        "songplays per user",
        "user",
        plays_per_user,
    ));
    crash::point(crash::WRITTEN);

    let published = match config.table_format {
        TableFormat::Delta => config.output.url(),
        TableFormat::Parquet => run.layout.run_dir().url(),
    };
    let mut report = RunReport {
        run_id: run.layout.run_id.clone(),
        input: config.input.url(),
        output: config.output.url(),
        published,
        versions: Default::default(),
        seconds: started.elapsed().as_secs_f64(),
        inputs,
        tables,
        jobs: std::mem::take(&mut *run.jobs.lock().unwrap_or_else(|e| e.into_inner())),
        charts,
    };
    match config.table_format {
        TableFormat::Parquet => {
            let lease = lease.expect("a Parquet run holds a lease");
            run.publish(&report, &committed, lease).await?
        }
        TableFormat::Delta => {
            let record = run
                .publish_delta(delta_tables, &committed, base, "run")
                .await?;
            report.versions = record.tables;
            run.write_report(&report).await?;
        }
    }
    Ok(report)
}

/// The runs recorded in the Delta lake at `output`, as a table for the terminal.
pub async fn list_runs(ctx: &SessionContext, output: &Location) -> Result<String> {
    let store = store_of(ctx, output)?;
    let records = LakeLog::new(store, output).records().await?;
    if records.is_empty() {
        return Ok(format!("no runs recorded in {output}"));
    }
    Ok(history::runs_table(&records))
}

/// Commits every table of the Delta lake in `config.output` back to its
/// contents after `run_id`, as a new run.
pub async fn roll_back(
    ctx: &SessionContext,
    config: &RunConfig,
    run_id: &str,
) -> Result<RunRecord> {
    let store = store_of(ctx, &config.output)?;
    let layout = RunLayout::new(config.output.clone(), TableFormat::Delta);
    let publication = Publication {
        base: LakeLog::new(Arc::clone(&store), &config.output)
            .last_claimed()
            .await?,
        store,
        output: config.output.clone(),
        run_id: layout.run_id.clone(),
        claim_timeout: config.claim_timeout,
        retain: config.retain,
    };
    let mut names: Vec<&str> = tables(config.songs_layout).iter().map(|t| t.name).collect();
    names.push(publish::DELTA_REJECTS);
    let targets = history::targets(&publication, &names);
    history::roll_back(&publication, targets, run_id).await
}

/// The object store that holds `location`, as the context resolves it.
fn store_of(ctx: &SessionContext, location: &Location) -> Result<Arc<dyn ObjectStore>> {
    ctx.runtime_env()
        .object_store(location.object_store_url())
        .map_err(|e| EtlError::Location(format!("{location}: {e}")))
}

/// Every job of a run as the engine would run it, without running any:
/// the input is listed, the tables are planned over the files staging
/// would write (estimated from the input's size), and each plan is shown
/// as DataFusion plans it and as the engine splits it into stages.
pub async fn explain_run(
    ctx: &SessionContext,
    engine: &dyn Engine,
    config: &RunConfig,
) -> Result<String> {
    let run = Run::new(ctx, engine, config);
    let (songs, events) = run.list_inputs().await?;
    let mut jobs = Vec::new();
    for (kind, listing) in [(InputKind::Songs, &songs), (InputKind::Events, &events)] {
        let plan = run.stage_plan(kind, listing)?;
        jobs.push((format!("stage {}", kind.name()), None, plan));
    }
    let staged = Staged {
        songs: run.read_status(
            InputKind::Songs,
            &run.expected_staging(InputKind::Songs, &songs),
            STATUS_OK,
        )?,
        events: run.read_status(
            InputKind::Events,
            &run.expected_staging(InputKind::Events, &events),
            STATUS_OK,
        )?,
    };
    for table in &run.tables {
        let logical = run.table_logical_plan(table, &staged)?;
        let physical = run.physical_plan(table.name, logical.clone()).await?;
        jobs.push((table.name.to_string(), Some(logical), physical));
    }
    let mut text = String::new();
    for (name, logical, physical) in jobs {
        text.push_str(&format!("== job: {name} ==\n"));
        if let Some(logical) = logical {
            text.push_str(&format!(
                "-- logical plan --\n{}\n",
                logical.display_indent()
            ));
        }
        let stages = engine
            .explain(physical)
            .map_err(|e| EtlError::plan(format!("explaining {name}"), e))?;
        text.push_str(&format!("-- distributed plan --\n{stages}\n"));
    }
    Ok(text)
}

/// The state a run carries between its steps.
struct Run<'a> {
    ctx: &'a SessionContext,
    engine: &'a dyn Engine,
    config: &'a RunConfig,
    layout: RunLayout,
    /// Each finished job, in the order they finished.
    jobs: Mutex<Vec<JobReport>>,
    /// One permit per job allowed in flight.
    in_flight: Semaphore,
    /// The five tables, songs in the configured layout.
    tables: [TableDef; 5],
}

impl<'a> Run<'a> {
    fn new(ctx: &'a SessionContext, engine: &'a dyn Engine, config: &'a RunConfig) -> Self {
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

    fn store(&self, location: &Location) -> Result<Arc<dyn ObjectStore>> {
        store_of(self.ctx, location)
    }

    /// The Delta table `name` of this run's output.
    fn delta_target(&self, name: &str) -> DeltaTarget {
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
    fn rejects_table(&self, schema: Arc<Schema>, written: &[WrittenFile]) -> Result<TableFiles> {
        let rejects: Vec<WrittenFile> = written
            .iter()
            .filter(|f| f.table.starts_with(publish::DELTA_REJECTS))
            .cloned()
            .collect();
        let target = self.delta_target(publish::DELTA_REJECTS);
        TableFiles::written(target, schema, vec![], &rejects, false)
    }

    /// Whether writers report Delta statistics for each file.
    fn file_stats(&self) -> bool {
        self.config.table_format == TableFormat::Delta
    }

    async fn list(&self, kind: InputKind) -> Result<InputListing> {
        let input = &self.config.input;
        list_input(self.store(input)?.as_ref(), input, kind).await
    }

    /// Lists the songs and the events at once. When both fail, the songs'
    /// error is the one reported, whichever listing failed first: the same
    /// input gives the same message every time.
    async fn list_inputs(&self) -> Result<(InputListing, InputListing)> {
        let (songs, events) =
            futures::join!(self.list(InputKind::Songs), self.list(InputKind::Events));
        Ok((songs?, events?))
    }

    /// Runs a job, records how it ran, and returns its output rows.
    async fn run_job(&self, job: &str, plan: Arc<dyn ExecutionPlan>) -> Result<Vec<RecordBatch>> {
        let _permit = self.in_flight.acquire().await.map_err(|e| {
            EtlError::plan(
                job,
                DataFusionError::Internal(format!("job queue closed: {e}")),
            )
        })?;
        let output = self
            .engine
            .run_job(job, plan)
            .await
            .map_err(|error| EtlError::job(job, error))?;
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(output.report);
        Ok(output.batches)
    }

    /// Runs a job and reads back the files its writers reported.
    async fn run_write_job(
        &self,
        job: &str,
        plan: Arc<dyn ExecutionPlan>,
    ) -> Result<Vec<WrittenFile>> {
        let batches = self.run_job(job, plan).await?;
        let files = written_files(batches).map_err(|e| EtlError::plan(job, e))?;
        Ok(one_attempt_per_task(job, files))
    }

    /// Step 1: raw files of one kind to staged Parquet.
    async fn stage(&self, kind: InputKind, listing: &InputListing) -> Result<Vec<WrittenFile>> {
        let plan = self.stage_plan(kind, listing)?;
        self.run_write_job(&format!("stage {}", kind.name()), plan)
            .await
    }

    /// The staging job: the raw scan, sharded by file, into the writer.
    fn stage_plan(
        &self,
        kind: InputKind,
        listing: &InputListing,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let what = || format!("staging {}", kind.name());
        let scan = ScanSpec {
            kind,
            root: self.config.input.url(),
            rejects: self.config.rejects,
        };
        let files = file_list(&listing.files, self.config.partitions)
            .map_err(|e| EtlError::plan(what(), e))?;
        let scan = RawScanExec::try_new(scan, files).map_err(|e| EtlError::plan(what(), e))?;
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
        Ok(Arc::new(plan))
    }

    /// The files staging would write for `listing`, for `--explain`: one per
    /// partition, sized as the input's share.
    fn expected_staging(&self, kind: InputKind, listing: &InputListing) -> Vec<WrittenFile> {
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
    fn read_status(
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
    async fn write_rejects(
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
        let plan = self
            .physical_plan(&job, WriteNode::plan(spec, rejects))
            .await?;
        Ok((self.run_write_job(&job, plan).await?, schema))
    }

    /// Stops the run when an input has more rejects than `--max-rejects`
    /// allows, or has records and every one was rejected (unless
    /// `--allow-empty`): its tables would be replaced by empty ones.
    fn check_rejects(&self, inputs: &[InputReport]) -> Result<()> {
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
    fn check_not_empty(&self, expected_rows: &[u64], inputs: &[InputReport]) -> Result<()> {
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
    async fn write_table(
        &self,
        table: &TableDef,
        staged: &Staged,
    ) -> Result<(TableReport, Vec<WrittenFile>, Arc<Schema>)> {
        let started = Instant::now();
        let rows = (table.plan)(staged).map_err(|e| EtlError::plan(table.name, e))?;
        let schema = plain_arrow_schema(&rows);
        let logical = self.table_logical_plan(table, staged)?;
        let plan = self.physical_plan(table.name, logical).await?;
        let files = self.run_write_job(table.name, plan).await?;
        let report = TableReport::new(
            table.name,
            self.layout.table(table.name).url(),
            &files,
            started.elapsed().as_secs_f64(),
        );
        Ok((report, files, schema))
    }

    /// A table's query, ending in its write.
    fn table_logical_plan(&self, table: &TableDef, staged: &Staged) -> Result<LogicalPlan> {
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
    /// of cheap counts over the staged records.
    async fn expected_rows(&self, staged: &Staged) -> Result<Vec<u64>> {
        let what = "expected row counts";
        let mut counts: Option<DataFrame> = None;
        for (index, table) in self.tables.iter().enumerate() {
            let counted = (table.expected_rows)(staged)
                .and_then(|rows| rows.select(vec![lit(index as i64).alias("table"), col("rows")]))
                .map_err(|e| EtlError::plan(what, e))?;
            counts = Some(match counts {
                None => counted,
                Some(union) => union.union(counted).map_err(|e| EtlError::plan(what, e))?,
            });
        }
        let counts = counts.expect("there are tables");
        let plan = self
            .physical_plan(what, counts.logical_plan().clone())
            .await?;
        let batches = self.run_job(what, plan).await?;
        let mut expected = vec![None; self.tables.len()];
        for batch in &batches {
            let (tables, rows) = (
                int64_column(batch, "table", what)?,
                int64_column(batch, "rows", what)?,
            );
            for (table, rows) in tables.values().iter().zip(rows.values()) {
                expected[*table as usize] = Some(*rows as u64);
            }
        }
        // A count over no records can come back as no row at all (an
        // aggregate over a source with no partitions): that is a zero.
        Ok(expected.into_iter().map(|rows| rows.unwrap_or(0)).collect())
    }

    /// The written tables, each checked against the rows it must have. A
    /// table whose writers reported other counts is written again once (its
    /// first files are not committed, so the commit deletes them); a second
    /// mismatch fails the run, unpublished.
    async fn checked(
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

    /// Songplays per user, for the report, as (plays, users with that
    /// many plays): counted on the executors from the staged plays (every
    /// NextSong event is one songplay, which the row-count check holds the
    /// table to), so only one row per distinct count reaches the client.
    async fn plays_per_user(&self, staged: &Staged) -> Result<Vec<(u64, u64)>> {
        let what = "songplays per user";
        let distribution = crate::tables::song_plays(&staged.events)
            .and_then(|plays| {
                plays.aggregate(
                    vec![songplays::user_id().alias("user_id")],
                    vec![count(lit(1)).alias("plays")],
                )
            })
            .and_then(|per_user| {
                per_user.aggregate(vec![col("plays")], vec![count(lit(1)).alias("users")])
            })
            .map_err(|e| EtlError::plan(what, e))?;
        let plan = self
            .physical_plan(what, distribution.logical_plan().clone())
            .await?;
        let batches = self.run_job(what, plan).await?;
        let mut pairs = Vec::new();
        for batch in &batches {
            let (plays, users) = (
                int64_column(batch, "plays", what)?,
                int64_column(batch, "users", what)?,
            );
            pairs.extend(
                plays
                    .values()
                    .iter()
                    .zip(users.values())
                    .map(|(p, u)| (*p as u64, *u as u64)),
            );
        }
        Ok(pairs)
    }

    async fn physical_plan(&self, what: &str, plan: LogicalPlan) -> Result<Arc<dyn ExecutionPlan>> {
        self.ctx
            .state()
            .create_physical_plan(&plan)
            .await
            .map_err(|e| EtlError::plan(what, e))
    }

    /// Step 4 (Parquet): report next to the tables, then commit.
    async fn publish(
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
    async fn write_report(&self, report: &RunReport) -> Result<()> {
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
    async fn publish_delta(
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

/// Column `name` of a job's result batch, which the job's plan makes Int64.
fn int64_column<'a>(batch: &'a RecordBatch, name: &str, what: &str) -> Result<&'a Int64Array> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .ok_or_else(|| {
            EtlError::plan(
                what,
                DataFusionError::Internal(format!("no Int64 column '{name}' in the result")),
            )
        })
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

    #[test]
    fn reject_limits_parse_as_counts_or_fractions() {
        assert_eq!(RejectLimit::parse("100"), Ok(RejectLimit::Count(100)));
        assert_eq!(RejectLimit::parse("0.01"), Ok(RejectLimit::Fraction(0.01)));
        assert_eq!(RejectLimit::parse("2.5%"), Ok(RejectLimit::Fraction(0.025)));
        assert!(RejectLimit::parse("lots").is_err());
        assert!(RejectLimit::parse("150%").is_err());
        for shown in ["7%", "2.5%", "0.1%", "100"] {
            assert_eq!(RejectLimit::parse(shown).unwrap().to_string(), shown);
        }
    }

    #[test]
    fn reject_limits_allow_up_to_the_limit() {
        assert!(RejectLimit::Count(2).allows(2, 10));
        assert!(!RejectLimit::Count(2).allows(3, 10));
        assert!(RejectLimit::Fraction(0.1).allows(1, 10));
        assert!(!RejectLimit::Fraction(0.1).allows(2, 10));
    }
}
