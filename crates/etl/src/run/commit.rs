//! Making a run's tables visible: the Delta targets and commits, or the
//! Parquet run folder with its report.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::Schema;
use datafusion::error::DataFusionError;

use crate::error::{EtlError, Result};
use crate::load::TableFormat;
use crate::load::delta::table::DeltaTarget;
use crate::load::delta::{Publication, TableFiles, remove_attempt_files};
use crate::load::ingested::{self, INGESTED};
use crate::load::lake_log::{Lease, RunRecord};
use crate::load::publish::{self};
use crate::load::writer::WrittenFile;
use crate::location::Location;
use crate::report::{Chart, InputReport, RunReport, TableReport};
use crate::schema::{InputKind, STATUS};

use super::increment::Scope;
use super::lake::lake_tables;
use super::steps::Run;

impl Run<'_> {
    /// The Delta table `name` of this run's output.
    pub(super) fn delta_target(&self, name: &str) -> DeltaTarget {
        DeltaTarget {
            name: name.to_string(),
            location: self.layout.table(name),
            store: self
                .store(&self.config.output)
                .expect("the output's store was resolved at the start"),
        }
    }

    /// The rejects table's part of a Delta publication: the reject files
    /// among `written`, appended.
    pub(super) fn rejects_table(
        &self,
        schema: Arc<Schema>,
        written: &[WrittenFile],
    ) -> Result<TableFiles> {
        let mut rejects: Vec<WrittenFile> = written
            .iter()
            .filter(|f| f.table.starts_with(publish::DELTA_REJECTS))
            .cloned()
            .collect();
        let target = self.delta_target(publish::DELTA_REJECTS);
        TableFiles::written(target, schema, vec![], &mut rejects, false)
    }

    /// Step 4 (Parquet): report next to the tables, then commit.
    pub(super) async fn publish(
        &self,
        report: &RunReport,
        files: &[WrittenFile],
        lease: &Lease,
    ) -> Result<()> {
        tracing::info!("{}: publishing {} files", self.layout.run_id, files.len());
        self.write_report(report).await?;
        let store = self.store(&self.config.output)?;
        publish::commit(&store, &self.layout, files, lease).await
    }

    /// `_report.json` and `_report.html` in the run's folder.
    pub(super) async fn write_report(&self, report: &RunReport) -> Result<()> {
        let store = self.store(&self.config.output)?;
        let json = serde_json::to_vec_pretty(report)
            .map_err(|e| EtlError::plan("report", DataFusionError::External(e.into())))?;
        let path = self.layout.run_dir().object_path().join("_report.json");
        publish::put(&store, &path, json).await?;
        let page = crate::report::html::render(report);
        let path = self.layout.run_dir().object_path().join("_report.html");
        publish::put(&store, &path, page.into_bytes()).await
    }

    /// Step 4 (Delta): the files of failed attempts go, then the tables are
    /// committed in order and vacuumed ([`crate::load::delta`]).
    pub(super) async fn publish_delta(
        &self,
        tables: Vec<TableFiles>,
        files: &[WrittenFile],
        base: Option<u64>,
        action: &str,
    ) -> Result<RunRecord> {
        tracing::info!("{}: committing {} files", self.layout.run_id, files.len());
        let store = self.store(&self.config.output)?;
        let unreported = publish::discard_working_files(&store, &self.layout, files).await?;
        if !unreported.is_empty() {
            let locations: Vec<Location> =
                tables.iter().map(|t| t.target.location.clone()).collect();
            let deleted = remove_attempt_files(&store, &locations, &unreported).await?;
            tracing::info!(
                "{}: {} task attempts were not kept; deleted their {deleted} files",
                self.layout.run_id,
                unreported.len()
            );
        }
        let publication = Publication {
            store,
            output: self.config.output.clone(),
            run_id: self.layout.run_id.clone(),
            base,
            claim_timeout: self.config.claim_timeout,
            vacuum: self.config.vacuum,
        };
        let targets: Vec<DeltaTarget> = tables.iter().map(|t| t.target.clone()).collect();
        let unchanged: Vec<DeltaTarget> = lake_tables(self.config)
            .iter()
            .filter(|name| !targets.iter().any(|t| &t.name == *name))
            .map(|name| self.delta_target(name))
            .collect();
        publication.commit(tables, action, files, &unchanged).await
    }

    /// The lake's own tables' part of a Delta publication: the records this
    /// run staged of each input, and the files it loaded (its record is
    /// written here, and returned too). A full run replaces them, an
    /// incremental run appends to them.
    pub(super) async fn staged_tables(
        &self,
        scope: &Scope,
        songs: &[WrittenFile],
        events: &[WrittenFile],
    ) -> Result<(Vec<TableFiles>, WrittenFile)> {
        let mut tables = Vec::new();
        for (kind, files) in [(InputKind::Songs, songs), (InputKind::Events, events)] {
            if files.is_empty() && !scope.full {
                continue;
            }
            tables.push(TableFiles::written(
                self.delta_target(&publish::staged_table(kind)),
                kind.staged_schema(),
                vec![STATUS.to_string()],
                // A file per staging task: the copy costs nothing.
                &mut files.to_vec(),
                scope.full,
            )?);
        }
        let loaded = [
            (InputKind::Songs, &scope.songs.files[..]),
            (InputKind::Events, &scope.events.files[..]),
        ];
        let target = self.delta_target(INGESTED);
        let (record, file) =
            ingested::write(target, &self.layout.run_id, loaded, scope.full).await?;
        tables.push(record);
        Ok((tables, file))
    }

    /// The run's report, from what it loaded and wrote.
    pub(super) fn report(
        &self,
        scope: &Scope,
        inputs: Vec<InputReport>,
        tables: Vec<TableReport>,
        charts: Vec<Chart>,
        started: Instant,
    ) -> RunReport {
        let published = match self.config.table_format {
            TableFormat::Delta => self.config.output.url(),
            TableFormat::Parquet => self.layout.run_dir().url(),
        };
        RunReport {
            schema_version: crate::report::SCHEMA_VERSION,
            run_id: self.layout.run_id.clone(),
            input: self.config.input.url(),
            output: self.config.output.url(),
            mode: if scope.full { "full" } else { "incremental" },
            published,
            versions: Default::default(),
            seconds: started.elapsed().as_secs_f64(),
            inputs,
            tables,
            jobs: std::mem::take(&mut *self.jobs.lock().unwrap_or_else(|e| e.into_inner())),
            charts,
        }
    }

    /// The report of an incremental run that found nothing new: it
    /// changed nothing, and wrote nothing.
    pub(super) fn unchanged(&self, scope: &Scope, started: Instant) -> RunReport {
        let inputs = [
            (InputKind::Songs, &scope.songs),
            (InputKind::Events, &scope.events),
        ]
        .into_iter()
        .zip(scope.loaded)
        .map(|((kind, listing), loaded)| InputReport {
            files_loaded_before: loaded,
            ..InputReport::new(kind, listing, &[])
        })
        .collect();
        self.report(scope, inputs, Vec::new(), Vec::new(), started)
    }
}
