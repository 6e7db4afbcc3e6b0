//! The command line: every option, its default, and the exit codes.

use std::process::ExitCode;

use clap::Parser;
use client::error::ClusterError;
use cluster::logging::LogFormat;
use etl::error::EtlError;
use etl::extract::scan::RejectPolicy;
use etl::load::TableFormat;
use etl::load::delta::vacuum::VacuumPolicy;
use etl::location::Location;
use etl::run::{LateSongs, RejectLimit, RunConfig};
use etl::tables::SongsLayout;

/// Run the Sparkify ETL on Apache DataFusion Ballista: raw song and event
/// JSON in, a star schema of hive-partitioned Parquet tables out.
///
/// Without --scheduler, a scheduler and an executor start inside this
/// process. S3 credentials, region and endpoint come from the standard AWS
/// environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
/// AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL); an http:// endpoint
/// enables plain HTTP for S3-compatible servers.
#[derive(Debug, Parser)]
#[command(version, after_help = EXIT_CODES)]
pub struct Args {
    /// Input root holding song_data/ and log_data/: a local path, file://… or s3://bucket/prefix.
    #[arg(long, env = "SPARKIFY_INPUT", default_value = "sample-data")]
    pub input: String,

    /// Output root: the Delta tables <output>/songs, artists, users, time,
    /// songplays and _rejects, and each run's report in <output>/_runs/.
    #[arg(long, env = "SPARKIFY_OUTPUT", default_value = "output")]
    pub output: String,

    /// `delta`: Delta Lake tables at fixed paths, one commit per table and
    /// run. `parquet`: plain hive-partitioned Parquet in a folder per run,
    /// named by <output>/_LATEST, for readers without Delta support.
    #[arg(long, env = "SPARKIFY_TABLE_FORMAT", value_enum, default_value_t)]
    pub table_format: TableFormat,

    /// Delta: files a run's commit replaced are deleted by the first run
    /// after they are this old, so queries on earlier versions finish and
    /// time travel works within it (Delta's own default is 7 days).
    #[arg(long, env = "SPARKIFY_RETAIN", default_value = "7d", value_parser = humantime::parse_duration)]
    pub retain: std::time::Duration,

    /// Delta: every this many runs (and after a run that died during its
    /// commits), a run's vacuum also lists every file of its tables to
    /// delete those no commit names, as runs killed before committing
    /// leave. Other runs delete only the files commits removed, which
    /// lists nothing. 1: every run.
    #[arg(long, env = "SPARKIFY_FULL_VACUUM_EVERY", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub full_vacuum_every: u64,

    /// A run killed while it holds the output (Delta: during its commits;
    /// Parquet: from its start to its publication) blocks other runs for
    /// this long, then is taken as dead.
    #[arg(long, env = "SPARKIFY_CLAIM_TIMEOUT", default_value = "30m", value_parser = humantime::parse_duration)]
    pub claim_timeout: std::time::Duration,

    /// Delta: load only the input files the lake has not loaded yet (by
    /// path, size and ETag or modification time, in <output>/_ingested):
    /// new plays and start times are appended, users, and with new songs
    /// songs and artists, are rebuilt from the staged records. A run with
    /// no ingest record yet (the first) is a full run. An ingested file
    /// that changed stops the run (exit code 9): rerun with --full.
    #[arg(long, env = "SPARKIFY_INCREMENTAL", conflicts_with = "full")]
    pub incremental: bool,

    /// Rebuild every table from all of the input (the default).
    #[arg(long)]
    pub full: bool,

    /// With --incremental, when new songs arrive: `rematch` rebuilds
    /// songplays so that earlier plays of those songs get their song_id
    /// (the tables equal a full run's); `keep` leaves published plays as
    /// they are and only appends.
    #[arg(long, env = "SPARKIFY_LATE_SONGS", value_enum, default_value_t)]
    pub late_songs: LateSongs,

    /// Delta: print the runs recorded in the output, with each table's
    /// version, then stop.
    #[arg(long, conflicts_with = "rollback")]
    pub list_runs: bool,

    /// Delta: commit every table back to its contents after run RUN_ID (see
    /// --list-runs), as new versions, then stop.
    #[arg(long, value_name = "RUN_ID")]
    pub rollback: Option<String>,

    /// Ballista scheduler (host:port) to submit to. Default: an in-process cluster.
    #[arg(long, env = "SPARKIFY_SCHEDULER")]
    pub scheduler: Option<String>,

    /// Tasks per stage (scan shards, shuffle partitions, writer tasks).
    /// Default: the task slots (vcores) of the registered executors.
    #[arg(long, env = "SPARKIFY_PARTITIONS", value_parser = clap::value_parser!(usize))]
    pub partitions: Option<usize>,

    /// Task slots of the in-process executor. Default: the machine's cores.
    #[arg(long, env = "SPARKIFY_VCORES")]
    pub vcores: Option<usize>,

    /// Memory budget of the in-process executor, shared by its task slots:
    /// sorts, aggregations and shuffles spill to disk beyond it, and freed
    /// memory goes back to the system at once (a little slower). Default:
    /// Ballista's, 70% of the machine's memory. (A cluster's executors take
    /// `--memory-pool-size`.)
    #[arg(long, env = "SPARKIFY_EXECUTOR_MEMORY")]
    pub executor_memory: Option<bytesize::ByteSize>,

    /// Fail on the first bad input record, naming its file and line.
    #[arg(long, conflicts_with = "max_rejects")]
    pub strict: bool,

    /// Fail (publishing nothing) when more input records than this are
    /// rejected, per input: a count (100) or a fraction (0.01, 1%).
    /// Default: any number, each one quarantined and reported.
    #[arg(long, env = "SPARKIFY_MAX_REJECTS", value_parser = RejectLimit::parse)]
    pub max_rejects: Option<RejectLimit>,

    /// Publish even when a table would be empty while its input is not
    /// (every record of an input rejected, or no event a song play). By
    /// default such a run fails with exit code 7 and publishes nothing:
    /// replacing good tables with empty ones is nearly always a broken feed.
    #[arg(long, env = "SPARKIFY_ALLOW_EMPTY")]
    pub allow_empty: bool,

    /// Parquet files are split when they reach this size.
    #[arg(long, env = "SPARKIFY_TARGET_FILE_SIZE", default_value = "128MiB")]
    pub target_file_size: bytesize::ByteSize,

    /// Directories of the songs table: `year-artist` (year=…/artist_id=…/,
    /// as the Spark job wrote it) or `year` (year=…/, sorted by artist_id:
    /// far fewer files at scale).
    #[arg(long, env = "SPARKIFY_SONGS_LAYOUT", value_enum, default_value_t)]
    pub songs_layout: SongsLayout,

    /// Jobs submitted to the scheduler at once: 0 submits all of a step's
    /// jobs together (the five tables at once); 1 runs them one by one, so
    /// each has the whole cluster.
    #[arg(long, env = "SPARKIFY_CONCURRENT_JOBS", default_value_t = 0)]
    pub concurrent_jobs: usize,

    /// Stop the run, publishing nothing, when it has not published after
    /// this long (`90s`, `30m`, `2h`), cancelling its jobs on a cluster.
    /// Default: no limit.
    #[arg(long, env = "SPARKIFY_TIMEOUT", value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,

    /// Seconds to wait for at least one executor to register.
    #[arg(long, env = "SPARKIFY_EXECUTOR_TIMEOUT", default_value_t = 60)]
    pub executor_timeout: u64,

    /// Print every job's logical plan and its distributed plan (stages,
    /// shuffle keys, partitions, how joins run), then stop: nothing is run
    /// or written.
    #[arg(long)]
    pub explain: bool,

    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,

    /// Log what the client does: -v at info, -vv debug, -vvv trace
    /// (RUST_LOG overrides).
    #[arg(long, short, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log lines as text, or as one JSON object each.
    #[arg(long, env = "SPARKIFY_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: LogFormat,

    /// A DataFusion or Ballista session setting for every job, as
    /// `spark-submit --conf` (`datafusion.execution.batch_size=4096`);
    /// repeatable. The settings the jobs depend on are refused.
    #[arg(long = "conf", value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub conf: Vec<(String, String)>,
}

/// A command line that parses but cannot be used (a refused `--conf`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Splits a `--conf` argument at its first `=`.
fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(format!("'{text}' is not KEY=VALUE")),
    }
}

const EXIT_CODES: &str = "\
Exit codes:
  0         the run was published
  1         any other failure
  2         bad command line, or a malformed input or output location
  3         input missing, empty or unreadable (no credentials, access denied, no such bucket)
  4         output not writable or unreadable
  5         scheduler unreachable, no executor registered, or scheduler lost during the run
  6         a job failed on the cluster
  7         too many rejected records (--max-rejects, --strict), or tables that would be
            empty while their input is not (--allow-empty)
  8         another run committed to the output while this one ran, or holds it now
            (this one published nothing)
  9         input the run cannot load as it is: --incremental found a file it loaded
            earlier changed (rerun with --full), or two input files share a file key
  124       the run took longer than --timeout
  130, 143  interrupted by SIGINT (Ctrl-C) or SIGTERM";

impl Args {
    /// The run configuration, before the number of partitions is known.
    pub fn run_config(&self) -> anyhow::Result<RunConfig> {
        if self.incremental && self.table_format == TableFormat::Parquet {
            return Err(Usage(
                "--incremental builds on the lake's Delta tables: it needs --table-format delta"
                    .into(),
            )
            .into());
        }
        Ok(RunConfig {
            input: Location::parse(&self.input)?,
            output: Location::parse(&self.output)?,
            partitions: self.partitions.unwrap_or(1),
            rejects: if self.strict {
                RejectPolicy::Strict
            } else {
                RejectPolicy::Quarantine
            },
            max_rejects: self.max_rejects,
            allow_empty: self.allow_empty,
            target_file_bytes: self.target_file_size.as_u64(),
            concurrent_jobs: self.concurrent_jobs,
            songs_layout: self.songs_layout,
            table_format: self.table_format,
            vacuum: VacuumPolicy {
                retain: self.retain,
                full_every: self.full_vacuum_every,
            },
            claim_timeout: self.claim_timeout,
            incremental: self.incremental && !self.full,
            late_songs: self.late_songs,
        })
    }

    pub fn in_process_vcores(&self) -> usize {
        self.vcores
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
    }
}

/// The documented exit code for an error.
pub fn exit_code(error: &anyhow::Error) -> ExitCode {
    let code = if error.downcast_ref::<Usage>().is_some() {
        2
    } else if let Some(error) = error.downcast_ref::<EtlError>() {
        match error {
            EtlError::Location(_) => 2,
            EtlError::NoInput { .. } | EtlError::Input { .. } | EtlError::InputStore(_) => 3,
            EtlError::Store { .. }
            | EtlError::OutputStore(_)
            | EtlError::OutputNotWritable { .. }
            | EtlError::Delta(_) => 4,
            EtlError::ConcurrentRun(_) => 8,
            EtlError::InputConflict(_) => 9,
            EtlError::TooManyRejects { .. } | EtlError::Empty(_) => 7,
            EtlError::StrictReject(_) => 7,
            EtlError::Engine(engine) if engine.downcast_ref::<ClusterError>().is_some() => 5,
            EtlError::Engine(_)
            | EtlError::Job { .. }
            | EtlError::RowCount { .. }
            | EtlError::DuplicateRecords { .. } => 6,
            EtlError::Plan { .. } => 1,
        }
    } else if error.downcast_ref::<ClusterError>().is_some() {
        5
    } else {
        1
    };
    ExitCode::from(code)
}
