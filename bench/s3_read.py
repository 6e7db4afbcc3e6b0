#!/usr/bin/env python3
"""Benchmark: reading the input from an S3 API server, many small files.

Uploads an input folder (default ../shared/data/udacity-s3: 14,896 song
files and 30 log files) to a moto S3 server on loopback, then runs `submit`
with `--input s3://lake/input` and a local output, once talking to the
server directly and once through tests/tools/fault_proxy.py adding a fixed
latency to every request (20 ms by default). Per mode it prints the seconds
`submit --explain` takes (start-up, listing the input, planning; no job
runs), the seconds the `stage songs` job takes (every song file fetched and
decoded by the scan tasks, 64 fetches in flight per task), the whole run,
and the requests the proxy saw.

    python3 bench/s3_read.py                      # release submit if built, else debug
    python3 bench/s3_read.py --latency-ms 50 --submit /path/to/submit

As with bench/s3_write.py, moto is a Python server and bounds both modes:
the numbers compare the modes, they are not S3's throughput.
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
    args = [submit, "--quiet", "--input", "s3://lake/input", "--output", str(output)]
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
    args = parser.parse_args()
    submit = args.submit or default_submit()
    if not shutil.which("moto_server"):
        sys.exit("moto_server not found: pip install 'moto[server]>=5.2.5'")

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        moto_port, proxy_port = free_port(), free_port()
        moto_endpoint, proxy_endpoint = f"http://127.0.0.1:{moto_port}", f"http://127.0.0.1:{proxy_port}"
        with open(work / "moto.log", "w") as moto_log, open(work / "proxy.log", "w") as proxy_log:
            moto = start(["moto_server", "-H", "127.0.0.1", "-p", str(moto_port)], moto_log,
                         f"{moto_endpoint}/moto-api/", "moto_server")
            proxy = start([sys.executable, str(ROOT / "tests/tools/fault_proxy.py"),
                           "--listen", f"127.0.0.1:{proxy_port}", "--upstream", f"127.0.0.1:{moto_port}",
                           "--latency-ms", str(args.latency_ms)], proxy_log,
                          f"{proxy_endpoint}/_proxy/stats", "fault proxy")
            try:
                urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/lake", method="PUT"))
                started = time.monotonic()
                uploaded = upload(moto_endpoint, args.input, "input")
                print(f"uploaded {uploaded} files in {time.monotonic() - started:.0f} s", file=sys.stderr)
                results = [run_mode("direct", submit, moto_endpoint, work / "direct")]
                latency = run_mode(f"latency-{args.latency_ms}ms", submit, proxy_endpoint, work / "latency")
                latency["requests"] = json.loads(get(proxy_endpoint, "_proxy/stats"))["requests"]
                results.append(latency)
            finally:
                proxy.terminate()
                moto.terminate()
                proxy.wait()
                moto.wait()

    columns = ["mode", "song files", "explain s", "stage songs s", "run s", "requests"]
    print(f"submit: {submit}")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in results:
        print("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")


if __name__ == "__main__":
    main()
