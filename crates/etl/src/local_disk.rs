//! Many small files per blocking call, for `file://` locations.
//!
//! object_store's local file system hands every `get` and `put` to tokio's
//! blocking pool and back (a read takes two hand-offs: open, then read), and
//! writes each file under a temporary name before renaming it. For tens of
//! thousands of song files of a few hundred bytes in, and as many one-row
//! Parquet files out, those hand-offs and extra system calls cost more than
//! the I/O itself (README, "Where the time goes"). Scans and writers on a
//! local store therefore read and write here instead, a whole batch of files
//! per blocking call, with the same mapping from object paths to file
//! names. Listings of local folders walk them here too, concurrently and
//! without the three `stat` calls per file object_store's local listing makes.

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::sync::LazyLock;

use datafusion::common::{DataFusionError, Result};
use futures::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use walkdir::{DirEntry, WalkDir};

/// The store `file://` URLs are registered with (see the `cluster` crate),
/// used here for the names [`file_of`] leaves to it.
static LOCAL: LazyLock<LocalFileSystem> = LazyLock::new(LocalFileSystem::new);

/// The file an object path names in the `file://` store: the path's text
/// under `/`. The store's own mapping builds a `url::Url` of each path and
/// decodes it again, which cost the songs writers and the song-file scan
/// more than a microsecond per file; it is kept for file names with a `#`,
/// which the store treats specially. A test holds the two mappings equal.
pub fn file_of(path: &Path) -> Result<PathBuf> {
    if path.filename().is_some_and(|name| !name.contains('#')) {
        return Ok(PathBuf::from(format!("/{path}")));
    }
    LOCAL
        .path_to_filesystem(path)
        .map_err(|e| DataFusionError::External(Box::new(e)))
}

/// Reads every file whole, in order, in one blocking call. The error names
/// the file by its position in `files`.
pub async fn read_all(files: Vec<PathBuf>) -> Result<Vec<Vec<u8>>, (usize, io::Error)> {
    blocking(move || {
        files
            .iter()
            .enumerate()
            .map(|(i, file)| std::fs::read(file).map_err(|e| (i, e)))
            .collect()
    })
    .await
}

/// Writes every (file, bytes) whole, creating missing folders, in one
/// blocking call. The error names the file by its position in `files`.
///
/// Files are written in place, not renamed from a temporary name: a run's
/// folder is invisible until the run commits, and a file a killed attempt
/// leaves half-written is in no task's report, so publishing deletes it
/// ([`crate::load::publish`]).
pub async fn write_all(files: Vec<(PathBuf, Vec<u8>)>) -> Result<(), (usize, io::Error)> {
    blocking(move || {
        let mut folders = HashSet::new();
        for (i, (file, bytes)) in files.iter().enumerate() {
            if let Some(folder) = file.parent()
                && folders.insert(folder)
            {
                std::fs::create_dir_all(folder).map_err(|e| (i, e))?;
            }
            std::fs::write(file, bytes).map_err(|e| (i, e))?;
        }
        Ok(())
    })
    .await
}

/// Deletes every file and then the folders under `root` that this leaves
/// empty, as object_store's local store does, in one blocking call. A file
/// already gone is not an error. The error names the file by its position
/// in `files`.
pub async fn remove_all(files: Vec<PathBuf>, root: PathBuf) -> Result<(), (usize, io::Error)> {
    blocking(move || {
        let mut folders = std::collections::BTreeSet::new();
        for (i, file) in files.iter().enumerate() {
            match std::fs::remove_file(file) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err((i, e)),
                _ => {}
            }
            let above = file.ancestors().skip(1);
            folders.extend(above.take_while(|f| *f != root && f.starts_with(&root)));
        }
        // Deepest first (longest paths sort last), so a folder is empty
        // once its emptied subfolders are gone; a folder that still holds
        // something stays.
        for folder in folders.iter().rev() {
            let _ = std::fs::remove_dir(folder);
        }
        Ok(())
    })
    .await
}

/// Every file under `root`, in no particular order, with nothing asked of
/// each file: `read_dir` tells files from folders.
pub async fn files_under(root: PathBuf) -> io::Result<Vec<PathBuf>> {
    walk(root, |entry| Ok(entry.path().to_path_buf())).await
}

/// Every file under `root` with its size and modification time
/// (nanoseconds since the epoch, 0 where the file system keeps none), in
/// no particular order: one `stat` per file.
pub async fn sized_files_under(root: PathBuf) -> io::Result<Vec<(PathBuf, u64, u128)>> {
    walk(root, |entry| {
        let metadata = entry.metadata()?;
        let modified = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok((entry.path().to_path_buf(), metadata.len(), modified))
    })
    .await
}

/// Folders at this depth below a walk's root are walked as separate blocking
/// calls, [`WALKS_IN_FLIGHT`] at a time: the input's `song_data/A/B` and a
/// run's `songs/year=…` spread a walk over both cores.
const SPLIT_DEPTH: usize = 2;
const WALKS_IN_FLIGHT: usize = 4;

/// `each` of every file under `root`. Like object_store's local listing,
/// symbolic links are followed and what is gone by the time it is reached
/// (a missing root, a file deleted meanwhile, a broken link) is not listed.
async fn walk<T: Send + 'static>(
    root: PathBuf,
    each: fn(&DirEntry) -> io::Result<T>,
) -> io::Result<Vec<T>> {
    let (mut found, folders) = io_blocking(move || visit(&root, SPLIT_DEPTH, each)).await?;
    let mut walks = futures::stream::iter(folders)
        .map(|folder| io_blocking(move || visit(&folder, usize::MAX, each)))
        .buffer_unordered(WALKS_IN_FLIGHT);
    while let Some(walked) = walks.next().await {
        found.extend(walked?.0);
    }
    Ok(found)
}

/// `each` of the files under `root` down to `max_depth`, and the folders
/// at that depth, not entered.
fn visit<T>(
    root: &std::path::Path,
    max_depth: usize,
    each: fn(&DirEntry) -> io::Result<T>,
) -> io::Result<(Vec<T>, Vec<PathBuf>)> {
    let walk = WalkDir::new(root)
        .min_depth(1)
        .max_depth(max_depth)
        .follow_links(true);
    let (mut found, mut folders) = (Vec::new(), Vec::new());
    for entry in walk {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if e.io_error().map(io::Error::kind) == Some(io::ErrorKind::NotFound) => {
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if entry.file_type().is_file() {
            match each(&entry) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                item => found.push(item?),
            }
        } else if entry.file_type().is_dir() && entry.depth() == max_depth {
            folders.push(entry.into_path());
        }
    }
    Ok((found, folders))
}

/// Runs `work` on tokio's blocking pool; a panic in it becomes an error of
/// the first file.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, (usize, io::Error)> + Send + 'static,
) -> Result<T, (usize, io::Error)> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err((0, io::Error::other(e))))
}

/// Runs `work` on tokio's blocking pool; a panic in it becomes an error.
async fn io_blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_into_new_folders_and_reads_back() {
        let root = std::env::temp_dir().join(format!("local-disk-{}", uuid::Uuid::new_v4()));
        let file = |name: &str| root.join("year=0").join(name).join("part.parquet");
        let files = vec![
            (file("artist_id=A"), b"one".to_vec()),
            (file("artist_id=B%2FC"), b"two".to_vec()),
        ];
        write_all(files.clone()).await.unwrap();
        let read = read_all(files.iter().map(|(f, _)| f.clone()).collect())
            .await
            .unwrap();
        assert_eq!(read, vec![b"one".to_vec(), b"two".to_vec()]);
        let missing = read_all(vec![file("artist_id=A"), root.join("absent")]).await;
        assert!(matches!(missing, Err((1, e)) if e.kind() == io::ErrorKind::NotFound));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn file_names_are_those_of_the_stores_own_mapping() {
        let names = [
            "out/run-1/songs/year=0/artist_id=AR%2FX/part-a-00000.parquet",
            "in/song_data/A/B/C/TRABC 1.json",
            "in/log_data/2018/11/2018-11-01-events.json.gz",
            "odd/caf\u{e9} ? & ;=,+$@!~*'()[]{}<>|^`\"/%25%/x",
            "odd/x#y",
            "odd/x#1",
        ];
        for name in names {
            for path in [Path::parse(name).unwrap(), Path::from(name)] {
                // `x#1` is not a valid file name to the store: both refuse it.
                let store = LOCAL.path_to_filesystem(&path).ok();
                assert_eq!(file_of(&path).ok(), store, "{path}");
            }
        }
    }

    #[test]
    fn object_paths_map_to_the_stores_file_names() {
        let path = Path::parse("out/run-1/songs/year=0/artist_id=AR%2FX").unwrap();
        assert_eq!(
            file_of(&path).unwrap(),
            PathBuf::from("/out/run-1/songs/year=0/artist_id=AR%2FX")
        );
    }
}
