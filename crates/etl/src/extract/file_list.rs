//! The files a scan reads, as its plan's input: a sorted listing split into
//! `partitions` contiguous runs of about equal bytes, one per scan task.
//!
//! Ballista 55 runs several partitions of a stage in one task and restricts
//! a task's plan to its own partitions by slicing the leaves it knows (file
//! scans, in-memory sources, shuffle readers); a custom leaf carrying its
//! own file groups would be run whole by every task, and every record would
//! be read once per task. So the runs are a leaf Ballista knows.
//!
//! They are not carried in the plan: one path per input file grew a plan
//! past Ballista's 16 MiB message limit at 200,000 files, and at a million
//! it would be some 100 MB sent to the scheduler and on to every task. The
//! client writes each run as a small Parquet file into the run's staging
//! folder (a million paths take a few MB), and the plan is a Parquet scan of
//! those files, one per partition: it names only them, whatever the input's
//! size, and each task reads its own run (Ballista gives a task only its
//! own partitions' files; DataFusion may move files between the partitions
//! one task runs, which only balances that task's share).

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::Result;
use datafusion::common::cast::{as_int64_array, as_string_array, as_uint64_array};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::physical_plan::ExecutionPlan;
use object_store::path::Path;

use super::listing::InputFile;
use crate::location::Location;

/// Columns of a file list: the file's key (the high bits of its records'
/// ids), its object path and its size.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Int64, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("size", DataType::UInt64, false),
    ]))
}

/// One file of a scan task's share.
pub struct ListedFile {
    pub key: i64,
    pub path: String,
    pub size: u64,
}

/// The Parquet files of a file list: each run's object path and contents.
pub type ListFiles = Vec<(Path, Bytes)>;

/// A scan's file list, as the Parquet files the client writes before the
/// job and the plan that reads them.
pub struct FileList {
    pub files: ListFiles,
    pub plan: Arc<dyn ExecutionPlan>,
}

impl FileList {
    /// The list of `files` in `partitions` runs, to be written under
    /// `folder`.
    pub fn new(files: &[InputFile], partitions: usize, folder: &Location) -> Result<Self> {
        let files: ListFiles = runs(files, partitions)
            .into_iter()
            .enumerate()
            .map(|(i, run)| {
                let path = folder.object_path().join(format!("part-{i:05}.parquet"));
                Ok((path, encode(&run)?))
            })
            .collect::<Result<_>>()?;
        let groups = files
            .iter()
            .map(|(path, bytes)| {
                FileGroup::new(vec![PartitionedFile::new(
                    path.to_string(),
                    bytes.len() as u64,
                )])
            })
            .collect();
        let source = Arc::new(ParquetSource::new(schema()));
        let config = FileScanConfigBuilder::new(folder.object_store_url(), source)
            .with_file_groups(groups)
            .build();
        Ok(Self {
            files,
            plan: DataSourceExec::from_data_source(config),
        })
    }
}

/// `files` in at most `partitions` contiguous runs of about equal bytes
/// (at least one run, empty when there are no files).
fn runs(files: &[InputFile], partitions: usize) -> Vec<Vec<&InputFile>> {
    let total: u64 = files.iter().map(|f| f.size.max(1)).sum();
    let partitions = partitions.clamp(1, files.len().max(1));
    let per_partition = total.div_ceil(partitions as u64);
    let mut runs: Vec<Vec<&InputFile>> = vec![Vec::new()];
    let mut filled = 0u64;
    for file in files {
        if filled >= per_partition && runs.len() < partitions {
            runs.push(Vec::new());
            filled = 0;
        }
        filled += file.size.max(1);
        runs.last_mut().expect("never empty").push(file);
    }
    runs
}

/// One run as a Parquet file.
fn encode(run: &[&InputFile]) -> Result<Bytes> {
    let keys = Int64Array::from_iter_values(run.iter().map(|f| f.key));
    let paths = StringArray::from_iter_values(run.iter().map(|f| f.path.as_str()));
    let sizes = UInt64Array::from_iter_values(run.iter().map(|f| f.size));
    let batch = RecordBatch::try_new(
        schema(),
        vec![Arc::new(keys), Arc::new(paths), Arc::new(sizes)],
    )?;
    let mut bytes = Vec::new();
    // Paths share long prefixes: compressed, a million take a few MB.
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut writer = ArrowWriter::try_new(&mut bytes, schema(), Some(properties))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(Bytes::from(bytes))
}

/// The files of file-list batches.
pub fn files_of(batches: &[RecordBatch]) -> Result<Vec<ListedFile>> {
    let mut files = Vec::new();
    for batch in batches {
        let keys = as_int64_array(batch.column(0))?;
        let paths = as_string_array(batch.column(1))?;
        let sizes = as_uint64_array(batch.column(2))?;
        files.extend((0..batch.num_rows()).map(|i| ListedFile {
            key: keys.value(i),
            path: paths.value(i).to_string(),
            size: sizes.value(i),
        }));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use datafusion::physical_plan::ExecutionPlanProperties;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    use object_store::local::LocalFileSystem;

    use super::*;

    fn input(sizes: &[u64]) -> Vec<InputFile> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| InputFile {
                path: format!("in/song_data/f{i}.json"),
                size,
                key: 100 + i as i64,
                version: String::new(),
            })
            .collect()
    }

    /// Each partition of the plan, as the files a scan task would read.
    async fn read_back(list: &FileList) -> Vec<Vec<(i64, String, u64)>> {
        let store = LocalFileSystem::new();
        for (path, bytes) in &list.files {
            store.put(path, bytes.clone().into()).await.unwrap();
        }
        // Partitions of one plan share their files by default (work
        // stealing); Ballista gives each task only its own partitions'
        // files, which this shows partition by partition.
        let config = SessionConfig::new().set_bool(
            "datafusion.execution.enable_file_stream_work_stealing",
            false,
        );
        let context = SessionContext::new_with_config(config).task_ctx();
        let mut partitions = Vec::new();
        for partition in 0..list.plan.output_partitioning().partition_count() {
            let stream = list.plan.execute(partition, Arc::clone(&context)).unwrap();
            let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
            let files = files_of(&batches).unwrap();
            partitions.push(files.into_iter().map(|f| (f.key, f.path, f.size)).collect());
        }
        partitions
    }

    #[tokio::test]
    async fn each_task_reads_its_run_of_the_listing_back_from_the_store() {
        let folder = tempfile::tempdir().unwrap();
        let folder = Location::parse(folder.path().to_str().unwrap()).unwrap();
        let files = input(&[100, 100, 50, 50, 100, 100]);
        let list = FileList::new(&files, 3, &folder).unwrap();
        let expected: Vec<Vec<(i64, String, u64)>> = [vec![0, 1], vec![2, 3, 4], vec![5]]
            .into_iter()
            .map(|run| {
                run.into_iter()
                    .map(|i: usize| (files[i].key, files[i].path.clone(), files[i].size))
                    .collect()
            })
            .collect();
        assert_eq!(read_back(&list).await, expected);
        let under_folder = list
            .files
            .iter()
            .all(|(path, _)| path.prefix_matches(&folder.object_path()));
        assert!(under_folder, "the lists go where the run keeps its staging");
    }

    #[tokio::test]
    async fn no_files_make_one_empty_run_and_few_files_no_empty_ones() {
        let folder = tempfile::tempdir().unwrap();
        let folder = Location::parse(folder.path().to_str().unwrap()).unwrap();
        let empty = FileList::new(&[], 4, &folder).unwrap();
        assert_eq!(read_back(&empty).await, vec![vec![]]);
        let two = FileList::new(&input(&[1, 1]), 8, &folder).unwrap();
        assert_eq!(read_back(&two).await.len(), 2);
    }
}
