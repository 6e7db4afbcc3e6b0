//! One Delta table of the lake: loading its log through the run's object
//! store, and committing a run's files to it at exactly the next version.
//!
//! A commit is never retried on a version clash: the lake's own claim
//! ([`crate::load::lake_log`]) already decided which run commits, so a clash
//! means a writer outside that protocol, and the run stops instead of
//! publishing over it.

use std::collections::HashMap;
use std::sync::{Arc, Once};

use datafusion::arrow::datatypes::Schema;
use deltalake_core::errors::DeltaTableError;
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::transaction::CommitData;
use deltalake_core::kernel::{
    Action, Add, MetadataExt, Protocol, StructType, Transaction, new_metadata,
};
use deltalake_core::logstore::{
    LogStore, LogStoreFactory, LogStoreRef, ObjectStoreRef, StorageConfig, default_logstore,
    logstore_factories,
};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::table::config::TablePropertiesExt;
use deltalake_core::table::state::DeltaTableState;
use deltalake_core::{DeltaTable, DeltaTableBuilder, TableProperty, checkpoints};
use futures::StreamExt;
use object_store::ObjectStore;
use url::Url;

use super::super::hive;
use super::super::writer::WrittenFile;
use super::checkpoint;
use super::log_entry::{self, LogLines};
use crate::error::{EtlError, Result};
use crate::location::Location;

/// The commitInfo key that names the run a commit belongs to.
pub const RUN_ID_KEY: &str = "sparkify.runId";

/// The application id of the transaction identifier (`txn`) every commit
/// carries, with the lake's sequence number of the run as its version: a
/// table whose `txn` version has reached a run's number already holds
/// that run's commit, and never takes it twice.
pub const TXN_APP_ID: &str = "sparkify-lake";

/// `delta.checkpointInterval` of the tables we create: a checkpoint every
/// this many commits. A full run replaces all N files of a table in one
/// commit (N Removes and N Adds), so a reader that replays the commits
/// since the last checkpoint reads 2N actions per commit: Delta's default
/// of 100 lets that grow a hundredfold. Measured in `benches/delta_log.rs`
/// (docs/benchmarks.md#delta-commits-and-the-log).
pub const CHECKPOINT_INTERVAL: u64 = 10;

/// Characters a data file's path keeps as they are in an Add action; every
/// other byte is percent-encoded, as Delta's paths are URIs (a Hive-escaped
/// `artist_id=AR%2FX` becomes `artist_id=AR%252FX`).
const PATH_KEEPS: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'=')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.');

/// A commit's actions: those before its files (a new table's protocol and
/// metadata), the Removes of a replacement, and the operation its
/// commitInfo names.
type Commit = (Vec<Action>, LogLines, DeltaOperation);

/// What a table's properties say about keeping its log, read before a
/// commit (no commit of ours changes them), and whether the commit
/// replaced files.
struct LogUpkeep {
    replaced: bool,
    checkpoint_interval: u64,
    log_retention: std::time::Duration,
    cleanup: bool,
}

/// A table's folder in the lake.
#[derive(Clone)]
pub struct DeltaTarget {
    pub name: String,
    pub location: Location,
    /// The store of the whole bucket (or file system); the log store
    /// prefixes it with the table's path.
    pub store: Arc<dyn ObjectStore>,
}

/// What one run changes in one table.
pub struct TableChange {
    /// Every column, partition columns included, as the table declares
    /// them: needed only when the table is created.
    pub schema: Option<Arc<Schema>>,
    pub partition_by: Vec<String>,
    /// The Add actions of its files, serialized ([`DeltaTarget::adds`]).
    pub adds: LogLines,
    /// Remove every file of the current version (a full rebuild) or only add.
    pub replace: bool,
    /// Whether `adds` are files of an earlier version, committed again (a
    /// rollback): the vacuum before the commit leaves the table alone, as
    /// those files' Removes may have come of age.
    pub restores: bool,
}

impl DeltaTarget {
    fn url(&self) -> Result<Url> {
        Url::parse(&self.location.url())
            .map_err(|e| EtlError::Location(format!("{}: {e}", self.location)))
    }

    fn builder(&self) -> Result<DeltaTableBuilder> {
        register_object_store_schemes();
        let url = self.url()?;
        DeltaTableBuilder::from_url(url.clone())
            .map(|b| b.with_storage_backend(Arc::clone(&self.store), url))
            .map_err(|e| self.error("opening", e))
    }

    /// The table at its newest version; `None` while it has no log.
    pub async fn load(&self) -> Result<Option<DeltaTable>> {
        match self.builder()?.load().await {
            Ok(table) => Ok(Some(table)),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            // On local disk a table none of whose files were ever written
            // has no folder, which delta-rs reports as a bad location.
            Err(e) if !self.has_log().await? => {
                tracing::debug!("{}: no Delta log yet ({e})", self.location);
                Ok(None)
            }
            Err(e) => Err(self.error("reading the log of", e)),
        }
    }

    /// The table's newest version, from a listing of its log alone: a
    /// table of a million files costs no more than one of ten. `None`
    /// while it has no log.
    pub async fn latest_version(&self) -> Result<Option<u64>> {
        if !self.has_log().await? {
            return Ok(None);
        }
        let log_store = self
            .builder()?
            .build_storage()
            .map_err(|e| self.error("opening", e))?;
        let version = log_store
            .get_latest_version(0)
            .await
            .map_err(|e| self.error("listing the log of", e))?;
        Ok(Some(version as u64))
    }

    /// Whether anything lies under the table's `_delta_log/`.
    async fn has_log(&self) -> Result<bool> {
        let log = self.location.join("_delta_log").object_path();
        match self.store.list(Some(&log)).next().await {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(error)) => Err(EtlError::Store {
                context: format!("listing the Delta log of {}", self.location),
                error,
            }),
        }
    }

    /// The table as it was at `version`.
    pub async fn load_version(&self, version: u64) -> Result<DeltaTable> {
        self.builder()?
            .with_version(version)
            .load()
            .await
            .map_err(|e| self.error(&format!("reading version {version} of"), e))
    }

    /// Commits `change` on top of `current` (the version this run read),
    /// with `run_id` in the commitInfo and the run's sequence number `seq`
    /// as its `txn` version, as the next version of the table
    /// ([`log_entry`]), then keeps its log ([`Self::keep_log`]); the
    /// version made. The table is not read back: a `Full` vacuum loads it.
    pub async fn commit(
        &self,
        current: Option<DeltaTable>,
        change: TableChange,
        run_id: &str,
        seq: u64,
    ) -> Result<u64> {
        let table = match current {
            Some(table) => {
                self.check_not_committed(&table, seq).await?;
                table
            }
            None => self
                .builder()?
                .build()
                .map_err(|e| self.error("opening", e))?,
        };
        let version = table.version().map_or(0, |v| v + 1);
        let (declarations, removes, operation) = match table.state {
            None => self.creation(&table, &change)?,
            Some(ref state) => self.replacement(state, &change)?,
        };
        let upkeep = table.state.as_ref().map(|state| LogUpkeep {
            replaced: change.replace && state.log_data().num_files() > 0,
            checkpoint_interval: state.table_config().checkpoint_interval().get(),
            log_retention: state.table_config().log_retention_duration(),
            cleanup: state.table_config().enable_expired_log_cleanup(),
        });
        let header = CommitData::new(
            declarations,
            operation,
            [(RUN_ID_KEY.to_string(), run_id.into())].into(),
            vec![Transaction::new(TXN_APP_ID, seq as i64)],
        );
        let log_store = table.log_store();
        // The version read is needed no more: at a million files it is
        // half a GB that the checkpoint below would otherwise sit beside.
        drop(table);
        log_entry::write(log_store.as_ref(), version, &header, [removes, change.adds]).await?;
        if let Some(upkeep) = upkeep {
            self.keep_log(&log_store, version, &upkeep).await;
        }
        Ok(version)
    }

    /// Version 0 of a new table: its protocol (reader 1, writer 2: no
    /// table features) and metadata (schema, partition columns, our
    /// checkpoint interval), as delta-rs's `CreateBuilder` declares them.
    /// `CreateBuilder` also raises the protocol for table properties that
    /// need a table feature (change data feed, deletion vectors, ...);
    /// the one property set here needs none, so a new property that does
    /// must raise `protocol` here too.
    fn creation(&self, table: &DeltaTable, change: &TableChange) -> Result<Commit> {
        let Some(schema) = &change.schema else {
            return Err(EtlError::Delta(format!(
                "{} has no Delta log",
                self.location
            )));
        };
        let schema: StructType = schema
            .as_ref()
            .try_into_kernel()
            .map_err(|e| self.error("declaring the schema of", e.into()))?;
        let configuration = [(
            TableProperty::CheckpointInterval.as_ref(),
            CHECKPOINT_INTERVAL.to_string(),
        )];
        let metadata = new_metadata(&schema, &change.partition_by, configuration)
            .map_err(|e| self.error("declaring the metadata of", e.into()))?
            .with_name(self.name.clone())
            .map_err(|e| self.error("naming", e.into()))?;
        let protocol: Protocol = serde_json::from_value(
            serde_json::json!({"minReaderVersion": 1, "minWriterVersion": 2}),
        )
        .map_err(|e| self.error("declaring the protocol of", e.into()))?;
        let operation = DeltaOperation::Create {
            mode: SaveMode::ErrorIfExists,
            location: table.log_store().root_url().clone(),
            protocol: protocol.clone(),
            metadata: metadata.clone(),
        };
        let declarations = vec![Action::Protocol(protocol), Action::Metadata(metadata)];
        Ok((declarations, LogLines::default(), operation))
    }

    /// A change to an existing table: a Remove for each of its current
    /// files when the change replaces them.
    fn replacement(&self, state: &DeltaTableState, change: &TableChange) -> Result<Commit> {
        let mut removes = LogLines::default();
        if change.replace {
            for file in state.log_data().iter() {
                removes.push(&Action::Remove(file.remove_action(true)))?;
            }
        }
        let operation = DeltaOperation::Write {
            mode: if change.replace {
                SaveMode::Overwrite
            } else {
                SaveMode::Append
            },
            partition_by: Some(change.partition_by.clone()),
            predicate: None,
        };
        Ok((Vec::new(), removes, operation))
    }

    /// What delta-rs does after each of its commits, without reading the
    /// table back: a checkpoint every `delta.checkpointInterval` versions
    /// and, after each checkpoint, the deletion of log entries older than
    /// the log retention. A commit that replaced files is checkpointed at
    /// once: it holds 2N actions for a table of N files, which every later
    /// reader (the vacuum, the next run, any engine) would replay as JSON.
    /// A failure leaves the commit as it is, with a warning: readers replay
    /// more of the log until the next checkpoint.
    async fn keep_log(&self, log_store: &LogStoreRef, version: u64, upkeep: &LogUpkeep) {
        let due = (version + 1).is_multiple_of(upkeep.checkpoint_interval);
        if !due && !upkeep.replaced {
            return;
        }
        if let Err(error) = checkpoint::write(log_store, version).await {
            tracing::warn!(
                "{}: version {version} is committed; its checkpoint failed: {error}",
                self.location
            );
            return;
        }
        tracing::info!("{}: checkpoint of version {version} written", self.name);
        if !upkeep.cleanup {
            return;
        }
        let cutoff =
            chrono::Utc::now().timestamp_millis() - upkeep.log_retention.as_millis() as i64;
        let cleaned =
            checkpoints::cleanup_expired_logs_for(version, log_store.as_ref(), cutoff, None).await;
        if let Err(error) = cleaned {
            tracing::warn!(
                "{}: version {version} is committed and checkpointed; the log cleanup failed: {error}",
                self.location
            );
        }
    }

    /// Stops a commit for lake run `seq` to a table that already took one
    /// for it (or a later run): appending it again would duplicate rows.
    async fn check_not_committed(&self, current: &DeltaTable, seq: u64) -> Result<()> {
        let state = current.snapshot().map_err(|e| self.error("reading", e))?;
        let done = state
            .transaction_version(current.log_store().as_ref(), TXN_APP_ID)
            .await
            .map_err(|e| self.error("reading the transactions of", e))?;
        match done {
            Some(done) if done >= seq as i64 => Err(EtlError::ConcurrentRun(format!(
                "{} already holds the commit of lake run {done}, not before {seq}",
                self.location
            ))),
            _ => Ok(()),
        }
    }

    /// The files of the table's newest version, as written files of the
    /// table (object path, partition directory, bytes), or `None` while it
    /// has no log.
    pub async fn current_files(&self) -> Result<Option<Vec<WrittenFile>>> {
        let Some(table) = self.load().await? else {
            return Ok(None);
        };
        let snapshot = table.snapshot().map_err(|e| self.error("reading", e))?;
        let root = self.location.object_path();
        // As in history.rs: whole Add actions are what this needs.
        #[allow(deprecated)]
        let files = snapshot
            .log_data()
            .iter()
            .map(|file| {
                let add = file.add_action();
                let relative = percent_encoding::percent_decode_str(&add.path)
                    .decode_utf8_lossy()
                    .into_owned();
                let partition = relative
                    .rsplit_once('/')
                    .map_or_else(String::new, |(dir, _)| dir.to_string());
                WrittenFile {
                    table: self.name.clone(),
                    path: format!("{root}/{relative}"),
                    partition,
                    rows: 0,
                    bytes: add.size as u64,
                    task: String::new(),
                    stats: String::new(),
                }
            })
            .collect();
        Ok(Some(files))
    }

    /// The Add actions of files a run wrote into this table, as lines of
    /// its log entry. Each file's statistics move into its line: at a
    /// million files they are hundreds of megabytes, needed once.
    pub fn adds(&self, files: &mut [WrittenFile]) -> Result<LogLines> {
        let root = self.location.object_path();
        let mut lines = LogLines::default();
        for file in files {
            lines.push(&Action::Add(add_action(&root, file)?))?;
        }
        Ok(lines)
    }

    fn error(&self, doing: &str, error: DeltaTableError) -> EtlError {
        EtlError::Delta(format!(
            "{doing} the Delta table {}: {error}",
            self.location
        ))
    }
}

/// The Add action of one written file: its path relative to the table as
/// a URI, its partition values from its directory, and its statistics.
fn add_action(table_root: &object_store::path::Path, file: &mut WrittenFile) -> Result<Add> {
    let relative = file
        .path
        .strip_prefix(table_root.as_ref())
        .map(|p| p.trim_start_matches('/'))
        .ok_or_else(|| {
            EtlError::Delta(format!(
                "{} is not inside its table {table_root}",
                file.path
            ))
        })?;
    let partition_values: HashMap<String, Option<String>> = hive::partition_values(&file.partition)
        .into_iter()
        .collect();
    Ok(Add {
        path: percent_encoding::utf8_percent_encode(relative, PATH_KEEPS).to_string(),
        partition_values,
        size: file.bytes as i64,
        modification_time: chrono::Utc::now().timestamp_millis(),
        data_change: true,
        stats: Some(std::mem::take(&mut file.stats)).filter(|stats| !stats.is_empty()),
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
        clustering_provider: None,
    })
}

/// Lets delta-rs open `s3://` tables on the store we hand it. Its default
/// log store commits with a conditional put (`If-None-Match: *`), which S3
/// honours natively, so no lock table is needed.
fn register_object_store_schemes() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        let s3 = Url::parse("s3://").expect("a URL");
        logstore_factories().insert(s3, Arc::new(ConditionalPutLogStores));
    });
}

struct ConditionalPutLogStores;

impl LogStoreFactory for ConditionalPutLogStores {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> deltalake_core::DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field};
    use futures::TryStreamExt;
    use object_store::local::LocalFileSystem;

    use super::*;

    fn target(dir: &std::path::Path) -> DeltaTarget {
        DeltaTarget {
            name: "users".into(),
            location: Location::parse(&dir.to_string_lossy()).unwrap(),
            store: Arc::new(LocalFileSystem::new()),
        }
    }

    /// A change of `files` one-row files in partition `level=free`.
    fn change(target: &DeltaTarget, run: u64, files: usize, replace: bool) -> TableChange {
        let root = target.location.object_path();
        let mut written: Vec<WrittenFile> = (0..files)
            .map(|i| WrittenFile {
                path: format!("{root}/level=free/part-r{run}-{i:05}.parquet"),
                stats: r#"{"numRecords":1}"#.into(),
                ..WrittenFile::example("users", "level=free", 1, 10)
            })
            .collect();
        TableChange {
            schema: Some(Arc::new(Schema::new(vec![
                Field::new("user_id", DataType::Int64, false),
                Field::new("level", DataType::Utf8, true),
            ]))),
            partition_by: vec!["level".into()],
            adds: target.adds(&mut written).unwrap(),
            replace,
            restores: false,
        }
    }

    #[tokio::test]
    async fn a_new_table_is_declared_in_its_first_commit_with_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        let version = target
            .commit(None, change(&target, 1, 3, true), "run-1", 1)
            .await
            .unwrap();
        assert_eq!(version, 0);
        let read = target.load().await.unwrap().expect("a table");
        let state = read.snapshot().unwrap();
        assert_eq!(state.log_data().num_files(), 3);
        assert_eq!(state.metadata().name(), Some("users"));
        assert_eq!(state.metadata().partition_columns(), &["level".to_string()]);
        assert_eq!(
            state.table_config().checkpoint_interval().get(),
            CHECKPOINT_INTERVAL
        );
        assert_eq!(state.protocol().min_reader_version(), 1);
        assert_eq!(state.protocol().min_writer_version(), 2);
        let info = read.history(Some(1)).next().await.unwrap().unwrap();
        assert_eq!(info.operation.as_deref(), Some("CREATE TABLE"));
        assert_eq!(info.info[RUN_ID_KEY], "run-1");
    }

    #[tokio::test]
    async fn a_commit_never_overwrites_a_version_another_writer_made() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        target
            .commit(None, change(&target, 1, 1, true), "run-1", 1)
            .await
            .unwrap();
        let late = target
            .commit(None, change(&target, 2, 2, true), "run-2", 2)
            .await;
        assert!(
            matches!(late, Err(EtlError::ConcurrentRun(_))),
            "{:?}",
            late.err()
        );
        let read = target.load().await.unwrap().expect("a table");
        assert_eq!(read.snapshot().unwrap().log_data().num_files(), 1);
    }

    /// Whether `version` of the table in `dir` has a checkpoint.
    fn has_checkpoint(dir: &std::path::Path, version: u64) -> bool {
        dir.join(format!("_delta_log/{version:020}.checkpoint.parquet"))
            .exists()
    }

    fn checkpoint_bytes(dir: &std::path::Path, version: u64) -> u64 {
        let file = dir.join(format!("_delta_log/{version:020}.checkpoint.parquet"));
        std::fs::metadata(file).unwrap().len()
    }

    /// The version and size in bytes `_last_checkpoint` gives, which
    /// readers take as the checkpoint's own.
    fn last_checkpoint(dir: &std::path::Path) -> (u64, u64) {
        let text = std::fs::read(dir.join("_delta_log/_last_checkpoint")).unwrap();
        let hint: serde_json::Value = serde_json::from_slice(&text).unwrap();
        let number = |key: &str| {
            hint[key]
                .as_u64()
                .unwrap_or_else(|| panic!("{key} in {hint}"))
        };
        (number("version"), number("sizeInBytes"))
    }

    /// Commits `change` on top of the table as it is now, as a run does.
    async fn commit_next(target: &DeltaTarget, change: TableChange, seq: u64) -> u64 {
        let current = target.load().await.unwrap();
        target.commit(current, change, "run", seq).await.unwrap()
    }

    #[tokio::test]
    async fn a_replacement_removes_every_current_file_and_leaves_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        commit_next(&target, change(&target, 0, 2, true), 1).await;
        for run in 1..=3 {
            let files = 1 + run as usize % 3;
            let version = commit_next(&target, change(&target, run, files, true), run + 1).await;
            assert_eq!(version, run);
            assert!(has_checkpoint(dir.path(), run), "none at version {run}");
            assert_eq!(
                last_checkpoint(dir.path()),
                (run, checkpoint_bytes(dir.path(), run))
            );
            let read = target.load().await.unwrap().expect("a table");
            assert_eq!(read.snapshot().unwrap().log_data().num_files(), files);
        }
        assert!(
            !has_checkpoint(dir.path(), 0),
            "a creation replaces nothing"
        );
        let read = target.load().await.unwrap().expect("a table");
        let mut paths: Vec<String> = read
            .snapshot()
            .unwrap()
            .log_data()
            .iter()
            .map(|file| file.path().to_string())
            .collect();
        paths.sort();
        assert_eq!(paths, ["level=free/part-r3-00000.parquet"]);
        // Read from the checkpoint alone, the Removes of every replaced
        // file are still there for the vacuum: 2 + 2 + 3 files.
        let tombstones: Vec<String> = read
            .snapshot()
            .unwrap()
            .all_tombstones(read.log_store().as_ref())
            .map_ok(|tombstone| tombstone.path().to_string())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(tombstones.len(), 7, "{tombstones:?}");
    }

    #[tokio::test]
    async fn appends_checkpoint_every_tenth_version() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        commit_next(&target, change(&target, 0, 1, true), 1).await;
        for run in 1..=CHECKPOINT_INTERVAL {
            commit_next(&target, change(&target, run, 1, false), run + 1).await;
        }
        let checkpoints: Vec<u64> = (0..=CHECKPOINT_INTERVAL)
            .filter(|&version| has_checkpoint(dir.path(), version))
            .collect();
        assert_eq!(checkpoints, [CHECKPOINT_INTERVAL - 1]);
        let read = target.load().await.unwrap().expect("a table");
        let files = read.snapshot().unwrap().log_data().num_files();
        assert_eq!(files as u64, CHECKPOINT_INTERVAL + 1);
    }

    #[test]
    fn an_add_names_its_file_relative_to_the_table_as_a_uri() {
        let mut file = WrittenFile {
            path: "out/songs/year=0/artist_id=AR%2FX/part-a1-00000.parquet".into(),
            partition: "year=0/artist_id=AR%2FX".into(),
            stats: r#"{"numRecords":1}"#.into(),
            ..WrittenFile::example("songs", "", 1, 10)
        };
        let add = add_action(&"out/songs".into(), &mut file).unwrap();
        assert_eq!(add.path, "year=0/artist_id=AR%252FX/part-a1-00000.parquet");
        assert_eq!(add.partition_values["year"].as_deref(), Some("0"));
        assert_eq!(add.partition_values["artist_id"].as_deref(), Some("AR/X"));
        assert_eq!(add.stats.as_deref(), Some(r#"{"numRecords":1}"#));
        assert!(
            file.stats.is_empty(),
            "the statistics moved into the action"
        );
        assert_eq!(add.size, 10);
    }
}
