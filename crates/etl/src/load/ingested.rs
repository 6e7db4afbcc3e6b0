//! The lake's record of the input it has loaded: the Delta table
//! `<output>/_ingested/`, one row per input file a run staged, with the
//! path, size and version (ETag, or modification time on disk) it had then.
//!
//! An incremental run (`submit --incremental`) lists the input, reads this
//! table and stages only the files that are not in it. The table is
//! committed with the run's other tables, so it says exactly what the
//! published tables hold; a full run replaces it, an incremental run
//! appends to it. The client writes and reads it itself: it is one small
//! Parquet file per run, a few MB at a million files.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::cast::{as_int64_array, as_string_array};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::delta::table::DeltaTarget;
use super::delta::{TableFiles, stats};
use super::writer::WrittenFile;
use crate::error::{EtlError, Result};
use crate::extract::listing::InputFile;
use crate::schema::InputKind;

/// The table's folder under the output.
pub const INGESTED: &str = "_ingested";

/// One ingested input file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ingested {
    pub size: u64,
    pub version: String,
    pub key: i64,
}

/// The ingested files of each input, by object path.
#[derive(Debug, Default)]
pub struct IngestRecord {
    pub songs: HashMap<String, Ingested>,
    pub events: HashMap<String, Ingested>,
}

impl IngestRecord {
    pub fn of(&self, kind: InputKind) -> &HashMap<String, Ingested> {
        match kind {
            InputKind::Songs => &self.songs,
            InputKind::Events => &self.events,
        }
    }
}

/// The table's columns.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("input", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("size", DataType::Int64, false),
        Field::new("version", DataType::Utf8, false),
        Field::new("file_key", DataType::Int64, false),
        Field::new("run_id", DataType::Utf8, false),
    ]))
}

/// What the table records, or `None` when it has no log (the lake was
/// built before incremental runs, or never).
pub async fn read(target: &DeltaTarget) -> Result<Option<IngestRecord>> {
    let Some(files) = target.current_files().await? else {
        return Ok(None);
    };
    let mut record = IngestRecord::default();
    for file in files {
        let reading = |e| EtlError::store(format!("reading {}", file.path), e);
        let got = target
            .store
            .get(&Path::from(file.path.as_str()))
            .await
            .map_err(reading)?;
        let bytes = got.bytes().await.map_err(reading)?;
        add_rows(&mut record, bytes)
            .map_err(|e| EtlError::Delta(format!("reading {}: {e}", file.path)))?;
    }
    Ok(Some(record))
}

/// Adds the rows of one Parquet file of the table to `record`.
fn add_rows(record: &mut IngestRecord, bytes: Bytes) -> datafusion::error::Result<()> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    for batch in reader {
        let batch = batch?;
        let column = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| {
                datafusion::error::DataFusionError::Plan(format!("no column {name}"))
            })
        };
        let inputs = as_string_array(column("input")?)?;
        let paths = as_string_array(column("path")?)?;
        let sizes = as_int64_array(column("size")?)?;
        let versions = as_string_array(column("version")?)?;
        let keys = as_int64_array(column("file_key")?)?;
        for row in 0..batch.num_rows() {
            let files = match inputs.value(row) {
                "songs" => &mut record.songs,
                _ => &mut record.events,
            };
            files.insert(
                paths.value(row).to_string(),
                Ingested {
                    size: sizes.value(row) as u64,
                    version: versions.value(row).to_string(),
                    key: keys.value(row),
                },
            );
        }
    }
    Ok(())
}

/// Writes the rows of the files this run staged into the table's folder,
/// as one Parquet file named by the run, and gives the table's part of the
/// run's commit (appended, or replacing the table on a full run) and the
/// file, which a run that loses the lake deletes with its others.
pub async fn write(
    target: DeltaTarget,
    run_id: &str,
    staged: [(InputKind, &[InputFile]); 2],
    replace: bool,
) -> Result<(TableFiles, WrittenFile)> {
    let batch = rows(run_id, &staged)
        .map_err(|e| EtlError::Delta(format!("recording the ingested files: {e}")))?;
    let rows = batch.num_rows() as u64;
    let (bytes, stats) =
        encode(batch).map_err(|e| EtlError::Delta(format!("recording the ingested files: {e}")))?;
    let path = target
        .location
        .object_path()
        .join(format!("part-{run_id}.parquet"));
    let mut file = WrittenFile {
        table: INGESTED.to_string(),
        path: path.to_string(),
        partition: String::new(),
        rows,
        bytes: bytes.len() as u64,
        task: String::new(),
        stats,
    };
    super::publish::put(&target.store, &path, bytes).await?;
    let table = TableFiles::written(
        target,
        schema(),
        vec![],
        std::slice::from_mut(&mut file),
        replace,
    )?;
    Ok((table, file))
}

fn rows(
    run_id: &str,
    staged: &[(InputKind, &[InputFile]); 2],
) -> datafusion::error::Result<RecordBatch> {
    // Arrow's builders want iterators that know their length.
    let listed: Vec<(&InputKind, &InputFile)> = staged
        .iter()
        .flat_map(|(kind, files)| files.iter().map(move |f| (kind, f)))
        .collect();
    let files = || listed.iter().copied();
    let columns: Vec<Arc<dyn datafusion::arrow::array::Array>> = vec![
        Arc::new(StringArray::from_iter_values(
            files().map(|(k, _)| k.name()),
        )),
        Arc::new(StringArray::from_iter_values(
            files().map(|(_, f)| f.path.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(
            files().map(|(_, f)| f.size as i64),
        )),
        Arc::new(StringArray::from_iter_values(
            files().map(|(_, f)| f.version.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(files().map(|(_, f)| f.key))),
        Arc::new(StringArray::from_iter_values(files().map(|_| run_id))),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// The batch as a Parquet file, with its Delta statistics.
fn encode(batch: RecordBatch) -> datafusion::error::Result<(Vec<u8>, String)> {
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, schema(), None)?;
    writer.write(&batch)?;
    let metadata = writer.close()?;
    let stats = stats::file_stats(&schema(), &metadata)?;
    Ok((bytes, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rows_written_are_the_rows_read() {
        let file = |path: &str, key| InputFile {
            path: path.into(),
            size: 10,
            key,
            version: "etag:\"1\"".into(),
        };
        let songs = [file("in/song_data/a.json", 1)];
        let events = [file("in/log_data/b.json", 2), file("in/log_data/c.json", 3)];
        let batch = rows(
            "run-1",
            &[(InputKind::Songs, &songs), (InputKind::Events, &events)],
        )
        .unwrap();
        let (bytes, stats) = encode(batch).unwrap();
        assert!(stats.contains(r#""numRecords":3"#), "{stats}");
        let mut record = IngestRecord::default();
        add_rows(&mut record, Bytes::from(bytes)).unwrap();
        assert_eq!(record.songs.len(), 1);
        assert_eq!(
            record.of(InputKind::Events)["in/log_data/c.json"],
            Ingested {
                size: 10,
                version: "etag:\"1\"".into(),
                key: 3
            }
        );
    }
}
