//! Deleting the files no version of a table needs any more, inside a
//! run's claim on the lake, every table at once.
//!
//! Two modes, as Delta has them:
//!
//! - **Lite**, every run, before its commits: the files earlier commits'
//!   Remove actions name, once removed longer than `--retain` ago. It
//!   reads only the log the run has loaded already (a replaced table's
//!   from its checkpoint) and lists nothing. Before the commits, because a
//!   replacement checkpoints its new version at once ([`super::table`]),
//!   and a checkpoint keeps a Remove only for the table's
//!   `delta.deletedFileRetentionDuration` (7 days): read after it, a
//!   Remove that has just come of age for `--retain` (also 7 days) would
//!   be gone. So a run's own Removes are deleted by a later run, even with
//!   `--retain 0s`.
//! - **Full**, every `--full-vacuum-every` runs and after a run that died
//!   holding the lake, after the commits: also every file under the table
//!   that no log names and that is older than `--retain` (files of runs
//!   killed before their commits). It lists every file of the table:
//!   922,830 files for songs by `year-artist` at a million songs, about a
//!   thousand S3 pages. After the commits, because before them this run's
//!   own new files are named by no log.
//!
//! Inside the claim because delta-rs records a vacuum that deletes files
//! as two commits (VACUUM START and END): after the claim they could take
//! the version the next run's commit expects, and stop it.

use std::collections::BTreeMap;
use std::time::Duration;

use deltalake_core::DeltaTable;
use deltalake_core::operations::vacuum::VacuumMode;

use super::TableFiles;
use super::table::DeltaTarget;
use crate::error::{EtlError, Result};

/// When a run vacuums in `Full` mode, and what it keeps.
#[derive(Clone, Copy, Debug)]
pub struct VacuumPolicy {
    /// Files removed (or never committed) less than this long ago stay.
    pub retain: Duration,
    /// Lake runs whose sequence number is a multiple of this vacuum in
    /// `Full` mode; 1 makes every run do so (0 is refused by the CLI, and
    /// means never).
    pub full_every: u64,
}

impl VacuumPolicy {
    /// The mode for lake run `seq`; `after_dead_run` when the run before
    /// it died holding the lake, leaving files no commit names.
    pub fn mode(&self, seq: u64, after_dead_run: bool) -> VacuumMode {
        if after_dead_run || seq.is_multiple_of(self.full_every) {
            VacuumMode::Full
        } else {
            VacuumMode::Lite
        }
    }

    /// `Lite` vacuums of `tables` as this run loaded them (`loaded`, in
    /// the same order; `None`: no table yet), all at once, before its
    /// commits; each table as the commit must build on it. A rollback's
    /// tables are left alone: the files it restores may be among those
    /// whose Removes came of age. A table whose vacuum fails keeps its
    /// files, with a warning, and is read again: the vacuum may have
    /// committed its start.
    pub async fn before_commits(
        &self,
        tables: &[TableFiles],
        loaded: Vec<Option<DeltaTable>>,
    ) -> Result<Vec<Option<DeltaTable>>> {
        let vacuums = tables
            .iter()
            .zip(loaded)
            .map(|(table, current)| async move {
                let current = match current {
                    Some(current) if !table.change.restores => current,
                    unvacuumed => return Ok(unvacuumed),
                };
                match self.vacuum(&table.target, current, VacuumMode::Lite).await {
                    Ok(current) => Ok(Some(current)),
                    Err(error) => {
                        tracing::warn!("{}: old files were kept: {error}", table.target.name);
                        table.target.load().await
                    }
                }
            });
        futures::future::try_join_all(vacuums).await
    }

    /// `Full` vacuums of every table in `committed` at once, each at the
    /// version this run's commit made; the version each is at afterwards.
    /// A table that cannot be vacuumed keeps its files, with a warning,
    /// and its committed version: the run is published either way.
    pub async fn after_commits(&self, committed: &[(DeltaTarget, u64)]) -> BTreeMap<String, u64> {
        let vacuums = committed.iter().map(|&(ref target, committed)| async move {
            let vacuumed = match target.load_version(committed).await {
                Ok(table) => self.vacuum(target, table, VacuumMode::Full).await,
                Err(error) => Err(error),
            };
            let version = match vacuumed {
                Ok(table) => table.version().unwrap_or(0),
                Err(error) => {
                    tracing::warn!("{}: old files were kept: {error}", target.name);
                    committed
                }
            };
            (target.name.clone(), version)
        });
        futures::future::join_all(vacuums)
            .await
            .into_iter()
            .collect()
    }

    /// Vacuums one table; the table afterwards (two versions on when it
    /// deleted files).
    async fn vacuum(
        &self,
        target: &DeltaTarget,
        table: DeltaTable,
        mode: VacuumMode,
    ) -> Result<DeltaTable> {
        let retention = chrono::Duration::from_std(self.retain)
            .map_err(|e| EtlError::Delta(format!("--retain: {e}")))?;
        let (table, metrics) = table
            .vacuum()
            .with_retention_period(retention)
            .with_enforce_retention_duration(false)
            .with_mode(mode.clone())
            .await
            .map_err(|e| EtlError::Delta(format!("vacuuming {}: {e}", target.location)))?;
        if !metrics.files_deleted.is_empty() {
            tracing::info!(
                "{}: deleted {} files older than --retain ({mode:?} vacuum)",
                target.name,
                metrics.files_deleted.len()
            );
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every(full_every: u64) -> VacuumPolicy {
        VacuumPolicy {
            retain: Duration::ZERO,
            full_every,
        }
    }

    #[test]
    fn full_vacuums_come_on_schedule_and_after_a_dead_run() {
        let full: Vec<u64> = (1..=20)
            .filter(|&seq| every(10).mode(seq, false) == VacuumMode::Full)
            .collect();
        assert_eq!(full, [10, 20]);
        assert_eq!(every(10).mode(3, true), VacuumMode::Full);
        assert!((1..=5).all(|seq| every(1).mode(seq, false) == VacuumMode::Full));
    }
}
