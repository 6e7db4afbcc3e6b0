//! `submit --incremental`: the real input arriving a day at a time, each
//! increment's lake checked against a full run over the input seen so far,
//! as delta-rs reads both; and increments repeated, killed, and given a
//! file that changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use e2e::arrivals::{add, arrivals};
use e2e::tables::{assert_same_tables, delta_views, last_run_id};
use e2e::{assert_success, run_locally, shared_data, submit, workspace_input, workspace_root};

/// Every Delta table of a lake, the lake's own included.
const LAKE_TABLES: [&str; 9] = [
    "songs",
    "artists",
    "users",
    "time",
    "songplays",
    "_rejects",
    "_staged/songs",
    "_staged/events",
    "_ingested",
];

fn url(path: &Path) -> String {
    format!("file://{}", path.canonicalize().unwrap().display())
}

/// Each Delta table's newest version (of those the lake has).
fn versions(lake: &Path) -> BTreeMap<String, i64> {
    let tables: Vec<&str> = LAKE_TABLES
        .into_iter()
        .filter(|table| lake.join(table).join("_delta_log").exists())
        .collect();
    delta_views(&url(lake), &tables, None, &[])
        .into_iter()
        .map(|(table, view)| (table, view.version))
        .collect()
}

/// The newest run's report.
fn last_report(lake: &Path) -> serde_json::Value {
    let run = last_run_id(lake);
    let path = lake.join("_runs").join(run).join("_report.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// Applies `steps` of `source` one at a time: after each, an incremental
/// run on `lake` and a full run on a lake of its own must give the same
/// tables; and the increment loaded only that step's files.
fn apply_steps(source: &Path, steps: &[Vec<PathBuf>], root: &Path, lake: &Path) {
    let input = root.join("input");
    let full = root.join("full");
    for (number, step) in steps.iter().enumerate() {
        add(source, &input, step);
        run_locally(&input, lake, &["--incremental"]);
        let report = last_report(lake);
        let expected_mode = if number == 0 { "full" } else { "incremental" };
        assert_eq!(report["mode"], expected_mode, "step {number}");
        let loaded: u64 = report["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|input| input["files"].as_u64().unwrap())
            .sum();
        assert_eq!(
            loaded,
            step.len() as u64,
            "step {number} loads its own files"
        );
        run_locally(&input, &full, &["--full"]);
        assert_same_tables(
            &url(lake),
            &url(&full),
            &[],
            &format!("after step {number}"),
        );
    }
}

/// The real input, a log day per increment, the songs in two arrivals (the
/// second on day 11, so ten days of plays wait for their songs): after
/// every increment the tables equal a full run's over the input so far.
#[test]
#[ignore = "needs the full real input in ../shared/data (CI runs it)"]
fn thirty_days_one_increment_each_equal_a_full_run_after_every_day() {
    let source = shared_data("udacity-s3");
    let steps = arrivals(&source, 11);
    assert_eq!(steps.len(), 30);
    let root = tempfile::tempdir().unwrap();
    let lake = root.path().join("lake");
    apply_steps(&source, &steps, root.path(), &lake);

    // The same increment again: nothing is new, nothing is committed.
    let before = versions(&lake);
    let again = run_locally(&root.path().join("input"), &lake, &["--incremental"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("no new input"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert_eq!(
        versions(&lake),
        before,
        "a repeated increment commits nothing"
    );
}

/// The workspace subset in three increments, then increments killed:
/// before their claim's first table commit they change nothing a reader
/// sees; between two table commits they leave every table at a committed
/// version, some moved on, and the next run (the dead claim once lapsed)
/// rebuilds every table.
#[test]
fn a_killed_increment_changes_nothing_or_is_repaired_by_the_next() {
    let source = workspace_input();
    let days = arrivals(&source, 15);
    let steps = vec![
        days[..10].concat(),
        days[10..20].concat(),
        days[20..28].concat(),
    ];
    let root = tempfile::tempdir().unwrap();
    let (input, lake, full) = (
        root.path().join("input"),
        root.path().join("lake"),
        root.path().join("full"),
    );
    apply_steps(&source, &steps, root.path(), &lake);
    let args = [
        "--input",
        input.to_str().unwrap(),
        "--output",
        lake.to_str().unwrap(),
        "--incremental",
        "--claim-timeout",
        "0s",
    ];
    let killed_at = |point: &str| {
        let killed = submit(&args, &[("SPARKIFY_CRASH_AT", point)], &workspace_root());
        assert!(!killed.status.success(), "the run was killed at {point}");
    };
    let repair = |context: &str| {
        assert_success(&submit(&args, &[], &workspace_root()));
        assert_eq!(
            last_report(&lake)["mode"],
            "full",
            "a dead claim makes a full run"
        );
        run_locally(&input, &full, &[]);
        assert_same_tables(&url(&lake), &url(&full), &[], context);
    };

    add(&source, &input, &days[28]);
    for point in ["staged", "written", "committing"] {
        let before = versions(&lake);
        killed_at(point);
        assert_eq!(
            versions(&lake),
            before,
            "killed at {point}, nothing changed"
        );
    }
    repair("after a kill before the first commit");

    add(&source, &input, &days[29]);
    let before = versions(&lake);
    killed_at("between-commits");
    let moved: Vec<String> = versions(&lake)
        .into_iter()
        .filter(|(table, version)| before[table] != *version)
        .map(|(table, _)| table)
        .collect();
    assert_eq!(
        moved,
        ["users"],
        "the first commit of a day's increment is users'"
    );
    repair("after a kill between commits");
}

/// A file the lake loaded that changed stops an increment, naming it and
/// the way out; `--full` then rebuilds from the input as it is.
#[test]
fn a_changed_input_file_stops_an_increment() {
    let source = workspace_input();
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("input");
    let lake = root.path().join("lake");
    add(&source, &input, &arrivals(&source, 1).concat());
    run_locally(&input, &lake, &["--incremental"]);
    let before = versions(&lake);

    let day = input.join("log_data/2018/11/2018-11-05-events.json");
    let mut text = std::fs::read_to_string(&day).unwrap();
    let first_line = text.lines().next().unwrap().to_string();
    text.push_str(&first_line);
    text.push('\n');
    std::fs::write(&day, text).unwrap();
    let args = [
        "--input",
        input.to_str().unwrap(),
        "--output",
        lake.to_str().unwrap(),
        "--incremental",
    ];
    let refused = submit(&args, &[], &workspace_root());
    assert_eq!(refused.status.code(), Some(9));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("1 events files changed since the lake loaded them")
            && stderr.contains("2018-11-05-events.json")
            && stderr.contains("rerun with --full"),
        "{stderr}"
    );
    assert_eq!(versions(&lake), before);

    run_locally(&input, &lake, &["--full"]);
    let full = root.path().join("full");
    run_locally(&input, &full, &[]);
    assert_same_tables(&url(&lake), &url(&full), &[], "after --full");
}
