//! `datagen`: writes Sparkify-shaped raw input at any scale, deterministic
//! by seed, in the public bucket's layout: one song per file under
//! `song_data/X/Y/Z/`, one NDJSON event log per day under `log_data/YYYY/MM/`.
//!
//! The same seed and sizes always give the same bytes. Files are written by
//! several threads; each song and each day is derived from the seed and its
//! own index, so the split across threads changes nothing.

mod activity;
mod catalog;
mod words;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::NaiveDate;
use clap::Parser;

use activity::Activity;
use catalog::Catalog;

/// Write Sparkify-shaped input (song files and event logs).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Folder to write song_data/ and log_data/ into (replaced if it exists).
    #[arg(long)]
    out: PathBuf,
    /// Number of songs, one file each.
    #[arg(long, default_value_t = 1000)]
    songs: u64,
    /// Number of events over all days.
    #[arg(long, default_value_t = 10_000)]
    events: u64,
    /// Number of users. Default: one per 80 events, between 10 and 100,000.
    #[arg(long)]
    users: Option<u64>,
    /// Days of logs, starting 2018-11-01.
    #[arg(long, default_value_t = 30)]
    days: u64,
    /// Share of song plays that name a catalog song exactly.
    #[arg(long, default_value_t = 0.05)]
    match_share: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.match_share),
        "--match-share must be between 0 and 1"
    );
    anyhow::ensure!(args.days > 0, "--days must be at least 1");
    let catalog = Catalog::new(args.seed, args.songs);
    let activity = Activity {
        seed: args.seed,
        events: args.events,
        users: args.users.unwrap_or((args.events / 80).clamp(10, 100_000)),
        first_day: NaiveDate::from_ymd_opt(2018, 11, 1).expect("valid date"),
        days: args.days,
        match_share: args.match_share,
    };
    if args.out.exists() {
        fs::remove_dir_all(&args.out)
            .with_context(|| format!("clearing {}", args.out.display()))?;
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                let out = &args.out;
                scope.spawn(move || write_share(out, &catalog, &activity, worker, threads))
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("a writer thread panicked"))??;
        }
        Ok(())
    })?;
    println!(
        "wrote {} song files and {} events over {} days to {}",
        args.songs,
        args.events,
        args.days,
        args.out.display()
    );
    Ok(())
}

/// Writes every `threads`-th song and day, starting at `worker`.
fn write_share(
    out: &Path,
    catalog: &Catalog,
    activity: &Activity,
    worker: u64,
    threads: u64,
) -> anyhow::Result<()> {
    for index in (worker..catalog.songs).step_by(threads as usize) {
        let song = catalog.song(index);
        let id = &song.track_id;
        let dir = out
            .join("song_data")
            .join(&id[2..3])
            .join(&id[3..4])
            .join(&id[4..5]);
        write(&dir, &format!("{id}.json"), &catalog.song_json(&song))?;
    }
    for day in (worker..activity.days).step_by(threads as usize) {
        let (path, lines) = activity.day_log(catalog, day);
        let path = out.join("log_data").join(path);
        let dir = path.parent().context("log path has a folder")?;
        let name = path
            .file_name()
            .context("log path has a name")?
            .to_string_lossy()
            .to_string();
        write(dir, &name, &lines)?;
    }
    Ok(())
}

fn write(dir: &Path, name: &str, content: &str) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    fs::write(&path, content).with_context(|| format!("writing {}", path.display()))
}
