//! One writer task's state: the files it has open, one per hive partition
//! (one at a time for clustered input), and its uploads in flight.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::partition;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::{DataFusionError, Result};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::physical_plan::metrics::{Count, ExecutionPlanMetricsSet, MetricBuilder};
use object_store::ObjectStore;
use object_store::path::Path;
use tokio::task::JoinSet;

use super::format::{FileFormat, plain_schema, with_schema};
use super::names::{file_name, file_path};
use super::spec::WriteSpec;
use super::upload::{UploadLimits, upload};
use super::written::{REPORT_FILES, WrittenFile};
use crate::load::hive;
use crate::location::Location;
use crate::storage::Storage;

/// Local files written per blocking call ([`crate::local_disk`]), fewer
/// when they reach [`LOCAL_WRITE_BYTES`] first.
const LOCAL_WRITE_FILES: usize = 256;
const LOCAL_WRITE_BYTES: usize = 16 * 1024 * 1024;
/// Blocking batches of local writes one task keeps going: one writes while
/// the task encodes the next.
const LOCAL_WRITES_IN_FLIGHT: usize = 2;

/// Rows written between two checks of a file's size against the target:
/// a file ends at most this many rows past it.
const SIZE_CHECK_ROWS: usize = 1024;

/// A partition of clustered input with at most this many rows is written in
/// the small-file format ([`FileFormat::small_writer`]). Such a file is
/// written in one go, so each column is one data page.
const SMALL_FILE_ROWS: usize = SIZE_CHECK_ROWS;

/// Counters a writer task publishes with its status.
pub(super) struct WriterMetrics {
    pub(super) files: Count,
    pub(super) rows: Count,
    bytes: Count,
}

impl WriterMetrics {
    pub(super) fn new(set: &ExecutionPlanMetricsSet, partition: usize) -> Self {
        Self {
            files: MetricBuilder::new(set).counter("files_written", partition),
            rows: MetricBuilder::new(set).output_rows(partition),
            bytes: MetricBuilder::new(set).counter("bytes_written", partition),
        }
    }
}

/// A Parquet file being filled in memory.
struct OpenFile {
    partition: String,
    writer: ArrowWriter<Vec<u8>>,
    rows: u64,
}

/// Where a writer task's closed files go.
enum Destination {
    /// An object store (S3): one upload per file through the task's store,
    /// many in flight.
    Store,
    /// Local disk: closed files wait here and are written a batch per
    /// blocking call ([`crate::local_disk`]).
    LocalDisk(Vec<(std::path::PathBuf, Vec<u8>, WrittenFile)>),
}

impl Destination {
    fn new(location: &Location, store: &Arc<dyn ObjectStore>) -> Self {
        match Storage::of(location, Arc::clone(store)) {
            Storage::LocalDisk => Destination::LocalDisk(Vec::new()),
            Storage::Store(_) => Destination::Store,
        }
    }
}

/// The state of one writer task: its open files and its uploads in flight.
pub(super) struct PartitionedSink {
    pub(super) spec: WriteSpec,
    /// The task's store: its uploads and its attempt marker.
    store: Arc<dyn ObjectStore>,
    destination: Destination,
    /// `s3://bucket` or `file://`, for messages.
    store_url: String,
    table_path: Path,
    /// Indices of the partition columns in the input, and of the data columns.
    partition_indices: Vec<usize>,
    data_indices: Vec<usize>,
    data_schema: SchemaRef,
    format: FileFormat,
    /// With clustered input a partition never comes back once left, so only
    /// one file is open at a time.
    one_open_file: bool,
    /// The latest run of clustered input, not written yet ([`Self::hold_back`]).
    held: Option<(String, RecordBatch)>,
    open: HashMap<String, OpenFile>,
    pub(super) task_id: String,
    /// The output partition this task writes ([`WrittenFile::task`]).
    pub(super) task: String,
    files_started: usize,
    /// Uploads, or batches of local writes, in flight.
    uploads: JoinSet<Result<Vec<WrittenFile>>>,
    /// The bytes of the uploads in flight (local writes are bounded by
    /// [`LOCAL_WRITES_IN_FLIGHT`] batches instead).
    upload_bytes: usize,
    upload_limits: UploadLimits,
    written: Vec<WrittenFile>,
    pub(super) metrics: WriterMetrics,
}

impl PartitionedSink {
    pub(super) fn try_new(
        spec: WriteSpec,
        store: Arc<dyn ObjectStore>,
        input_schema: SchemaRef,
        one_open_file: bool,
        metrics: WriterMetrics,
    ) -> Result<Self> {
        let partition_indices = spec
            .partition_by
            .iter()
            .map(|c| input_schema.index_of(c))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let data_indices: Vec<usize> = (0..input_schema.fields().len())
            .filter(|i| !partition_indices.contains(i))
            .collect();
        let data_schema = Arc::new(plain_schema(&input_schema.project(&data_indices)?));
        let format = FileFormat::try_new(Arc::clone(&data_schema))?;
        let location = Location::of_plan(&spec.location)?;
        Ok(Self {
            table_path: location.object_path(),
            destination: Destination::new(&location, &store),
            store,
            store_url: location.store_url(),
            spec,
            partition_indices,
            data_indices,
            data_schema,
            format,
            one_open_file,
            held: None,
            open: HashMap::new(),
            task_id: uuid::Uuid::now_v7().simple().to_string(),
            task: String::new(),
            files_started: 0,
            uploads: JoinSet::new(),
            upload_bytes: 0,
            upload_limits: UploadLimits::DEFAULT,
            written: Vec::new(),
            metrics,
        })
    }

    /// Routes each run of rows with equal partition values to its file.
    pub(super) async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        // Cast once per batch: a batch of one-row partitions has thousands of runs.
        let data = with_schema(batch.project(&self.data_indices)?, &self.data_schema)?;
        for (partition, rows) in self.partition_runs(batch)? {
            let rows = data.slice(rows.start, rows.len());
            if self.one_open_file {
                self.hold_back(partition, rows).await?;
            } else {
                self.write_in_slices(partition, &rows, false).await?;
            }
        }
        Ok(())
    }

    /// Keeps a run of clustered input back until the next run shows whether
    /// its partition goes on. Clustered input never comes back to a partition
    /// it left, so a held run followed by another partition's, or by the end
    /// of the input, ends its partition: all of it is then in hand.
    async fn hold_back(&mut self, partition: String, rows: RecordBatch) -> Result<()> {
        if let Some((held, held_rows)) = self.held.take() {
            let whole = held != partition;
            self.write_in_slices(held, &held_rows, whole).await?;
        }
        self.held = Some((partition, rows));
        Ok(())
    }

    /// Consecutive rows that share a partition directory. Runs are found by
    /// comparing the partition columns' values (Arrow's `partition` kernel),
    /// and each run's directory name is formatted once, into a reused buffer:
    /// a songs batch is thousands of one-row runs.
    fn partition_runs(&self, batch: &RecordBatch) -> Result<Vec<(String, std::ops::Range<usize>)>> {
        if self.partition_indices.is_empty() {
            return Ok(vec![(String::new(), 0..batch.num_rows())]);
        }
        let columns: Vec<ArrayRef> = self
            .partition_indices
            .iter()
            .map(|&i| Arc::clone(batch.column(i)))
            .collect();
        let options = FormatOptions::default();
        let formatters = columns
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let (mut dir, mut value) = (String::new(), String::new());
        let mut runs: Vec<(String, std::ops::Range<usize>)> = Vec::new();
        for range in partition(&columns)?.ranges() {
            dir.clear();
            for (i, name) in self.spec.partition_by.iter().enumerate() {
                let shown = shown_value(&columns[i], &formatters[i], range.start, &mut value)?;
                hive::push_partition(&mut dir, name, shown);
            }
            // A null and an empty value share the default partition's name.
            match runs.last_mut() {
                Some((last, run)) if *last == dir => run.end = range.end,
                _ => runs.push((dir.clone(), range)),
            }
        }
        Ok(runs)
    }

    /// Appends `rows` to the partition's open file, opening one if needed:
    /// in the small-file format when `small`.
    async fn write_to_partition(
        &mut self,
        partition: String,
        rows: &RecordBatch,
        small: bool,
    ) -> Result<()> {
        if self.one_open_file && !self.open.contains_key(&partition) {
            let finished: Vec<String> = self.open.keys().cloned().collect();
            for key in finished {
                self.close(&key).await?;
            }
        }
        if !self.open.contains_key(&partition) {
            let writer = if small {
                self.format.small_writer()?
            } else {
                self.format.writer()?
            };
            self.open.insert(
                partition.clone(),
                OpenFile {
                    partition: partition.clone(),
                    writer,
                    rows: 0,
                },
            );
        }
        let file = self.open.get_mut(&partition).expect("inserted above");
        file.writer.write(rows)?;
        file.rows += rows.num_rows() as u64;
        let size = file.writer.bytes_written() + file.writer.in_progress_size();
        if size as u64 >= self.spec.target_file_bytes {
            self.close(&partition).await?;
        }
        Ok(())
    }

    /// Writes `rows` in slices of [`SIZE_CHECK_ROWS`], so that a file is
    /// closed close to the target size even when one batch holds far more.
    /// `whole`: no rows of the partition come after these, so with no file
    /// open for it yet they are all of it.
    async fn write_in_slices(
        &mut self,
        partition: String,
        rows: &RecordBatch,
        whole: bool,
    ) -> Result<()> {
        let small = whole && rows.num_rows() <= SMALL_FILE_ROWS;
        let mut start = 0;
        while start < rows.num_rows() {
            let len = SIZE_CHECK_ROWS.min(rows.num_rows() - start);
            self.write_to_partition(partition.clone(), &rows.slice(start, len), small)
                .await?;
            start += len;
        }
        Ok(())
    }

    /// Finishes a file and starts its upload (on local disk: adds it to
    /// the next batch).
    async fn close(&mut self, partition: &str) -> Result<()> {
        let Some(mut file) = self.open.remove(partition) else {
            return Ok(());
        };
        let (bytes, stats) = if self.spec.file_stats {
            // `finish` leaves the finished file in the buffer, where
            // `into_inner` would write the footer a second time.
            let metadata = file.writer.finish()?;
            let stats = crate::load::delta::stats::file_stats(&self.data_schema, &metadata)?;
            (std::mem::take(file.writer.inner_mut()), stats)
        } else {
            (file.writer.into_inner()?, String::new())
        };
        if self.files_started == 0 {
            self.mark_attempt().await?;
        }
        let name = file_name(&self.task_id, self.files_started);
        self.files_started += 1;
        let path = file_path(&self.table_path, &file.partition, &name)?;
        let written = WrittenFile {
            table: self.spec.table.clone(),
            path: path.to_string(),
            partition: file.partition,
            rows: file.rows,
            bytes: bytes.len() as u64,
            task: self.task.clone(),
            stats,
        };
        match &mut self.destination {
            Destination::LocalDisk(batch) => {
                batch.push((crate::local_disk::file_of(&path)?, bytes, written));
                let batch_bytes: usize = batch.iter().map(|(_, b, _)| b.len()).sum();
                if batch.len() >= LOCAL_WRITE_FILES || batch_bytes >= LOCAL_WRITE_BYTES {
                    self.write_local_batch().await?;
                }
            }
            Destination::Store => self.start_upload(path, bytes, written).await?,
        }
        Ok(())
    }

    /// Leaves this attempt's marker ([`WriteSpec::attempts`]), before any
    /// of its files is written: an attempt that wrote anything has one.
    async fn mark_attempt(&mut self) -> Result<()> {
        let Some(attempts) = &self.spec.attempts else {
            return Ok(());
        };
        let path = Location::of_plan(attempts)?
            .object_path()
            .join(self.task_id.as_str());
        let url = format!("{attempts}/{}", self.task_id);
        let table = self.spec.table.clone().into_bytes();
        upload(Arc::clone(&self.store), path, &url, table).await
    }

    /// Starts one upload, waiting first if too many are already in flight.
    async fn start_upload(
        &mut self,
        path: Path,
        bytes: Vec<u8>,
        written: WrittenFile,
    ) -> Result<()> {
        while self
            .upload_limits
            .must_wait(self.uploads.len(), self.upload_bytes, bytes.len())
        {
            self.collect_one_upload().await?;
        }
        self.upload_bytes += bytes.len();
        let url = format!("{}/{path}", self.store_url);
        let store = Arc::clone(&self.store);
        self.uploads.spawn(async move {
            upload(store, path, &url, bytes).await?;
            Ok(vec![written])
        });
        Ok(())
    }

    /// Starts writing the local files waiting for a batch, in one blocking call.
    async fn write_local_batch(&mut self) -> Result<()> {
        let batch = match &mut self.destination {
            Destination::LocalDisk(batch) if !batch.is_empty() => std::mem::take(batch),
            _ => return Ok(()),
        };
        while self.uploads.len() >= LOCAL_WRITES_IN_FLIGHT {
            self.collect_one_upload().await?;
        }
        let (contents, written): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|(file, bytes, written)| ((file, bytes), written))
            .unzip();
        let store_url = self.store_url.clone();
        self.uploads.spawn(async move {
            crate::local_disk::write_all(contents)
                .await
                .map_err(|(i, e)| {
                    let url = format!("{store_url}/{}", written[i].path);
                    DataFusionError::External(format!("writing {url}: {e}").into())
                })?;
            Ok(written)
        });
        Ok(())
    }

    async fn collect_one_upload(&mut self) -> Result<()> {
        if let Some(done) = self.uploads.join_next().await {
            let files = done.map_err(|e| DataFusionError::External(Box::new(e)))??;
            for file in files {
                if matches!(self.destination, Destination::Store) {
                    self.upload_bytes -= file.bytes as usize;
                }
                self.metrics.files.add(1);
                self.metrics.rows.add(file.rows as usize);
                self.metrics.bytes.add(file.bytes as usize);
                self.written.push(file);
            }
            if !self.spec.table.starts_with('_') {
                crate::crash::point(crate::crash::MID_WRITE);
            }
        }
        Ok(())
    }

    /// The files written so far, once there are at least [`REPORT_FILES`].
    pub(super) fn full_report(&mut self) -> Option<Vec<WrittenFile>> {
        (self.written.len() >= REPORT_FILES).then(|| std::mem::take(&mut self.written))
    }

    /// Closes every open file, waits for all uploads, and gives the files
    /// not reported yet.
    pub(super) async fn finish(mut self) -> Result<Vec<WrittenFile>> {
        if let Some((partition, rows)) = self.held.take() {
            self.write_in_slices(partition, &rows, true).await?;
        }
        let keys: Vec<String> = self.open.keys().cloned().collect();
        for key in keys {
            self.close(&key).await?;
        }
        self.write_local_batch().await?;
        while !self.uploads.is_empty() {
            self.collect_one_upload().await?;
        }
        Ok(self.written)
    }
}

/// The text of `column`'s value at `row`, written into `buffer` (reused
/// across rows); `None` for a null.
fn shown_value<'a>(
    column: &ArrayRef,
    formatter: &ArrayFormatter,
    row: usize,
    buffer: &'a mut String,
) -> Result<Option<&'a str>> {
    if column.is_null(row) {
        return Ok(None);
    }
    buffer.clear();
    formatter.value(row).write(buffer)?;
    Ok(Some(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use futures::TryStreamExt;
    use std::sync::atomic::Ordering;

    use super::super::spec::Clustering;
    use super::super::upload::HeldPuts;

    #[tokio::test(flavor = "current_thread")]
    async fn uploads_in_flight_stay_within_the_byte_bound() {
        let store = Arc::new(HeldPuts::new());
        let schema = Arc::new(Schema::new(vec![Field::new(
            "song_id",
            DataType::Utf8,
            false,
        )]));
        let spec = WriteSpec {
            table: "songs".into(),
            location: "s3://lake/songs".into(),
            partition_by: vec![],
            sort_by: vec![],
            clustering: Clustering::ByPartition,
            target_file_bytes: 1 << 20,
            attempts: None,
            file_stats: false,
        };
        let metrics = WriterMetrics::new(&ExecutionPlanMetricsSet::new(), 0);
        let held: Arc<dyn ObjectStore> = Arc::clone(&store) as _;
        let mut sink = PartitionedSink::try_new(spec, held, schema, false, metrics).unwrap();
        // Two 40-byte files fit in 100 bytes; a third waits for one of them.
        sink.upload_limits = UploadLimits {
            files: 128,
            bytes: 100,
        };
        let uploads = async {
            for i in 0..6 {
                let path = Path::from(format!("songs/part-{i}.parquet"));
                let written = WrittenFile::example("songs", "", 1, 40);
                sink.start_upload(path, vec![0; 40], written).await?;
            }
            sink.finish().await
        };
        // Each put is let through once every task ready to run has run, so
        // puts overlap as far as the sink lets them.
        let releaser = async {
            let mut released = 0;
            loop {
                store.put_started.notified().await;
                tokio::task::yield_now().await;
                let started = store.started.load(Ordering::SeqCst);
                store.permits.add_permits(started - released);
                released = started;
            }
        };
        let written = tokio::select! {
            biased;
            written = uploads => written.unwrap(),
            _ = releaser => unreachable!("the releaser never ends"),
        };
        assert_eq!(written.len(), 6);
        assert_eq!(
            store.peak.load(Ordering::SeqCst),
            80,
            "two files in flight, never three"
        );
        let stored: Vec<_> = store.inner.list(None).try_collect().await.unwrap();
        assert_eq!(stored.len(), 6);
    }

    #[test]
    fn rows_run_together_while_their_partition_directory_stays_the_same() {
        use datafusion::arrow::array::Int32Array;
        let schema = Arc::new(Schema::new(vec![
            Field::new("year", DataType::Int32, true),
            Field::new("artist_id", DataType::Utf8, true),
            Field::new("song_id", DataType::Utf8, false),
        ]));
        let (years, artists): (Vec<Option<i32>>, Vec<Option<&str>>) = [
            (Some(0), Some("A/1")),
            (Some(0), Some("A/1")),
            (Some(0), Some("B")),
            (Some(2018), None),
            (Some(2018), Some("")),
            (None, Some("B")),
        ]
        .into_iter()
        .unzip();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int32Array::from(years)),
                Arc::new(StringArray::from(artists)),
                Arc::new(StringArray::from_iter_values(
                    (0..6).map(|i| format!("S{i}")),
                )),
            ],
        )
        .unwrap();
        let spec = WriteSpec {
            table: "songs".into(),
            location: "file:///songs".into(),
            partition_by: vec!["year".into(), "artist_id".into()],
            sort_by: vec!["song_id".into()],
            clustering: Clustering::ByPartition,
            target_file_bytes: 1 << 20,
            attempts: None,
            file_stats: false,
        };
        let metrics = WriterMetrics::new(&ExecutionPlanMetricsSet::new(), 0);
        let store = Arc::new(object_store::memory::InMemory::new());
        let sink = PartitionedSink::try_new(spec, store, schema, true, metrics).unwrap();

        let runs = sink.partition_runs(&batch).unwrap();
        let default = hive::NULL_PARTITION;
        assert_eq!(
            runs,
            vec![
                ("year=0/artist_id=A%2F1".to_string(), 0..2),
                ("year=0/artist_id=B".to_string(), 2..3),
                (format!("year=2018/artist_id={default}"), 3..5),
                (format!("year={default}/artist_id=B"), 5..6),
            ]
        );
    }
}
