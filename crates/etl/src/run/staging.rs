//! Staging: the raw input to Parquet, one job per input, and the rejected
//! records it quarantined, as a table of their own.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{DataFrame, col, lit};
use futures::future::try_join_all;

use crate::error::{EtlError, Result};
use crate::extract::file_list::{FileList, ListFiles};
use crate::extract::listing::InputListing;
use crate::extract::scan::{RawScanExec, ScanSpec};
use crate::load::TableFormat;
use crate::load::plan::WriteNode;
use crate::load::publish::{self};
use crate::load::staged::StagedFiles;
use crate::load::writer::{Clustering, ParquetWriterExec, WriteSpec, WrittenFile};
use crate::schema::{InputKind, STATUS, STATUS_OK, STATUS_REJECTED, reject_fields};

use super::steps::{Planned, Run, plain_arrow_schema};

impl Run<'_> {
    /// Step 1: raw files of one kind to staged Parquet; no job when there
    /// are none (an incremental run with nothing new of this kind).
    pub(super) async fn stage(
        &self,
        kind: InputKind,
        listing: &InputListing,
    ) -> Result<Vec<WrittenFile>> {
        if listing.files.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let (plan, file_list) = self.stage_plan(kind, listing)?;
        let store = self.store(&self.config.output)?;
        let store = &store;
        try_join_all(
            file_list
                .into_iter()
                .map(|(path, bytes)| async move { publish::put(store, &path, bytes).await }),
        )
        .await?;
        let planned = Planned {
            plan,
            seconds: started.elapsed().as_secs_f64(),
        };
        self.run_write_job(&format!("stage {}", kind.name()), planned)
            .await
    }

    /// The staging job: the raw scan, sharded by file, into the writer; and
    /// the scan's file list, which must be in the store when the job starts.
    pub(super) fn stage_plan(
        &self,
        kind: InputKind,
        listing: &InputListing,
    ) -> Result<(Arc<dyn ExecutionPlan>, ListFiles)> {
        let what = || format!("staging {}", kind.name());
        let scan = ScanSpec {
            kind,
            root: self.config.input.url(),
            rejects: self.config.rejects,
        };
        let file_list = FileList::new(
            &listing.files,
            self.config.partitions,
            &self.layout.file_lists(kind),
        )
        .map_err(|e| EtlError::plan(what(), e))?;
        let scan =
            RawScanExec::try_new(scan, file_list.plan).map_err(|e| EtlError::plan(what(), e))?;
        // With Delta the staged records are a table of the lake, and the
        // files of attempts no job result named are deleted at the commit,
        // found by their markers.
        let spec = WriteSpec {
            table: publish::staged_table(kind),
            location: self.layout.staging(kind).url(),
            partition_by: vec![STATUS.to_string()],
            sort_by: vec![],
            clustering: Clustering::AsIs,
            target_file_bytes: self.config.target_file_bytes,
            attempts: (self.config.table_format == TableFormat::Delta)
                .then(|| self.layout.attempts().url()),
            file_stats: false,
        };
        let plan = ParquetWriterExec::try_new(spec, Arc::new(scan))
            .map_err(|e| EtlError::plan(what(), e))?;
        Ok((Arc::new(plan), file_list.files))
    }

    /// The files staging would write for `listing`, for `--explain`: one per
    /// partition, sized as the input's share.
    pub(super) fn expected_staging(
        &self,
        kind: InputKind,
        listing: &InputListing,
    ) -> Vec<WrittenFile> {
        let partitions = self.config.partitions.max(1);
        let table = publish::staged_table(kind);
        (0..partitions)
            .map(|i| WrittenFile {
                path: format!(
                    "{}/{STATUS}={STATUS_OK}/part-{i:05}.parquet",
                    self.layout.staging(kind).object_path()
                ),
                table: table.clone(),
                partition: format!("{STATUS}={STATUS_OK}"),
                rows: 0,
                bytes: listing.bytes() / partitions as u64,
                task: i.to_string(),
                stats: String::new(),
            })
            .collect()
    }

    /// The staged files of one status as a DataFrame, read by the engine.
    pub(super) fn read_status(
        &self,
        kind: InputKind,
        staged: &[WrittenFile],
        status: &str,
    ) -> Result<DataFrame> {
        let what = || format!("reading staged {} records", kind.name());
        let schema = Arc::new(staged_file_schema(kind));
        let partition = format!("{STATUS}={status}");
        let files: Vec<WrittenFile> = staged
            .iter()
            .filter(|f| f.partition == partition)
            .cloned()
            .collect();
        // Named, so plans (`--explain`) say which records they scan.
        let name = format!("staged_{}_{status}", kind.name());
        self.read_files(&name, schema, &files)
            .map_err(|e| EtlError::plan(what(), e))
    }

    /// Parquet `files` of the output, of `schema`, as a DataFrame read by
    /// the engine and called `name` in plans.
    pub(super) fn read_files(
        &self,
        name: &str,
        schema: Arc<Schema>,
        files: &[WrittenFile],
    ) -> datafusion::error::Result<DataFrame> {
        if files.is_empty() {
            // A scan of no files has no partitions, which a count's
            // single-partition aggregate cannot take.
            return self.ctx.read_batch(RecordBatch::new_empty(schema));
        }
        let store = self.config.output.object_store_url();
        let table = StagedFiles::new(schema, store, files, self.config.partitions);
        LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(table)), None)
            .and_then(|scan| scan.build())
            .map(|plan| DataFrame::new(self.ctx.state(), plan))
    }

    /// Step 2: the rejected records of one kind, with the run and input
    /// they came from; and their schema.
    pub(super) async fn write_rejects(
        &self,
        kind: InputKind,
        staged: &[WrittenFile],
    ) -> Result<(Vec<WrittenFile>, Arc<Schema>)> {
        let mut columns = vec![
            lit(self.layout.run_id.as_str()).alias("run_id"),
            lit(kind.name()).alias("input"),
        ];
        columns.extend(reject_fields().iter().map(|f| col(f.name())));
        let rejects = self
            .read_status(kind, staged, STATUS_REJECTED)?
            .select(columns)
            .map_err(|e| EtlError::plan("rejects", e))?;
        let schema = plain_arrow_schema(&rejects);
        let spec = WriteSpec {
            table: format!("_rejects/{}", kind.name()),
            location: self.layout.rejects(kind).url(),
            partition_by: vec![],
            sort_by: vec![],
            clustering: Clustering::AsIs,
            target_file_bytes: self.config.target_file_bytes,
            attempts: Some(self.layout.attempts().url()),
            file_stats: self.file_stats(),
        };
        let job = format!("rejects {}", kind.name());
        let planned = self
            .physical_plan(&job, WriteNode::plan(spec, rejects))
            .await?;
        Ok((self.run_write_job(&job, planned).await?, schema))
    }
}

/// Columns of a staged file: the staged schema without the `status`
/// partition column, which lives in the directory name.
fn staged_file_schema(kind: InputKind) -> Schema {
    let staged = kind.staged_schema();
    let fields: Vec<_> = staged
        .fields()
        .iter()
        .filter(|f| f.name() != STATUS)
        .cloned()
        .collect();
    Schema::new(fields)
}
