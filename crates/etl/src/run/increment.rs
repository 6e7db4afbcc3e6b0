//! What a run loads: all of the input (a full run), or with
//! `--incremental` only the files the lake has not loaded yet, on top of
//! the records it staged before.
//!
//! An incremental run builds on the lake only when the lake can say what
//! its tables hold: its ingest record ([`crate::load::ingested`]) and the
//! staged records exist, and the last run that claimed the lake finished
//! its commits. Otherwise it is a full run, and says why in the log.

use std::collections::{HashMap, HashSet};

use crate::error::{EtlError, Result};
use crate::extract::listing::{InputFile, InputListing, check_keys_distinct};
use crate::load::ingested::{self, INGESTED, Ingested};
use crate::load::lake_log::{LakeLog, Settled};
use crate::load::publish::staged_table;
use crate::load::writer::WrittenFile;
use crate::schema::InputKind;

use super::steps::Run;

/// What one run stages, and what it builds on.
pub(super) struct Scope {
    /// Every table is rebuilt from the files below alone.
    pub(super) full: bool,
    /// The files this run stages: all of them on a full run, the new ones
    /// on an incremental run.
    pub(super) songs: InputListing,
    pub(super) events: InputListing,
    /// The staged files of earlier runs (incremental runs only).
    pub(super) earlier_songs: Vec<WrittenFile>,
    pub(super) earlier_events: Vec<WrittenFile>,
    /// Listed files the lake had loaded already, per input (for the report).
    pub(super) loaded: [usize; 2],
}

impl Scope {
    fn full(songs: InputListing, events: InputListing) -> Self {
        Self {
            full: true,
            songs,
            events,
            earlier_songs: Vec::new(),
            earlier_events: Vec::new(),
            loaded: [0, 0],
        }
    }

    /// Whether an incremental run found nothing new to load.
    pub(super) fn is_empty(&self) -> bool {
        self.songs.files.is_empty() && self.events.files.is_empty()
    }
}

/// How a listing compares with what the lake loaded.
#[derive(Debug, Default, PartialEq)]
struct Split {
    new: Vec<InputFile>,
    loaded: usize,
    /// Loaded files whose size or version is no longer what was loaded.
    changed: Vec<String>,
    /// Loaded files no longer listed: their rows stay.
    gone: usize,
}

/// Sorts `listed` into new, loaded and changed files against `ingested`.
fn split(listed: &[InputFile], ingested: &HashMap<String, Ingested>) -> Split {
    let mut split = Split::default();
    for file in listed {
        match ingested.get(&file.path) {
            None => split.new.push(file.clone()),
            Some(had) if had.size == file.size && had.version == file.version => split.loaded += 1,
            Some(had) => split.changed.push(format!(
                "{} ({} bytes, {} when loaded; now {} bytes, {})",
                file.path, had.size, had.version, file.size, file.version
            )),
        }
    }
    let listed: HashSet<&str> = listed.iter().map(|f| f.path.as_str()).collect();
    split.gone = ingested
        .keys()
        .filter(|p| !listed.contains(p.as_str()))
        .count();
    split
}

impl Run<'_> {
    /// What this run loads, given the listings and the last claim on the
    /// lake seen at the start (`base`).
    pub(super) async fn scope(
        &self,
        base: Option<u64>,
        songs: InputListing,
        events: InputListing,
    ) -> Result<Scope> {
        if !self.config.incremental {
            return Ok(Scope::full(songs, events));
        }
        let store = self.store(&self.config.output)?;
        let log = LakeLog::new(store, &self.config.output);
        // Fails while the claim is young: that run may still commit.
        if let Some(base) = base
            && log.check_settled(base, self.config.claim_timeout).await? == Settled::Abandoned
        {
            tracing::warn!(
                "lake run {base} never finished its commits: this run rebuilds every table"
            );
            return Ok(Scope::full(songs, events));
        }
        let Some(record) = ingested::read(&self.delta_target(INGESTED)).await? else {
            tracing::info!(
                "the lake has no record of ingested input yet: this run rebuilds every table"
            );
            return Ok(Scope::full(songs, events));
        };
        let staged = |kind| self.delta_target(&staged_table(kind));
        let (Some(earlier_songs), Some(earlier_events)) = (
            staged(InputKind::Songs).current_files().await?,
            staged(InputKind::Events).current_files().await?,
        ) else {
            tracing::info!("the lake has no staged records: this run rebuilds every table");
            return Ok(Scope::full(songs, events));
        };
        let mut scope = Scope {
            full: false,
            songs: InputListing::default(),
            events: InputListing::default(),
            earlier_songs,
            earlier_events,
            loaded: [0, 0],
        };
        for (index, (kind, listing)) in [(InputKind::Songs, songs), (InputKind::Events, events)]
            .into_iter()
            .enumerate()
        {
            let loaded = record.of(kind);
            let split = split(&listing.files, loaded);
            if let Some(first) = split.changed.first() {
                return Err(EtlError::InputConflict(format!(
                    "{} {} files changed since the lake loaded them, first {first}: an incremental run cannot replace their rows; rerun with --full",
                    split.changed.len(),
                    kind.name()
                )));
            }
            if split.gone > 0 {
                tracing::warn!(
                    "{} {} files the lake loaded are no longer in the input; their rows stay (a --full run drops them)",
                    split.gone,
                    kind.name()
                );
            }
            let keys = loaded.iter().map(|(path, had)| (path.as_str(), had.key));
            check_keys_distinct(keys.chain(split.new.iter().map(|f| (f.path.as_str(), f.key))))?;
            scope.loaded[index] = split.loaded;
            let new = InputListing {
                files: split.new,
                ..listing
            };
            match kind {
                InputKind::Songs => scope.songs = new,
                InputKind::Events => scope.events = new,
            }
        }
        Ok(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, size: u64, version: &str) -> InputFile {
        InputFile {
            path: path.into(),
            size,
            key: 0,
            version: version.into(),
        }
    }

    #[test]
    fn a_listing_splits_into_new_loaded_changed_and_gone_files() {
        let had = |size, version: &str| Ingested {
            size,
            version: version.into(),
            key: 0,
        };
        let ingested = HashMap::from([
            ("a.json".to_string(), had(10, "etag:1")),
            ("b.json".to_string(), had(10, "etag:1")),
            ("c.json".to_string(), had(10, "etag:1")),
            ("gone.json".to_string(), had(10, "etag:1")),
        ]);
        let listed = [
            file("a.json", 10, "etag:1"),
            file("b.json", 12, "etag:2"),
            file("c.json", 10, "etag:3"),
            file("new.json", 5, "etag:9"),
        ];
        let split = split(&listed, &ingested);
        assert_eq!(split.new, [file("new.json", 5, "etag:9")]);
        assert_eq!(split.loaded, 1);
        assert_eq!(
            split.changed,
            [
                "b.json (10 bytes, etag:1 when loaded; now 12 bytes, etag:2)",
                "c.json (10 bytes, etag:1 when loaded; now 10 bytes, etag:3)"
            ]
        );
        assert_eq!(split.gone, 1);
    }
}
