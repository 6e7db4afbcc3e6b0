#!/usr/bin/env python3
"""Benchmark: reading the input from an S3 API server, many small files.

Uploads an input folder (default ../shared/data/udacity-s3: 14,896 song
files and 30 log files) to an S3 server on loopback (moto or s3s-fs), then runs `submit`
with `--input s3://lake/input` and a local output, once talking to the
server directly and once through our fault-proxy (crates/fault-proxy) adding a fixed
latency to every request (20 ms by default). Per mode it prints the seconds
`submit --explain` takes (start-up, listing the input, planning; no job
runs), the seconds the `stage songs` job takes (every song file fetched and
decoded by the scan tasks, up to 256 fetches in flight per task), the seconds
the songs table's job takes (its writers' uploads go to S3 with
`--s3-output`), the whole run, the seconds after the run's report was
made (publishing: with Delta output the commits and the vacuum, then the
process's exit), the CPU seconds of our processes and of the
S3 server over the mode (they share the machine's cores), and the requests
the proxy saw.

    python3 bench/s3_read.py                      # release submit if built, else debug
    python3 bench/s3_read.py --latency-ms 50 --submit /path/to/submit
    python3 bench/s3_read.py --server s3s-fs --s3-output   # S3 to S3

With `--s3-output` the tables go to the same server, into a bucket of
their own per mode (s3://out-<mode>/: s3s-fs walks a whole bucket for each
listing page, so sharing the input's bucket would time the walk),
so the latency mode adds 20 ms to every read and every write of the run.
The proxy reports the requests in flight during the latency mode: the most
at once and the mean while any was in flight. With `--cluster` the run goes
to a scheduler and two executors started for it, and each process (client,
executor-0, executor-1) talks through a proxy of its own: the report is per
process.

With `--server moto` (the default), moto, a Python server, bounds both
modes: the numbers compare the modes, they are not S3's throughput. With
`--server s3s-fs` the store is s3s-fs, a Rust S3 server over a local folder
(`cargo install s3s-fs@0.14.1 --features binary`; 0.17 needs Rust 1.96),
which answers far faster; the input is copied into its folder instead of
uploaded.
"""

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from run import LocalCluster
from s3_write import ROOT, default_submit, free_port, get, proxy_command, read_object, s3_client, start

# What each proxy reports of the requests it passed in the latency mode.
IN_FLIGHT = ["requests", "peak_in_flight", "mean_in_flight"]

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_REGION": "us-east-1"}


def upload(endpoint, folder, prefix):
    """Every file under `folder` to s3://lake/<prefix>/, 16 at a time."""
    s3 = s3_client(endpoint)
    files = [f for f in Path(folder).rglob("*") if f.is_file()]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda f: s3.upload_file(str(f), "lake", f"{prefix}/{f.relative_to(folder)}"), files))
    return len(files)


def timed(command, env):
    started = time.monotonic()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return round(time.monotonic() - started, 2)


def run_report(output, store_endpoint, table_format):
    """The report of the one run written to `output` (a local folder or an
    s3://<bucket> URL): in the run folder `_LATEST` names (Parquet), or
    under `_runs/<run id>/` (Delta)."""
    if isinstance(output, Path):
        read = lambda key: (output / key).read_text()
        runs = lambda: [p.name for p in (output / "_runs").iterdir()]
    else:
        bucket = output.removeprefix("s3://")
        read = lambda key: read_object(store_endpoint, key, bucket)
        s3 = s3_client(store_endpoint)
        runs = lambda: [p["Prefix"].rstrip("/").rsplit("/", 1)[1] for p in s3.list_objects_v2(
            Bucket=bucket, Prefix="_runs/", Delimiter="/")["CommonPrefixes"]]
    if table_format == "parquet":
        return json.loads(read(f"{read('_LATEST').strip()}/_report.json"))
    [run] = [name for name in runs() if name.startswith("run-")]
    return json.loads(read(f"_runs/{run}/_report.json"))


def children_cpu_seconds():
    """User and system CPU of this script's children that have ended."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_mode(name, submit, endpoints, output, store, store_endpoint, cluster_logs, table_format, extra):
    """One run of `submit`, each process talking to S3 through its own
    endpoint in `endpoints` (`client`, and `executor-<i>` on a cluster);
    `output` is a local folder or an s3:// bucket, read back from
    `store_endpoint`. On a cluster (`cluster_logs` is its log folder) the
    scheduler and two executors of one vcore each start for the mode;
    `extra` goes to `submit` as it is. Besides the times, the CPU seconds
    of our processes (explain and run, and on a cluster its scheduler and
    executors, all ended by the mode's end) and of the S3 server over the
    mode: the server shares the machine's two cores with the run."""
    ours, served = children_cpu_seconds(), cpu_seconds(store.pid)
    env = {"PATH": os.environ["PATH"], "AWS_ENDPOINT_URL": endpoints["client"], **CREDENTIALS}
    args = [submit, "--quiet", "--table-format", table_format, "--input", "s3://lake/input",
            "--output", str(output), *extra]
    with contextlib.ExitStack() as stack:
        if cluster_logs:
            cluster_logs.mkdir()
            executor_env = lambda i: {**env, "AWS_ENDPOINT_URL": endpoints[f"executor-{i}"]}
            cluster = stack.enter_context(LocalCluster(Path(submit).parent, 2, 1, cluster_logs, executor_env))
            args += ["--scheduler", f"127.0.0.1:{cluster.port}"]
        explain = timed([*args, "--explain"], env)
        run = timed(args, env)
    ours, served = children_cpu_seconds() - ours, cpu_seconds(store.pid) - served
    report = run_report(output, store_endpoint, table_format)
    stage = next(j for j in report["jobs"] if j["job"] == "stage songs")
    songs = next(i for i in report["inputs"] if i["input"] == "songs")
    jobs = ", ".join(f"{j['job']} {j['seconds']:.1f}" for j in report["jobs"])
    print(f"{name}: run {report['seconds']:.1f} s; jobs (s, in the order they ended): {jobs}", file=sys.stderr)
    table = next(t for t in report["tables"] if t["table"] == "songs")
    return {"mode": name, "song files": songs["files"], "explain s": explain,
            "stage songs s": round(stage["seconds"], 2), "songs table s": round(table["seconds"], 2),
            "run s": run, "commit s": round(run - report["seconds"], 2),
            "ours cpu s": round(ours, 1), "store cpu s": round(served, 1)}


def cpu_seconds(pid):
    """User and system CPU a running process has used: a proxy near one
    core's worth of the run's seconds would set the pace (it runs on one
    thread), not the latency."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)


def start_store(server, work, input_folder, buckets):
    """moto, or s3s-fs over a copy of the input, with `buckets` beside the
    input's `lake`; returns it and its endpoint."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = open(work / "store.log", "w")
    if server == "moto":
        store = start(["moto_server", "-H", "127.0.0.1", "-p", str(port)], log,
                      f"{endpoint}/moto-api/", "moto_server")
        for bucket in ["lake", *buckets]:
            urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{bucket}", method="PUT"))
        started = time.monotonic()
        uploaded = upload(endpoint, input_folder, "input")
        print(f"uploaded {uploaded} files in {time.monotonic() - started:.0f} s", file=sys.stderr)
    else:
        for bucket in ["lake", *buckets]:
            (work / "store" / bucket).mkdir(parents=True)
        started = time.monotonic()
        shutil.copytree(input_folder, work / "store/lake/input")
        print(f"copied the input in {time.monotonic() - started:.0f} s", file=sys.stderr)
        store = start(["s3s-fs", "--host", "127.0.0.1", "--port", str(port),
                       "--access-key", CREDENTIALS["AWS_ACCESS_KEY_ID"],
                       "--secret-key", CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                       str(work / "store")], log, f"{endpoint}/", "s3s-fs")
    return store, endpoint


def start_proxy(work, submit, name, store_endpoint, latency_ms):
    """A fault proxy adding `latency_ms` to every request; returns it and its endpoint."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    proxy = start(proxy_command(submit, endpoint.removeprefix("http://"), store_endpoint.removeprefix("http://"),
                                latency_ms), open(work / f"proxy-{name}.log", "w"),
                  f"{endpoint}/_proxy/stats", "fault proxy")
    return proxy, endpoint


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submit", default=None, help="submit binary (default: release, else debug)")
    parser.add_argument("--input", default=str(ROOT.parent / "shared/data/udacity-s3"))
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--server", choices=["moto", "s3s-fs"], default="moto")
    parser.add_argument("--s3-output", action="store_true", help="write the tables to the server too")
    parser.add_argument("--cluster", action="store_true", help="on a scheduler and two executors")
    parser.add_argument("--table-format", choices=["delta", "parquet"], default="delta",
                        help="submit --table-format (default delta)")
    parser.add_argument("--store-dir", default=None, type=Path,
                        help="where the bench's working folder (s3s-fs's store, the logs) is made (default: "
                             "the system's temporary folder; /dev/shm keeps the server's file work in memory)")
    parser.add_argument("--submit-arg", action="append", default=[], metavar="ARG",
                        help="one more argument for submit, as --submit-arg=--full-vacuum-every=1 (repeatable)")
    args = parser.parse_args()
    submit = args.submit or default_submit()
    server = "moto_server" if args.server == "moto" else "s3s-fs"
    if not shutil.which(server):
        sys.exit(f"{server} not found on PATH (see this script's documentation)")
    # One proxy per process that talks to S3, so each proxy's counts are its process's.
    processes = ["client", "executor-0", "executor-1"] if args.cluster else ["client"]

    with tempfile.TemporaryDirectory(dir=args.store_dir) as work, contextlib.ExitStack() as stack:
        work = Path(work)
        stop = lambda process: stack.callback(lambda: (process.terminate(), process.wait()))
        buckets = ["out-direct", "out-latency"] if args.s3_output else []
        store, store_endpoint = start_store(args.server, work, args.input, buckets)
        stop(store)
        proxies, proxy_pids = {}, {}
        for name in processes:
            proxy, proxies[name] = start_proxy(work, submit, name, store_endpoint, args.latency_ms)
            proxy_pids[name] = proxy.pid
            stop(proxy)
        output = (lambda mode: f"s3://out-{mode}") if args.s3_output else (lambda mode: work / mode)
        logs = (lambda mode: work / f"cluster-{mode}") if args.cluster else (lambda mode: None)
        direct = {name: store_endpoint for name in processes}
        results = [run_mode("direct", submit, direct, output("direct"), store, store_endpoint, logs("direct"),
                            args.table_format, args.submit_arg)]
        mode = f"latency-{args.latency_ms}ms"
        results.append(run_mode(mode, submit, proxies, output("latency"), store, store_endpoint, logs("latency"),
                                args.table_format, args.submit_arg))
        for name, endpoint in proxies.items():
            stats = json.loads(get(endpoint, "_proxy/stats"))
            cpu = cpu_seconds(proxy_pids[name])
            results.append({"mode": f"  {name}", **{k: stats[k] for k in IN_FLIGHT}, "proxy cpu s": cpu})

    columns = ["mode", "song files", "explain s", "stage songs s", "songs table s", "run s", "commit s", "ours cpu s",
               "store cpu s", *IN_FLIGHT, "proxy cpu s"]
    where = (f"{'cluster' if args.cluster else 'in-process'}, {args.table_format} output to "
             f"{'S3' if args.s3_output else 'local disk'}{''.join(' ' + a for a in args.submit_arg)}")
    print(f"submit: {submit}, store: {args.server}, {where}")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in results:
        print("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")


if __name__ == "__main__":
    main()
