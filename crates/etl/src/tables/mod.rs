//! The five tables of the star schema, one file each, as DataFusion queries
//! over the staged records. Each module states its columns, its partitioning
//! and the rule that makes it deterministic.

pub mod artists;
#[cfg(test)]
mod fixture;
pub mod songplays;
pub mod songs;
pub mod time;
pub mod users;

use datafusion::error::Result;

use crate::load::writer::WrittenFile;
use crate::report::{Chart, charts};
use crate::schema::InputKind;

pub use crate::load::writer::Clustering;
use datafusion::logical_expr::SortExpr;
use datafusion::prelude::{DataFrame, Expr, col, ident, lit};

/// The staged, good records a run builds a table from.
#[derive(Clone)]
pub struct Staged {
    /// One row per song record read (duplicates of a song_id included).
    pub songs: DataFrame,
    /// One row per event read, every page.
    pub events: DataFrame,
    /// When `time` is appended to: the start times it already holds
    /// (column `start_time`), which the new rows leave out.
    pub published_times: Option<DataFrame>,
}

/// One output table: its name, layout and query.
pub struct TableDef {
    pub name: &'static str,
    /// The input it is built from: a table with no rows while this input
    /// has records stops the run (`--allow-empty`).
    pub input: InputKind,
    /// Hive partition columns, outermost first.
    pub partition_by: &'static [&'static str],
    /// Order of rows inside each file.
    pub sort_by: &'static [&'static str],
    /// How rows reach the writer tasks ([`Clustering`]); each table's
    /// module says which it takes and why.
    pub clustering: Clustering,
    /// Builds the table's rows from the staged records.
    pub plan: fn(&Staged) -> Result<DataFrame>,
    /// What the report charts of its layout.
    pub charts: &'static [PartitionChart],
    /// How an incremental run brings the table up to date.
    pub update: Update,
    /// How many rows the table must have, counted cheaply from the staged
    /// records (one row, column `rows`): the run checks the rows its
    /// writers report against it, so a task whose output the engine
    /// counted twice or lost cannot pass unnoticed.
    pub expected_rows: fn(&Staged) -> Result<DataFrame>,
}

/// How an incremental run (`--incremental`) brings a table up to date with
/// the files it loads, so that the table equals a full run's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// Rebuilt from every staged record, old and new, when the table's
    /// input has new records: tables of one row per key, where a new
    /// record may change an old row (a user's level, the song that names
    /// an artist).
    Rebuild,
    /// The rows of the new events, appended. With `matches_songs`, the
    /// rows depend on the songs too, and are rebuilt when new songs arrive
    /// and `--late-songs rematch` asks for it.
    Append { matches_songs: bool },
}

/// One row, `rows`: the distinct values of `key` in `records`.
fn distinct_count(records: DataFrame, key: Expr) -> Result<DataFrame> {
    use datafusion::functions_aggregate::expr_fn::count_distinct;
    records.aggregate(vec![], vec![count_distinct(key).alias("rows")])
}

/// One row per value of `key` in `records`: `key`, then each of `columns`
/// (name, value) taken from the record that sorts first by `order`.
///
/// `DataFrame::distinct_on` picks the same rows but also sorts its whole
/// output by the key, a sort no writer wants: each writer sorts by its own
/// partition columns. On Ballista that sort collapses the rows to one
/// partition first (a `CoalescePartitionsExec` under the writer's shuffle),
/// which costs the songs job a whole extra stage.
fn first_per_key(
    records: DataFrame,
    key: &str,
    columns: Vec<(&str, Expr)>,
    order: Vec<SortExpr>,
) -> Result<DataFrame> {
    use datafusion::functions_aggregate::first_last::first_value;
    let names: Vec<Expr> = std::iter::once(key)
        .chain(columns.iter().map(|(name, _)| *name))
        .map(ident)
        .collect();
    let firsts = columns
        .into_iter()
        .map(|(name, value)| first_value(value, order.clone()).alias(name))
        .collect();
    records.aggregate(vec![ident(key)], firsts)?.select(names)
}

/// A chart of how a table's rows spread over its output partitions.
pub enum PartitionChart {
    /// Rows per value of these partition columns.
    RowsBy(&'static [&'static str]),
    /// How many values of a partition column (`key`s) hold how many rows.
    ValuesPerCount {
        column: &'static str,
        title: &'static str,
        key: &'static str,
    },
}

impl PartitionChart {
    /// The chart of `table`, from the files its writers reported.
    pub fn draw(&self, table: &str, files: &[WrittenFile]) -> Chart {
        match self {
            PartitionChart::RowsBy(columns) => charts::rows_per_partition(table, files, columns),
            PartitionChart::ValuesPerCount { column, title, key } => {
                let counts = charts::rows_per_value(files, column)
                    .into_iter()
                    .map(|rows| (rows, 1));
                charts::keys_per_count(title, key, counts)
            }
        }
    }
}

/// How the songs table is laid out in directories.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SongsLayout {
    /// `year=…/artist_id=…/`: the Spark job's layout, one file per artist and year.
    #[default]
    YearArtist,
    /// `year=…/`, sorted by artist_id: one file per year.
    Year,
}

/// The star schema, fact table last, with the songs table in `layout`.
pub fn tables(layout: SongsLayout) -> [TableDef; 5] {
    let songs = match layout {
        SongsLayout::YearArtist => songs::TABLE,
        SongsLayout::Year => songs::BY_YEAR,
    };
    [
        songs,
        artists::TABLE,
        users::TABLE,
        time::TABLE,
        songplays::TABLE,
    ]
}

/// Events of songs being played: the only page the tables are built from.
pub fn song_plays(events: &DataFrame) -> Result<DataFrame> {
    events.clone().filter(col("page").eq(lit("NextSong")))
}

/// `ts` (milliseconds since the epoch) as a UTC timestamp.
fn start_time() -> Expr {
    use datafusion::arrow::datatypes::{DataType, TimeUnit};
    datafusion::prelude::cast(
        col("ts"),
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
    )
}

/// A part of `start_time` as an int, as Spark's `year()`, `month()`… give.
fn time_part(part: &str) -> Expr {
    use datafusion::arrow::datatypes::DataType;
    datafusion::prelude::cast(
        datafusion::functions::expr_fn::date_part(lit(part), col("start_time")),
        DataType::Int32,
    )
}
