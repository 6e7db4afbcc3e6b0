//! Writing the tables: the partitioned writer, its place in a plan, reading
//! staged files back, and the commit protocol that publishes a run.

pub mod delta;
pub mod hive;
pub mod ingested;
pub mod lake_log;
pub mod plan;
pub mod publish;
pub mod staged;
pub mod writer;

/// How a run's tables are published.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TableFormat {
    /// Delta Lake tables at fixed paths, `<output>/<table>/` ([`delta`]).
    #[default]
    Delta,
    /// Plain hive-partitioned Parquet in a folder per run, named by
    /// `<output>/_LATEST` ([`publish`]), for readers without Delta support.
    Parquet,
}
