"""Benchmark harness: Sparkify Lake against PySpark and DuckDB on the same input.

Runs, one after the other on one input:

- `ours`:     `submit` in-process (scheduler and executor inside the client);
- `cluster`:  `submit --scheduler` against our `scheduler` and two `executor`
              processes started here on free loopback ports;
- `duckdb`:   bench/peers/duckdb_etl.py;
- `spark`:    bench/peers/spark_etl.py (PySpark local mode);

then checks with bench/compare.py that every output holds the same rows as
ours in each of the five tables, and prints a markdown table of wall time,
CPU time, peak memory and output files per run and the ratios ours/peer.
The same numbers go to a JSON file.

What is measured, per run:

- wall: from starting the command to its exit (JVM start-up included for
  Spark; for the cluster, the daemons are already up, as in a deployment).
- CPU: user + system time of every process of the run. This harness makes
  itself a child subreaper, so processes that outlive their parent (the
  Spark JVM after the Python driver exits) are reaped here and their time
  counts; for the cluster, the client's time plus what the scheduler and
  executors used during the job (from /proc/<pid>/stat).
- peak RSS: the sum over the run's processes of each one's peak resident
  set (the exact getrusage figure of every process reaped here, else VmHWM
  sampled every 250 ms): Python + JVM for Spark; scheduler + 2 executors +
  client for the cluster (the daemons' peaks include their start-up).
  Helpers that live under a second are left out: the JVM forks a `chmod`
  per file written to local disk, and a fork reports its parent's peak.
  The JSON lists the processes (`processes`) and the largest sum of RSS
  seen at one time (`rss_sampled_peak_mib`).
- files: Parquet files written under the five table folders.

Run with any Python 3.11; the peers and the row comparison run under
`--python` (a venv with pyspark, duckdb and pyarrow: bench/requirements.txt).
"""

import argparse
import ctypes
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DEFAULT_PYTHON = "/var/tmp/sparkify-bench/bin/python"
TABLES = ["songs", "artists", "users", "time", "songplays"]
PEERS = ["duckdb", "spark"]
SAMPLE_SECONDS = 0.25
HELPER_SAMPLES = 4  # a process seen in fewer samples (about a second) is a helper
CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_CHILD_SUBREAPER = 36


# --- processes and what they use -------------------------------------------


def become_subreaper() -> None:
    """Orphaned descendants are reparented to us, so we reap them and count their CPU."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def proc_stat(pid: int) -> tuple[int, int, float] | None:
    """(ppid, start time in ticks, CPU seconds) of a live process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15, starttime 22.
    return int(fields[1]), int(fields[19]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_memory_kib(pid: int) -> tuple[int, int]:
    """(VmHWM, VmRSS) in KiB; (0, 0) once the process is gone."""
    peak = rss = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    except OSError:
        pass
    return peak, rss


def process_name(pid: int) -> str:
    """The program and, for interpreters, what they run (`java …SparkSubmit`)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"pid {pid}"
    words = [os.path.basename(a.decode(errors="replace")) for a in argv if a]
    if not words:
        return f"pid {pid}"
    if words[0].startswith("python"):
        main = next((w for w in words[1:] if w.endswith(".py")), "")
    elif words[0] == "java":
        main = next((w for w in words[1:] if re.fullmatch(r"[a-z]+(\.[A-Za-z_]\w*)+", w)), "")
    else:
        main = ""
    return f"{words[0]} {main}".strip()


def descendants(root: int) -> set[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat:
                parents[int(entry)] = stat[0]
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


class MemoryMonitor:
    """Samples the peak RSS of every descendant of this harness while a run lasts."""

    def __init__(self) -> None:
        self.peaks: dict[tuple[int, int], int] = {}  # (pid, start time) -> VmHWM KiB
        self.names: dict[tuple[int, int], str] = {}
        self.samples: dict[tuple[int, int], int] = {}
        self.exact: set[tuple[int, int]] = set()
        self._resident: list[dict[tuple[int, int], int]] = []  # per sample: process -> VmRSS KiB
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)

    def __enter__(self) -> "MemoryMonitor":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample_until_stopped(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            resident = {}
            for pid in descendants(me):
                stat = proc_stat(pid)
                peak, rss = proc_memory_kib(pid)
                if stat and peak:
                    key = (pid, stat[1])
                    self.peaks[key] = max(self.peaks.get(key, 0), peak)
                    self.samples[key] = self.samples.get(key, 0) + 1
                    self.names[key] = process_name(pid)  # the latest: a script may exec a JVM
                    resident[key] = rss
            self._resident.append(resident)
            self._stop.wait(SAMPLE_SECONDS)

    def sampled_peak_kib(self) -> int:
        """The largest sum of RSS over the counted processes seen in one sample."""
        counted = set(self._counted())
        return max((sum(v for k, v in r.items() if k in counted) for r in self._resident), default=0)

    def record_exit(self, pid: int, start_ticks: int | None, maxrss_kib: int) -> None:
        """The exact peak of a process reaped here."""
        key = (pid, start_ticks) if start_ticks is not None else None
        if key is None:
            key = next((k for k in self.peaks if k[0] == pid), (pid, -1))
        self.peaks[key] = max(self.peaks.get(key, 0), maxrss_kib)
        self.exact.add(key)

    def _counted(self) -> list[tuple[int, int]]:
        """Processes reaped here (or daemons) and any other that lived about a second.

        Short-lived helpers are left out: a JVM forks one per `chmod` when
        Hadoop writes to local disk, and a fresh fork reports its parent's
        peak as its own until it execs.
        """
        return [k for k in self.peaks if k in self.exact or self.samples.get(k, 0) >= HELPER_SAMPLES]

    def total_peak_kib(self) -> int:
        return sum(self.peaks[k] for k in self._counted())

    def per_process_mib(self) -> list[list]:
        """[name, peak MiB] per counted process, largest first, and how many helpers were left out."""
        counted = self._counted()
        rows = [[self.names.get(k, f"pid {k[0]}"), round(self.peaks[k] / 1024, 1)] for k in counted]
        rows.sort(key=lambda r: -r[1])
        return rows + [[f"{len(self.peaks) - len(counted)} short-lived helpers, not counted", None]]


def reap_orphans(monitor: MemoryMonitor, keep: set[int], timeout: float = 60.0) -> None:
    """Waits for processes reparented to us during a run (not the daemons in `keep`)."""
    deadline = time.monotonic() + timeout
    while True:
        me = os.getpid()
        orphans = {pid for pid in descendants(me) if (proc_stat(pid) or (None,))[0] == me} - keep
        if not orphans:
            return
        for pid in orphans:
            start = (proc_stat(pid) or (0, None))[1]
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
            try:
                reaped, _status, usage = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if reaped:
                monitor.record_exit(pid, start, usage.ru_maxrss)
        time.sleep(0.1)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stop_group(leader: int, stopped: threading.Event) -> None:
    """Kills a run that outlived its time limit, with every process of its group."""
    stopped.set()
    try:
        os.killpg(leader, signal.SIGKILL)
    except ProcessLookupError:
        pass


def measure(
    command: list[str], log: Path, daemons: list[subprocess.Popen] | None = None, time_limit: float | None = None
) -> dict:
    """Runs `command` to completion; wall, CPU and memory of it and of `daemons` meanwhile.

    With a `time_limit`, a run still going after that many seconds is killed,
    its whole process group (a JVM and its helpers too), and reported as
    `stopped_at_limit`: its wall time is then a lower bound, not a measure.
    """
    daemons = daemons or []
    daemon_cpu = {d.pid: (proc_stat(d.pid) or (0, 0, 0.0))[2] for d in daemons}
    cpu_before = children_cpu()
    with MemoryMonitor() as monitor, open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        started = time.monotonic()
        # Its own process group only when it may have to be killed as one: otherwise
        # Ctrl-C at the terminal reaches the run as it reaches the harness.
        process = subprocess.Popen(command, stdout=out, stderr=err, start_new_session=bool(time_limit))
        start_ticks = (proc_stat(process.pid) or (0, None))[1]  # a zombie still has its stat
        stopped = threading.Event()
        limit = threading.Timer(time_limit or 0, stop_group, (process.pid, stopped))
        if time_limit:
            limit.start()
        _pid, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
        limit.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        monitor.record_exit(process.pid, start_ticks, usage.ru_maxrss)
        reap_orphans(monitor, keep={d.pid for d in daemons})
        for daemon in daemons:
            stat = proc_stat(daemon.pid)
            if stat:
                daemon_cpu[daemon.pid] = stat[2] - daemon_cpu[daemon.pid]
                monitor.record_exit(daemon.pid, stat[1], proc_memory_kib(daemon.pid)[0])
    cpu = children_cpu() - cpu_before + sum(daemon_cpu.values())
    result = {
        "exit_code": process.returncode,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "peak_rss_mib": round(monitor.total_peak_kib() / 1024, 1),
        "rss_sampled_peak_mib": round(monitor.sampled_peak_kib() / 1024, 1),
        "processes": monitor.per_process_mib(),
    }
    if stopped.is_set():
        result["stopped_at_limit"] = time_limit
        result["error"] = f"stopped after {time_limit:.0f} s (--peer-time-limit): not finished"
    elif process.returncode != 0:
        result["error"] = tail(log.with_suffix(".err"))
    return result


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log, after its first `Caused by:` line if those
    do not hold it: a JVM's stack trace ends far from its cause."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    last = text[-lines:]
    cause = next((line for line in text if line.startswith("Caused by:")), None)
    return "\n".join(([cause] if cause and cause not in last else []) + last)


# --- the runs ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(port: int, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
        return json.load(response)


class LocalCluster:
    """Our scheduler and executors on loopback, stopped (by pid) on exit."""

    def __init__(self, binaries: Path, executors: int, vcores: int, logs: Path, executor_env=None) -> None:
        """`executor_env(index)`, when given, is the environment of executor `index`."""
        self.binaries, self.count, self.vcores, self.logs = binaries, executors, vcores, logs
        self.executor_env = executor_env
        self.port = free_port()
        self.processes: list[subprocess.Popen] = []

    def _spawn(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.processes.append(process)
        return process

    def __enter__(self) -> "LocalCluster":
        self._spawn(
            "scheduler",
            [str(self.binaries / "scheduler"), "--bind-host", "127.0.0.1", "--bind-port", str(self.port)],
        )
        self._wait("scheduler answering", lambda: http_json(self.port, "/api/version") is not None)
        for index in range(self.count):
            work = self.logs / f"executor-{index}-work"
            work.mkdir(exist_ok=True)
            self._spawn(
                f"executor-{index}",
                [
                    str(self.binaries / "executor"),
                    "--bind-host", "127.0.0.1",
                    "--scheduler-host", "127.0.0.1",
                    "--scheduler-port", str(self.port),
                    "--bind-port", str(free_port()),
                    "--bind-grpc-port", str(free_port()),
                    "--bind-health-port", str(free_port()),
                    "--vcores", str(self.vcores),
                    "--work-dir", str(work),
                ],
                self.executor_env(index) if self.executor_env else None,
            )
        self._wait(
            f"{self.count} executors registered",
            lambda: len(http_json(self.port, "/api/executors")) == self.count,
        )
        return self

    def _wait(self, what: str, ready, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"cluster: {process.args[0]} exited ({process.returncode}); see {self.logs}")
            try:
                if ready():
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"cluster: no {what} after {timeout:.0f} s; see {self.logs}")

    def __exit__(self, *_exc) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def resolve_run_dir(output: Path) -> Path:
    """Where a Sparkify Lake output's tables are: with Delta (the default)
    the output itself, each table at its fixed path (the harness's output is
    new for each run, so every Parquet file there is in the table's one
    version; the comparison skips `_delta_log`); with `--table-format
    parquet`, the run folder `_LATEST` names."""
    latest = output / "_LATEST"
    return output / latest.read_text().strip() if latest.exists() else output


def run_ours(args, name: str, output: Path, logs: Path) -> dict:
    command = [str(args.submit), "--input", str(args.input), "--output", str(output), "--quiet"]
    command += ["--songs-layout", args.songs_layout, "--table-format", args.table_format]
    if name == "cluster":
        vcores = args.executor_vcores or max(1, args.cores // 2)
        with LocalCluster(args.submit.parent, 2, vcores, logs) as cluster:
            command += ["--scheduler", f"127.0.0.1:{cluster.port}"]
            result = measure(command, logs / name, daemons=cluster.processes)
        result["setup"] = f"scheduler + 2 executors x {vcores} vcores"
    else:
        command += ["--vcores", str(args.cores)]
        result = measure(command, logs / name)
        result["setup"] = f"in-process, {args.cores} vcores"
    if result["exit_code"] == 0:
        result["tables_dir"] = str(resolve_run_dir(output))
    return result


def run_peer(args, name: str, output: Path, logs: Path, time_limit: float | None) -> dict:
    script = BENCH / "peers" / f"{name}_etl.py"
    command = [args.python, str(script), "--input", str(args.input), "--output", str(output)]
    command += ["--songs-layout", args.songs_layout]
    if name == "spark":
        command += ["--cores", str(args.cores), "--driver-memory", args.spark_driver_memory]
        setup = f"local[{args.cores}], driver memory {args.spark_driver_memory}"
    else:
        command += ["--threads", str(args.cores)]
        setup = f"{args.cores} threads"
    result = measure(command, logs / name, time_limit=time_limit)
    result["setup"] = setup
    if result["exit_code"] == 0:
        result["tables_dir"] = str(output)
        try:
            report = json.loads(tail(logs.joinpath(name).with_suffix(".out"), 1))
            result["version"] = report.get("version")
            result["self_reported"] = report
        except ValueError:
            pass
    return result


def time_limit_arg(text: str) -> tuple[float, bool]:
    """`--peer-time-limit`: seconds (`3700`), or a multiple of ours' wall
    time in this run (`52x`), as (value, relative)."""
    relative = text.endswith("x")
    try:
        value = float(text.removesuffix("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither seconds (3700) nor a multiple of ours' time (52x)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the limit must be positive")
    return value, relative


def peer_time_limit(args, runs: dict) -> float | None:
    """A peer's time limit in seconds. A relative one (`52x`) is that many
    times the slowest of ours' finished runs in this harness run: the limit
    that, should the peer not finish, still shows each of ours at least that
    many times faster, without running the peer longer than it takes."""
    if args.peer_time_limit is None:
        return None
    value, relative = args.peer_time_limit
    if not relative:
        return value
    ours = [run["wall_seconds"] for name in ("ours", "cluster") if (run := runs.get(name)) and run["exit_code"] == 0]
    if not ours:
        raise RuntimeError(f"--peer-time-limit {value:g}x needs a finished run of ours before the peers (--ours)")
    return value * max(ours)


def median_attempt(attempts: list[dict]) -> dict:
    """The measures of the attempt with the median wall time, every attempt's
    wall time, and the output of the last attempt (each attempt replaces the
    previous one's). A failed attempt makes the run failed."""
    failed = [a for a in attempts if a["exit_code"] != 0]
    chosen = failed[0] if failed else sorted(attempts, key=lambda a: a["wall_seconds"])[(len(attempts) - 1) // 2]
    result = {**chosen, "wall_seconds_all": [a["wall_seconds"] for a in attempts]}
    if not failed:
        result["tables_dir"] = attempts[-1]["tables_dir"]
        layouts = [a.get("files_per_table") for a in attempts]
        if any(layout != layouts[-1] for layout in layouts):
            # Only the last attempt's rows are compared: say when another wrote something else.
            result["attempts_disagree"] = layouts
    return result


def count_parquet(folder: Path) -> int:
    return sum(1 for _ in folder.rglob("*.parquet"))


def target_dirs() -> list[Path]:
    """Where cargo puts our binaries: $CARGO_TARGET_DIR, this machine's shared target folder, the repository's."""
    dirs = [Path(os.environ["CARGO_TARGET_DIR"])] if os.environ.get("CARGO_TARGET_DIR") else []
    return dirs + [Path("/var/tmp/sparkify-target"), BENCH.parent / "target"]


def default_submit() -> Path | None:
    """The release build of submit, else the debug build, in the first target folder that has one."""
    for target in target_dirs():
        for profile in ("release", "debug"):
            if (target / profile / "submit").exists():
                return target / profile / "submit"
    return None


# --- input -------------------------------------------------------------------


def generate_input(args, work: Path) -> Path:
    songs, events = args.datagen
    folder = work / f"input-songs{songs}-events{events}-seed{args.seed}"
    marker = folder / ".datagen"
    wanted = f"{songs} {events} {args.seed}"
    if marker.exists() and marker.read_text() == wanted:
        return folder
    datagen = args.datagen_bin or args.submit.parent / "datagen"
    subprocess.run(
        [str(datagen), "--out", str(folder), "--songs", str(songs), "--events", str(events), "--seed", str(args.seed)],
        check=True,
    )
    marker.write_text(wanted)
    return folder


def describe_input(folder: Path) -> dict:
    """File counts and bytes per input kind; reading every file also warms the page cache for all runs alike."""
    summary = {}
    for kind in ["song_data", "log_data"]:
        files = size = 0
        for root, _dirs, names in os.walk(folder / kind):
            for name in names:
                with open(os.path.join(root, name), "rb") as f:
                    size += len(f.read())
                files += 1
        summary[kind] = {"files": files, "bytes": size}
    return summary


# --- report ------------------------------------------------------------------


def ratio(ours: float | None, peer: float | None) -> str:
    if not ours or not peer:
        return "n/a"
    return f"{ours / peer:.2f}"


def bound_up(ratio: float) -> str:
    """An upper bound printed with three decimals, rounded up: rounded to
    the nearest, 1/52 (0.01923) would print as `< 0.019`, a smaller bound
    than the run shows."""
    return f"{math.ceil(ratio * 1000) / 1000:.3f}"


def markdown(results: dict) -> str:
    runs = results["runs"]
    comparison = results.get("comparison", {})
    reference = comparison.get("reference", "ours")
    lines = [
        f"| run | setup | wall s | CPU s | peak RSS MiB | Parquet files | MiB written | same rows as {reference} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, run in runs.items():
        if run.get("stopped_at_limit"):
            lines.append(f"| {name} | {run['setup']} | > {run['stopped_at_limit']:.0f} (stopped, not finished) | | | | | |")
            continue
        if run["exit_code"] != 0:
            lines.append(f"| {name} | {run['setup']} | failed (exit {run['exit_code']}) | | | | | |")
            continue
        files = sum(run.get("files_per_table", {}).values())
        tables = run.get("tables", {}).values()
        written = f"{sum(t.get('bytes', 0) for t in tables) / 2**20:.1f}" if tables else "not compared"
        if name == reference:
            same = "reference"
        else:
            verdicts = [
                comparison.get("tables", {}).get(t, {}).get("comparisons", {}).get(name, {}).get("equal")
                for t in TABLES
            ]
            same = "yes, 5/5 tables" if all(verdicts) else f"NO: {sum(bool(v) for v in verdicts)}/5 tables"
        lines.append(
            f"| {name} | {run['setup']} | {run['wall_seconds']:.2f} | {run['cpu_seconds']:.2f} "
            f"| {run['peak_rss_mib']:.0f} | {files} | {written} | {same} |"
        )
    ratios = []
    for ours_name in ["ours", "cluster"]:
        for peer in PEERS:
            ours, other = runs.get(ours_name), runs.get(peer)
            if ours and other and not ours["exit_code"] and other.get("stopped_at_limit"):
                bound = f"< {bound_up(ours['wall_seconds'] / other['stopped_at_limit'])}"
                ratios.append(f"| {ours_name} / {peer} | {bound} (peer stopped) | n/a | n/a | n/a |")
                continue
            if not ours or not other or ours["exit_code"] or other["exit_code"]:
                continue
            files = [sum(t.get("files", 0) for t in r.get("tables", {}).values()) for r in (ours, other)]
            ratios.append(
                f"| {ours_name} / {peer} | {ratio(ours['wall_seconds'], other['wall_seconds'])} "
                f"| {ratio(ours['cpu_seconds'], other['cpu_seconds'])} "
                f"| {ratio(ours['peak_rss_mib'], other['peak_rss_mib'])} | {ratio(*files)} |"
            )
    if ratios:
        lines += ["", "| ours / peer | wall | CPU | peak RSS | files |", "|---|---|---|---|---|", *ratios]
    if comparison.get("tables"):
        lines += ["", "| table | " + " | ".join(f"rows {n}" for n in runs) + " |", "|---" * (len(runs) + 1) + "|"]
        for table in TABLES:
            outputs = comparison["tables"][table]["outputs"]
            cells = [str(outputs.get(n, {}).get("rows", "-")) for n in runs]
            lines.append(f"| {table} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__[__doc__.index("What is measured"):])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=Path, help="input root holding song_data/ and log_data/")
    source.add_argument("--datagen", nargs=2, type=int, metavar=("SONGS", "EVENTS"), help="generate the input with our datagen")
    parser.add_argument("--seed", type=int, default=42, help="datagen seed (default 42)")
    parser.add_argument("--work", type=Path, help="folder for outputs, logs and generated input (default: a new temporary folder)")
    parser.add_argument("--submit", type=Path, help="our submit binary; scheduler, executor and datagen are taken from its folder (default: release, else debug build)")
    parser.add_argument("--datagen-bin", type=Path, help="our datagen binary (default: beside submit)")
    parser.add_argument("--python", default=DEFAULT_PYTHON, help=f"Python with pyspark, duckdb, pyarrow for the peers and the comparison (default {DEFAULT_PYTHON})")
    parser.add_argument("--peers", default="duckdb,spark", help="peers to run, comma-separated, or 'none' (default duckdb,spark)")
    parser.add_argument("--ours", default="in-process,cluster", help="our runs, comma-separated: in-process, cluster, or 'none'")
    parser.add_argument("--cores", type=int, default=os.cpu_count(), help="cores every engine may use (default: all)")
    parser.add_argument("--executor-vcores", type=int, help="task slots of each of the 2 executors (default: cores / 2)")
    parser.add_argument("--spark-driver-memory", default="4g")
    parser.add_argument("--songs-layout", choices=["year-artist", "year"], default="year-artist", help="songs directories, for every engine (submit --songs-layout)")
    parser.add_argument("--table-format", choices=["delta", "parquet"], default="delta", help="our output: Delta tables, or Parquet run folders under _LATEST (submit --table-format; default delta)")
    parser.add_argument("--peer-time-limit", type=time_limit_arg, metavar="SECONDS|Nx", help="stop a peer run still going after this long, in seconds or as N times ours' wall time in this run (52x), and report it as a bound (default: no limit)")
    parser.add_argument("--repeat", type=int, default=1, help="run each engine N times and keep the median wall time (default 1)")
    parser.add_argument("--json", type=Path, help="where to write the results (default: <work>/results.json)")
    parser.add_argument("--keep", action="store_true", help="keep the outputs (default: deleted after the comparison)")
    args = parser.parse_args()

    if args.submit is None:
        args.submit = default_submit()
        if args.submit is None:
            parser.error(f"no submit binary under {', '.join(map(str, target_dirs()))} (release or debug); build it or pass --submit")
    args.submit = args.submit.resolve()
    peers = [] if args.peers == "none" else [p.strip() for p in args.peers.split(",") if p.strip()]
    ours = [] if args.ours == "none" else [o.strip() for o in args.ours.split(",") if o.strip()]
    for peer in peers:
        if peer not in PEERS:
            parser.error(f"unknown peer {peer!r}: choose from {', '.join(PEERS)}")
    for run in ours:
        if run not in ("in-process", "cluster"):
            parser.error(f"unknown run {run!r}: choose in-process, cluster")
    if args.peer_time_limit and args.peer_time_limit[1] and peers and not ours:
        parser.error("--peer-time-limit Nx is a multiple of ours' wall time: it needs a run of ours (--ours)")

    work = (args.work or Path(tempfile.mkdtemp(prefix="sparkify-bench-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    args.input = generate_input(args, work) if args.datagen else args.input.resolve()
    become_subreaper()

    build = "release" if "/release/" in str(args.submit) else "debug" if "/debug/" in str(args.submit) else "unknown"
    results = {
        "input": str(args.input),
        "input_files": describe_input(args.input),
        "cores": args.cores,
        "machine": {"cpus": os.cpu_count(), "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
        "submit": str(args.submit),
        "build": build,
        "songs_layout": args.songs_layout,
        "table_format": args.table_format,
        "runs": {},
    }
    print(f"input {args.input}: {results['input_files']}; ours: {build} build; work folder {work}", file=sys.stderr)

    plan = [("ours" if o == "in-process" else "cluster") for o in ours] + peers
    for name in plan:
        attempts = []
        for attempt in range(args.repeat):
            output = work / "out" / name
            shutil.rmtree(output, ignore_errors=True)
            logs = work / "logs" / f"{name}-{attempt}"
            logs.mkdir(parents=True, exist_ok=True)
            print(f"running {name} ({attempt + 1}/{args.repeat})...", file=sys.stderr)
            try:
                if name in PEERS:
                    attempts.append(run_peer(args, name, output, logs, peer_time_limit(args, results["runs"])))
                else:
                    attempts.append(run_ours(args, name, output, logs))
            except RuntimeError as error:
                attempts.append({"exit_code": -1, "error": str(error), "setup": name, "wall_seconds": 0, "cpu_seconds": 0, "peak_rss_mib": 0})
            last = attempts[-1]
            if last.get("tables_dir"):
                last["files_per_table"] = {t: count_parquet(Path(last["tables_dir"]) / t) for t in TABLES}
            print(f"  {name}: exit {last['exit_code']}, wall {last['wall_seconds']:.2f} s, CPU {last['cpu_seconds']:.2f} s, peak RSS {last['peak_rss_mib']:.0f} MiB", file=sys.stderr)
            if last["exit_code"] != 0:
                print(last.get("error", ""), file=sys.stderr)
        results["runs"][name] = median_attempt(attempts)
        if "attempts_disagree" in results["runs"][name]:
            print(f"WARNING: {name}: attempts wrote different numbers of files: {results['runs'][name]['attempts_disagree']}", file=sys.stderr)

    finished = [(n, r["tables_dir"]) for n, r in results["runs"].items() if r.get("tables_dir")]
    equal = False
    if finished:
        compared = subprocess.run(
            [args.python, str(BENCH / "compare.py"), *(f"{n}={d}" for n, d in finished)],
            capture_output=True,
            text=True,
        )
        if compared.stdout.strip():
            results["comparison"] = json.loads(compared.stdout)
            equal = results["comparison"]["equal"]
            for name, _dir in finished:
                results["runs"][name]["tables"] = {
                    t: {k: v for k, v in e["outputs"].get(name, {}).items() if k in ("rows", "files", "bytes", "partition_dirs")}
                    for t, e in results["comparison"]["tables"].items()
                }
        else:
            print(compared.stderr, file=sys.stderr)
    if "ours" not in results["runs"] and finished:
        print(f"note: rows compared against {finished[0][0]}, the first run that finished", file=sys.stderr)

    report = markdown(results)
    results["markdown"] = report
    for table, entry in results.get("comparison", {}).get("tables", {}).items():
        for peer, verdict in entry["comparisons"].items():
            if not verdict["equal"]:
                print(f"DIFFERENT: {table}: {peer} vs {results['comparison']['reference']}: {json.dumps(verdict)}", file=sys.stderr)
    json_path = args.json or work / "results.json"
    json_path.write_text(json.dumps(results, indent=1))
    print(report)
    print(f"\nresults: {json_path}", file=sys.stderr)
    if not args.keep:
        shutil.rmtree(work / "out", ignore_errors=True)
    failed = any(r["exit_code"] != 0 and not r.get("stopped_at_limit") for r in results["runs"].values())
    return 0 if equal and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
