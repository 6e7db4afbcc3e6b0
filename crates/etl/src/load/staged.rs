//! Reading the staged help tables back, by the list of files their writers
//! reported, with the sizes the writers reported.
//!
//! A listing table would HEAD every staged file while the client plans. A
//! HEAD that fails transiently stops planning, and one that answers a wrong
//! size makes the scan read nothing, so a table built on it would come out
//! empty with no error. The writers already know each file's exact size, so
//! planning here sends no request to the store at all.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::load::writer::WrittenFile;

/// Staged Parquet files of one schema, in one object store.
#[derive(Debug)]
pub struct StagedFiles {
    schema: SchemaRef,
    store: ObjectStoreUrl,
    groups: Vec<FileGroup>,
}

impl StagedFiles {
    /// The `files` (at least one), read by up to `partitions` tasks.
    pub fn new(
        schema: SchemaRef,
        store: ObjectStoreUrl,
        files: &[WrittenFile],
        partitions: usize,
    ) -> Self {
        Self {
            schema,
            store,
            groups: balanced_groups(files, partitions),
        }
    }
}

/// Files spread over `partitions` groups of about equal bytes, largest file
/// first into the lightest group; empty groups are left out.
fn balanced_groups(files: &[WrittenFile], partitions: usize) -> Vec<FileGroup> {
    let mut by_size: Vec<&WrittenFile> = files.iter().collect();
    by_size.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    let mut groups: Vec<(u64, Vec<PartitionedFile>)> = vec![(0, Vec::new()); partitions.max(1)];
    for file in by_size {
        let lightest = groups
            .iter_mut()
            .min_by_key(|(bytes, _)| *bytes)
            .expect("at least one group");
        lightest.0 += file.bytes;
        lightest
            .1
            .push(PartitionedFile::new(file.path.clone(), file.bytes));
    }
    groups
        .into_iter()
        .filter(|(_, files)| !files.is_empty())
        .map(|(_, files)| FileGroup::new(files))
        .collect()
}

#[async_trait]
impl TableProvider for StagedFiles {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let source = Arc::new(ParquetSource::new(self.schema.clone()));
        let config = FileScanConfigBuilder::new(self.store.clone(), source)
            .with_file_groups(self.groups.clone())
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, bytes: u64) -> WrittenFile {
        WrittenFile {
            path: path.into(),
            ..WrittenFile::example("_staging/songs", "record_status=ok", 1, bytes)
        }
    }

    #[test]
    fn files_spread_by_bytes_and_keep_their_sizes() {
        let files = [file("a", 100), file("b", 60), file("c", 50), file("d", 10)];
        let groups = balanced_groups(&files, 2);
        let sizes: Vec<Vec<(String, u64)>> = groups
            .iter()
            .map(|g| {
                g.files()
                    .iter()
                    .map(|f| (f.object_meta.location.to_string(), f.object_meta.size))
                    .collect()
            })
            .collect();
        assert_eq!(
            sizes,
            vec![
                vec![("a".into(), 100), ("d".into(), 10)],
                vec![("b".into(), 60), ("c".into(), 50)],
            ]
        );
    }

    #[test]
    fn fewer_files_than_partitions_leave_no_empty_group() {
        assert_eq!(balanced_groups(&[file("a", 1)], 8).len(), 1);
    }
}
