//! Where a run writes and how its tables become visible, atomically.
//!
//! Every run writes into its own folder, `<output>/run-<id>/`, which readers
//! ignore until the run commits. Committing is three steps:
//!
//! 1. delete what the run's folder holds beyond the files its tasks reported
//!    (leftovers of failed task attempts) and its staging area;
//! 2. write `run-<id>/_SUCCESS`, the manifest of every file with its rows;
//! 3. replace `<output>/_LATEST` with the run's name: one PUT, atomic on S3
//!    and on a local disk. This is the commit point.
//!
//! Readers resolve `_LATEST` and read `run-<id>/<table>/`, plain hive-style
//! Parquet. Before the PUT they see the previous run; after it, the new one;
//! a run that fails or is killed at any point changes nothing they read. The
//! next successful run deletes runs older than the previous committed one,
//! and uncommitted ones, once it has committed. One writer per output at a time.

use std::collections::HashSet;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;

use super::writer::WrittenFile;
use crate::error::{EtlError, Result};
use crate::location::Location;
use crate::schema::InputKind;

/// Name of the pointer object at the top of the output.
pub const LATEST: &str = "_LATEST";
/// Name of the manifest object in a committed run's folder.
pub const SUCCESS: &str = "_SUCCESS";
const RUN_PREFIX: &str = "run-";

/// The folders one run writes to.
#[derive(Clone, Debug)]
pub struct RunLayout {
    pub output: Location,
    pub run_id: String,
}

impl RunLayout {
    /// A new run: its id sorts by start time and is unique.
    pub fn new(output: Location) -> Self {
        let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
        Self {
            output,
            run_id: format!("{RUN_PREFIX}{now}-{suffix}"),
        }
    }

    pub fn run_dir(&self) -> Location {
        self.output.join(&self.run_id)
    }

    pub fn table(&self, name: &str) -> Location {
        self.run_dir().join(name)
    }

    pub fn staging(&self, kind: InputKind) -> Location {
        self.run_dir().join(&format!("_staging/{}", kind.name()))
    }

    pub fn rejects(&self, kind: InputKind) -> Location {
        self.run_dir().join(&format!("_rejects/{}", kind.name()))
    }
}

/// Name of the marker a run writes into its folder before any job starts.
pub const STARTED: &str = "_STARTED";

/// Marks the run as started, which also proves the output is writable
/// before any job runs.
pub async fn begin(store: &Arc<dyn ObjectStore>, layout: &RunLayout) -> Result<()> {
    let path = layout.run_dir().object_path().join(STARTED);
    let started = format!("{}\n", chrono::Utc::now().to_rfc3339());
    store
        .put(&path, PutPayload::from(started.into_bytes()))
        .await
        .map(|_| ())
        .map_err(|error| EtlError::OutputNotWritable {
            location: layout.output.url(),
            error,
        })
}

/// The manifest written to `_SUCCESS`.
#[derive(Serialize)]
struct Manifest<'a> {
    run_id: &'a str,
    committed_at: String,
    files: Vec<&'a WrittenFile>,
}

/// Commits a run whose tasks wrote `files` (tables and rejects, not staging).
/// See the module documentation for the protocol.
pub async fn commit(
    store: &Arc<dyn ObjectStore>,
    layout: &RunLayout,
    files: &[WrittenFile],
) -> Result<()> {
    let run_dir = layout.run_dir();
    remove_strays(store, &run_dir, files).await?;
    let manifest = Manifest {
        run_id: &layout.run_id,
        committed_at: chrono::Utc::now().to_rfc3339(),
        files: files.iter().collect(),
    };
    let manifest = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    put(store, &run_dir.object_path().join(SUCCESS), manifest).await?;
    crate::crash::point(crate::crash::COMMITTING);
    let previous = latest_run(store, &layout.output).await?;
    put(
        store,
        &layout.output.object_path().join(LATEST),
        format!("{}\n", layout.run_id).into_bytes(),
    )
    .await?;
    remove_old_runs(store, layout, previous.as_deref()).await
}

/// The run `_LATEST` points at, if any run has committed.
pub async fn latest_run(store: &Arc<dyn ObjectStore>, output: &Location) -> Result<Option<String>> {
    let path = output.object_path().join(LATEST);
    match store.get(&path).await {
        Ok(got) => {
            let bytes = got
                .bytes()
                .await
                .map_err(|e| EtlError::store(format!("reading {output}/{LATEST}"), e))?;
            Ok(Some(String::from_utf8_lossy(&bytes).trim().to_string()))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(EtlError::store(format!("reading {output}/{LATEST}"), e)),
    }
}

/// Writes one small object.
pub async fn put(store: &Arc<dyn ObjectStore>, path: &Path, bytes: Vec<u8>) -> Result<()> {
    store
        .put(path, PutPayload::from(bytes))
        .await
        .map(|_| ())
        .map_err(|e| EtlError::store(format!("writing {path}"), e))
}

/// Deletes everything in the run's folder that is neither a reported file
/// nor one of the run's own `_` objects at its top.
async fn remove_strays(
    store: &Arc<dyn ObjectStore>,
    run_dir: &Location,
    keep: &[WrittenFile],
) -> Result<()> {
    let keep: HashSet<&str> = keep.iter().map(|f| f.path.as_str()).collect();
    let root = run_dir.object_path();
    let objects: Vec<Path> = store
        .list(Some(&root))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
        .map_err(|e| EtlError::store(format!("listing {run_dir}"), e))?;
    let strays: Vec<Path> = objects
        .into_iter()
        .filter(|path| {
            let depth = path.prefix_match(&root).map_or(0, |parts| parts.count());
            let run_metadata = depth == 1 && path.filename().is_some_and(|n| n.starts_with('_'));
            !keep.contains(path.as_ref()) && !run_metadata
        })
        .collect();
    delete_all(store, strays).await
}

/// Deletes committed runs older than `previous` and every uncommitted run
/// other than this one.
async fn remove_old_runs(
    store: &Arc<dyn ObjectStore>,
    layout: &RunLayout,
    previous: Option<&str>,
) -> Result<()> {
    let output = &layout.output;
    let listing = store
        .list_with_delimiter(Some(&output.object_path()))
        .await
        .map_err(|e| EtlError::store(format!("listing {output}"), e))?;
    let old: Vec<String> = listing
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(str::to_string))
        .filter(|name| name.starts_with(RUN_PREFIX))
        .filter(|name| *name != layout.run_id && Some(name.as_str()) != previous)
        .collect();
    for name in old {
        let dir = output.join(&name);
        let objects: Vec<Path> = store
            .list(Some(&dir.object_path()))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|e| EtlError::store(format!("listing {dir}"), e))?;
        delete_all(store, objects).await?;
        if dir.is_local() {
            // What a killed local write left is not listed (a temporary
            // file): the folder goes with it, off the async threads.
            let path = local_path(&dir);
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(path)).await;
        }
    }
    Ok(())
}

async fn delete_all(store: &Arc<dyn ObjectStore>, paths: Vec<Path>) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let locations = futures::stream::iter(paths.into_iter().map(Ok)).boxed();
    store
        .delete_stream(locations)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| EtlError::store("deleting leftover files", e))?;
    Ok(())
}

fn local_path(location: &Location) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/{}", location.object_path()))
}
