//! The lake's past: the runs it recorded, and rolling every table back to
//! the versions an earlier run made.
//!
//! A rollback is a run of its own: it claims the lake like any run, and
//! commits each table's files as of the chosen run as a new version, so
//! that readers move forward to old contents and the rollback itself can be
//! undone. It needs those files to still be there: within `--retain` of
//! the run that replaced them.

use std::sync::Arc;

use comfy_table::Table;
use deltalake_core::kernel::{Action, Add};

use super::log_entry::LogLines;
use super::table::{DeltaTarget, TableChange};
use super::{Publication, TableFiles};
use crate::error::{EtlError, Result};
use crate::load::lake_log::RunRecord;

/// The recorded runs as a table for the terminal, oldest first.
pub fn runs_table(records: &[RunRecord]) -> String {
    let mut table = Table::new();
    let names: Vec<String> = records.iter().flat_map(|r| r.tables.keys().cloned()).fold(
        Vec::new(),
        |mut names, name| {
            if !names.contains(&name) {
                names.push(name);
            }
            names
        },
    );
    let mut header = vec![
        "seq".to_string(),
        "run".into(),
        "committed at".into(),
        "action".into(),
    ];
    header.extend(names.iter().cloned());
    table.set_header(header);
    for record in records {
        let mut row = vec![
            record.seq.to_string(),
            record.run_id.clone(),
            record.committed_at.clone(),
            record.action.clone(),
        ];
        row.extend(names.iter().map(|name| {
            record
                .tables
                .get(name)
                .map_or_else(String::new, |v| format!("v{v}"))
        }));
        table.add_row(row);
    }
    table.to_string()
}

/// Commits every table of `targets` back to its contents after `run_id`,
/// as the lake's next run.
pub async fn roll_back(
    publication: &Publication,
    targets: Vec<DeltaTarget>,
    run_id: &str,
) -> Result<RunRecord> {
    let records = publication.log().records().await?;
    let Some(wanted) = records.iter().find(|r| r.run_id == run_id) else {
        let known: Vec<&str> = records.iter().map(|r| r.run_id.as_str()).collect();
        return Err(EtlError::Location(format!(
            "no run {run_id} in {} (recorded runs: {})",
            publication.output,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    };
    let mut tables = Vec::new();
    for target in targets {
        let Some(&version) = wanted.tables.get(&target.name) else {
            continue;
        };
        let adds = files_at(&target, version).await?;
        tables.push(TableFiles {
            target,
            change: TableChange {
                schema: None,
                partition_by: Vec::new(),
                adds,
                replace: true,
                restores: true,
            },
        });
    }
    publication
        .commit(tables, &format!("rollback to {run_id}"), &[], &[])
        .await
}

/// The Add actions of `target` at `version`, marked as new data.
async fn files_at(target: &DeltaTarget, version: u64) -> Result<LogLines> {
    let table = target.load_version(version).await?;
    let snapshot = table
        .snapshot()
        .map_err(|e| EtlError::Delta(format!("reading {}: {e}", target.location)))?;
    // delta-rs would have us read Arrow arrays instead; a rollback needs
    // whole Add actions to commit again, which this conversion gives.
    let mut adds = LogLines::default();
    for file in snapshot.log_data().iter() {
        #[allow(deprecated)]
        let add = Add {
            data_change: true,
            modification_time: chrono::Utc::now().timestamp_millis(),
            ..file.add_action()
        };
        adds.push(&Action::Add(add))?;
    }
    Ok(adds)
}

/// The targets of `names` under the publication's output.
pub fn targets(publication: &Publication, names: &[&str]) -> Vec<DeltaTarget> {
    names
        .iter()
        .map(|name| DeltaTarget {
            name: name.to_string(),
            location: publication.output.join(name),
            store: Arc::clone(&publication.store),
        })
        .collect()
}
