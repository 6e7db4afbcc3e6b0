//! What a run did, in numbers: printed at the end and written next to the
//! output as `_report.json`, and drawn in `_report.html`.

pub mod charts;
pub mod html;
pub mod plays;

use std::collections::BTreeMap;

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

use crate::extract::listing::InputListing;
use crate::load::writer::WrittenFile;
use crate::schema::{InputKind, STATUS, STATUS_OK, STATUS_REJECTED};
pub use charts::{Bar, Chart};

/// The version of `_report.json`'s layout, its first field: raised when a
/// field is renamed or removed or changes meaning, not when one is added.
pub const SCHEMA_VERSION: u32 = 1;

/// `_report.json`, the contract for tools that read a run's report
/// (`_report.html` and the terminal table are drawn from it).
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    pub run_id: String,
    pub input: String,
    pub output: String,
    /// `full`: every table rebuilt from all of the input; `incremental`:
    /// only the input files the lake had not loaded, and only the tables
    /// they change (`tables` lists those).
    pub mode: &'static str,
    /// Where readers find the tables: the output itself (Delta), or the
    /// committed run's folder `<output>/run-<id>` (Parquet).
    pub published: String,
    /// Delta: each table's version this run made, in commit order.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub versions: std::collections::BTreeMap<String, u64>,
    pub seconds: f64,
    pub inputs: Vec<InputReport>,
    pub tables: Vec<TableReport>,
    /// The jobs the run submitted, with their stages, in submission order.
    pub jobs: Vec<JobReport>,
    /// Distributions over output partitions and users (see [`charts`]).
    pub charts: Vec<Chart>,
}

/// One job of the run, as the engine saw it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct JobReport {
    pub job: String,
    /// The engine's id for the job (empty when it reports none).
    pub job_id: String,
    /// From submission to results, as the client waited for them.
    pub seconds: f64,
    /// The client's planning before it submitted the job (for a staging
    /// job, its file lists written too); not part of `seconds`.
    pub planning_seconds: f64,
    /// From submission until the scheduler started the job: the plan
    /// encoded, sent, decoded and queued. By the two machines' clocks; 0
    /// when the engine cannot say.
    pub submission_seconds: f64,
    pub stages: Vec<StageReport>,
}

/// One stage of a job: a set of tasks that run the same plan fragment on
/// different partitions, ending in a shuffle or in the job's output.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StageReport {
    pub stage: String,
    pub tasks: usize,
    /// From the first task's start to the last task's end.
    pub seconds: f64,
    pub input_rows: u64,
    /// Rows the stage wrote: to its shuffle files, or the job's output.
    pub output_rows: u64,
    /// Blocks of output the stage wrote for the next stage (or for the
    /// client, for the job's last stage): one per map partition and output
    /// partition with rows.
    pub shuffle_blocks: usize,
    /// Bytes of those blocks, as their writers counted them.
    pub shuffle_bytes: u64,
    /// Each task's execution time, in milliseconds.
    pub task_ms: Vec<u64>,
}

/// One kind of input: every record read is either loaded or rejected.
#[derive(Clone, Debug, Serialize)]
pub struct InputReport {
    pub input: &'static str,
    /// Files this run loaded (with `--incremental`, the new ones).
    pub files: u64,
    /// With `--incremental`: listed files the lake had loaded already,
    /// which this run skipped.
    pub files_loaded_before: usize,
    pub bytes: u64,
    /// Objects under the input folder that are not input files (`_SUCCESS`, `.crc` …).
    pub ignored_files: Vec<String>,
    /// How long listing the input folder took (both inputs are listed at once).
    pub listing_seconds: f64,
    pub records: u64,
    pub loaded: u64,
    pub rejected: u64,
    /// Where the rejected records are, when there are any.
    pub rejects_location: Option<String>,
}

impl InputReport {
    /// Counts from the listing and from the staged files, by status partition.
    pub fn new(kind: InputKind, listing: &InputListing, staged: &[WrittenFile]) -> Self {
        let rows_with = |status: &str| {
            let partition = format!("{STATUS}={status}");
            staged
                .iter()
                .filter(|f| f.partition == partition)
                .map(|f| f.rows)
                .sum::<u64>()
        };
        let (loaded, rejected) = (rows_with(STATUS_OK), rows_with(STATUS_REJECTED));
        Self {
            input: kind.name(),
            files: listing.files.len() as u64,
            files_loaded_before: 0,
            bytes: listing.bytes(),
            ignored_files: listing.ignored.clone(),
            listing_seconds: listing.seconds,
            records: loaded + rejected,
            loaded,
            rejected,
            rejects_location: None,
        }
    }
}

/// One output table.
#[derive(Clone, Debug, Serialize)]
pub struct TableReport {
    pub table: String,
    pub location: String,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
    /// Partition directories (1 for an unpartitioned table).
    pub partitions: u64,
    pub rows_per_partition: Spread,
    pub seconds: f64,
}

impl TableReport {
    pub fn new(table: &str, location: String, files: &[WrittenFile], seconds: f64) -> Self {
        let mut per_partition: BTreeMap<&str, u64> = BTreeMap::new();
        for file in files {
            *per_partition.entry(file.partition.as_str()).or_default() += file.rows;
        }
        let counts: Vec<u64> = per_partition.values().copied().collect();
        Self {
            table: table.to_string(),
            location,
            rows: files.iter().map(|f| f.rows).sum(),
            files: files.len() as u64,
            bytes: files.iter().map(|f| f.bytes).sum(),
            partitions: per_partition.len() as u64,
            rows_per_partition: Spread::of(counts),
            seconds,
        }
    }
}

/// Minimum, median and maximum of a distribution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Spread {
    pub min: u64,
    pub median: u64,
    pub max: u64,
}

impl Spread {
    pub fn of(mut values: Vec<u64>) -> Self {
        values.sort_unstable();
        match values.len() {
            0 => Self::default(),
            n => Self {
                min: values[0],
                median: values[n / 2],
                max: values[n - 1],
            },
        }
    }
}

/// One table of the report as a header and text cells: the terminal and
/// the HTML page draw the same cells.
pub struct Grid {
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl RunReport {
    /// Per input: files, bytes, and where every record went.
    pub fn inputs_grid(&self) -> Grid {
        let rows = self
            .inputs
            .iter()
            .map(|i| {
                vec![
                    i.input.to_string(),
                    i.files.to_string(),
                    human_bytes(i.bytes),
                    i.records.to_string(),
                    i.loaded.to_string(),
                    i.rejected.to_string(),
                    i.ignored_files.len().to_string(),
                ]
            })
            .collect();
        Grid {
            header: vec![
                "input",
                "files",
                "bytes",
                "records",
                "loaded",
                "rejected",
                "ignored files",
            ],
            rows,
        }
    }

    /// Per output table: its size and how evenly its rows fill its partitions.
    pub fn tables_grid(&self) -> Grid {
        let rows = self
            .tables
            .iter()
            .map(|t| {
                vec![
                    t.table.clone(),
                    t.rows.to_string(),
                    t.files.to_string(),
                    human_bytes(t.bytes),
                    t.partitions.to_string(),
                    t.rows_per_partition.to_string(),
                    format!("{:.2}", t.seconds),
                ]
            })
            .collect();
        Grid {
            header: vec![
                "table",
                "rows",
                "files",
                "bytes",
                "partitions",
                "rows/partition min · median · max",
                "seconds",
            ],
            rows,
        }
    }

    /// The report as the terminal shows it: one table of every job's stages.
    pub fn to_text(&self) -> String {
        let mut stages = Grid {
            header: [vec!["job"], JobReport::default().stages_grid().header].concat(),
            rows: Vec::new(),
        };
        for job in &self.jobs {
            for row in job.stages_grid().rows {
                stages.rows.push([vec![job.job.clone()], row].concat());
            }
        }
        let [inputs, tables, stages] =
            [self.inputs_grid(), self.tables_grid(), stages].map(|grid| {
                let mut table = Table::new();
                table.load_preset(UTF8_BORDERS_ONLY).set_header(grid.header);
                for row in grid.rows {
                    table.add_row(row);
                }
                table
            });
        let mut text = format!("{inputs}\n{tables}\n{stages}\n");
        for i in self.inputs.iter().filter(|i| i.rejected > 0) {
            if let Some(location) = &i.rejects_location {
                text.push_str(&format!(
                    "{} rejected {} records: {location}\n",
                    i.rejected, i.input
                ));
            }
        }
        if self.mode == "incremental" {
            let before: usize = self.inputs.iter().map(|i| i.files_loaded_before).sum();
            text.push_str(&format!(
                "incremental: {before} input files were loaded by earlier runs and skipped\n"
            ));
            if self.tables.is_empty() {
                text.push_str(&format!(
                    "no new input: {} is unchanged ({:.2}s)\n",
                    self.output, self.seconds
                ));
                return text;
            }
        }
        let readers = if self.versions.is_empty() {
            format!("readers: {}/_LATEST", self.output.trim_end_matches('/'))
        } else {
            let versions: Vec<String> = self
                .versions
                .iter()
                .map(|(table, version)| format!("{table} v{version}"))
                .collect();
            format!("Delta tables: {}", versions.join(", "))
        };
        text.push_str(&format!(
            "published {} in {:.2}s ({readers})\n",
            self.published, self.seconds
        ));
        text
    }
}

impl JobReport {
    /// Per stage: tasks, time, rows, bytes shuffled, and the spread of its task times.
    pub fn stages_grid(&self) -> Grid {
        let rows = self
            .stages
            .iter()
            .map(|s| {
                vec![
                    s.stage.clone(),
                    s.tasks.to_string(),
                    format!("{:.2}", s.seconds),
                    s.input_rows.to_string(),
                    s.output_rows.to_string(),
                    format!("{} in {}", human_bytes(s.shuffle_bytes), s.shuffle_blocks),
                    Spread::of(s.task_ms.clone()).to_string(),
                ]
            })
            .collect();
        Grid {
            header: vec![
                "stage",
                "tasks",
                "seconds",
                "rows in",
                "rows out",
                "shuffle written (blocks)",
                "task ms min · median · max",
            ],
            rows,
        }
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} · {} · {}", self.min, self.median, self.max)
    }
}

/// Bytes in binary units (`1.5 MiB`).
fn human_bytes(bytes: u64) -> String {
    bytesize::ByteSize::b(bytes).display().iec().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(partition: &str, rows: u64) -> WrittenFile {
        WrittenFile::example("t", partition, rows, 10)
    }

    #[test]
    fn partitions_are_counted_once_however_many_files() {
        let files = [
            file("year=1", 5),
            file("year=1", 5),
            file("year=2", 1),
            file("year=3", 30),
        ];
        let report = TableReport::new("t", "loc".into(), &files, 0.5);
        assert_eq!((report.rows, report.files, report.partitions), (41, 4, 3));
        assert_eq!(
            report.rows_per_partition,
            Spread {
                min: 1,
                median: 10,
                max: 30
            }
        );
    }

    #[test]
    fn loaded_and_rejected_add_up_to_records() {
        let listing = InputListing::default();
        let staged = [
            file("record_status=ok", 7),
            file("record_status=rejected", 2),
            file("record_status=ok", 1),
        ];
        let report = InputReport::new(InputKind::Events, &listing, &staged);
        assert_eq!((report.records, report.loaded, report.rejected), (10, 8, 2));
    }
}
