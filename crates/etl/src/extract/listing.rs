//! Finding the raw input files under an input root.
//!
//! Only `*.json` and `*.json.gz` files count as input. Everything else that
//! lives in a real bucket (`_SUCCESS`, `.DS_Store`, `*.crc`, files under
//! `_temporary/` or hidden folders) is left out by the rules Hadoop-style
//! tools follow, and listed in the run report, so nothing vanishes unseen.

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path;
use serde::Serialize;

use crate::error::{EtlError, Result};
use crate::local_disk;
use crate::location::Location;
use crate::schema::InputKind;

/// One input file as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InputFile {
    /// Object path within the store.
    pub path: String,
    pub size: u64,
}

/// The input files of one kind, sorted by path.
#[derive(Clone, Debug, Default, Serialize)]
pub struct InputListing {
    pub files: Vec<InputFile>,
    /// Objects under the folder that are not input, by path.
    pub ignored: Vec<String>,
}

impl InputListing {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Lists `<input>/<kind folder>/**`. An absent or empty folder is an error
/// that names it: a run over nothing must not publish empty tables.
pub async fn list_input(
    store: &dyn ObjectStore,
    input: &Location,
    kind: InputKind,
) -> Result<InputListing> {
    let folder = input.object_path().join(kind.folder());
    let context = || format!("listing {}/{}", input.url(), kind.folder());
    let objects = if input.is_local() {
        local_objects(&folder)
            .await
            .map_err(|e| EtlError::local(context(), e).about_input())?
    } else {
        store_objects(store, &folder)
            .await
            .map_err(|e| EtlError::store(context(), e).about_input())?
    };
    let mut listing = InputListing::default();
    for (location, size) in objects {
        let relative: Vec<_> = location
            .prefix_match(&folder)
            .map(|parts| parts.collect())
            .unwrap_or_default();
        let names: Vec<&str> = relative.iter().map(|p| p.as_ref()).collect();
        if is_input_file(&names) {
            listing.files.push(InputFile {
                path: location.to_string(),
                size,
            });
        } else {
            listing.ignored.push(location.to_string());
        }
    }
    if listing.files.is_empty() {
        return Err(EtlError::NoInput {
            location: format!("{}/{}", input.url(), kind.folder()),
            ignored: listing.ignored.len(),
        });
    }
    listing.files.sort_by(|a, b| a.path.cmp(&b.path));
    listing.ignored.sort();
    Ok(listing)
}

/// Listings one input listing keeps in flight.
const LISTINGS_IN_FLIGHT: usize = 16;

/// The objects under a store folder with their sizes. A LIST request
/// answers at most 1,000 keys and each page asks for the next, so one
/// listing of a million song files is a thousand round trips in a row; the
/// folder's subfolders (`song_data/A/`, `B/`, …) are listed concurrently
/// instead, for one extra request.
async fn store_objects(
    store: &dyn ObjectStore,
    folder: &Path,
) -> object_store::Result<Vec<(Path, u64)>> {
    let top = store.list_with_delimiter(Some(folder)).await?;
    let mut objects: Vec<(Path, u64)> = top
        .objects
        .into_iter()
        .map(|meta| (meta.location, meta.size))
        .collect();
    let mut listings = futures::stream::iter(top.common_prefixes)
        .map(|prefix| async move {
            store
                .list(Some(&prefix))
                .map_ok(|meta| (meta.location, meta.size))
                .try_collect::<Vec<_>>()
                .await
        })
        .buffer_unordered(LISTINGS_IN_FLIGHT);
    while let Some(listed) = listings.next().await {
        objects.extend(listed?);
    }
    Ok(objects)
}

/// The files under a local folder as object paths with their sizes, walked
/// by [`crate::local_disk`]: the same objects object_store's local listing
/// finds, with one `stat` per file instead of three.
async fn local_objects(folder: &Path) -> std::io::Result<Vec<(Path, u64)>> {
    let root = local_disk::file_of(folder).map_err(std::io::Error::other)?;
    let files = local_disk::sized_files_under(root).await?;
    files
        .into_iter()
        .map(|(file, size)| {
            Path::from_absolute_path(&file)
                .map(|path| (path, size))
                .map_err(std::io::Error::other)
        })
        .collect()
}

/// Input is a `.json` or `.json.gz` file with no hidden part in its path.
fn is_input_file(parts: &[&str]) -> bool {
    let Some(name) = parts.last() else {
        return false;
    };
    let hidden = parts
        .iter()
        .any(|p| p.starts_with('_') || p.starts_with('.'));
    !hidden && (name.ends_with(".json") || name.ends_with(".json.gz"))
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
            "B/z.json",
            "B/_SUCCESS",
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
        let mut split = store_objects(&store, &folder).await.unwrap();
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
        let mut walked = local_objects(&folder).await.unwrap();
        walked.sort();
        assert_eq!(walked.len(), 10, "{walked:?}");
        assert_eq!(walked, one_listing(&LocalFileSystem::new(), &folder).await);

        let absent = Path::from_absolute_path(temp.join("log_data")).unwrap();
        assert!(local_objects(&absent).await.unwrap().is_empty());
        std::fs::remove_dir_all(&temp).unwrap();
    }

    #[test]
    fn only_visible_json_files_are_input() {
        assert!(is_input_file(&["A", "B", "C", "TRABC.json"]));
        assert!(is_input_file(&["2018", "11", "2018-11-01-events.json.gz"]));
        assert!(!is_input_file(&["2018", "_SUCCESS"]));
        assert!(!is_input_file(&["A", ".DS_Store"]));
        assert!(!is_input_file(&["A", ".TRABC.json.crc"]));
        assert!(!is_input_file(&["_temporary", "0", "part.json"]));
        assert!(!is_input_file(&["A", "notes.txt"]));
    }
}
