//! The lake's history, read or rolled back by the client alone.

use std::sync::Arc;

use datafusion::execution::context::SessionContext;
use object_store::ObjectStore;

use crate::error::{EtlError, Result};
use crate::load::TableFormat;
use crate::load::delta::Publication;
use crate::load::delta::history;
use crate::load::ingested::INGESTED;
use crate::load::lake_log::{LakeLog, RunRecord};
use crate::load::publish::{self, RunLayout};
use crate::location::Location;
use crate::schema::InputKind;
use crate::tables::tables;

use super::RunConfig;

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
        vacuum: config.vacuum,
    };
    let names = lake_tables(config);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let targets = history::targets(&publication, &names);
    history::roll_back(&publication, targets, run_id).await
}

/// Every Delta table of the lake: the five, the rejects, the staged
/// records of each input and the record of ingested files.
pub(super) fn lake_tables(config: &RunConfig) -> Vec<String> {
    let mut names: Vec<String> = tables(config.songs_layout)
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    names.push(publish::DELTA_REJECTS.to_string());
    names.extend(InputKind::ALL.map(publish::staged_table));
    names.push(INGESTED.to_string());
    names
}

/// The object store that holds the output `location`, as the context
/// resolves it.
pub(super) fn store_of(ctx: &SessionContext, location: &Location) -> Result<Arc<dyn ObjectStore>> {
    resolve_store(ctx, location).map_err(EtlError::OutputStore)
}

/// The object store that holds `location`, or why there is none (no
/// credentials, a malformed endpoint).
pub(super) fn resolve_store(
    ctx: &SessionContext,
    location: &Location,
) -> std::result::Result<Arc<dyn ObjectStore>, String> {
    ctx.runtime_env()
        .object_store(location.object_store_url())
        .map_err(|e| format!("{location}: {}", e.find_root()))
}
