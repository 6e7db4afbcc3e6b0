//! The Parquet format of every file a writer task writes: compression,
//! statistics, the small-file variant, and the plain Arrow schema kept in
//! the footer.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::Result;
use datafusion::parquet::arrow::arrow_writer::ArrowWriterOptions;
use datafusion::parquet::arrow::{
    ArrowSchemaConverter, ArrowWriter, add_encoded_arrow_schema_to_metadata,
};
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::{
    EnabledStatistics, WriterProperties, WriterPropertiesBuilder,
};
use datafusion::parquet::schema::types::SchemaDescriptor;

/// How every file of a task is written, worked out once per task. Each file
/// would otherwise convert the Arrow schema to Parquet's and encode it for
/// the footer again, which for a one-row partition file costs about as much
/// as the row; the files come out the same byte for byte.
pub(super) struct FileFormat {
    arrow_schema: SchemaRef,
    parquet_schema: SchemaDescriptor,
    /// Both with the encoded Arrow schema already in the footer metadata.
    properties: WriterProperties,
    small_file_properties: WriterProperties,
}

impl FileFormat {
    pub(super) fn try_new(arrow_schema: SchemaRef) -> Result<Self> {
        let properties = writer_properties();
        let parquet_schema = ArrowSchemaConverter::new()
            .with_coerce_types(properties.coerce_types())
            .convert(&arrow_schema)?;
        let with_schema = |mut properties: WriterProperties| {
            add_encoded_arrow_schema_to_metadata(&arrow_schema, &mut properties);
            properties
        };
        Ok(Self {
            properties: with_schema(properties),
            small_file_properties: with_schema(small_file_properties()),
            arrow_schema,
            parquet_schema,
        })
    }

    /// A writer for one new file, in memory.
    pub(super) fn writer(&self) -> Result<ArrowWriter<Vec<u8>>> {
        self.writer_with(&self.properties)
    }

    /// A writer for one new file of at most `SMALL_FILE_ROWS` ([`super::sink`]) rows, written
    /// in one go ([`small_file_properties`]).
    pub(super) fn small_writer(&self) -> Result<ArrowWriter<Vec<u8>>> {
        self.writer_with(&self.small_file_properties)
    }

    fn writer_with(&self, properties: &WriterProperties) -> Result<ArrowWriter<Vec<u8>>> {
        let options = ArrowWriterOptions::new()
            .with_properties(properties.clone())
            .with_parquet_schema(self.parquet_schema.clone())
            .with_skip_arrow_metadata(true);
        Ok(ArrowWriter::try_new_with_options(
            Vec::new(),
            Arc::clone(&self.arrow_schema),
            options,
        )?)
    }
}

/// Compression and the name written into every file.
fn writer_properties() -> WriterProperties {
    properties_builder().build()
}

/// For a file whose columns are one data page each: the column chunk's
/// statistics (min, max, nulls) say all that a page index would, and a
/// dictionary of a few values only adds a page. Without both, a one-row file
/// is 20% smaller and costs about half as much to encode, and readers prune
/// it by the same statistics.
fn small_file_properties() -> WriterProperties {
    properties_builder()
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_offset_index_disabled(true)
        .build()
}

fn properties_builder() -> WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("sparkify-lake {}", env!("CARGO_PKG_VERSION")))
}

/// The schema a file is written with: view types as their plain forms
/// (`Utf8View` as `Utf8`). Parquet stores both alike, but the Arrow schema
/// kept in the file decides what pyarrow, Polars and DataFusion read back,
/// and older readers do not know view types.
pub fn plain_schema(schema: &Schema) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            let plain = match field.data_type() {
                DataType::Utf8View => DataType::Utf8,
                DataType::BinaryView => DataType::Binary,
                other => other.clone(),
            };
            field.as_ref().clone().with_data_type(plain)
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// `batch` with its columns cast to `schema`'s types where they differ.
pub(super) fn with_schema(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| datafusion::arrow::compute::cast(column, field.data_type()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;

    /// Two songs rows, out of order, one duration missing.
    fn two_songs() -> RecordBatch {
        use datafusion::arrow::array::Float64Array;
        let schema = Schema::new(vec![
            Field::new("song_id", DataType::Utf8, false),
            Field::new("duration", DataType::Float64, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec!["SOB", "SOA"])),
                Arc::new(Float64Array::from(vec![Some(218.5), None])),
            ],
        )
        .unwrap()
    }

    /// The file `writer` makes of `batch`.
    fn written(mut writer: ArrowWriter<Vec<u8>>, batch: &RecordBatch) -> Vec<u8> {
        writer.write(batch).unwrap();
        writer.into_inner().unwrap()
    }

    #[test]
    fn files_from_the_task_format_equal_those_of_a_fresh_writer() {
        let batch = two_songs();
        let format = FileFormat::try_new(batch.schema()).unwrap();
        let fresh =
            ArrowWriter::try_new(Vec::new(), batch.schema(), Some(writer_properties())).unwrap();
        let expected = written(fresh, &batch);
        assert_eq!(written(format.writer().unwrap(), &batch), expected);
        assert_eq!(
            written(format.writer().unwrap(), &batch),
            expected,
            "and again"
        );
    }

    #[test]
    fn small_files_keep_chunk_statistics_without_dictionary_or_page_index() {
        use datafusion::parquet::arrow::arrow_reader::{
            ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
        };
        use datafusion::parquet::file::metadata::PageIndexPolicy;
        use datafusion::parquet::file::statistics::Statistics;
        let batch = two_songs();
        let format = FileFormat::try_new(batch.schema()).unwrap();
        let (small, regular) = (
            bytes::Bytes::from(written(format.small_writer().unwrap(), &batch)),
            bytes::Bytes::from(written(format.writer().unwrap(), &batch)),
        );
        assert!(
            small.len() < regular.len(),
            "{} < {}",
            small.len(),
            regular.len()
        );

        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
        let reader =
            ParquetRecordBatchReaderBuilder::try_new_with_options(small, options.clone()).unwrap();
        let metadata = Arc::clone(reader.metadata());
        let read: Vec<RecordBatch> = reader.build().unwrap().map(|b| b.unwrap()).collect();
        assert_eq!(read, vec![batch.clone()], "the same rows and Arrow schema");
        let chunk = metadata.row_group(0).column(0);
        assert_eq!(chunk.dictionary_page_offset(), None);
        assert!(metadata.column_index().is_none() && metadata.offset_index().is_none());
        let Some(Statistics::ByteArray(song_ids)) = chunk.statistics() else {
            panic!("song_id has chunk statistics: {:?}", chunk.statistics());
        };
        assert_eq!(
            (
                song_ids.min_opt().unwrap().as_utf8().unwrap(),
                song_ids.max_opt().unwrap().as_utf8().unwrap()
            ),
            ("SOA", "SOB")
        );
        let durations = metadata.row_group(0).column(1).statistics().unwrap();
        assert_eq!(durations.null_count_opt(), Some(1));

        let regular =
            ParquetRecordBatchReaderBuilder::try_new_with_options(regular, options).unwrap();
        let regular = regular.metadata();
        assert!(
            regular
                .row_group(0)
                .column(0)
                .dictionary_page_offset()
                .is_some()
        );
        assert!(regular.column_index().is_some() && regular.offset_index().is_some());
    }
}
