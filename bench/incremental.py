"""Benchmark of `submit --incremental`: one day of logs on a built lake,
against a full rebuild of the same lake, measured in the same run.

For each of our setups (in-process, and the two-executor cluster):

1. `base`: the lake built from every song and all log days but the last
   (`--incremental` on an empty lake, which is a full run);
2. `increment`: the last day's log file added, `--incremental`: it stages
   that one file and updates the tables;
3. `full`: `--full` over the same input (all days) into a new lake: what
   every daily run cost before.

The target (issue 25): the increment takes at most a tenth of the full
rebuild's wall time, with a peak memory bounded by the increment, not by the
lake. The input views are folders of symbolic links to one generated input,
so no file is copied. Wall, CPU and peak RSS are measured as bench/run.py
measures them (its `measure`).

Usage: python3 bench/incremental.py --datagen 200000 2000000 [--work DIR] [--cores N]
"""

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from run import LocalCluster, default_submit, generate_input, measure


def link_tree(source: Path, view: Path, leave_out: set[Path]) -> None:
    """`view` mirrors `source` with a symbolic link per file, less `leave_out`."""
    for root, _dirs, files in os.walk(source):
        for name in files:
            file = Path(root) / name
            if file in leave_out:
                continue
            link = view / file.relative_to(source)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(file)


def run(args, setup: str, name: str, input_dir: Path, lake: Path, mode: str, logs: Path) -> dict:
    """One `submit` run, measured."""
    command = [str(args.submit), "--input", str(input_dir), "--output", str(lake), "--quiet", mode]
    if setup == "cluster":
        vcores = max(1, args.cores // 2)
        with LocalCluster(args.submit.parent, 2, vcores, logs) as cluster:
            command += ["--scheduler", f"127.0.0.1:{cluster.port}"]
            result = measure(command, logs / f"{setup}-{name}", daemons=cluster.processes)
    else:
        command += ["--vcores", str(args.cores)]
        result = measure(command, logs / f"{setup}-{name}")
    if result["exit_code"] != 0:
        raise SystemExit(f"{setup} {name} failed: {result.get('error')}")
    print(f"{setup:10} {name:9} {result['wall_seconds']:8.2f} s  {result['peak_rss_mib']:8.0f} MiB", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datagen", nargs=2, type=int, required=True, metavar=("SONGS", "EVENTS"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--submit", type=Path, default=default_submit())
    parser.add_argument("--datagen-bin", type=Path)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--setups", default="in-process,cluster")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="sparkify-incremental-"))
    work.mkdir(parents=True, exist_ok=True)
    source = generate_input(args, work)
    days = sorted((source / "log_data").rglob("*.json"))
    last_day = days[-1]
    results = {"input": str(source), "days": len(days), "setups": {}}
    for setup in args.setups.split(","):
        root = work / setup
        shutil.rmtree(root, ignore_errors=True)
        logs = root / "logs"
        logs.mkdir(parents=True)
        view, lake, full = root / "input", root / "lake", root / "full"
        link_tree(source, view, {last_day})
        measured = {"base": run(args, setup, "base", view, lake, "--incremental", logs)}
        link = view / last_day.relative_to(source)
        link.symlink_to(last_day)
        measured["increment"] = run(args, setup, "increment", view, lake, "--incremental", logs)
        measured["full"] = run(args, setup, "full", view, full, "--full", logs)
        measured["increment_over_full"] = round(
            measured["increment"]["wall_seconds"] / measured["full"]["wall_seconds"], 3
        )
        results["setups"][setup] = measured
        print(f"{setup:10} increment / full = {measured['increment_over_full']}", flush=True)
    (work / "incremental.json").write_text(json.dumps(results, indent=2))
    print(f"results: {work / 'incremental.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
