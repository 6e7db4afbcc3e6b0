//! The checks that stop a run before it writes or publishes a table: too
//! many rejects, a table that would be empty, repeated staged records, and
//! row counts that disagree with the writers' reports.

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::common::cast::as_int64_array;
use datafusion::error::DataFusionError;
use datafusion::functions_aggregate::expr_fn::{count, count_distinct};
use datafusion::prelude::{DataFrame, col, lit};
use futures::future::try_join_all;

use crate::error::{EtlError, Result};
use crate::report::InputReport;
use crate::schema::{InputKind, RECORD_ID};
use crate::tables::Staged;

use super::steps::Run;
use super::table_jobs::{TableJob, WrittenTable};

impl Run<'_> {
    /// Stops the run when an input has more rejects than `--max-rejects`
    /// allows, or has records and every one was rejected (unless
    /// `--allow-empty`): its tables would be replaced by empty ones.
    pub(super) fn check_rejects(&self, inputs: &[InputReport]) -> Result<()> {
        if let Some(limit) = self.config.max_rejects
            && let Some(input) = inputs.iter().find(|i| !limit.allows(i.rejected, i.records))
        {
            return Err(EtlError::TooManyRejects {
                input: input.input,
                rejected: input.rejected,
                records: input.records,
                limit: limit.to_string(),
                rejects: input.rejects_location.clone().unwrap_or_default(),
            });
        }
        let all_rejected = inputs
            .iter()
            .find(|i| i.records > 0 && i.rejected == i.records);
        match all_rejected {
            Some(input) if !self.config.allow_empty => Err(EtlError::Empty(format!(
                "all {} {} records were rejected (they are in {})",
                input.records,
                input.input,
                input.rejects_location.clone().unwrap_or_default()
            ))),
            _ => Ok(()),
        }
    }

    /// Stops the run when a table would be replaced by an empty one while
    /// the input it is built from has records, unless `--allow-empty`. (An
    /// append of no rows is no loss: new events may all be at start times
    /// the time table holds.)
    pub(super) fn check_not_empty(
        &self,
        jobs: &[TableJob<'_>],
        expected_rows: &[u64],
        inputs: &[InputReport],
    ) -> Result<()> {
        if self.config.allow_empty {
            return Ok(());
        }
        for (job, rows) in jobs.iter().zip(expected_rows) {
            let table = job.table;
            let input = inputs.iter().find(|i| i.input == table.input.name());
            if let Some(input) = input
                && job.replace
                && *rows == 0
                && input.loaded > 0
            {
                return Err(EtlError::Empty(format!(
                    "the {} table would be empty, though {} {} records were loaded",
                    table.name, input.loaded, input.input
                )));
            }
        }
        Ok(())
    }

    /// The rows each table job must write, in `jobs` order, from one job
    /// of cheap counts over the staged records. The same job checks that
    /// every record this run staged (`new`) has a distinct id: a staging
    /// task's output kept twice would otherwise flow into every table (see
    /// `one_attempt_per_task` in `steps`), so a duplicate stops the run here.
    pub(super) async fn expected_rows(
        &self,
        jobs: &[TableJob<'_>],
        new: &Staged,
        inputs: &[InputReport],
    ) -> Result<Vec<u64>> {
        let what = "expected row counts";
        let plan_error = |e| EtlError::plan(what, e);
        let mut counts = Vec::new();
        for job in jobs {
            counts.push((job.table.expected_rows)(&job.staged).map_err(plan_error)?);
        }
        for records in [&new.songs, &new.events] {
            counts.push(distinct_ids(records).map_err(plan_error)?);
        }
        let mut numbered = Vec::new();
        for (index, counted) in counts.into_iter().enumerate() {
            let counted = counted
                .select(vec![lit(index as i64).alias("count"), col("rows")])
                .map_err(plan_error)?;
            numbered.push(counted);
        }
        // One job for all counts, as a union; but a count over an input
        // with no good record runs inline in a union's last stage, where
        // Ballista 55 sizes the task metrics wrongly and the job never
        // ends: then each count is a job of its own.
        let count_jobs = if inputs.iter().any(|input| input.records == input.rejected) {
            numbered
        } else {
            let mut union = numbered.into_iter();
            let first = union.next().expect("there are counts");
            vec![
                union
                    .try_fold(first, |all, counted| all.union(counted))
                    .map_err(plan_error)?,
            ]
        };
        let mut batches = Vec::new();
        let single = count_jobs.len() == 1;
        for done in try_join_all(count_jobs.into_iter().enumerate().map(
            |(index, job)| async move {
                // Jobs of one run need names of their own: the engine finds
                // each job's report by its name.
                let name = match single {
                    true => what.to_string(),
                    false => format!("{what} {}", index + 1),
                };
                let planned = self
                    .physical_plan(&name, job.logical_plan().clone())
                    .await?;
                self.run_job(&name, planned).await
            },
        ))
        .await?
        {
            batches.extend(done);
        }
        let mut values = vec![None; jobs.len() + 2];
        for batch in &batches {
            let (counts, rows) = (
                int64_column(batch, "count", what)?,
                int64_column(batch, "rows", what)?,
            );
            for (count, rows) in counts.values().iter().zip(rows.values()) {
                values[*count as usize] = Some(*rows as u64);
            }
        }
        // A count over no records can come back as no row at all (an
        // aggregate over a source with no partitions): that is a zero.
        let mut values: Vec<u64> = values.into_iter().map(|rows| rows.unwrap_or(0)).collect();
        let duplicates = values.split_off(jobs.len());
        for (kind, duplicated) in InputKind::ALL.into_iter().zip(duplicates) {
            if duplicated > 0 {
                return Err(EtlError::DuplicateRecords {
                    input: kind.name(),
                    duplicated,
                });
            }
        }
        Ok(values)
    }

    /// The written tables, each checked against the rows it must have. A
    /// table whose writers reported other counts is written again once (its
    /// first files are not committed, so the commit deletes them); a second
    /// mismatch fails the run, unpublished.
    pub(super) async fn checked(
        &self,
        jobs: &[TableJob<'_>],
        written: Vec<WrittenTable>,
        expected_rows: &[u64],
    ) -> Result<Vec<WrittenTable>> {
        let mut checked = Vec::with_capacity(written.len());
        for ((job, expected), first) in jobs.iter().zip(expected_rows).zip(written) {
            let table = job.table;
            if first.report.rows == *expected {
                checked.push(first);
                continue;
            }
            // The last net: one attempt per task is kept at the source
            // (`one_attempt_per_task`), so this firing is a bug to report.
            tracing::error!(
                "{}: the writers reported {} rows where the staged records give {expected}; writing it again",
                table.name,
                first.report.rows
            );
            let again = self.write_table(job).await?;
            if again.report.rows != *expected {
                return Err(EtlError::RowCount {
                    table: table.name,
                    written: again.report.rows,
                    expected: *expected,
                });
            }
            checked.push(again);
        }
        Ok(checked)
    }
}

/// `rows`: how many staged records share their record id with another
/// (0 when every id is distinct).
fn distinct_ids(records: &DataFrame) -> datafusion::error::Result<DataFrame> {
    records
        .clone()
        .aggregate(
            vec![],
            vec![
                count(lit(1)).alias("records"),
                count_distinct(col(RECORD_ID)).alias("ids"),
            ],
        )?
        .select(vec![(col("records") - col("ids")).alias("rows")])
}

/// Column `name` of a job's result batch, which the job's plan makes Int64.
fn int64_column<'a>(batch: &'a RecordBatch, name: &str, what: &str) -> Result<&'a Int64Array> {
    batch
        .column_by_name(name)
        .ok_or_else(|| DataFusionError::Internal(format!("no column '{name}' in the result")))
        .and_then(|column| as_int64_array(column))
        .map_err(|e| EtlError::plan(what, e))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::execution::context::SessionContext;

    async fn repeated_ids(ids: Vec<i64>) -> i64 {
        let schema = Arc::new(Schema::new(vec![Field::new(
            RECORD_ID,
            DataType::Int64,
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(ids))]).unwrap();
        let records = SessionContext::new().read_batch(batch).unwrap();
        let batches = distinct_ids(&records).unwrap().collect().await.unwrap();
        int64_column(&batches[0], "rows", "test").unwrap().value(0)
    }

    #[tokio::test]
    async fn staged_records_with_a_repeated_id_are_counted() {
        assert_eq!(repeated_ids(vec![1, 2, 3]).await, 0);
        assert_eq!(repeated_ids(vec![1, 2, 2, 3, 3]).await, 2);
    }
}
