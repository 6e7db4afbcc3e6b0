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
use deltalake_core::TableProperty;
use deltalake_core::errors::DeltaTableError;
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake_core::kernel::{Action, Add, StructType, Transaction};
use deltalake_core::logstore::{
    LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig, default_logstore, logstore_factories,
};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, DeltaTableBuilder};
use futures::StreamExt;
use object_store::ObjectStore;
use url::Url;

use super::super::hive;
use super::super::writer::WrittenFile;
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
    pub adds: Vec<Add>,
    /// Remove every file of the current version (a full rebuild) or only add.
    pub replace: bool,
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
    /// as its `txn` version; the table at the version it made, from the
    /// commit's own state rather than a new read of the log.
    pub async fn commit(
        &self,
        current: Option<DeltaTable>,
        mut change: TableChange,
        run_id: &str,
        seq: u64,
    ) -> Result<DeltaTable> {
        let adds: Vec<Action> = std::mem::take(&mut change.adds)
            .into_iter()
            .map(Action::Add)
            .collect();
        let properties = CommitProperties::default()
            .with_max_retries(0)
            .with_metadata([(RUN_ID_KEY.to_string(), run_id.into())])
            .with_application_transaction(Transaction::new(TXN_APP_ID, seq as i64));
        let Some(mut table) = current else {
            return self.create(change, adds, properties).await;
        };
        self.check_not_committed(&table, seq).await?;
        let snapshot = table.snapshot().map_err(|e| self.error("reading", e))?;
        let mut actions = Vec::with_capacity(adds.len());
        if change.replace {
            actions.extend(
                snapshot
                    .log_data()
                    .iter()
                    .map(|file| Action::Remove(file.remove_action(true))),
            );
        }
        actions.extend(adds);
        let operation = DeltaOperation::Write {
            mode: if change.replace {
                SaveMode::Overwrite
            } else {
                SaveMode::Append
            },
            partition_by: Some(change.partition_by),
            predicate: None,
        };
        let done = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(Some(snapshot), table.log_store(), operation)
            .await
            .map_err(|e| self.error("committing to", e))?;
        table.state = Some(done.snapshot());
        Ok(table)
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

    /// The Add actions of files a run wrote into this table. Each file's
    /// statistics move into its action: at a million files they are
    /// hundreds of megabytes, needed once.
    pub fn adds(&self, files: &mut [WrittenFile]) -> Result<Vec<Add>> {
        let root = self.location.object_path();
        files
            .iter_mut()
            .map(|file| add_action(&root, file))
            .collect()
    }

    /// Version 0: the table's schema and partition columns, and the run's files.
    async fn create(
        &self,
        change: TableChange,
        adds: Vec<Action>,
        properties: CommitProperties,
    ) -> Result<DeltaTable> {
        let Some(schema) = change.schema else {
            return Err(EtlError::Delta(format!(
                "{} has no Delta log",
                self.location
            )));
        };
        let schema: StructType = schema
            .as_ref()
            .try_into_kernel()
            .map_err(|e| self.error("declaring the schema of", e.into()))?;
        let log_store = self
            .builder()?
            .build_storage()
            .map_err(|e| self.error("opening", e))?;
        CreateBuilder::new()
            .with_log_store(log_store)
            .with_table_name(self.name.clone())
            .with_columns(schema.fields().cloned())
            .with_partition_columns(change.partition_by)
            .with_configuration_property(
                TableProperty::CheckpointInterval,
                Some(CHECKPOINT_INTERVAL.to_string()),
            )
            .with_save_mode(SaveMode::ErrorIfExists)
            .with_actions(adds)
            .with_commit_properties(properties)
            .await
            .map_err(|e| self.error("creating", e))
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
    use super::*;

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
