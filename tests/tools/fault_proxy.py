#!/usr/bin/env python3
"""An HTTP proxy that puts faults between an S3 client and an S3 server.

Every request is forwarded to the upstream server, except that the proxy can
first delay it (latency), answer it with a 5xx itself, or cut the connection
without answering. Which requests fail is drawn from a seeded random stream,
so a run is repeatable. The proxy counts what it did and serves the counts as
JSON at /_proxy/stats, which tests read to prove faults were injected, with
the requests in flight: the most at once, and the mean over the time any
request was in flight (benchmarks read these: with a fixed latency, a client
that keeps N requests going shows a mean near N).

    fault_proxy.py --listen 127.0.0.1:9100 --upstream 127.0.0.1:9000 \\
        --latency-ms 20 --error-rate 0.1 --drop-rate 0.05 --seed 7
"""

import argparse
import http.client
import http.server
import json
import random
import socketserver
import threading
import time

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


class Faults:
    def __init__(self, args):
        self.latency = args.latency_ms / 1000.0
        self.error_rate = args.error_rate
        self.drop_rate = args.drop_rate
        self.random = random.Random(args.seed)
        self.lock = threading.Lock()
        self.stats = {"requests": 0, "forwarded": 0, "errors_injected": 0, "connections_dropped": 0}
        self.in_flight = 0
        self.peak_in_flight = 0
        # The integral of requests in flight over time, and the time any was.
        self.in_flight_seconds = 0.0
        self.busy_seconds = 0.0
        self.last_change = time.monotonic()

    def decide(self):
        """What to do with the next request: 'forward', 'error' or 'drop'."""
        with self.lock:
            self.stats["requests"] += 1
            draw = self.random.random()
            if draw < self.error_rate:
                self.stats["errors_injected"] += 1
                return "error"
            if draw < self.error_rate + self.drop_rate:
                self.stats["connections_dropped"] += 1
                return "drop"
            self.stats["forwarded"] += 1
            return "forward"

    def in_flight_changes(self, by):
        """A request starts (by=1) or is answered (by=-1)."""
        with self.lock:
            now = time.monotonic()
            if self.in_flight:
                self.in_flight_seconds += self.in_flight * (now - self.last_change)
                self.busy_seconds += now - self.last_change
            self.last_change = now
            self.in_flight += by
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def snapshot(self):
        with self.lock:
            mean = self.in_flight_seconds / self.busy_seconds if self.busy_seconds else 0.0
            return {**self.stats, "peak_in_flight": self.peak_in_flight, "mean_in_flight": round(mean, 2)}


def handler_for(upstream_host, upstream_port, faults):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def handle_any(self):
            if self.path == "/_proxy/stats":
                body = json.dumps(faults.snapshot()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            faults.in_flight_changes(1)
            try:
                self.forward()
            finally:
                faults.in_flight_changes(-1)

        def forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            action = faults.decide()
            if faults.latency:
                time.sleep(faults.latency)
            if action == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if action == "error":
                message = b"<Error><Code>SlowDown</Code><Message>injected by fault_proxy</Message></Error>"
                self.send_response(503)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                self.wfile.write(message)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            upstream = http.client.HTTPConnection(upstream_host, upstream_port, timeout=120)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
            finally:
                upstream.close()
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            # A HEAD answer has no body: its Content-Length is the object's size.
            length = response.getheader("Content-Length") if self.command == "HEAD" else str(len(payload))
            self.send_header("Content-Length", length or "0")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

    return Handler


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog. socketserver's default of 5 refuses the
    # connections of a client that opens a hundred at once (a scan task
    # keeps 64 GETs in flight), and each refused one waits a second for
    # TCP to retry: the proxy, not the latency, would set the pace.
    request_queue_size = 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", required=True, help="host:port to listen on")
    parser.add_argument("--upstream", required=True, help="host:port of the S3 server")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every request")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 503")
    parser.add_argument("--drop-rate", type=float, default=0.0, help="share of requests whose connection is cut")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    listen_host, listen_port = args.listen.rsplit(":", 1)
    upstream_host, upstream_port = args.upstream.rsplit(":", 1)
    faults = Faults(args)
    server = Server((listen_host, int(listen_port)), handler_for(upstream_host, int(upstream_port), faults))
    print(f"fault proxy on {args.listen} -> {args.upstream}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
