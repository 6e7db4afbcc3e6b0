//! A run explained: every job planned, nothing run.

use datafusion::execution::context::SessionContext;

use crate::error::{EtlError, Result};
use crate::schema::{InputKind, STATUS_OK};
use crate::tables::Staged;

use super::steps::Run;
use super::{Engine, RunConfig};

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
        // The file lists are planned, not written: explaining writes nothing.
        let (plan, _file_list) = run.stage_plan(kind, listing)?;
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
        published_times: None,
    };
    for table in &run.tables {
        let logical = run.table_logical_plan(table, &staged)?;
        let physical = run.physical_plan(table.name, logical.clone()).await?.plan;
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
