//! Turning the bytes of raw input files into Arrow records, accounting for
//! every record: each one is either decoded or rejected with a reason.
//!
//! A file's text comes from [`super::text`], its records' places from
//! [`super::records`]; this module decodes them and checks their values
//! ([`super::values`]).
//!
//! Clean input takes a fast path: many files go through one Arrow JSON
//! decoder, which is what makes a million tiny song files affordable. Only
//! when a group of files holds something wrong does it fall back to decoding
//! record by record, so that a bad record costs its own row and nothing else.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::ReaderBuilder;
use datafusion::arrow::json::reader::Decoder;
use serde::Serialize;

use super::listing::{max_records_per_file, record_id};
use super::records::{LineCounter, Span, repeated_key, split_records};
use super::text::FileText;
pub use super::text::{MAX_INFLATED_BYTES, SourceFile};
use super::values;
use crate::schema::InputKind;

/// Rows per batch on the fast path.
const CLEAN_BATCH_ROWS: usize = 8192;

/// At most this much of a rejected record's text is kept in the reject file.
const MAX_RAW_TEXT: usize = 64 * 1024;

/// A partition value is at most this many bytes once escaped: its directory
/// `artist_id=<value>` must fit a file name (255 bytes on Linux file
/// systems) and leave an S3 key well under its 1,024 bytes.
const MAX_PARTITION_VALUE_BYTES: usize = 200;

/// The timestamps `ts` may hold: years 1 to 9999, what every reader of a
/// Parquet timestamp and Spark's calendar functions accept.
const TS_RANGE_MS: std::ops::RangeInclusive<i64> = -62_135_596_800_000..=253_402_300_799_999;

/// A record that could not be loaded, with enough to find it again.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reject {
    /// `songs` or `events`.
    pub input: &'static str,
    /// The file the record came from.
    pub file: String,
    /// 1-based line where the record starts (after decompression).
    pub line: u64,
    /// Byte offset where the record starts (after decompression).
    pub byte_offset: u64,
    /// Why it was rejected.
    pub reason: String,
    /// The record's text, cut at 64 KiB.
    pub raw: String,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// What decoding a group of files produced.
#[derive(Debug)]
pub struct Decoded {
    /// The good records, in the scan schema (JSON fields + record id), in
    /// the decoder's batches: a day of events is not copied into one.
    pub batches: Vec<RecordBatch>,
    /// The bad ones.
    pub rejects: Vec<Reject>,
}

/// Decodes raw files of one input kind.
#[derive(Debug, Clone)]
pub struct RecordDecoder {
    kind: InputKind,
    json_schema: SchemaRef,
    scan_schema: SchemaRef,
}

impl RecordDecoder {
    pub fn new(kind: InputKind) -> Self {
        Self {
            kind,
            json_schema: kind.json_schema(),
            scan_schema: kind.scan_schema(),
        }
    }

    /// Decodes a group of files, trying the fast path first.
    pub fn decode_files(&self, files: &[SourceFile]) -> Result<Decoded, ArrowError> {
        let texts: Vec<FileText> = files.iter().map(FileText::prepare).collect();
        if texts.iter().all(|t| t.error.is_none())
            && let Ok(batches) = self.decode_clean(&texts)
        {
            return Ok(Decoded {
                batches,
                rejects: Vec::new(),
            });
        }
        self.decode_record_by_record(&texts)
    }

    /// All files through one decoder, in batches of up to
    /// [`CLEAN_BATCH_ROWS`]. Fails as a whole if anything is wrong,
    /// including a record that misses a required field.
    fn decode_clean(&self, texts: &[FileText]) -> Result<Vec<RecordBatch>, ArrowError> {
        let mut decoder = self.json_decoder(CLEAN_BATCH_ROWS)?;
        let mut batches = Vec::new();
        let mut flushed = 0;
        let mut record_ids = Vec::new();
        for text in texts {
            let before = flushed + decoder.len();
            let mut bytes = &text.content[..];
            while !bytes.is_empty() {
                let read = decoder.decode(bytes)?;
                bytes = &bytes[read..];
                if !bytes.is_empty() {
                    // The decoder stops when a batch is full.
                    flushed += decoder.len();
                    batches.extend(decoder.flush()?);
                }
            }
            if decoder.has_partial_record() {
                return Err(ArrowError::JsonError("truncated record".into()));
            }
            if let Some(key) = repeated_key(&text.content) {
                return Err(ArrowError::JsonError(format!("repeated key {key:?}")));
            }
            let count = flushed + decoder.len() - before;
            if count > max_records_per_file(self.kind) {
                // Record by record, the records past the limit are rejected.
                return Err(ArrowError::InvalidArgumentError(self.too_many_records()));
            }
            record_ids.extend((1..=count).map(|n| record_id(self.kind, text.key, n)));
        }
        batches.extend(decoder.flush()?);
        // One array of ids, each batch given its slice of it without a copy.
        let ids = Int64Array::from(record_ids);
        let mut offset = 0;
        batches
            .into_iter()
            .map(|batch| {
                if let Some((_, reason)) = self.first_invalid_row(&batch) {
                    return Err(ArrowError::InvalidArgumentError(reason));
                }
                let these = ids.slice(offset, batch.num_rows());
                offset += batch.num_rows();
                self.with_record_ids(batch, these)
            })
            .collect()
    }

    /// One record at a time, so that each bad one is rejected on its own.
    fn decode_record_by_record(&self, texts: &[FileText]) -> Result<Decoded, ArrowError> {
        let mut batches = Vec::new();
        let mut rejects = Vec::new();
        for text in texts {
            if let Some(reason) = &text.error {
                let span = Span::whole(&text.content);
                rejects.push(self.reject(text, &span, 1, reason.clone()));
                continue;
            }
            // Lines are counted on from the previous record, never from
            // the start: a file of many rejects costs linear time.
            let mut lines = LineCounter::default();
            for (n, span) in split_records(&text.content).into_iter().enumerate() {
                match self.decode_one(text, &span, n + 1) {
                    Ok(batch) => batches.push(batch),
                    Err(reason) => {
                        let line = lines.line_at(&text.content, span.start);
                        rejects.push(self.reject(text, &span, line, reason));
                    }
                }
            }
        }
        // One record per batch: put together, they are one batch.
        let batch = concat_batches(&self.scan_schema, &batches)?;
        Ok(Decoded {
            batches: vec![batch],
            rejects,
        })
    }

    /// Decodes a single record, or says why it cannot be loaded.
    fn decode_one(
        &self,
        text: &FileText,
        span: &Span,
        position: usize,
    ) -> Result<RecordBatch, String> {
        if position > max_records_per_file(self.kind) {
            return Err(self.too_many_records());
        }
        if let Some(reason) = &span.syntax_error {
            return Err(reason.clone());
        }
        let bytes = &text.content[span.start..span.end];
        if let Some(key) = repeated_key(bytes) {
            return Err(format!("key {key:?} appears twice in the record"));
        }
        let mut decoder = self.json_decoder(1).map_err(|e| e.to_string())?;
        feed(&mut decoder, bytes).map_err(|e| clean_arrow_error(&e))?;
        let batch = decoder
            .flush()
            .map_err(|e| clean_arrow_error(&e))?
            .ok_or_else(|| "empty record".to_string())?;
        if let Some((_, reason)) = self.first_invalid_row(&batch) {
            return Err(reason);
        }
        let id = Int64Array::from(vec![record_id(self.kind, text.key, position)]);
        self.with_record_ids(batch, id).map_err(|e| e.to_string())
    }

    fn json_decoder(&self, batch_rows: usize) -> Result<Decoder, ArrowError> {
        ReaderBuilder::new(self.json_schema.clone())
            .with_coerce_primitive(true)
            .with_batch_size(batch_rows)
            .build_decoder()
    }

    /// The first row that lacks a field the tables need, or holds a value
    /// a table cannot hold or a path cannot carry, with the reason: such a
    /// record is quarantined like any other bad record, never left to fail
    /// a job later.
    fn first_invalid_row(&self, batch: &RecordBatch) -> Option<(usize, String)> {
        for field in self.kind.required_fields() {
            let column = batch
                .column_by_name(field)
                .expect("required field in schema");
            if column.null_count() > 0 {
                let row = (0..column.len()).find(|&i| column.is_null(i))?;
                return Some((row, format!("missing required field '{field}'")));
            }
        }
        match self.kind {
            InputKind::Songs => values::first_int_out_of_range(
                batch,
                "year",
                i32::MIN as i64..=i32::MAX as i64,
                "an int",
            )
            .or_else(|| {
                values::first_non_finite(
                    batch,
                    &["duration", "artist_latitude", "artist_longitude"],
                )
            })
            .or_else(|| values::first_unusable_key(batch, "song_id", None))
            .or_else(|| {
                values::first_unusable_key(batch, "artist_id", Some(MAX_PARTITION_VALUE_BYTES))
            }),
            InputKind::Events => values::first_int_out_of_range(
                batch,
                "ts",
                TS_RANGE_MS,
                "years 1 to 9999 in milliseconds",
            )
            .or_else(|| values::first_non_finite(batch, &["length", "registration"]))
            .or_else(|| first_non_numeric_user_id(batch)),
        }
    }

    /// Why a record past [`max_records_per_file`] in its file is rejected.
    fn too_many_records(&self) -> String {
        format!(
            "the file holds more than {} {} records, the most record ids can number: split it",
            max_records_per_file(self.kind),
            self.kind.name()
        )
    }

    fn with_record_ids(
        &self,
        batch: RecordBatch,
        ids: Int64Array,
    ) -> Result<RecordBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        columns.push(Arc::new(ids));
        RecordBatch::try_new(self.scan_schema.clone(), columns)
    }

    fn reject(&self, text: &FileText, span: &Span, line: u64, reason: String) -> Reject {
        let raw = &text.content[span.start..span.end];
        let raw = &raw[..raw.len().min(MAX_RAW_TEXT)];
        Reject {
            input: self.kind.name(),
            file: text.location.clone(),
            line,
            byte_offset: span.start as u64,
            reason,
            raw: String::from_utf8_lossy(raw).into_owned(),
        }
    }
}

/// `userId` must be empty (logged out) or an integer: it becomes `user_id int`.
fn first_non_numeric_user_id(batch: &RecordBatch) -> Option<(usize, String)> {
    let user_ids = batch.column_by_name("userId")?;
    let user_ids = user_ids.as_any().downcast_ref::<StringArray>()?;
    user_ids
        .iter()
        .enumerate()
        .find_map(|(row, value)| match value {
            Some(v) if !v.is_empty() && v.parse::<i32>().is_err() => {
                Some((row, format!("userId {v:?} is not an integer")))
            }
            _ => None,
        })
}

/// Feeds one record's text to a decoder that takes one record.
fn feed(decoder: &mut Decoder, bytes: &[u8]) -> Result<(), ArrowError> {
    let read = decoder.decode(bytes)?;
    if read < bytes.len() {
        return Err(ArrowError::JsonError("more than one JSON value".into()));
    }
    Ok(())
}

/// Arrow's messages start with "Json error: "; the reject file says JSON already.
fn clean_arrow_error(error: &ArrowError) -> String {
    let text = error.to_string();
    text.strip_prefix("Json error: ")
        .unwrap_or(&text)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;

    /// The good records of `decoded` as one batch.
    fn whole(decoder: &RecordDecoder, decoded: &Decoded) -> RecordBatch {
        concat_batches(&decoder.scan_schema, &decoded.batches).unwrap()
    }

    fn file(key: i64, name: &str, text: &str) -> SourceFile {
        SourceFile {
            key,
            location: name.to_string(),
            bytes: Bytes::from(text.to_string()),
        }
    }

    fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
        let array = batch.column_by_name(column).unwrap().as_string::<i32>();
        array.iter().map(|v| v.map(str::to_string)).collect()
    }

    const SONG: &str = r#"{"num_songs": 1, "artist_id": "AR1", "artist_latitude": null, "artist_longitude": null, "artist_location": "", "artist_name": "Elena", "song_id": "SO1", "title": "Setanta matins", "duration": 269.58322, "year": 0}"#;

    #[test]
    fn numbers_in_string_columns_are_read_as_their_text() {
        let decoder = RecordDecoder::new(InputKind::Songs);
        let text = SONG
            .replace(r#""Setanta matins""#, "4.6")
            .replace(r#""Elena""#, "66");
        let decoded = decoder.decode_files(&[file(0, "a.json", &text)]).unwrap();
        assert!(decoded.rejects.is_empty(), "{:?}", decoded.rejects);
        assert_eq!(
            strings(&whole(&decoder, &decoded), "title"),
            vec![Some("4.6".into())]
        );
        assert_eq!(
            strings(&whole(&decoder, &decoded), "artist_name"),
            vec![Some("66".into())]
        );
    }

    #[test]
    fn record_ids_number_files_and_records() {
        let decoder = RecordDecoder::new(InputKind::Songs);
        let decoded = decoder
            .decode_files(&[
                file(3, "a.json", SONG),
                file(7, "b.json", &format!("{SONG}\n{SONG}")),
            ])
            .unwrap();
        let batch = whole(&decoder, &decoded);
        let ids = batch
            .column_by_name("record_id")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert_eq!(
            ids.values().to_vec(),
            vec![
                record_id(InputKind::Songs, 3, 1),
                record_id(InputKind::Songs, 7, 1),
                record_id(InputKind::Songs, 7, 2)
            ]
        );
    }

    #[test]
    fn a_file_longer_than_a_batch_keeps_its_record_ids_in_order() {
        let decoder = RecordDecoder::new(InputKind::Events);
        let count = 2 * CLEAN_BATCH_ROWS + 5;
        let lines: Vec<String> = (0..count)
            .map(|n| format!(r#"{{"ts": {n}, "page": "NextSong", "userId": "1"}}"#))
            .collect();
        let decoded = decoder
            .decode_files(&[file(9, "log.json", &lines.join("\n"))])
            .unwrap();
        // The decoder's batches come as they are, not copied into one.
        assert_eq!(decoded.batches.len(), 3);
        let batch = whole(&decoder, &decoded);
        let ids = batch
            .column_by_name("record_id")
            .unwrap()
            .as_primitive::<Int64Type>();
        let expected: Vec<i64> = (1..=count)
            .map(|n| record_id(InputKind::Events, 9, n))
            .collect();
        assert_eq!(ids.values().to_vec(), expected);
        let ts = batch
            .column_by_name("ts")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert_eq!(ts.values().to_vec(), (0..count as i64).collect::<Vec<_>>());
    }

    #[test]
    fn a_malformed_line_is_rejected_alone_with_its_line_number() {
        let decoder = RecordDecoder::new(InputKind::Events);
        let good = r#"{"ts": 1542837407796, "page": "NextSong", "userId": "15"}"#;
        let text = format!("{good}\r\n{{\"ts\": 12,, \n{good}\n");
        let decoded = decoder.decode_files(&[file(0, "log.json", &text)]).unwrap();
        assert_eq!(whole(&decoder, &decoded).num_rows(), 2);
        assert_eq!(decoded.rejects.len(), 1);
        let reject = &decoded.rejects[0];
        assert_eq!((reject.file.as_str(), reject.line), ("log.json", 2));
        assert!(
            reject.reason.starts_with("malformed JSON"),
            "{}",
            reject.reason
        );
        assert_eq!(reject.raw, "{\"ts\": 12,, \n");
    }

    #[test]
    fn wrong_types_and_missing_fields_are_rejected_with_the_field_named() {
        let decoder = RecordDecoder::new(InputKind::Events);
        let text = [
            r#"{"ts": "yesterday", "page": "NextSong", "userId": "1"}"#,
            r#"{"page": "NextSong", "userId": "1"}"#,
            r#"{"ts": 1, "page": "NextSong", "userId": "x1"}"#,
            r#"{"ts": "2", "page": "Home", "userId": 7, "extra": [1]}"#,
        ]
        .join("\n");
        let decoded = decoder.decode_files(&[file(0, "log.json", &text)]).unwrap();
        let reasons: Vec<(u64, &str)> = decoded
            .rejects
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].1.contains("ts"), "{reasons:?}");
        assert_eq!(reasons[1], (2, "missing required field 'ts'"));
        assert_eq!(reasons[2], (3, "userId \"x1\" is not an integer"));
        assert_eq!(
            strings(&whole(&decoder, &decoded), "userId"),
            vec![Some("7".into())]
        );
    }

    #[test]
    fn pretty_printed_bom_and_gzip_files_are_read() {
        use std::io::Write;
        let decoder = RecordDecoder::new(InputKind::Songs);
        let pretty = format!("\u{FEFF}{}", SONG.replace(", ", ",\n  "));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(SONG.as_bytes()).unwrap();
        let gz = SourceFile {
            key: 2,
            location: "c.json.gz".into(),
            bytes: Bytes::from(gz.finish().unwrap()),
        };
        let decoded = decoder
            .decode_files(&[file(1, "b.json", &pretty), gz])
            .unwrap();
        assert!(decoded.rejects.is_empty(), "{:?}", decoded.rejects);
        assert_eq!(whole(&decoder, &decoded).num_rows(), 2);
    }

    #[test]
    fn truncated_and_empty_files() {
        let decoder = RecordDecoder::new(InputKind::Songs);
        let truncated = &SONG[..40];
        let decoded = decoder
            .decode_files(&[
                file(0, "empty.json", ""),
                file(1, "cut.json", truncated),
                file(2, "ok.json", SONG),
            ])
            .unwrap();
        assert_eq!(whole(&decoder, &decoded).num_rows(), 1);
        assert_eq!(decoded.rejects.len(), 1);
        assert_eq!(decoded.rejects[0].file, "cut.json");
        assert_eq!(decoded.rejects[0].raw, truncated);
    }

    #[test]
    fn a_broken_gzip_file_is_one_reject() {
        let decoder = RecordDecoder::new(InputKind::Events);
        let decoded = decoder
            .decode_files(&[file(0, "x.json.gz", "not gzip")])
            .unwrap();
        assert_eq!(whole(&decoder, &decoded).num_rows(), 0);
        assert_eq!(decoded.rejects.len(), 1);
        assert!(decoded.rejects[0].reason.contains("gzip"));
    }

    #[test]
    fn values_a_table_cannot_hold_are_rejected_with_the_reason() {
        let decoder = RecordDecoder::new(InputKind::Songs);
        let long_artist = format!("AR{}", "X".repeat(300));
        let text = [
            SONG.replace(r#""year": 0"#, r#""year": 3000000000"#),
            SONG.replace(r#""duration": 269.58322"#, r#""duration": 1e999"#),
            SONG.replace(r#""AR1""#, &format!("{long_artist:?}")),
            SONG.to_string(),
        ]
        .join("\n");
        let decoded = decoder
            .decode_files(&[file(0, "songs.json", &text)])
            .unwrap();
        let reasons: Vec<(u64, &str)> = decoded
            .rejects
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (1, "year 3000000000 is out of range for an int"),
                (2, "duration inf is not a finite number"),
                (
                    3,
                    "artist_id is 302 bytes as a partition directory name, more than 200"
                ),
            ]
        );
        assert_eq!(whole(&decoder, &decoded).num_rows(), 1);
    }

    #[test]
    fn a_repeated_key_rejects_its_record_and_nested_keys_may_repeat() {
        let decoder = RecordDecoder::new(InputKind::Events);
        let text = [
            r#"{"ts": 1541105830796, "page": "NextSong", "userId": "1", "ts": 0}"#,
            r#"{"ts": 1541105830796, "page": "NextSong", "userId": "1", "extra": [{"a": 1}, {"a": 2}]}"#,
        ]
        .join("\n");
        let decoded = decoder.decode_files(&[file(0, "log.json", &text)]).unwrap();
        assert_eq!(whole(&decoder, &decoded).num_rows(), 1);
        assert_eq!(decoded.rejects.len(), 1);
        assert_eq!(
            decoded.rejects[0].reason,
            r#"key "ts" appears twice in the record"#
        );
        assert_eq!(decoded.rejects[0].line, 1);
    }

    #[test]
    fn a_json_array_of_records_counts_as_its_records() {
        let decoder = RecordDecoder::new(InputKind::Events);
        let event = |ts: i64| format!(r#"{{"ts": {ts}, "page": "NextSong", "userId": "1"}}"#);
        let events: Vec<String> = (1..=11).map(event).collect();
        let text = format!("[{},\n \"not a record\"]", events.join(",\n "));
        let decoded = decoder.decode_files(&[file(0, "log.json", &text)]).unwrap();
        assert_eq!(whole(&decoder, &decoded).num_rows(), 11);
        assert_eq!(decoded.rejects.len(), 1, "{:?}", decoded.rejects);
        assert_eq!(decoded.rejects[0].line, 12);
    }

    #[test]
    fn a_gzip_file_that_inflates_past_the_limit_is_one_reject() {
        use std::io::Write;
        // One gzip member of 1 MiB of spaces, repeated: a file of
        // concatenated members inflates to all of them.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b' '; 1 << 20]).unwrap();
        let member = gz.finish().unwrap();
        let bomb = SourceFile {
            key: 0,
            location: "bomb.json.gz".into(),
            bytes: Bytes::from(member.repeat((MAX_INFLATED_BYTES >> 20) as usize + 1)),
        };
        assert!(
            bomb.bytes.len() < 1 << 20,
            "{} bytes compressed",
            bomb.bytes.len()
        );
        let decoded = RecordDecoder::new(InputKind::Events)
            .decode_files(&[bomb])
            .unwrap();
        assert_eq!(decoded.rejects.len(), 1);
        assert!(
            decoded.rejects[0]
                .reason
                .starts_with("inflates to more than 512 MiB"),
            "{}",
            decoded.rejects[0].reason
        );
    }

    #[test]
    fn rejects_deep_in_a_file_keep_their_line_numbers() {
        let decoder = RecordDecoder::new(InputKind::Events);
        let good = r#"{"ts": 1, "page": "Home", "userId": ""}"#;
        let lines: Vec<&str> = (0..2000)
            .map(|i| if i % 2 == 0 { "x" } else { good })
            .collect();
        let decoded = decoder
            .decode_files(&[file(0, "log.json", &lines.join("\n"))])
            .unwrap();
        let numbers: Vec<u64> = decoded.rejects.iter().map(|r| r.line).collect();
        assert_eq!(numbers, (0..1000).map(|i| 2 * i + 1).collect::<Vec<u64>>());
    }
}
