//! One run of the ETL, from raw input to published tables.
//!
//! A run is a few Ballista jobs, each a physical plan built here on the
//! client and executed by the engine:
//!
//! 1. **stage** (one job per input kind with files to load): the raw scan
//!    reads the JSON files, sharded by file across tasks, and writes every
//!    record, good or rejected, as Parquet into `_staged/` (with Delta, a
//!    table of the lake that later increments build on), partitioned by
//!    `status`. This is the only time the raw input is read: Ballista has no
//!    remote cache, so the song records that feed songs, artists and the
//!    songplays join are materialised once instead, as a help table. An
//!    incremental run stages only new files ([`increment`]).
//! 2. **rejects** (only when some records were rejected): the rejected rows,
//!    with file, line, reason and text, become `_rejects/<input>/`.
//! 3. **tables** (one job per table the run changes, all submitted at
//!    once): each table's query over the staged records, ending in the
//!    partitioned writer ([`table_jobs`]).
//! 4. **publish**: the files the jobs reported are committed (see
//!    [`crate::load::publish`]).
//!
//! This module orchestrates those steps; [`steps`] holds each step,
//! [`config`] what a run is asked to do, [`engine`] what it needs of
//! Ballista, [`explain`] the plans without a run, and [`lake`] the lake's
//! history (`--list-runs`, `--rollback`).

mod checks;
mod commit;
mod config;
mod engine;
mod explain;
mod increment;
mod lake;
mod staging;
mod steps;
mod table_jobs;

pub use config::{LateSongs, RejectLimit, RunConfig};
pub use engine::{Engine, JobOutput};
pub use explain::explain_run;
pub use lake::{list_runs, roll_back};

use std::time::Instant;

use datafusion::execution::context::SessionContext;
use futures::future::try_join_all;

use crate::crash;
use crate::error::Result;
use crate::load::TableFormat;
use crate::load::lake_log::{LakeLog, Lease};
use crate::load::publish;
use crate::load::writer::WrittenFile;
use crate::report::{InputReport, RunReport, charts};
use crate::schema::{InputKind, STATUS_OK};
use crate::tables::{Staged, songplays};

use increment::Scope;
use steps::Run;

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
            let base = log.last_claimed().await?;
            let scope = run.scope(base, songs, events).await?;
            if scope.is_empty() {
                tracing::info!("{}: no new input; the lake is unchanged", run.layout.run_id);
                return Ok(run.unchanged(&scope, started));
            }
            build_and_publish(&run, scope, Hold::Delta(base), started).await
        }
        // Parquet runs hold the output from start to publication.
        TableFormat::Parquet => {
            let lease = log.lease(&run.layout.run_id, config.claim_timeout).await?;
            let scope = run.scope(None, songs, events).await?;
            let built = build_and_publish(&run, scope, Hold::Parquet(&lease), started).await;
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

/// Stages the input in `scope`, builds the tables, and publishes them.
async fn build_and_publish(
    run: &Run<'_>,
    scope: Scope,
    hold: Hold<'_>,
    started: Instant,
) -> Result<RunReport> {
    let (songs, events) = (&scope.songs, &scope.events);
    let config = run.config;
    let (base, lease) = match hold {
        Hold::Delta(base) => (base, None),
        Hold::Parquet(lease) => (None, Some(lease)),
    };
    crash::point(crash::STARTED);
    let (staged_songs, staged_events) = futures::try_join!(
        run.stage(InputKind::Songs, songs),
        run.stage(InputKind::Events, events)
    )?;
    crash::point(crash::STAGED);
    let mut inputs = vec![
        InputReport::new(InputKind::Songs, songs, &staged_songs),
        InputReport::new(InputKind::Events, events, &staged_events),
    ];
    for (input, loaded) in inputs.iter_mut().zip(scope.loaded) {
        input.files_loaded_before = loaded;
    }
    let mut committed: Vec<WrittenFile> = Vec::new();
    if config.table_format == TableFormat::Delta {
        // Staged records are a table of the lake: reported files, which a
        // run that loses the lake deletes with the rest.
        committed.extend(staged_songs.iter().chain(&staged_events).cloned());
    }
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

    let new = Staged {
        songs: run.read_status(InputKind::Songs, &staged_songs, STATUS_OK)?,
        events: run.read_status(InputKind::Events, &staged_events, STATUS_OK)?,
        published_times: None,
    };
    let jobs = run
        .table_jobs(&scope, &staged_songs, &staged_events)
        .await?;
    // Counted first: a table that would be empty, or duplicated staged
    // records, stop the run before any table is written.
    let expected_rows = run.expected_rows(&jobs, &new, &inputs).await?;
    run.check_not_empty(&jobs, &expected_rows, &inputs)?;
    let plays = jobs
        .iter()
        .find(|job| job.table.name == songplays::TABLE.name);
    let (written, plays_per_user) = futures::try_join!(
        try_join_all(jobs.iter().map(|job| run.write_table(job))),
        run.plays_per_user(plays.map(|job| &job.staged)),
    )?;
    let written = run.checked(&jobs, written, &expected_rows).await?;
    let mut tables = Vec::new();
    let mut charts = Vec::new();
    let mut delta_tables = Vec::new();
    for (job, written) in jobs.iter().zip(written) {
        let table = job.table;
        charts.extend(
            table
                .charts
                .iter()
                .map(|chart| chart.draw(table.name, &written.files)),
        );
        tables.push(written.report);
        delta_tables.extend(written.delta);
        committed.extend(written.files);
    }
    if let (TableFormat::Delta, Some(schema)) = (config.table_format, rejects_schema) {
        delta_tables.push(run.rejects_table(schema, &committed)?);
    }
    if config.table_format == TableFormat::Delta {
        let (own, record) = run
            .staged_tables(&scope, &staged_songs, &staged_events)
            .await?;
        delta_tables.extend(own);
        committed.push(record);
    }
    if let Some(plays_per_user) = plays_per_user {
        charts.push(charts::keys_per_count(
            "songplays per user",
            "user",
            plays_per_user,
        ));
    }
    crash::point(crash::WRITTEN);

    let mut report = run.report(&scope, inputs, tables, charts, started);
    match config.table_format {
        TableFormat::Parquet => {
            let lease = lease.expect("a Parquet run holds a lease");
            run.publish(&report, &committed, lease).await?
        }
        TableFormat::Delta => {
            let action = if scope.full { "run" } else { "increment" };
            let record = run
                .publish_delta(delta_tables, &committed, base, action)
                .await?;
            report.versions = record.tables;
            run.write_report(&report).await?;
        }
    }
    Ok(report)
}
