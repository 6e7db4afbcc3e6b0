//! Publishing a run as Delta Lake tables at fixed paths (`--table-format
//! delta`, the default): `<output>/songs/`, `artists/`, `users/`, `time/`,
//! `songplays/`, and the rejects table `<output>/_rejects/`.
//!
//! ```text
//!  writer tasks ──► <output>/<table>/<partition>/part-<writer>-<n>.parquet   (invisible: in no log yet)
//!        │                 + Delta statistics per file (stats.rs)
//!        ▼
//!  client: one attempt per output partition; other attempts' files deleted
//!        ▼
//!  lake_log.rs: claim <output>/_runs/_log/<seq>.claim  (put-if-absent: one run wins)
//!        ▼
//!  vacuum.rs (Lite): every table at once, files removed longer ago than --retain
//!        ▼
//!  table.rs: one commit per table, fixed order, exact next version, run id in commitInfo;
//!            a replacement checkpoints its version
//!        ▼
//!  vacuum.rs (Full, every --full-vacuum-every runs): also files no log names
//!        ▼
//!  lake_log.rs: <seq>.json records the versions
//! ```
//!
//! A reader sees a table change only at its commit. A run that fails or is
//! killed before its claim leaves only files no log names; one killed
//! between two table commits leaves every table at a committed version, and
//! the next run replaces them all. See `docs/commit-protocol.md`.

pub mod checkpoint;
pub mod history;
pub mod log_entry;
pub mod stats;
pub mod table;
pub mod vacuum;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use deltalake_core::operations::vacuum::VacuumMode;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path;

use self::table::{DeltaTarget, TableChange};
use self::vacuum::VacuumPolicy;
use super::lake_log::{LakeLog, RunRecord, Settled};
use super::writer::{WrittenFile, writer_of};
use crate::error::{EtlError, Result};
use crate::location::Location;

/// One table's part in a publication.
pub struct TableFiles {
    pub target: DeltaTarget,
    pub change: TableChange,
}

impl TableFiles {
    /// `files`, written by a run into `target`, as a change that adds them
    /// (replacing the table's contents when `replace`); their statistics
    /// move into the change.
    pub fn written(
        target: DeltaTarget,
        schema: Arc<datafusion::arrow::datatypes::Schema>,
        partition_by: Vec<String>,
        files: &mut [WrittenFile],
        replace: bool,
    ) -> Result<Self> {
        let adds = target.adds(files)?;
        Ok(Self {
            target,
            change: TableChange {
                schema: Some(schema),
                partition_by,
                adds,
                replace,
                restores: false,
            },
        })
    }
}

/// How a run publishes to the lake at `output`.
pub struct Publication {
    pub store: Arc<dyn ObjectStore>,
    pub output: Location,
    pub run_id: String,
    /// The last sequence number claimed when the run started.
    pub base: Option<u64>,
    pub claim_timeout: Duration,
    pub vacuum: VacuumPolicy,
}

impl Publication {
    pub fn log(&self) -> LakeLog {
        LakeLog::new(Arc::clone(&self.store), &self.output)
    }

    /// Claims the lake, commits every table in order, vacuuming them
    /// before the commits (`Lite`) or after them (`Full`, [`vacuum`]),
    /// then records the versions. `action` says what the
    /// record calls this run. On a lost claim this run's files are
    /// deleted. The record names the versions of the `unchanged` tables
    /// too, so that a rollback to this run restores every table as it was.
    pub async fn commit(
        &self,
        tables: Vec<TableFiles>,
        action: &str,
        written: &[WrittenFile],
        unchanged: &[DeltaTarget],
    ) -> Result<RunRecord> {
        // Each table's log is read all at once: the commits build on it.
        let current = futures::future::try_join_all(tables.iter().map(|t| t.target.load())).await?;
        let log = self.log();
        let settled = match self.base {
            Some(base) => log.check_settled(base, self.claim_timeout).await?,
            None => Settled::Recorded,
        };
        let seq = self.base.map_or(1, |b| b + 1);
        if let Err(lost) = log.claim(seq, &self.run_id).await {
            self.discard(written).await;
            return Err(lost);
        }
        crate::crash::point(crate::crash::COMMITTING);
        let mode = self.vacuum.mode(seq, settled == Settled::Abandoned);
        let current = match mode {
            VacuumMode::Lite => self.vacuum.before_commits(&tables, current).await?,
            VacuumMode::Full => current,
        };
        let latest =
            futures::future::try_join_all(unchanged.iter().map(|t| t.latest_version())).await?;
        let mut versions: BTreeMap<String, u64> = unchanged
            .iter()
            .zip(latest)
            .filter_map(|(target, version)| Some((target.name.clone(), version?)))
            .collect();
        let mut committed = Vec::with_capacity(tables.len());
        for (table, current) in tables.into_iter().zip(current) {
            let version = table
                .target
                .commit(current, table.change, &self.run_id, seq)
                .await?;
            tracing::info!(
                "{}: {} is at version {version}",
                self.run_id,
                table.target.name
            );
            versions.insert(table.target.name.clone(), version);
            committed.push((table.target, version));
            crate::crash::point(crate::crash::BETWEEN_COMMITS);
        }
        if mode == VacuumMode::Full {
            versions.extend(self.vacuum.after_commits(&committed).await);
        }
        let record = RunRecord {
            seq,
            run_id: self.run_id.clone(),
            action: action.to_string(),
            committed_at: chrono::Utc::now().to_rfc3339(),
            tables: versions,
        };
        log.write_record(&record).await?;
        Ok(record)
    }

    /// Deletes the files this run wrote into the tables, after it lost the
    /// lake to another run: no log names them, so no reader misses them.
    async fn discard(&self, written: &[WrittenFile]) {
        let paths: Vec<Path> = written
            .iter()
            .filter_map(|f| Path::parse(&f.path).ok())
            .collect();
        let count = paths.len();
        let deleted = self
            .store
            .delete_stream(futures::stream::iter(paths.into_iter().map(Ok)).boxed())
            .try_collect::<Vec<_>>()
            .await;
        match deleted {
            Ok(_) => tracing::info!("{}: deleted its {count} unpublished files", self.run_id),
            Err(e) => tracing::warn!("{}: some unpublished files were kept: {e}", self.run_id),
        }
    }
}

/// Deletes the files in `tables` written by the writer attempts `writers`
/// (attempts whose files no job result named). Files of every other
/// writer, committed or not, stay.
pub async fn remove_attempt_files(
    store: &Arc<dyn ObjectStore>,
    tables: &[Location],
    writers: &HashSet<String>,
) -> Result<usize> {
    let mut doomed = Vec::new();
    for table in tables {
        let found: Vec<Path> = store
            .list(Some(&table.object_path()))
            .map_ok(|meta| meta.location)
            .try_filter(|path| {
                let ours = writer_of(path.as_ref()).is_some_and(|w| writers.contains(w));
                futures::future::ready(ours)
            })
            .try_collect()
            .await
            .map_err(|e| EtlError::store(format!("listing {table}"), e))?;
        doomed.extend(found);
    }
    let count = doomed.len();
    store
        .delete_stream(futures::stream::iter(doomed.into_iter().map(Ok)).boxed())
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| EtlError::store("deleting the files of failed task attempts", e))?;
    Ok(count)
}
