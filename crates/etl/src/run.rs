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

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{DataFrame, ParquetReadOptions, col};
use futures::future::try_join_all;
use object_store::ObjectStore;

use crate::crash;
use crate::error::{EtlError, Result};
use crate::extract::listing::{InputListing, list_input};
use crate::extract::scan::{RawScanExec, RejectPolicy, ScanSpec, file_list};
use crate::load::plan::WriteNode;
use crate::load::publish::{self, RunLayout};
use crate::load::writer::{Clustering, ParquetWriterExec, WriteSpec, WrittenFile, written_files};
use crate::location::Location;
use crate::report::{InputReport, RunReport, TableReport};
use crate::schema::{InputKind, STATUS, STATUS_OK, STATUS_REJECTED, reject_fields};
use crate::tables::{Staged, TABLES, TableDef};

/// Runs physical plans: Ballista in-process or on a cluster.
#[async_trait]
pub trait Engine: Send + Sync {
    /// Runs `plan` as one job named `name` and returns its output rows.
    async fn run_job(
        &self,
        name: &str,
        plan: Arc<dyn ExecutionPlan>,
    ) -> datafusion::error::Result<Vec<RecordBatch>>;
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
            RejectLimit::Fraction(v) => write!(f, "{}%", v * 100.0),
        }
    }
}

/// Times the read of staged files is planned before an object-store error
/// is final.
const PLANNING_ATTEMPTS: usize = 3;

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
    pub target_file_bytes: u64,
}

/// Runs the ETL and publishes its tables. `ctx` is the client's planning
/// context (see [`crate::planning_context`]); `engine` runs the jobs.
pub async fn run_etl(
    ctx: &SessionContext,
    engine: &dyn Engine,
    config: &RunConfig,
) -> Result<RunReport> {
    let started = Instant::now();
    let run = Run {
        ctx,
        engine,
        config,
        layout: RunLayout::new(config.output.clone()),
    };
    let (songs, events) =
        futures::try_join!(run.list(InputKind::Songs), run.list(InputKind::Events))?;
    publish::begin(&run.store(&config.output)?, &run.layout).await?;
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
    let staged_kinds = [
        (InputKind::Songs, &staged_songs),
        (InputKind::Events, &staged_events),
    ];
    for (input, (kind, staged)) in inputs.iter_mut().zip(staged_kinds) {
        if input.rejected > 0 {
            committed.extend(run.write_rejects(kind, staged).await?);
            input.rejects_location = Some(run.layout.rejects(kind).url());
        }
    }
    run.check_reject_limit(&inputs)?;

    let staged = Staged {
        songs: run.read_staged(InputKind::Songs, &staged_songs).await?,
        events: run.read_staged(InputKind::Events, &staged_events).await?,
    };
    let written = try_join_all(TABLES.iter().map(|table| run.write_table(table, &staged))).await?;
    let mut tables = Vec::new();
    for (report, files) in written {
        tables.push(report);
        committed.extend(files);
    }
    crash::point(crash::WRITTEN);

    let report = RunReport {
        run_id: run.layout.run_id.clone(),
        input: config.input.url(),
        output: config.output.url(),
        published: run.layout.run_dir().url(),
        seconds: started.elapsed().as_secs_f64(),
        inputs,
        tables,
    };
    run.publish(&report, &committed).await?;
    Ok(report)
}

/// The state a run carries between its steps.
struct Run<'a> {
    ctx: &'a SessionContext,
    engine: &'a dyn Engine,
    config: &'a RunConfig,
    layout: RunLayout,
}

impl Run<'_> {
    fn store(&self, location: &Location) -> Result<Arc<dyn ObjectStore>> {
        let url = crate::load::writer::store_url_of(&location.url())
            .map_err(|e| EtlError::plan("object store", e))?;
        self.ctx
            .runtime_env()
            .object_store(url)
            .map_err(|e| EtlError::Location(format!("{location}: {e}")))
    }

    async fn list(&self, kind: InputKind) -> Result<InputListing> {
        let input = &self.config.input;
        list_input(
            self.store(input)?.as_ref(),
            &input.object_path(),
            &input.url(),
            kind,
        )
        .await
    }

    /// Runs a job and reads back the files its writers reported.
    async fn run_write_job(
        &self,
        job: &str,
        plan: Arc<dyn ExecutionPlan>,
    ) -> Result<Vec<WrittenFile>> {
        let batches = self
            .engine
            .run_job(job, plan)
            .await
            .map_err(|error| EtlError::Job {
                job: job.to_string(),
                error,
            })?;
        written_files(&batches).map_err(|e| EtlError::plan(job, e))
    }

    /// Step 1: raw files of one kind to staged Parquet.
    async fn stage(&self, kind: InputKind, listing: &InputListing) -> Result<Vec<WrittenFile>> {
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
        };
        let plan = ParquetWriterExec::try_new(spec, Arc::new(scan))
            .map_err(|e| EtlError::plan(what(), e))?;
        self.run_write_job(&format!("stage {}", kind.name()), Arc::new(plan))
            .await
    }

    /// The staged files of one status as a DataFrame, read by the engine.
    async fn read_status(
        &self,
        kind: InputKind,
        staged: &[WrittenFile],
        status: &str,
    ) -> Result<DataFrame> {
        let schema = staged_file_schema(kind);
        let partition = format!("{STATUS}={status}");
        let urls: Vec<String> = staged
            .iter()
            .filter(|f| f.partition == partition)
            .map(|f| self.config.output.object_url(&f.path))
            .collect();
        let what = || format!("reading staged {} records", kind.name());
        if urls.is_empty() {
            let empty = RecordBatch::new_empty(Arc::new(schema));
            return self
                .ctx
                .read_batch(empty)
                .map_err(|e| EtlError::plan(what(), e));
        }
        let options = || ParquetReadOptions::default().schema(&schema);
        planned(&what(), || self.ctx.read_parquet(urls.clone(), options())).await
    }

    async fn read_staged(&self, kind: InputKind, staged: &[WrittenFile]) -> Result<DataFrame> {
        self.read_status(kind, staged, STATUS_OK).await
    }

    /// Step 2: the rejected records of one kind, as `_rejects/<kind>/`.
    async fn write_rejects(
        &self,
        kind: InputKind,
        staged: &[WrittenFile],
    ) -> Result<Vec<WrittenFile>> {
        let columns: Vec<_> = reject_fields().iter().map(|f| col(f.name())).collect();
        let rejects = self
            .read_status(kind, staged, STATUS_REJECTED)
            .await?
            .select(columns)
            .map_err(|e| EtlError::plan("rejects", e))?;
        let spec = WriteSpec {
            table: format!("_rejects/{}", kind.name()),
            location: self.layout.rejects(kind).url(),
            partition_by: vec![],
            sort_by: vec![],
            clustering: Clustering::AsIs,
            target_file_bytes: self.config.target_file_bytes,
        };
        let job = format!("rejects {}", kind.name());
        let plan = self
            .physical_plan(&job, WriteNode::plan(spec, rejects))
            .await?;
        self.run_write_job(&job, plan).await
    }

    fn check_reject_limit(&self, inputs: &[InputReport]) -> Result<()> {
        let Some(limit) = self.config.max_rejects else {
            return Ok(());
        };
        match inputs.iter().find(|i| !limit.allows(i.rejected, i.records)) {
            None => Ok(()),
            Some(input) => Err(EtlError::TooManyRejects {
                input: input.input,
                rejected: input.rejected,
                records: input.records,
                limit: limit.to_string(),
                rejects: input.rejects_location.clone().unwrap_or_default(),
            }),
        }
    }

    /// Step 3: one table, as one job.
    async fn write_table(
        &self,
        table: &TableDef,
        staged: &Staged,
    ) -> Result<(TableReport, Vec<WrittenFile>)> {
        let started = Instant::now();
        let rows = (table.plan)(staged).map_err(|e| EtlError::plan(table.name, e))?;
        let location = self.layout.table(table.name);
        let spec = WriteSpec {
            table: table.name.to_string(),
            location: location.url(),
            partition_by: table.partition_by.iter().map(|c| c.to_string()).collect(),
            sort_by: table.sort_by.iter().map(|c| c.to_string()).collect(),
            clustering: table.clustering,
            target_file_bytes: self.config.target_file_bytes,
        };
        let plan = self
            .physical_plan(table.name, WriteNode::plan(spec, rows))
            .await?;
        let files = self.run_write_job(table.name, plan).await?;
        let report = TableReport::new(
            table.name,
            location.url(),
            &files,
            started.elapsed().as_secs_f64(),
        );
        Ok((report, files))
    }

    async fn physical_plan(
        &self,
        what: &str,
        plan: datafusion::logical_expr::LogicalPlan,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let state = self.ctx.state();
        planned(what, || state.create_physical_plan(&plan)).await
    }

    /// Step 4: report next to the tables, then commit.
    async fn publish(&self, report: &RunReport, files: &[WrittenFile]) -> Result<()> {
        let store = self.store(&self.config.output)?;
        let json = serde_json::to_vec_pretty(report)
            .map_err(|e| EtlError::plan("report", DataFusionError::External(e.into())))?;
        let path = self.layout.run_dir().object_path().join("_report.json");
        publish::put(&store, &path, json).await?;
        publish::commit(&store, &self.layout, files).await
    }
}

/// Runs a planning step, again on an object-store error. Planning HEADs
/// every staged file, and object_store does not retry a request whose
/// connection dropped in some ways; the files exist (this run wrote them),
/// so planning again is safe.
async fn planned<T, F>(what: &str, step: impl Fn() -> F) -> Result<T>
where
    F: std::future::Future<Output = datafusion::error::Result<T>>,
{
    let mut attempt = 1;
    loop {
        match step().await {
            Err(DataFusionError::ObjectStore(e)) if attempt < PLANNING_ATTEMPTS => {
                tracing::warn!("{what}: {e}; planning again");
                attempt += 1;
            }
            result => return result.map_err(|e| EtlError::plan(what, e)),
        }
    }
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
    }

    #[test]
    fn reject_limits_allow_up_to_the_limit() {
        assert!(RejectLimit::Count(2).allows(2, 10));
        assert!(!RejectLimit::Count(2).allows(3, 10));
        assert!(RejectLimit::Fraction(0.1).allows(1, 10));
        assert!(!RejectLimit::Fraction(0.1).allows(2, 10));
    }
}
