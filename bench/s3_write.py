#!/usr/bin/env python3
"""Benchmark: writing the songs table of the full input to an S3 API server.

Runs `submit` on ../shared/data/udacity-s3 (14,896 song files, read from
local disk) with its output on a moto S3 server on loopback, once talking to
the server directly and once through our fault-proxy (crates/fault-proxy) adding a
fixed latency to every request (20 ms by default, about a same-region S3
PUT). Reads each run's `_report.json` back from the bucket and prints, per
mode, the songs table's files, the seconds its job took (plan, shuffle,
write), and files per second; the proxy's request count shows how many
requests the whole run made.

    python3 bench/s3_write.py                      # release submit if built, else debug
    python3 bench/s3_write.py --latency-ms 50 --submit /path/to/submit

moto is a Python server and, with the proxy, is itself a bottleneck: the
numbers are a floor for what a real S3 endpoint gives, and a comparison
between the two modes, not S3's throughput.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/sparkify-target"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_answering(url, process, what):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what} exited ({process.returncode})")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answered, if only to refuse an unsigned request
        except Exception:
            time.sleep(0.1)
    sys.exit(f"{what} did not answer at {url}")


def start(command, log, url, what):
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    wait_until_answering(url, process, what)
    return process


def default_submit():
    for profile in ("release", "debug"):
        binary = TARGET / profile / "submit"
        if binary.exists():
            return str(binary)
    sys.exit(f"no submit binary under {TARGET}: cargo build --release --workspace --bins")


def proxy_command(submit, listen, upstream, latency_ms):
    """Our fault-proxy, built beside `submit`, adding `latency_ms` to every
    request from `listen` to `upstream` (both host:port)."""
    proxy = Path(submit).parent / "fault-proxy"
    if not proxy.exists():
        sys.exit(f"no {proxy}: cargo build --release --workspace --bins")
    return [str(proxy), "--listen", listen, "--upstream", upstream, "--latency-ms", str(latency_ms)]


def run_mode(name, submit, endpoint, moto_endpoint, input_root, extra):
    env = {
        "PATH": os.environ["PATH"],
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench-secret",
        "AWS_REGION": "us-east-1",
    }
    output = f"s3://lake/{name}"
    started = time.monotonic()
    # Run folders under `_LATEST`, as when these figures were first taken.
    subprocess.run([submit, "--quiet", "--table-format", "parquet", "--input", str(input_root),
                    "--output", output, *extra],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - started
    latest = read_object(moto_endpoint, f"{name}/_LATEST").strip()
    report = json.loads(read_object(moto_endpoint, f"{name}/{latest}/_report.json"))
    songs = next(t for t in report["tables"] if t["table"] == "songs")
    return {
        "mode": name,
        "songs files": songs["files"],
        "songs partitions": songs["partitions"],
        "songs job s": round(songs["seconds"], 2),
        "files/s": round(songs["files"] / songs["seconds"], 1),
        "run s": round(wall, 2),
    }


def s3_client(endpoint):
    """A boto3 client of the S3 server at `endpoint`, with the benchmark's credentials."""
    import boto3
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench",
                        aws_secret_access_key="bench-secret", region_name="us-east-1")


def read_object(endpoint, key, bucket="lake"):
    """An object's text."""
    return s3_client(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def get(endpoint, key):
    with urllib.request.urlopen(f"{endpoint}/{key}") as response:
        return response.read().decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submit", default=None, help="submit binary (default: release, else debug)")
    parser.add_argument("--input", default=str(ROOT.parent / "shared/data/udacity-s3"))
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("extra", nargs="*", help="more submit arguments (after --)")
    args = parser.parse_args()
    submit = args.submit or default_submit()
    if not shutil.which("moto_server"):
        sys.exit("moto_server not found: pip install 'moto[server]>=5.2.5'")

    with tempfile.TemporaryDirectory() as logs:
        moto_port, proxy_port = free_port(), free_port()
        moto_endpoint = f"http://127.0.0.1:{moto_port}"
        with open(Path(logs) / "moto.log", "w") as moto_log, open(Path(logs) / "proxy.log", "w") as proxy_log:
            moto = start(["moto_server", "-H", "127.0.0.1", "-p", str(moto_port)], moto_log,
                         f"{moto_endpoint}/moto-api/", "moto_server")
            proxy = start(proxy_command(submit, f"127.0.0.1:{proxy_port}", f"127.0.0.1:{moto_port}",
                                        args.latency_ms), proxy_log,
                          f"http://127.0.0.1:{proxy_port}/_proxy/stats", "fault proxy")
            try:
                urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/lake", method="PUT"))
                results = [run_mode("direct", submit, moto_endpoint, moto_endpoint, args.input, args.extra)]
                latency = run_mode(f"latency-{args.latency_ms}ms", submit, f"http://127.0.0.1:{proxy_port}",
                                   moto_endpoint, args.input, args.extra)
                stats = json.loads(get(f"http://127.0.0.1:{proxy_port}", "_proxy/stats"))
                latency.update({k: stats[k] for k in ("requests", "peak_in_flight", "mean_in_flight")})
                results.append(latency)
            finally:
                proxy.terminate()
                moto.terminate()
                proxy.wait()
                moto.wait()

    columns = ["mode", "songs files", "songs partitions", "songs job s", "files/s", "run s", "requests",
               "peak_in_flight", "mean_in_flight"]
    print(f"submit: {submit}")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in results:
        print("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
