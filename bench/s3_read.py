#!/usr/bin/env python3
"""Benchmark: reading the input from an S3 API server, many small files.

Uploads an input folder (default ../shared/data/udacity-s3: 14,896 song
files and 30 log files) to an S3 server on loopback (moto or s3s-fs), then runs `submit`
with `--input s3://lake/input` and a local output, once talking to the
server directly and once through tests/tools/fault_proxy.py adding a fixed
latency to every request (20 ms by default). Per mode it prints the seconds
`submit --explain` takes (start-up, listing the input, planning; no job
runs), the seconds the `stage songs` job takes (every song file fetched and
decoded by the scan tasks, 64 fetches in flight per task), the whole run,
and the requests the proxy saw.

    python3 bench/s3_read.py                      # release submit if built, else debug
    python3 bench/s3_read.py --latency-ms 50 --submit /path/to/submit

With `--server moto` (the default), moto, a Python server, bounds both
modes: the numbers compare the modes, they are not S3's throughput. With
`--server s3s-fs` the store is s3s-fs, a Rust S3 server over a local folder
(`cargo install s3s-fs@0.14.1 --features binary`; 0.17 needs Rust 1.96),
which answers far faster; the input is copied into its folder instead of
uploaded.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from s3_write import ROOT, default_submit, free_port, get, start

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_REGION": "us-east-1"}


def upload(endpoint, folder, prefix):
    """Every file under `folder` to s3://lake/<prefix>/, 16 at a time."""
    import boto3
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench",
                      aws_secret_access_key="bench-secret", region_name="us-east-1")
    files = [f for f in Path(folder).rglob("*") if f.is_file()]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda f: s3.upload_file(str(f), "lake", f"{prefix}/{f.relative_to(folder)}"), files))
    return len(files)


def timed(command, env):
    started = time.monotonic()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return round(time.monotonic() - started, 2)


def run_mode(name, submit, endpoint, output):
    env = {"PATH": os.environ["PATH"], "AWS_ENDPOINT_URL": endpoint, **CREDENTIALS}
    # Run folders under `_LATEST`, as when these figures were first taken.
    args = [submit, "--quiet", "--table-format", "parquet", "--input", "s3://lake/input",
            "--output", str(output)]
    explain = timed([*args, "--explain"], env)
    run = timed(args, env)
    latest = (output / "_LATEST").read_text().strip()
    report = json.loads((output / latest / "_report.json").read_text())
    stage = next(j for j in report["jobs"] if j["job"] == "stage songs")
    songs = next(i for i in report["inputs"] if i["input"] == "songs")
    return {"mode": name, "song files": songs["files"], "explain s": explain,
            "stage songs s": round(stage["seconds"], 2), "run s": run}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submit", default=None, help="submit binary (default: release, else debug)")
    parser.add_argument("--input", default=str(ROOT.parent / "shared/data/udacity-s3"))
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--server", choices=["moto", "s3s-fs"], default="moto")
    args = parser.parse_args()
    submit = args.submit or default_submit()
    server = "moto_server" if args.server == "moto" else "s3s-fs"
    if not shutil.which(server):
        sys.exit(f"{server} not found on PATH (see this script's documentation)")

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        store_port, proxy_port = free_port(), free_port()
        store_endpoint, proxy_endpoint = f"http://127.0.0.1:{store_port}", f"http://127.0.0.1:{proxy_port}"
        with open(work / "store.log", "w") as store_log, open(work / "proxy.log", "w") as proxy_log:
            if args.server == "moto":
                store = start(["moto_server", "-H", "127.0.0.1", "-p", str(store_port)], store_log,
                             f"{store_endpoint}/moto-api/", "moto_server")
            else:
                (work / "store/lake").mkdir(parents=True)
                started = time.monotonic()
                shutil.copytree(args.input, work / "store/lake/input")
                print(f"copied the input in {time.monotonic() - started:.0f} s", file=sys.stderr)
                store = start(["s3s-fs", "--host", "127.0.0.1", "--port", str(store_port),
                              "--access-key", CREDENTIALS["AWS_ACCESS_KEY_ID"],
                              "--secret-key", CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                              str(work / "store")], store_log, f"{store_endpoint}/", "s3s-fs")
            proxy = start([sys.executable, str(ROOT / "tests/tools/fault_proxy.py"),
                           "--listen", f"127.0.0.1:{proxy_port}", "--upstream", f"127.0.0.1:{store_port}",
                           "--latency-ms", str(args.latency_ms)], proxy_log,
                          f"{proxy_endpoint}/_proxy/stats", "fault proxy")
            try:
                if args.server == "moto":
                    urllib.request.urlopen(urllib.request.Request(f"{store_endpoint}/lake", method="PUT"))
                    started = time.monotonic()
                    uploaded = upload(store_endpoint, args.input, "input")
                    print(f"uploaded {uploaded} files in {time.monotonic() - started:.0f} s", file=sys.stderr)
                results = [run_mode("direct", submit, store_endpoint, work / "direct")]
                latency = run_mode(f"latency-{args.latency_ms}ms", submit, proxy_endpoint, work / "latency")
                latency["requests"] = json.loads(get(proxy_endpoint, "_proxy/stats"))["requests"]
                results.append(latency)
            finally:
                proxy.terminate()
                store.terminate()
                proxy.wait()
                store.wait()

    columns = ["mode", "song files", "explain s", "stage songs s", "run s", "requests"]
    print(f"submit: {submit}, store: {args.server}")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in results:
        print("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")


if __name__ == "__main__":
    main()
