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
}
