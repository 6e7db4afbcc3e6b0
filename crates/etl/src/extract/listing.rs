//! Finding the raw input files under an input root.
//!
//! Only `*.json` and `*.json.gz` files count as input. Everything else that
//! lives in a real bucket (`_SUCCESS`, `.DS_Store`, `*.crc`, files under
//! `_temporary/` or hidden folders) is left out by the rules Hadoop-style
//! tools follow, and listed in the run report, so nothing vanishes unseen.

use std::sync::Arc;

use object_store::ObjectStore;
use serde::Serialize;

use crate::error::{EtlError, Result};
use crate::location::Location;
use crate::schema::InputKind;
use crate::storage::Storage;

/// One input file as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InputFile {
    /// Object path within the store.
    pub path: String,
    pub size: u64,
    /// The file's stable number, from its path under the input root
    /// ([`file_key`]): the high bits of its records' ids.
    pub key: i64,
    /// Its ETag in a store, its modification time on local disk: what
    /// tells an incremental run that a file it ingested was rewritten.
    pub version: String,
}

/// Bits of a record id that hold the record's position in its file; the
/// bits above, to 63, hold its file's key. An event log holds a day of
/// events (23 bits: 8 million lines), a song file one song (7 bits), which
/// leaves songs 56-bit keys: a million song files then share a key with a
/// chance of 1 in 140,000, where 40 bits would make it likely.
pub fn record_bits(kind: InputKind) -> u32 {
    match kind {
        InputKind::Songs => 7,
        InputKind::Events => 23,
    }
}

/// The most records one file of `kind` may hold: record ids number them
/// in [`record_bits`] bits. Records past it are rejected.
pub fn max_records_per_file(kind: InputKind) -> usize {
    (1 << record_bits(kind)) - 1
}

/// A file's key: the top 63 - [`record_bits`] bits of the XXH64 hash (seed
/// 0) of its path under the input root (`log_data/2018/11/2018-11-01-events.json`).
/// It depends on nothing else, so adding files never renumbers the records
/// of others, and a full run and a series of incremental runs give every
/// record the same id. Two files of one input with one key stop a run
/// ([`check_keys_distinct`]), so record ids stay unique.
pub fn file_key(kind: InputKind, relative_path: &str) -> i64 {
    let hash = twox_hash::XxHash64::oneshot(0, relative_path.as_bytes());
    (hash >> (record_bits(kind) + 1)) as i64
}

/// A record's id: its file's key, then its 1-based position in the file.
pub fn record_id(kind: InputKind, file_key: i64, position: usize) -> i64 {
    (file_key << record_bits(kind)) | (position & max_records_per_file(kind)) as i64
}

/// Fails, naming both files, when two of `files` (path and key) share a
/// key: their records' ids would collide. For n files of a kind the chance
/// is about n²/2^(64 - bits): one in 20,000 for 10,000 daily logs.
pub fn check_keys_distinct<'a>(files: impl Iterator<Item = (&'a str, i64)>) -> Result<()> {
    let mut seen: std::collections::HashMap<i64, &str> = std::collections::HashMap::new();
    for (path, key) in files {
        if let Some(other) = seen.insert(key, path)
            && other != path
        {
            return Err(EtlError::InputConflict(format!(
                "{other} and {path} have the same file key {key:#x}: rename one of them, or their records' ids would collide"
            )));
        }
    }
    Ok(())
}

/// The input files of one kind, sorted by path.
#[derive(Clone, Debug, Default, Serialize)]
pub struct InputListing {
    pub files: Vec<InputFile>,
    /// Objects under the folder that are not input, by path.
    pub ignored: Vec<String>,
    /// How long the listing took.
    pub seconds: f64,
}

impl InputListing {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Lists `<input>/<kind folder>/**`. An absent or empty folder is an error
/// that names it: a run over nothing must not publish empty tables.
pub async fn list_input(
    store: Arc<dyn ObjectStore>,
    input: &Location,
    kind: InputKind,
) -> Result<InputListing> {
    let folder = input.object_path().join(kind.folder());
    let objects = Storage::of(input, store).list(&folder).await.map_err(|e| {
        EtlError::store(format!("listing {}/{}", input.url(), kind.folder()), e).about_input()
    })?;
    let mut listing = InputListing::default();
    for listed in objects {
        let relative: Vec<_> = listed
            .path
            .prefix_match(&folder)
            .map(|parts| parts.collect())
            .unwrap_or_default();
        let names: Vec<&str> = relative.iter().map(|p| p.as_ref()).collect();
        if is_input_file(&names) {
            let under_root = format!("{}/{}", kind.folder(), names.join("/"));
            listing.files.push(InputFile {
                path: listed.path.to_string(),
                size: listed.size,
                key: file_key(kind, &under_root),
                version: listed.version,
            });
        } else {
            listing.ignored.push(listed.path.to_string());
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
    check_keys_distinct(listing.files.iter().map(|f| (f.path.as_str(), f.key)))?;
    Ok(listing)
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

    #[test]
    fn a_file_key_depends_on_the_path_alone_and_leaves_room_for_positions() {
        let events = InputKind::Events;
        let key = file_key(events, "log_data/2018/11/2018-11-01-events.json");
        // XXH64 of that path, seed 0, shifted right by 24: what the peers
        // in bench/peers compute too
        // (Python: xxhash.xxh64_intdigest(path.encode()) >> 24).
        assert_eq!(key, (0xbcc0_2b51_f096_be0eu64 >> 24) as i64);
        assert_ne!(
            key,
            file_key(events, "log_data/2018/11/2018-11-02-events.json")
        );
        assert_eq!(record_id(events, key, 3) >> 23, key);
        assert_eq!(record_id(events, key, 3) & 0x7f_ffff, 3);
        for kind in InputKind::ALL {
            let widest = file_key(kind, "x") | i64::MAX >> (record_bits(kind) + 1);
            assert!(record_id(kind, widest, max_records_per_file(kind)) > 0);
        }
        let song = file_key(InputKind::Songs, "song_data/A/A/A/TRAAAAK128F9318786.json");
        assert!(song >= 1 << 40, "songs get 56-bit keys: {song:#x}");
    }

    #[test]
    fn two_files_with_one_key_are_named() {
        let error = check_keys_distinct([("a.json", 7), ("b.json", 8), ("c.json", 7)].into_iter())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("a.json and c.json have the same file key 0x7"),
            "{error}"
        );
        assert!(check_keys_distinct([("a.json", 7), ("a.json", 7)].into_iter()).is_ok());
    }
}
