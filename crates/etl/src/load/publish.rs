//! Where a run writes and how its tables become visible, atomically.
//!
//! Every run writes into its own folder, `<output>/run-<id>/`, which readers
//! ignore until the run commits. Committing is three steps:
//!
//! 1. delete the run's staging area and what the run's folder holds beyond
//!    the files its tasks reported (leftovers of failed task attempts);
//! 2. write `run-<id>/_SUCCESS`, the manifest of every file with its rows;
//! 3. replace `<output>/_LATEST` with the run's name: one PUT, atomic on S3
//!    and on a local disk. This is the commit point.
//!
//! Readers resolve `_LATEST` and read `run-<id>/<table>/`, plain hive-style
//! Parquet. Before the PUT they see the previous run; after it, the new one;
//! a run that fails or is killed at any point changes nothing they read. The
//! next successful run deletes runs older than the previous committed one,
//! and uncommitted ones, once it has committed. One writer per output at a
//! time: a run holds the output's [`Lease`] from its start, so a second run
//! refuses to start instead of deleting what the first may still publish.
//!
//! Searching the run's folder for leftovers means listing every file: at a
//! million partitions that took 8 s of a 86 s run. So each writer task
//! attempt first leaves a marker in `run-<id>/_attempts/`, named by its
//! writer id, which also starts the name of every file it writes. When every
//! marked attempt reported files, no attempt can have left any behind, and
//! step 1 lists only the markers; otherwise it searches the whole folder.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;

use super::TableFormat;
use super::lake_log::Lease;
use super::writer::{WrittenFile, writer_of};
use crate::error::{EtlError, Result};
use crate::local_disk;
use crate::location::Location;
use crate::schema::InputKind;
use crate::storage::Storage;

/// Name of the pointer object at the top of the output.
pub const LATEST: &str = "_LATEST";
/// Name of the manifest object in a committed run's folder.
pub const SUCCESS: &str = "_SUCCESS";
const RUN_PREFIX: &str = "run-";
/// The run's folders that go before it commits.
const STAGING: &str = "_staging";
const ATTEMPTS: &str = "_attempts";

/// The folders one run writes to.
#[derive(Clone, Debug)]
pub struct RunLayout {
    pub output: Location,
    pub run_id: String,
    pub format: TableFormat,
}

/// Where Delta runs keep their reports and working files, under the output.
pub const DELTA_RUNS: &str = "_runs";
/// The Delta table of rejected records, under the output.
pub const DELTA_REJECTS: &str = "_rejects";
/// Where Delta runs keep the staged records of each input, as Delta tables
/// (`_staged/songs`, `_staged/events`): incremental runs build on them.
pub const DELTA_STAGED: &str = "_staged";

impl RunLayout {
    /// A new run: its id sorts by start time and is unique.
    pub fn new(output: Location, format: TableFormat) -> Self {
        let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
        Self {
            output,
            run_id: format!("{RUN_PREFIX}{now}-{suffix}"),
            format,
        }
    }

    /// The run's own folder: its report, staging and attempt markers, and
    /// with Parquet its tables.
    pub fn run_dir(&self) -> Location {
        match self.format {
            TableFormat::Delta => self.output.join(&format!("{DELTA_RUNS}/{}", self.run_id)),
            TableFormat::Parquet => self.output.join(&self.run_id),
        }
    }

    /// A table's folder: fixed with Delta, the run's own with Parquet.
    pub fn table(&self, name: &str) -> Location {
        match self.format {
            TableFormat::Delta => self.output.join(name),
            TableFormat::Parquet => self.run_dir().join(name),
        }
    }

    /// Where staging writes the records of `kind`: with Delta a table of
    /// the lake that later runs build on, with Parquet the run's own
    /// folder, deleted once the run is published.
    pub fn staging(&self, kind: InputKind) -> Location {
        match self.format {
            TableFormat::Delta => self.output.join(&staged_table(kind)),
            TableFormat::Parquet => self.run_dir().join(&format!("{STAGING}/{}", kind.name())),
        }
    }

    /// Where the client writes the file lists of the scan of `kind`
    /// ([`crate::extract::file_list`]); they go with the staging area.
    pub fn file_lists(&self, kind: InputKind) -> Location {
        self.run_dir()
            .join(&format!("{STAGING}/_file_lists/{}", kind.name()))
    }

    /// Where writer task attempts leave their markers (see the module
    /// documentation).
    pub fn attempts(&self) -> Location {
        self.run_dir().join(ATTEMPTS)
    }

    /// Where the rejected records of `kind` go: with Delta one table for
    /// both inputs (rows say which), appended by every run.
    pub fn rejects(&self, kind: InputKind) -> Location {
        match self.format {
            TableFormat::Delta => self.output.join(DELTA_REJECTS),
            TableFormat::Parquet => self.run_dir().join(&format!("_rejects/{}", kind.name())),
        }
    }
}

/// The name (path under the output) of the Delta table of staged `kind` records.
pub fn staged_table(kind: InputKind) -> String {
    format!("{DELTA_STAGED}/{}", kind.name())
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
    files: &'a [WrittenFile],
}

/// Commits a run whose tasks wrote `files` (tables and rejects, not staging).
/// See the module documentation for the protocol.
pub async fn commit(
    store: &Arc<dyn ObjectStore>,
    layout: &RunLayout,
    files: &[WrittenFile],
    lease: &Lease,
) -> Result<()> {
    let run_dir = layout.run_dir();
    let unreported = discard_working_files(store, layout, files).await?;
    if unreported.is_empty() {
        tracing::info!(
            "{}: every task attempt that wrote files reported them",
            layout.run_id
        );
    } else {
        let strays = remove_strays(store, &run_dir, files).await?;
        tracing::info!(
            "{}: {} task attempts wrote without reporting ({}); deleted {strays} files no task reported",
            layout.run_id,
            unreported.len(),
            unreported.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let manifest = Manifest {
        run_id: &layout.run_id,
        committed_at: chrono::Utc::now().to_rfc3339(),
        files,
    };
    let manifest = manifest_bytes(&manifest);
    put(store, &run_dir.object_path().join(SUCCESS), manifest).await?;
    tracing::info!(
        "{}: manifest of {} files written",
        layout.run_id,
        files.len()
    );
    crate::crash::point(crate::crash::COMMITTING);
    lease.check_held().await?;
    let previous = latest_run(store, &layout.output).await?;
    put(
        store,
        &layout.output.object_path().join(LATEST),
        format!("{}\n", layout.run_id).into_bytes(),
    )
    .await?;
    remove_old_runs(store, layout, previous.as_deref()).await
}

/// Deletes the run's staging area and attempt markers, and gives the
/// writer ids of the attempts that wrote files no job result named: their
/// files are leftovers to delete.
pub async fn discard_working_files(
    store: &Arc<dyn ObjectStore>,
    layout: &RunLayout,
    files: &[WrittenFile],
) -> Result<HashSet<String>> {
    remove_folder(store, &layout.run_dir().join(STAGING)).await?;
    let unreported = unreported_attempts(store, layout, files).await?;
    remove_folder(store, &layout.attempts()).await?;
    Ok(unreported.into_iter().collect())
}

/// The manifest as compact JSON, in a buffer sized up front: at a million
/// files it is about 200 MB, and growing it by doubling would hold up to
/// twice that at once (indenting would add another quarter).
fn manifest_bytes(manifest: &Manifest) -> Vec<u8> {
    let estimate: usize = manifest
        .files
        .iter()
        .map(|f| f.table.len() + f.path.len() + f.partition.len() + 96)
        .sum();
    let mut bytes = Vec::with_capacity(estimate + 256);
    serde_json::to_writer(&mut bytes, manifest).expect("manifest serialises");
    bytes
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
pub async fn put(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    bytes: impl Into<PutPayload>,
) -> Result<()> {
    store
        .put(path, bytes.into())
        .await
        .map(|_| ())
        .map_err(|e| EtlError::store(format!("writing {path}"), e))
}

/// Writer ids of the attempts that left a marker but none of whose files
/// is among `files`, in no particular order.
async fn unreported_attempts(
    store: &Arc<dyn ObjectStore>,
    layout: &RunLayout,
    files: &[WrittenFile],
) -> Result<Vec<String>> {
    let attempts = layout.attempts();
    let marked: Vec<Path> = store
        .list(Some(&attempts.object_path()))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
        .map_err(|e| EtlError::store(format!("listing {attempts}"), e))?;
    let reported: HashSet<&str> = files.iter().filter_map(|f| writer_of(&f.path)).collect();
    Ok(marked
        .iter()
        .filter_map(|marker| marker.filename())
        .filter(|writer| !reported.contains(writer))
        .map(str::to_string)
        .collect())
}

/// Deletes everything in the run's folder that is neither a reported file
/// nor one of the run's own `_` objects at its top, and says how many.
async fn remove_strays(
    store: &Arc<dyn ObjectStore>,
    run_dir: &Location,
    keep: &[WrittenFile],
) -> Result<usize> {
    if let Storage::LocalDisk = Storage::of(run_dir, Arc::clone(store)) {
        return remove_local_strays(run_dir, keep).await;
    }
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
    let count = strays.len();
    delete_all(store, strays).await?;
    Ok(count)
}

/// [`remove_strays`] on local disk, as files: the run's folder is walked
/// with [`local_disk`] (a `stat` per file through object_store costs
/// seconds at a hundred thousand partitions) and the reported files are
/// mapped to file names the way the writers mapped them.
async fn remove_local_strays(run_dir: &Location, keep: &[WrittenFile]) -> Result<usize> {
    let context = || format!("listing {run_dir}");
    // `Path::parse` takes a reported path as the writer printed it;
    // `Path::from` would escape its `%` again and keep nothing of a
    // partition like `artist_id=AR%2FX`.
    let keep: HashSet<PathBuf> = keep
        .iter()
        .map(|f| {
            let path = Path::parse(&f.path).map_err(std::io::Error::other)?;
            local_disk::file_of(&path).map_err(std::io::Error::other)
        })
        .collect::<std::io::Result<_>>()
        .map_err(|e| EtlError::local(context(), e))?;
    let root = local_path(run_dir);
    let files = local_disk::files_under(root.clone())
        .await
        .map_err(|e| EtlError::local(context(), e))?;
    let strays: Vec<PathBuf> = files
        .into_iter()
        .filter(|file| {
            let run_metadata = file.parent() == Some(root.as_path())
                && file
                    .file_name()
                    .is_some_and(|n| n.as_encoded_bytes().starts_with(b"_"));
            !keep.contains(file) && !run_metadata
        })
        .collect();
    local_disk::remove_all(strays.clone(), root)
        .await
        .map_err(|(i, e)| EtlError::local(format!("deleting {}", strays[i].display()), e))?;
    Ok(strays.len())
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
        remove_folder(store, &output.join(&name)).await?;
    }
    Ok(())
}

/// Deletes a folder and everything in it; one that is not there is no error.
async fn remove_folder(store: &Arc<dyn ObjectStore>, dir: &Location) -> Result<()> {
    Storage::of(dir, Arc::clone(store))
        .remove_folder(dir)
        .await
        .map_err(|e| EtlError::store(format!("deleting {dir}"), e))
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

fn local_path(location: &Location) -> PathBuf {
    PathBuf::from(format!("/{}", location.object_path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The output's lease, as a run takes it at its start.
    async fn lease(store: &Arc<dyn ObjectStore>, layout: &RunLayout) -> Lease {
        let log = crate::load::lake_log::LakeLog::new(Arc::clone(store), &layout.output);
        log.lease(&layout.run_id, std::time::Duration::from_secs(60))
            .await
            .unwrap()
    }

    /// A local run's folder with `files` (paths relative to it) in it, and
    /// the reports of those among them that `reported` picks.
    fn local_run(files: &[&str], reported: fn(&str) -> bool) -> (RunLayout, Vec<WrittenFile>) {
        let output = std::env::temp_dir().join(format!("publish-{}", uuid::Uuid::new_v4()));
        let output = Location::parse(output.to_str().unwrap()).unwrap();
        let layout = RunLayout::new(output, TableFormat::Parquet);
        let run_dir = local_path(&layout.run_dir());
        for file in files {
            let path = run_dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, file).unwrap();
        }
        let reports = files
            .iter()
            .filter(|f| reported(f))
            .map(|f| WrittenFile {
                path: format!("{}/{f}", layout.run_dir().object_path()),
                ..WrittenFile::example("songs", "", 1, 1)
            })
            .collect();
        (layout, reports)
    }

    /// The files left in the run's folder, relative to it, sorted.
    async fn files_left(layout: &RunLayout) -> Vec<String> {
        let run_dir = local_path(&layout.run_dir());
        let mut left: Vec<String> = local_disk::files_under(run_dir.clone())
            .await
            .unwrap()
            .iter()
            .map(|f| f.strip_prefix(&run_dir).unwrap().display().to_string())
            .collect();
        left.sort();
        left
    }

    #[tokio::test]
    async fn an_attempt_that_did_not_report_has_its_files_deleted() {
        // Attempt a1 reported its files; b2 left a marker and a file, then failed.
        let (layout, reported) = local_run(
            &[
                "songs/year=0/artist_id=AR%2FX/part-a1-00000.parquet",
                "songs/year=0/artist_id=AR%2FX/part-b2-00000.parquet",
                "songs/year=1990/part-a1-00001.parquet",
                "songs/_unreported",
                "_staging/songs/part-s0-00000.parquet",
                "_attempts/a1",
                "_attempts/b2",
                "_STARTED",
            ],
            |f| f.contains("part-a1"),
        );
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::local::LocalFileSystem::new());
        let unreported = unreported_attempts(&store, &layout, &reported).await;
        assert_eq!(unreported.unwrap(), ["b2"]);

        let lease = lease(&store, &layout).await;
        commit(&store, &layout, &reported, &lease).await.unwrap();

        assert_eq!(
            files_left(&layout).await,
            [
                "_STARTED",
                "_SUCCESS",
                "songs/year=0/artist_id=AR%2FX/part-a1-00000.parquet",
                "songs/year=1990/part-a1-00001.parquet",
            ]
        );
        let run_dir = local_path(&layout.run_dir());
        for gone in ["_staging", "_attempts"] {
            assert!(!run_dir.join(gone).exists(), "{gone} goes, folder and all");
        }
        assert_eq!(
            latest_run(&store, &layout.output).await.unwrap(),
            Some(layout.run_id.clone())
        );
        std::fs::remove_dir_all(local_path(&layout.output)).unwrap();
    }

    #[tokio::test]
    async fn when_every_attempt_reported_the_folder_is_not_searched() {
        // Every marked attempt reported. The unmarked file stands for what no
        // writer leaves (a writer marks its attempt before any file), so it
        // shows that commit trusted the markers instead of listing the folder.
        let (layout, reported) = local_run(
            &[
                "songs/year=0/part-a1-00000.parquet",
                "songs/year=1990/part-b2-00000.parquet",
                "songs/year=1990/unmarked",
                "_staging/songs/part-s0-00000.parquet",
                "_attempts/a1",
                "_attempts/b2",
            ],
            |f| f.contains("part-a1") || f.contains("part-b2"),
        );
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::local::LocalFileSystem::new());

        let lease = lease(&store, &layout).await;
        commit(&store, &layout, &reported, &lease).await.unwrap();

        assert_eq!(
            files_left(&layout).await,
            [
                "_SUCCESS",
                "songs/year=0/part-a1-00000.parquet",
                "songs/year=1990/part-b2-00000.parquet",
                "songs/year=1990/unmarked",
            ]
        );
        std::fs::remove_dir_all(local_path(&layout.output)).unwrap();
    }
}
