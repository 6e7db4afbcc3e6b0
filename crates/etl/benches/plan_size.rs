//! What a staging job's plan weighs as the input grows to a million files,
//! with its file list in the store (as runs do) and, for the ratio, carried
//! inline in the plan (as runs did).
//!
//! The plan is what the client sends the scheduler and the scheduler sends
//! every task; Ballista refuses messages over its limit (16 MiB unless
//! raised). This bench builds the staging scan over a synthetic listing of
//! song-file paths through the same code as a run ([`FileList`],
//! [`RawScanExec`]), encodes it with our codec as the client does, and
//! prints the plan's bytes, the file lists' bytes and the seconds each
//! takes. No input files are needed: the plan names them, never reads them.
//!
//! ```sh
//! cargo bench -p etl --bench plan_size -- --files 200000,1000000
//! ```

use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use datafusion::arrow::array::RecordBatch;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec;
use datafusion_proto::physical_plan::DefaultPhysicalExtensionCodec;
use etl::allowed::AllowedLocations;
use etl::codec::LakeCodec;
use etl::extract::file_list::{FileList, schema};
use etl::extract::listing::InputFile;
use etl::extract::scan::{RawScanExec, RejectPolicy, ScanSpec};
use etl::location::Location;
use etl::schema::InputKind;

#[derive(Parser)]
struct Args {
    /// Input files, one measurement each.
    #[arg(long, value_delimiter = ',', default_values_t = [14_896, 200_000, 1_000_000])]
    files: Vec<usize>,
    /// Scan tasks (`--partitions` of a run).
    #[arg(long, default_value_t = 16)]
    partitions: usize,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let codec = LakeCodec::new(
        Arc::new(DefaultPhysicalExtensionCodec {}),
        AllowedLocations::anywhere(),
    );
    let input = Location::parse("s3://sparkify/input")?;
    let lists = Location::parse("s3://lake/_runs/run-x/_staging/_file_lists/songs")?;
    println!(
        "| files | plan, lists in the store | file lists written | build + encode s | plan, lists inline | encode s | ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for &count in &args.files {
        let files = song_files(count);
        let spec = ScanSpec {
            kind: InputKind::Songs,
            root: input.url(),
            rejects: RejectPolicy::Quarantine,
        };
        let started = Instant::now();
        let list = FileList::new(&files, args.partitions, &lists)?;
        let scan = Arc::new(RawScanExec::try_new(spec.clone(), list.plan.clone())?);
        let plan = physical_plan_to_bytes_with_extension_codec(scan, &codec)?;
        let stored = started.elapsed().as_secs_f64();
        let lists_bytes: usize = list.files.iter().map(|(_, bytes)| bytes.len()).sum();

        let inline = inline_list(&list)?;
        let started = Instant::now();
        let scan = Arc::new(RawScanExec::try_new(spec, inline)?);
        let inline_plan = physical_plan_to_bytes_with_extension_codec(scan, &codec)?;
        let inline_seconds = started.elapsed().as_secs_f64();
        println!(
            "| {count} | {} | {} | {stored:.2} | {} | {inline_seconds:.2} | {:.0}× |",
            bytesize::ByteSize::b(plan.len() as u64).display().iec(),
            bytesize::ByteSize::b(lists_bytes as u64).display().iec(),
            bytesize::ByteSize::b(inline_plan.len() as u64)
                .display()
                .iec(),
            inline_plan.len() as f64 / plan.len() as f64,
        );
    }
    Ok(())
}

/// `count` song files under the bucket's layout (`song_data/A/B/C/...`).
fn song_files(count: usize) -> Vec<InputFile> {
    let letter = |n: usize| char::from(b'A' + (n % 26) as u8);
    (0..count)
        .map(|i| InputFile {
            path: format!(
                "input/song_data/{}/{}/{}/TR{}{}{}128F{i:08X}.json",
                letter(i / 676),
                letter(i / 26),
                letter(i),
                letter(i / 676),
                letter(i / 26),
                letter(i)
            ),
            size: 250 + (i % 100) as u64,
            key: i as i64,
            version: String::new(),
        })
        .collect()
}

/// The same runs as `list`, one in-memory partition each: the file list as
/// plans carried it before it moved to the store.
fn inline_list(list: &FileList) -> anyhow::Result<Arc<dyn ExecutionPlan>> {
    let partitions = list
        .files
        .iter()
        .map(|(_, bytes)| {
            ParquetRecordBatchReader::try_new(bytes.clone(), 8192)?
                .collect::<Result<Vec<RecordBatch>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let source = MemorySourceConfig::try_new(&partitions, schema(), None)?;
    Ok(DataSourceExec::from_data_source(source))
}
