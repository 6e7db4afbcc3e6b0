//! What a Delta commit and reading the log back cost as a table grows to
//! hundreds of thousands of files.
//!
//! Every full run replaces a table in one commit: a Remove for each of its
//! N current files and an Add (with statistics) for each new one, then a
//! checkpoint of the new version, from which the table is loaded. This
//! bench builds a table of N files through the same code as a run
//! ([`DeltaTarget::commit`]), makes `--runs` replace commits, and times
//! each commit and a fresh load of the log after it; the last column is
//! the process's peak resident memory so far (sizes run in the order
//! given).
//!
//! ```sh
//! cargo bench -p etl --bench delta_log -- --files 12620,200000 --runs 4
//! ```
//!
//! No data files are written: a commit and a log load read only the log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use etl::load::delta::table::{DeltaTarget, TableChange};
use etl::load::writer::WrittenFile;
use etl::location::Location;
use object_store::local::LocalFileSystem;

#[derive(Parser)]
struct Args {
    /// Files in the table, one measurement each.
    #[arg(long, value_delimiter = ',', default_values_t = [12_620, 300_000])]
    files: Vec<usize>,
    /// Replace commits after the table's creation.
    #[arg(long, default_value_t = 4)]
    runs: u64,
    /// Where the tables go (a temporary folder when not given).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One configuration's timings.
struct Measured {
    files: usize,
    create: Duration,
    commits: Vec<Duration>,
    loads: Vec<Duration>,
    log_bytes: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scratch = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| scratch.path().into());
    println!(
        "| files | create | replace commit median / max | load median / max | log on disk | peak RSS so far |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for &files in &args.files {
        let root = dir.join(format!("songs-{files}"));
        let m = measure(&root, files, args.runs).await?;
        print_row(&m);
        std::fs::remove_dir_all(&root)?;
    }
    Ok(())
}

/// Creates a table of `files` files, then replaces its contents `runs`
/// times, loading the log after each commit.
async fn measure(root: &Path, files: usize, runs: u64) -> anyhow::Result<Measured> {
    std::fs::create_dir_all(root)?;
    let target = DeltaTarget {
        name: "songs".into(),
        location: Location::parse(&root.to_string_lossy())?,
        store: Arc::new(LocalFileSystem::new()),
    };
    let started = Instant::now();
    target
        .commit(None, change(&target, files, 0)?, "bench-0", 1)
        .await?;
    let create = started.elapsed();
    let (mut commits, mut loads) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let current = target.load().await?;
        let started = Instant::now();
        target
            .commit(
                current,
                change(&target, files, run)?,
                &format!("bench-{run}"),
                // The lake's sequence number, one past the creation's 1.
                run + 1,
            )
            .await?;
        commits.push(started.elapsed());
        let started = Instant::now();
        let loaded = target.load().await?.expect("the table");
        loads.push(started.elapsed());
        assert_eq!(loaded.snapshot()?.log_data().num_files(), files);
    }
    Ok(Measured {
        files,
        create,
        commits,
        loads,
        log_bytes: folder_bytes(&root.join("_delta_log"))?,
    })
}

/// A run's files: one per artist partition, with statistics shaped like
/// those our writers report for songs.
fn change(target: &DeltaTarget, files: usize, run: u64) -> anyhow::Result<TableChange> {
    let root = target.location.object_path();
    let mut written: Vec<WrittenFile> = (0..files)
        .map(|i| {
            let partition = format!("year={}/artist_id=AR{i:016X}", 1950 + i % 70);
            WrittenFile {
                table: "songs".into(),
                path: format!("{root}/{partition}/part-bench{run}-{i:05}.parquet"),
                partition,
                rows: 1,
                bytes: 2_400,
                task: format!("{run}/{i}"),
                stats: format!(
                    r#"{{"numRecords":1,"minValues":{{"song_id":"SO{i:016X}","title":"Song number {i}","duration":{d}}},"maxValues":{{"song_id":"SO{i:016X}","title":"Song number {i}","duration":{d}}},"nullCount":{{"song_id":0,"title":0,"duration":0}}}}"#,
                    d = 100.0 + (i % 300) as f64
                ),
            }
        })
        .collect();
    Ok(TableChange {
        schema: Some(Arc::new(songs_schema())),
        partition_by: vec!["year".into(), "artist_id".into()],
        adds: target.adds(&mut written)?,
        replace: true,
        restores: false,
    })
}

fn songs_schema() -> Schema {
    Schema::new(vec![
        Field::new("song_id", DataType::Utf8, false),
        Field::new("title", DataType::Utf8, true),
        Field::new("duration", DataType::Float64, true),
        Field::new("year", DataType::Int32, true),
        Field::new("artist_id", DataType::Utf8, false),
    ])
}

fn folder_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}

fn print_row(m: &Measured) {
    let (commit_median, commit_max) = median_max(&m.commits);
    let (load_median, load_max) = median_max(&m.loads);
    println!(
        "| {} | {:.2} s | {:.2} s / {:.2} s | {:.2} s / {:.2} s | {:.0} MB | {} MiB |",
        m.files,
        m.create.as_secs_f64(),
        commit_median.as_secs_f64(),
        commit_max.as_secs_f64(),
        load_median.as_secs_f64(),
        load_max.as_secs_f64(),
        m.log_bytes as f64 / 1e6,
        peak_rss_mib(),
    );
}

/// The kernel's high-water mark of this process's resident memory
/// (`VmHWM`), 0 where /proc does not say.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

fn median_max(times: &[Duration]) -> (Duration, Duration) {
    let mut sorted = times.to_vec();
    sorted.sort();
    (sorted[sorted.len() / 2], sorted[sorted.len() - 1])
}
