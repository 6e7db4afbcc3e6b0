//! Where a location's objects are, chosen once per location: on local
//! disk, listed, read and deleted many files per blocking call
//! ([`crate::local_disk`]), or in an object store, many requests in
//! flight. Listing the input, the raw scan, the writers and publishing ask
//! a [`Storage`] instead of testing the location themselves.

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::local_disk;
use crate::location::Location;

/// How a scan task reads an object store: reads of 16 files, 16 of them
/// going, so up to 256 fetches in flight per task. The number in flight
/// is what counts: over the full input on s3s-fs this staged the song
/// files in 1.7 s instead of 2.9 with two reads of 64, and in 2.5 s
/// instead of 4.5 at 20 ms a request, where the same 128 fetches in
/// reads of 16 gained nothing (docs/benchmarks.md).
const STORE_READS: ReadShape = ReadShape {
    files: 16,
    reads: 16,
};
/// Local files are read 256 per blocking call, one call read while the
/// task decodes another.
const LOCAL_READS: ReadShape = ReadShape {
    files: 256,
    reads: 2,
};
/// Listings of one folder's subfolders kept in flight.
const LISTINGS_IN_FLIGHT: usize = 16;
/// How many folder levels a store listing descends, one request per
/// folder, looking for at least [`LISTINGS_IN_FLIGHT`] folders to list.
const SPLIT_DEPTH: usize = 3;

/// How many files one [`Storage::read_all`] should be given, and how many
/// such reads a task keeps going while their bytes fit its read budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadShape {
    pub files: usize,
    pub reads: usize,
}

/// One object as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub path: Path,
    pub size: u64,
    /// What changes when the object is rewritten: its ETag in a store, its
    /// modification time (nanoseconds) on local disk.
    pub version: String,
}

impl Listed {
    fn of(meta: object_store::ObjectMeta) -> Self {
        let version = match meta.e_tag {
            Some(tag) => format!("etag:{tag}"),
            None => format!("mtime:{}", meta.last_modified.timestamp_millis()),
        };
        Self {
            path: meta.location,
            size: meta.size,
            version,
        }
    }
}

/// The objects of one location.
#[derive(Clone, Debug)]
pub enum Storage {
    /// `file://`: through [`crate::local_disk`], with the `file://` store's
    /// mapping from object paths to file names.
    LocalDisk,
    /// Any other store (S3).
    Store(Arc<dyn ObjectStore>),
}

impl Storage {
    /// The storage of `location`, whose store is `store`.
    pub fn of(location: &Location, store: Arc<dyn ObjectStore>) -> Self {
        if location.is_local() {
            Storage::LocalDisk
        } else {
            Storage::Store(store)
        }
    }

    /// Every object under `folder`, with its size. A LIST request answers
    /// at most 1,000 keys and each page asks for the next, so one listing
    /// of a million song files is a thousand round trips in a row; a
    /// store's subfolders are listed concurrently instead, found level by
    /// level until there are enough of them (`song_data/` holds only `A/`,
    /// which holds `A/` to `Z/`), for one request per folder found. Local
    /// folders are walked with one `stat` per file instead of
    /// object_store's three.
    pub async fn list(&self, folder: &Path) -> object_store::Result<Vec<Listed>> {
        match self {
            Storage::LocalDisk => {
                let root = local_disk::file_of(folder).map_err(local_error)?;
                let files = local_disk::sized_files_under(root)
                    .await
                    .map_err(local_error)?;
                files
                    .into_iter()
                    .map(|(file, size, modified)| {
                        Path::from_absolute_path(&file)
                            .map(|path| Listed {
                                path,
                                size,
                                version: format!("mtime:{modified}"),
                            })
                            .map_err(local_error)
                    })
                    .collect()
            }
            Storage::Store(store) => list_concurrently(store.as_ref(), folder).await,
        }
    }

    /// How a task should read its files from here.
    pub fn read_shape(&self) -> ReadShape {
        match self {
            Storage::LocalDisk => LOCAL_READS,
            Storage::Store(_) => STORE_READS,
        }
    }

    /// Reads whole files, in order; on a failure, which one and why. Song
    /// files are a few hundred bytes, log files a few megabytes: one GET
    /// each is cheaper than ranged reads.
    pub async fn read_all(
        &self,
        paths: Vec<Path>,
    ) -> Result<Vec<Bytes>, (usize, object_store::Error)> {
        match self {
            Storage::LocalDisk => {
                let files = paths
                    .iter()
                    .enumerate()
                    .map(|(i, path)| local_disk::file_of(path).map_err(|e| (i, local_error(e))))
                    .collect::<Result<Vec<_>, _>>()?;
                let contents = local_disk::read_all(files)
                    .await
                    .map_err(|(i, e)| (i, local_error(e)))?;
                Ok(contents.into_iter().map(Bytes::from).collect())
            }
            // A read's files are fetched all at once: its caller sizes it.
            Storage::Store(store) => {
                futures::future::try_join_all(paths.into_iter().enumerate().map(
                    |(i, path)| async move {
                        let read = async { store.get(&path).await?.bytes().await };
                        read.await.map_err(|e| (i, e))
                    },
                ))
                .await
            }
        }
    }

    /// Deletes a folder and everything in it; one that is not there is no
    /// error. On local disk the folder goes whole, off the async threads,
    /// with what a killed write left in it (a temporary file no listing
    /// shows).
    pub async fn remove_folder(&self, dir: &Location) -> object_store::Result<()> {
        match self {
            Storage::LocalDisk => {
                let path = local_disk::file_of(&dir.object_path()).map_err(local_error)?;
                let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(path))
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                match removed {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(local_error(e)),
                    _ => Ok(()),
                }
            }
            Storage::Store(store) => {
                let objects = store.list(Some(&dir.object_path())).map_ok(|m| m.location);
                store
                    .delete_stream(objects.boxed())
                    .try_collect::<Vec<_>>()
                    .await
                    .map(|_| ())
            }
        }
    }
}

/// See [`Storage::list`].
async fn list_concurrently(
    store: &dyn ObjectStore,
    folder: &Path,
) -> object_store::Result<Vec<Listed>> {
    let mut objects: Vec<Listed> = Vec::new();
    let mut folders = vec![folder.clone()];
    for _ in 0..SPLIT_DEPTH {
        if folders.len() >= LISTINGS_IN_FLIGHT {
            break;
        }
        let levels: Vec<_> = futures::stream::iter(folders)
            .map(|folder| async move { store.list_with_delimiter(Some(&folder)).await })
            .buffer_unordered(LISTINGS_IN_FLIGHT)
            .try_collect()
            .await?;
        folders = Vec::new();
        for level in levels {
            objects.extend(level.objects.into_iter().map(Listed::of));
            folders.extend(level.common_prefixes);
        }
    }
    let mut listings = futures::stream::iter(folders)
        .map(|prefix| async move {
            store
                .list(Some(&prefix))
                .map_ok(Listed::of)
                .try_collect::<Vec<_>>()
                .await
        })
        .buffer_unordered(LISTINGS_IN_FLIGHT);
    while let Some(listed) = listings.next().await {
        objects.extend(listed?);
    }
    Ok(objects)
}

/// A local disk error as the `file://` store would report it.
fn local_error(source: impl std::error::Error + Send + Sync + 'static) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder shaped like `song_data`, deeper than the walk's split depth,
    /// with names that need escaping in URLs, links and a broken link.
    fn odd_tree(root: &std::path::Path) {
        let file = |relative: &str, bytes: &[u8]| {
            let path = root.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        };
        file("top.json", b"1");
        file("A/second.json", b"22");
        file("A/B/C/TRA.json", b"333");
        file("A/B/C/D/E/deep.json", b"4444");
        file("A/B/with space/é%2F=x.json", b"55555");
        file("A/B/_SUCCESS", b"");
        file("Z/Y/.hidden.json", b"666666");
        let link = |target: &str, name: &str| {
            std::os::unix::fs::symlink(root.join(target), root.join(name)).unwrap()
        };
        link("A/B/C/TRA.json", "A/B/linked.json");
        link("A/B/C", "Z/Y/linked-folder");
        link("absent.json", "A/B/broken.json");
    }

    /// `folder` as the store lists it in one listing, sorted.
    /// Paths and sizes: versions differ between the listings compared.
    fn sized(listed: Vec<Listed>) -> Vec<(Path, u64)> {
        listed.into_iter().map(|l| (l.path, l.size)).collect()
    }

    async fn one_listing(store: &dyn ObjectStore, folder: &Path) -> Vec<(Path, u64)> {
        let mut listed: Vec<(Path, u64)> = store
            .list(Some(folder))
            .map_ok(|meta| (meta.location, meta.size))
            .try_collect()
            .await
            .unwrap();
        listed.sort();
        listed
    }

    #[tokio::test]
    async fn a_store_folder_listed_by_subfolder_is_listed_whole() {
        use object_store::memory::InMemory;
        use object_store::{ObjectStoreExt, PutPayload};

        let store = InMemory::new();
        let names = [
            "top.json",
            "A/x.json",
            "A/B/C/y.json",
            "A/B/C/D/E/deeper_than_the_split.json",
            "B/z.json",
            "B/_SUCCESS",
            "Q/R/S/T/one_folder_per_level.json",
        ];
        for name in ["in/song_data", "in/song_data_old"].map(|f| format!("{f}/")) {
            for (i, file) in names.iter().enumerate() {
                let bytes = PutPayload::from(vec![b'x'; i + 1]);
                store
                    .put(&Path::from(format!("{name}{file}")), bytes)
                    .await
                    .unwrap();
            }
        }
        let folder = Path::from("in/song_data");
        let mut split = sized(
            Storage::Store(Arc::new(store.clone()))
                .list(&folder)
                .await
                .unwrap(),
        );
        split.sort();
        assert_eq!(split.len(), names.len());
        assert_eq!(split, one_listing(&store, &folder).await);
    }

    #[tokio::test]
    async fn the_local_walk_lists_what_object_stores_local_listing_lists() {
        use object_store::local::LocalFileSystem;

        let temp = std::env::temp_dir().join(format!("listing-{}", uuid::Uuid::new_v4()));
        let root = temp.join("song_data");
        odd_tree(&root);
        let folder = Path::from_absolute_path(&root).unwrap();
        let mut walked = sized(Storage::LocalDisk.list(&folder).await.unwrap());
        walked.sort();
        assert_eq!(walked.len(), 10, "{walked:?}");
        assert_eq!(walked, one_listing(&LocalFileSystem::new(), &folder).await);

        let absent = Path::from_absolute_path(temp.join("log_data")).unwrap();
        assert!(Storage::LocalDisk.list(&absent).await.unwrap().is_empty());
        std::fs::remove_dir_all(&temp).unwrap();
    }
}
