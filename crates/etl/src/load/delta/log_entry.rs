//! One commit of a Delta table, written as its log entry
//! (`_delta_log/<version>.json`) without ever holding its actions.
//!
//! delta-rs commits a `Vec<Action>`: at a million files (songs by
//! `year-artist` at a million songs) that vector, the copy its create
//! operation makes, and the JSON document it builds from them were 2.8 GB
//! of a run's 4.4 GB peak. Here each action is serialized as it is made,
//! into chunks of a few MiB kept compressed (580 MB of Add lines are 90 MB
//! in zstd), and the chunks go out as one conditional PUT: the entry is
//! whole, as JSON, only while it is written. The commitInfo and `txn`
//! lines come from delta-rs ([`CommitData`]), so the entry reads as one of
//! its own.

use bytes::Bytes;
use deltalake_core::kernel::Action;
use deltalake_core::kernel::transaction::CommitData;
use deltalake_core::logstore::{LogStore, commit_uri_from_version};
use object_store::{PutMode, PutOptions, PutPayload};

use crate::error::{EtlError, Result};

/// Actions serialized as lines of a log entry, each after a newline (the
/// entry's first line, the commitInfo, has none), in chunks compressed as
/// they fill.
#[derive(Default)]
pub struct LogLines {
    /// Each closed chunk, compressed, with its length as JSON.
    chunks: Vec<(Vec<u8>, usize)>,
    open: Vec<u8>,
}

/// Lines go into a chunk until it holds this much; a chunk is allocated
/// with room for one more line of [`LINE_ROOM`] bytes, so it is not
/// reallocated unless a single line is longer.
const CHUNK: usize = 8 << 20;
const LINE_ROOM: usize = 64 << 10;
/// zstd's fastest level: a chunk of Add lines compresses about 6 to 1 at
/// several hundred MB/s.
const LEVEL: i32 = 1;

impl LogLines {
    /// Appends `action` as one line.
    pub fn push(&mut self, action: &Action) -> Result<()> {
        if self.open.capacity() == 0 {
            self.open = Vec::with_capacity(CHUNK + LINE_ROOM);
        }
        self.open.push(b'\n');
        serde_json::to_writer(&mut self.open, action)
            .map_err(|e| EtlError::Delta(format!("serializing a Delta log action: {e}")))?;
        if self.open.len() >= CHUNK {
            self.close_chunk()?;
        }
        Ok(())
    }

    /// Compresses the open chunk; the next line opens a new one.
    fn close_chunk(&mut self) -> Result<()> {
        let compressed = zstd::bulk::compress(&self.open, LEVEL)
            .map_err(|e| EtlError::Delta(format!("compressing Delta log lines: {e}")))?;
        self.chunks.push((compressed, self.open.len()));
        self.open = Vec::new();
        Ok(())
    }

    /// The lines as JSON, chunk by chunk, each compressed chunk dropped
    /// once expanded.
    fn into_json(mut self) -> Result<Vec<Bytes>> {
        if !self.open.is_empty() {
            self.close_chunk()?;
        }
        self.chunks
            .into_iter()
            .map(|(compressed, len)| {
                zstd::bulk::decompress(&compressed, len)
                    .map(Bytes::from)
                    .map_err(|e| EtlError::Delta(format!("expanding Delta log lines: {e}")))
            })
            .collect()
    }
}

/// Writes version `version` of the table behind `log_store`: `header`'s
/// actions (commitInfo first, then the protocol and metadata of a new
/// table, then the `txn`), followed by `parts` in order. Put-if-absent, as
/// delta-rs's own log store for S3 and local disk commits: a version that
/// exists already is an error, never overwritten. delta-rs's own
/// `LogStore::write_commit_entry` takes the entry as one buffer, the copy
/// this module exists to avoid.
pub async fn write(
    log_store: &dyn LogStore,
    version: u64,
    header: &CommitData,
    parts: impl IntoIterator<Item = LogLines>,
) -> Result<()> {
    let header = header
        .get_bytes()
        .map_err(|e| EtlError::Delta(format!("serializing a Delta commit: {e}")))?;
    let mut payload = vec![header];
    for part in parts {
        payload.extend(part.into_json()?);
    }
    let payload = PutPayload::from_iter(payload);
    let path = commit_uri_from_version(Some(version));
    let options = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match log_store
        .object_store(None)
        .put_opts(&path, payload, options)
        .await
    {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => Err(EtlError::ConcurrentRun(format!(
            "{}: version {version} was committed by a writer outside this lake's runs",
            log_store.root_url()
        ))),
        Err(error) => Err(EtlError::store(
            format!("writing version {version} of {}", log_store.root_url()),
            error,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake_core::kernel::Remove;

    fn remove(path: &str) -> Action {
        Action::Remove(Remove {
            path: path.into(),
            data_change: true,
            deletion_timestamp: Some(1),
            extended_file_metadata: None,
            partition_values: None,
            size: None,
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
        })
    }

    #[test]
    fn lines_come_back_whole_from_their_compressed_chunks_each_after_a_newline() {
        let mut lines = LogLines::default();
        let long = "x".repeat(CHUNK / 2);
        for name in [long.as_str(), long.as_str(), "short"] {
            lines.push(&remove(name)).unwrap();
        }
        let (held, json) = &lines.chunks[0];
        assert!(
            *json > CHUNK && held.len() < json / 100,
            "{} of {json}",
            held.len()
        );
        let chunks = lines.into_json().unwrap();
        assert_eq!(
            chunks.len(),
            2,
            "the second long line closes the first chunk"
        );
        let text: Vec<u8> = chunks.concat();
        let text = String::from_utf8(text).unwrap();
        assert!(text.starts_with('\n'));
        let paths: Vec<String> = text[1..]
            .split('\n')
            .map(|line| match serde_json::from_str::<Action>(line).unwrap() {
                Action::Remove(remove) => remove.path,
                other => panic!("not a remove: {other:?}"),
            })
            .collect();
        assert_eq!(paths, [long.clone(), long, "short".into()]);
    }
}
