//! The ETL run by `submit` with its in-process Ballista, on the real
//! Sparkify input, read back from the published Parquet.

use std::path::Path;

use e2e::expect::{
    FULL_S3, WORKSPACE, check_counts, check_event_facts, check_keys, check_types,
    check_workspace_match,
};
use e2e::tables::Published;
use e2e::{
    assert_success, binary, parquet_files, run_locally, shared_data, submit, workspace_input,
    workspace_root,
};

/// The committed tables (a copy of what the Delta logs name, in `tables`)
/// are hive-partitioned, and the run's folder holds its report and no
/// working files.
fn assert_hive_layout(tables: &Published, output: &Path) {
    let run = Path::new(tables.run_dir.strip_prefix("file://").unwrap());
    let songplays = run.join("songplays/year=2018/month=11");
    let files: Vec<_> = std::fs::read_dir(&songplays)
        .expect("songplays/year=2018/month=11/ exists")
        .collect();
    assert!(!files.is_empty());
    assert!(run.join("time/year=2018/month=11").is_dir());
    assert!(run.join("songs/year=0").is_dir());
    let run_folder = output.join("_runs").join(&tables.run_id);
    assert!(run_folder.join("_report.json").is_file());
    assert!(run_folder.join("_report.html").is_file());
    for working in ["_staging", "_attempts"] {
        assert!(
            !run_folder.join(working).exists(),
            "{working} is removed on commit"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn workspace_subset_gives_the_reference_tables() {
    let output = tempfile::tempdir().unwrap();
    // Two writer tasks whatever the machine's cores, so each songplays file
    // holds thousands of rows (the small-file format starts at 1,024).
    let two_tasks = ["--partitions", "2"];
    run_locally(&workspace_input(), output.path(), &two_tasks);
    let tables = Published::local(output.path()).await;
    check_counts(&tables, &WORKSPACE).await;
    check_keys(&tables).await;
    check_types(&tables).await;
    check_event_facts(&tables).await;
    assert_hive_layout(&tables, output.path());
    check_workspace_match(&tables).await;
    check_small_file_format(&tables.run_dir);
}

/// Every songs partition of the subset is a few rows: written without a
/// dictionary, with chunk statistics. The songplays partition, thousands of
/// rows, keeps dictionary encoding.
fn check_small_file_format(run_dir: &str) {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let run = Path::new(run_dir.strip_prefix("file://").unwrap());
    let first_column = |file: &Path| {
        let reader = SerializedFileReader::new(std::fs::File::open(file).unwrap()).unwrap();
        reader.metadata().row_group(0).column(0).clone()
    };
    let songs = parquet_files(&run.join("songs"));
    assert_eq!(
        songs.len() as i64,
        WORKSPACE.song_partitions,
        "one file per partition"
    );
    for file in &songs {
        let song_id = first_column(file);
        assert_eq!(song_id.dictionary_page_offset(), None, "{}", file.display());
        let stats = song_id.statistics().expect("chunk statistics");
        assert!(stats.min_bytes_opt().is_some(), "{}", file.display());
    }
    let songplays = parquet_files(&run.join("songplays"));
    assert!(!songplays.is_empty(), "songplays has files to check");
    assert!(
        songplays
            .iter()
            .all(|f| first_column(f).dictionary_page_offset().is_some())
    );
}

/// Nearly every play falls in one month, so songplays and time spread a
/// month over every writer task (`Clustering::Spread`) rather than leaving
/// one task to sort and write it all: with three partitions, the November
/// directory holds files of three tasks, each file in start_time order, and
/// no row is lost or doubled on the way.
#[tokio::test(flavor = "multi_thread")]
async fn a_month_of_plays_is_written_by_every_writer_task_in_time_order() {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::TimestampMillisecondType;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::collections::HashSet;

    let output = tempfile::tempdir().unwrap();
    run_locally(&workspace_input(), output.path(), &["--partitions", "3"]);
    let tables = Published::local(output.path()).await;
    check_counts(&tables, &WORKSPACE).await;
    let run = Path::new(tables.run_dir.strip_prefix("file://").unwrap());
    for table in ["songplays", "time"] {
        let files = parquet_files(&run.join(table).join("year=2018/month=11"));
        // Files are named part-<task id>-<file number>.parquet.
        let tasks: HashSet<String> = files
            .iter()
            .map(|f| {
                let name = f.file_name().unwrap().to_string_lossy();
                let id = name
                    .strip_prefix("part-")
                    .unwrap()
                    .rsplit_once('-')
                    .unwrap()
                    .0;
                id.to_string()
            })
            .collect();
        assert_eq!(tasks.len(), 3, "{table}: November written by {tasks:?}");
        for file in &files {
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap())
                    .unwrap()
                    .build()
                    .unwrap();
            let mut times = Vec::new();
            for batch in reader {
                let batch = batch.unwrap();
                let column = batch.column_by_name("start_time").unwrap();
                let column = column.as_primitive::<TimestampMillisecondType>();
                assert_eq!(column.null_count(), 0, "{}", file.display());
                times.extend(column.values().iter().copied());
            }
            assert!(!times.is_empty(), "{}", file.display());
            assert!(
                times.is_sorted(),
                "{} is not in start_time order",
                file.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_year_layout_writes_one_songs_file_per_year_sorted_by_artist() {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::DataType;
    use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

    let output = tempfile::tempdir().unwrap();
    run_locally(
        &workspace_input(),
        output.path(),
        &["--songs-layout", "year"],
    );
    let tables = Published::local(output.path()).await;
    let songs = Path::new(tables.run_dir.strip_prefix("file://").unwrap()).join("songs");
    // One partition, so rows come back in file order.
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    let mut rows = 0;
    for year in std::fs::read_dir(&songs).unwrap() {
        let year = year.unwrap().path();
        let name = year.file_name().unwrap().to_string_lossy().to_string();
        assert!(name.starts_with("year="), "{name}");
        let files: Vec<_> = std::fs::read_dir(&year)
            .unwrap()
            .map(|f| f.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "one file in {name}");
        let batches = ctx
            .read_parquet(files[0].to_str().unwrap(), ParquetReadOptions::default())
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let mut artists = Vec::new();
        for batch in &batches {
            let column = cast(batch.column_by_name("artist_id").unwrap(), &DataType::Utf8).unwrap();
            let column = column.as_string::<i32>();
            artists.extend((0..column.len()).map(|i| column.value(i).to_string()));
        }
        assert!(
            artists.is_sorted(),
            "{name} is sorted by artist_id: {artists:?}"
        );
        rows += artists.len() as i64;
    }
    assert_eq!(rows, WORKSPACE.songs);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs ../shared/data/udacity-s3 (the full input); CI runs it"]
async fn full_s3_copy_gives_the_reference_tables() {
    let output = tempfile::tempdir().unwrap();
    run_locally(&shared_data("udacity-s3"), output.path(), &[]);
    let tables = Published::local(output.path()).await;
    check_counts(&tables, &FULL_S3).await;
    check_keys(&tables).await;
    check_event_facts(&tables).await;
    // JSON numbers in string fields are read as the text Spark gives them.
    let numeric_titles = tables
        .rows("SELECT title FROM songs WHERE title IN ('66', '4.6') ORDER BY title")
        .await;
    assert_eq!(numeric_titles, [["4.6"], ["66"]]);
    let changed_level = tables
        .rows(
            "SELECT DISTINCT user_id FROM songplays GROUP BY user_id HAVING count(DISTINCT level) > 1 ORDER BY user_id",
        )
        .await;
    let changed: Vec<&str> = changed_level.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(changed, ["15", "16", "29", "36", "49", "80", "85", "88"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_replaces_the_tables_without_duplicates() {
    let output = tempfile::tempdir().unwrap();
    let input = workspace_input();
    run_locally(&input, output.path(), &[]);
    let first = Published::local(output.path()).await;
    let first_ids = first
        .rows("SELECT songplay_id FROM songplays ORDER BY songplay_id")
        .await;
    run_locally(&input, output.path(), &[]);
    let second = Published::local(output.path()).await;
    assert_ne!(first.run_id, second.run_id);
    check_counts(&second, &WORKSPACE).await;
    assert_eq!(
        second
            .rows("SELECT songplay_id FROM songplays ORDER BY songplay_id")
            .await,
        first_ids
    );
    run_locally(&input, output.path(), &[]);
    let third = Published::local(output.path()).await;
    check_counts(&third, &WORKSPACE).await;
    for (table, view) in &third.delta {
        assert_eq!(view.version, 2, "{table}: each run is one new version");
    }
    // Within --retain (7 days by default) the first run's files stay, so
    // its version still reads whole.
    let oldest = Published::local_delta(output.path(), Some(0)).await;
    check_counts(&oldest, &WORKSPACE).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_run_uses_the_shipped_sample_data() {
    let cwd = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        workspace_root().join("sample-data"),
        cwd.path().join("sample-data"),
    )
    .unwrap();
    let output = submit(&[], &[], cwd.path());
    assert_success(&output);
    let report = String::from_utf8_lossy(&output.stdout);
    for table in ["songs", "artists", "users", "time", "songplays"] {
        assert!(report.contains(table), "report lists {table}:\n{report}");
    }
    let tables = Published::local(&cwd.path().join("output")).await;
    for table in ["songs", "artists", "users", "time", "songplays"] {
        assert!(tables.count(table).await > 10, "{table} is not trivial");
    }
    assert!(tables.number("SELECT count(song_id) FROM songplays").await >= 3);
}

/// `submit -v … 2>&1 | head -1`: once the reader of its output goes away,
/// the run neither panics nor hangs, and it still publishes.
#[tokio::test(flavor = "multi_thread")]
async fn a_closed_output_pipe_does_not_break_the_run() {
    use std::process::Stdio;
    let output = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(binary("submit"))
        .arg("-v")
        .arg("--input")
        .arg(workspace_input())
        .arg("--output")
        .arg(output.path())
        .current_dir(workspace_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = tokio::time::timeout(std::time::Duration::from_secs(300), child.wait())
        .await
        .expect("submit finishes with its output pipes closed")
        .unwrap();
    assert!(status.success(), "submit failed: {status}");
    let tables = Published::local(output.path()).await;
    check_counts(&tables, &WORKSPACE).await;
}

#[test]
fn explain_shows_every_job_split_into_stages_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let input = workspace_input();
    let explained = run_locally(&input, &output, &["--explain", "--partitions", "3"]);
    let text = String::from_utf8_lossy(&explained.stdout);
    for job in [
        "stage songs",
        "stage events",
        "songs",
        "artists",
        "users",
        "time",
        "songplays",
    ] {
        assert!(
            text.contains(&format!("== job: {job} ==\n")),
            "{job}:\n{text}"
        );
    }
    let songplays = text.split("== job: songplays ==").nth(1).unwrap();
    assert!(
        songplays.contains("-- logical plan --\nWriteTable: table=songplays"),
        "{songplays}"
    );
    assert!(
        songplays.contains("join: Left hash join, both sides hash-shuffled on the keys"),
        "{songplays}"
    );
    // The writers take the join's output where it is: no shuffle by month.
    assert!(
        songplays.contains("stage 3 (3 partitions): output is the job's result"),
        "{songplays}"
    );
    assert!(!songplays.contains("stage 4"), "{songplays}");
    assert!(!output.exists(), "--explain writes nothing");
}

#[test]
fn bad_locations_fail_with_one_line_and_an_exit_code() {
    let root = workspace_root();
    let missing = submit(
        &[
            "--input",
            "/nonexistent/sparkify",
            "--output",
            "/tmp/unused",
        ],
        &[],
        &root,
    );
    assert_eq!(missing.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("no input files under file:///nonexistent/sparkify/song_data"),
        "{stderr}"
    );

    let malformed = submit(&["--input", "s3://", "--output", "/tmp/unused"], &[], &root);
    assert_eq!(malformed.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&malformed.stderr);
    assert!(
        stderr.contains("names no bucket") && !stderr.contains("panicked"),
        "{stderr}"
    );

    // An empty path segment is refused before anything is written: it
    // once became the file system's root.
    let input = workspace_input();
    let scratch = tempfile::tempdir().unwrap();
    let output = format!("file://{}//o", scratch.path().display());
    let empty_segment = submit(
        &["--input", input.to_str().unwrap(), "--output", &output],
        &[],
        &root,
    );
    assert_eq!(empty_segment.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&empty_segment.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("unusable path"), "{stderr}");
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
}

#[test]
fn help_explains_every_option() {
    let help = submit(&["--help"], &[], &workspace_root());
    let text = String::from_utf8_lossy(&help.stdout);
    for option in [
        "--input",
        "--output",
        "--scheduler",
        "--partitions",
        "--strict",
        "--max-rejects",
        "--timeout",
        "Exit codes",
    ] {
        assert!(text.contains(option), "--help mentions {option}:\n{text}");
    }
    // The README's options table is checked against --help, the source of truth.
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let options: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.trim_end_matches([',', '.', ')', ':']))
        .filter(|w| !w.contains('='))
        .collect();
    for option in options {
        if option != "--help" && option != "--version" {
            assert!(
                readme.contains(&format!("`{option}")),
                "README's options table lacks {option}"
            );
        }
    }
    let (_, exit_codes) = text.split_once("Exit codes:\n").expect("an exit code list");
    let listed: Vec<&str> = exit_codes
        .lines()
        // Continuation lines of a long meaning start with a word.
        .filter(|line| line.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|line| line.trim().split("  ").next())
        .collect();
    assert_eq!(
        listed,
        [
            "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "124", "130, 143"
        ],
        "{exit_codes}"
    );
}

/// What the report charts on the workspace input: skew over the output
/// partitions of each partitioned table, and over users.
const CHART_TITLES: [&str; 5] = [
    "songs rows by year",
    "songs per artist",
    "time rows by year and month",
    "songplays rows by year and month",
    "songplays per user",
];

#[test]
fn the_html_report_draws_the_numbers_of_the_json_report() {
    let output = tempfile::tempdir().unwrap();
    run_locally(&workspace_input(), output.path(), &[]);
    let run = output
        .path()
        .join("_runs")
        .join(e2e::tables::last_run_id(output.path()));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("_report.json")).unwrap()).unwrap();
    let html = std::fs::read_to_string(run.join("_report.html")).unwrap();
    // The page starts with `<!DOCTYPE html>`, which roxmltree refuses by default.
    let xml = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let page = roxmltree::Document::parse_with_options(&html, xml)
        .unwrap_or_else(|e| panic!("_report.html is not well-formed: {e}"));
    check_distribution_charts(&page, &json);
    check_task_charts(&page, &json);
    check_table_rows(&page, &json);
    check_phase_timings(&json);
}

/// The report times each input's listing, and each job's planning on the
/// client and its submission to the scheduler, apart from its run.
fn check_phase_timings(json: &serde_json::Value) {
    let seconds = |value: &serde_json::Value, field: &str| {
        value[field]
            .as_f64()
            .unwrap_or_else(|| panic!("no {field} in {value}"))
    };
    for input in json["inputs"].as_array().unwrap() {
        assert!(seconds(input, "listing_seconds") > 0.0, "{input}");
    }
    let jobs = json["jobs"].as_array().unwrap();
    for job in jobs {
        assert!(seconds(job, "planning_seconds") > 0.0, "{}", job["job"]);
    }
    let submitted: Vec<f64> = jobs
        .iter()
        .map(|job| seconds(job, "submission_seconds"))
        .collect();
    // Times come from the scheduler's clock in milliseconds: a quick
    // submission can read as 0, but not every one.
    assert!(submitted.iter().any(|s| *s > 0.0), "{submitted:?}");
}

/// Each chart of the JSON report is drawn once, bar for bar, and songs by
/// year shows year 0 (songs without a year) dominating.
fn check_distribution_charts(page: &roxmltree::Document, json: &serde_json::Value) {
    let charts = json["charts"].as_array().unwrap();
    let titles: Vec<&str> = charts
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, CHART_TITLES);
    let svgs: Vec<_> = page
        .descendants()
        .filter(|n| n.has_tag_name("svg") && n.has_attribute("data-chart"))
        .collect();
    let drawn: Vec<&str> = svgs
        .iter()
        .map(|s| s.attribute("data-chart").unwrap())
        .collect();
    assert_eq!(drawn, titles);
    for (svg, chart) in svgs.iter().zip(charts) {
        let bars: Vec<(&str, u64)> = svg
            .descendants()
            .filter(|n| n.has_tag_name("rect"))
            .map(|r| {
                let value = r.attribute("data-value").unwrap().parse().unwrap();
                (r.attribute("data-label").unwrap(), value)
            })
            .collect();
        let expected: Vec<(&str, u64)> = chart["bars"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| (b["label"].as_str().unwrap(), b["value"].as_u64().unwrap()))
            .collect();
        assert_eq!(bars, expected, "{}", chart["title"]);
        if chart["title"] == "songs rows by year" {
            let (year_0, others): (Vec<&(&str, u64)>, Vec<_>) =
                bars.iter().partition(|(label, _)| *label == "0");
            let year_0 = year_0.first().expect("a bar for year 0").1;
            assert!(others.iter().all(|(_, rows)| *rows < year_0), "{bars:?}");
        }
    }
}

/// Every job has a task-duration chart with the min, median and max of
/// each stage's task times, and every stage says what it shuffled.
fn check_task_charts(page: &roxmltree::Document, json: &serde_json::Value) {
    let jobs = json["jobs"].as_array().unwrap();
    assert!(!jobs.is_empty(), "the report lists the jobs");
    let svgs: Vec<_> = page
        .descendants()
        .filter(|n| n.has_tag_name("svg") && n.has_attribute("data-job"))
        .collect();
    assert_eq!(svgs.len(), jobs.len());
    for (svg, job) in svgs.iter().zip(jobs) {
        assert_eq!(svg.attribute("data-job"), job["job"].as_str());
        let drawn: Vec<[&str; 4]> = svg
            .descendants()
            .filter(|n| n.has_attribute("data-stage"))
            .map(|r| {
                ["data-stage", "data-min-ms", "data-median-ms", "data-max-ms"]
                    .map(|a| r.attribute(a).unwrap())
            })
            .collect();
        let expected: Vec<[String; 4]> = job["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|stage| {
                let mut ms: Vec<u64> = stage["task_ms"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_u64().unwrap())
                    .collect();
                ms.sort_unstable();
                let at = |i: usize| ms.get(i).copied().unwrap_or(0).to_string();
                let max = ms.len().saturating_sub(1);
                [
                    stage["stage"].as_str().unwrap().to_string(),
                    at(0),
                    at(ms.len() / 2),
                    at(max),
                ]
            })
            .collect();
        assert_eq!(drawn, expected, "{}", job["job"]);
        for stage in job["stages"].as_array().unwrap() {
            // Every stage writes something for the next one, or for the client.
            assert!(stage["shuffle_bytes"].as_u64().unwrap() > 0, "{stage}");
            assert!(stage["shuffle_blocks"].as_u64().unwrap() > 0, "{stage}");
        }
    }
}

/// The tables table shows the row counts of the JSON report.
fn check_table_rows(page: &roxmltree::Document, json: &serde_json::Value) {
    let table = page
        .descendants()
        .find(|n| n.has_tag_name("table") && n.attribute("class") == Some("tables"))
        .expect("a table of the output tables");
    let cells = |row: roxmltree::Node| -> Vec<String> {
        row.children()
            .filter(|c| c.has_tag_name("th") || c.has_tag_name("td"))
            .map(|c| c.text().unwrap_or("").to_string())
            .collect()
    };
    let mut rows = table
        .descendants()
        .filter(|n| n.has_tag_name("tr"))
        .map(cells);
    let header = rows.next().unwrap();
    let column = header.iter().position(|h| h == "rows").unwrap();
    let shown: Vec<(String, String)> = rows.map(|r| (r[0].clone(), r[column].clone())).collect();
    let expected: Vec<(String, String)> = json["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["rows"].to_string(),
            )
        })
        .collect();
    assert_eq!(shown, expected);
    assert_eq!(shown.len(), 5);
}

/// A song file's JSON.
fn song_json(song_id: &str, title: &str, artist_id: &str, artist_name: &str, year: i32) -> String {
    format!(
        r#"{{"num_songs": 1, "artist_id": "{artist_id}", "artist_latitude": null, "artist_longitude": null, "artist_location": "", "artist_name": "{artist_name}", "song_id": "{song_id}", "title": "{title}", "duration": 200.5, "year": {year}}}"#
    )
}

/// One line of an event log: user 7 on `page` at `ts` with `level`.
fn event_json(page: &str, ts: i64, level: &str) -> String {
    format!(
        r#"{{"artist":"Band","auth":"Logged In","firstName":"Ada","gender":"F","itemInSession":0,"lastName":"Lovelace","length":200.5,"level":"{level}","location":"London","method":"PUT","page":"{page}","registration":1540000000000.0,"sessionId":7,"song":"Tune","status":200,"ts":{ts},"userAgent":"test","userId":"7"}}"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn each_dimension_row_comes_from_the_record_its_rule_names() {
    let input = tempfile::tempdir().unwrap();
    let write = |relative: &str, text: &str| {
        let path = input.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    // A song_id in two files: the file first by path wins. An artist with
    // two songs: the row of the smaller song_id, whatever the file order.
    write(
        "song_data/A/a.json",
        &song_json("SO2", "First", "AR1", "Later Name", 2000),
    );
    write(
        "song_data/A/b.json",
        &song_json("SO2", "Second", "AR1", "Other", 1999),
    );
    write(
        "song_data/B/c.json",
        &song_json("SO1", "Solo", "AR1", "Earlier Name", 2001),
    );
    // The user's latest song play decides the level: a tie on ts goes to
    // the event read last, and other pages do not count.
    let day = [
        event_json("NextSong", 1_542_000_000_000, "paid"),
        event_json("NextSong", 1_542_000_100_000, "paid"),
        event_json("NextSong", 1_542_000_100_000, "free"),
        event_json("Home", 1_542_000_200_000, "paid"),
    ];
    write("log_data/2018/11/2018-11-12-events.json", &day.join("\n"));
    let output = tempfile::tempdir().unwrap();
    run_locally(input.path(), output.path(), &[]);

    let tables = Published::local(output.path()).await;
    let songs = tables
        .rows("SELECT song_id, title, CAST(year AS VARCHAR) FROM songs ORDER BY song_id")
        .await;
    assert_eq!(songs, [["SO1", "Solo", "2001"], ["SO2", "First", "2000"]]);
    let artists = tables.rows("SELECT artist_id, name FROM artists").await;
    assert_eq!(artists, [["AR1", "Earlier Name"]]);
    let users = tables
        .rows("SELECT CAST(user_id AS VARCHAR), first_name, level FROM users")
        .await;
    assert_eq!(users, [["7", "Ada", "free"]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_executor_memory_budget_bounds_every_task() {
    let input = workspace_input();
    let output = tempfile::tempdir().unwrap();
    let run = |budget: &str| {
        let (input, output) = (input.to_str().unwrap(), output.path().to_str().unwrap());
        let args = [
            "--input",
            input,
            "--output",
            output,
            "--executor-memory",
            budget,
            "--vcores",
            "2",
        ];
        submit(&args, &[], &workspace_root())
    };
    // A budget no aggregation fits in fails the job, naming the task's pool:
    // Ballista gives a task the budget's share of each of the two slots it
    // claims, so that pool is half the budget or all of it, never more.
    let starved = run("1KiB");
    let stderr = String::from_utf8_lossy(&starved.stderr);
    assert_eq!(starved.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("ResourcesExhausted"), "{stderr}");
    assert!(
        ["pool_size: 512.0 B)", "pool_size: 1024.0 B)"]
            .iter()
            .any(|pool| stderr.contains(pool)),
        "{stderr}"
    );
    // A small one is enough: what does not fit spills.
    assert_success(&run("64MiB"));
    let tables = Published::local(output.path()).await;
    check_counts(&tables, &WORKSPACE).await;
}

/// Writes `text` at `relative` under `root`, making its folders.
fn write_input(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn strange_values_are_quarantined_and_an_emptied_input_publishes_nothing() {
    let input = tempfile::tempdir().unwrap();
    let root = input.path();
    write_input(
        root,
        "song_data/A/a.json",
        &song_json("SO1", "Tune", "AR1", "Band", 2000),
    );
    let huge_year =
        song_json("SO2", "Tune", "AR2", "Band", 0).replace(r#""year": 0"#, r#""year": 3000000000"#);
    write_input(root, "song_data/A/b.json", &huge_year);
    let long_artist = format!("AR{}", "X".repeat(300));
    write_input(
        root,
        "song_data/A/c.json",
        &song_json("SO3", "Tune", &long_artist, "Band", 2000),
    );
    let plays: Vec<String> = (0..3)
        .map(|i| event_json("NextSong", 1_542_000_000_000 + i, "free"))
        .collect();
    let repeated = event_json("NextSong", 1_542_000_000_000, "free")
        .replace(r#""userId":"7"}"#, r#""userId":"7","ts":0}"#);
    write_input(
        root,
        "log_data/2018/11/2018-11-12-events.json",
        &[plays[0].clone(), repeated].join("\n"),
    );
    write_input(
        root,
        "log_data/2018/11/2018-11-13-events.json",
        &format!("[{}, {}]", plays[1], plays[2]),
    );
    let output = tempfile::tempdir().unwrap();
    run_locally(root, output.path(), &[]);

    let tables = Published::local(output.path()).await;
    assert_eq!(tables.count("songs").await, 1);
    assert_eq!(
        tables.count("songplays").await,
        3,
        "the array's two plays count"
    );
    let rejects = tables
        .rows("SELECT input, CAST(reject_line AS VARCHAR), reject_reason FROM rejects ORDER BY input, reject_reason")
        .await;
    assert_eq!(
        rejects,
        [
            ["events", "2", r#"key "ts" appears twice in the record"#],
            [
                "songs",
                "1",
                "artist_id is 302 bytes as a partition directory name, more than 200"
            ],
            ["songs", "1", "year 3000000000 is out of range for an int"],
        ]
    );

    // Every line of the logs broken: the run stops instead of replacing
    // the tables with empty ones, and says why in one line.
    for day in ["12", "13"] {
        write_input(
            root,
            &format!("log_data/2018/11/2018-11-{day}-events.json"),
            "x\nx\n",
        );
    }
    let args = [
        "--input",
        root.to_str().unwrap(),
        "--output",
        output.path().to_str().unwrap(),
    ];
    let emptied = submit(&args, &[], &workspace_root());
    assert_eq!(emptied.status.code(), Some(7));
    let stderr = String::from_utf8_lossy(&emptied.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("all 4 events records were rejected"),
        "{stderr}"
    );
    let unchanged = Published::local(output.path()).await;
    assert_eq!(unchanged.count("songplays").await, 3);
    for (table, view) in unchanged.delta.iter().filter(|(t, _)| *t != "_rejects") {
        assert_eq!(view.version, 0, "{table} is as the good run left it");
    }

    let allowed = submit(
        &[&args[..], &["--allow-empty"]].concat(),
        &[],
        &workspace_root(),
    );
    assert_success(&allowed);
    // An empty table has no files to read: its rows as Delta's own
    // readers count them.
    let emptied = Published::local(output.path()).await;
    let songplays = &emptied.delta["songplays"];
    assert_eq!(songplays.version, 1);
    assert_eq!(songplays.rows_deltalake, 0);
    assert_eq!(songplays.rows_duckdb, Some(0));
    assert_eq!(emptied.count("songs").await, 1);
}
