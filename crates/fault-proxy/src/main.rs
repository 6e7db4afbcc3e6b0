//! `fault-proxy`: an HTTP proxy between an S3 client and an S3 server that
//! delays, fails or drops requests, for the fault tests and the S3
//! benchmarks.
//!
//! Every request is forwarded to the upstream server, except that the proxy
//! can first delay it (`--latency-ms`), answer it with a 503 `SlowDown`
//! itself (`--error-rate`) or cut the connection without answering
//! (`--drop-rate`). Which requests fail is drawn from a seeded random
//! stream, so a run is repeatable. `GET /_proxy/stats` answers what it did
//! as JSON ([`faults::Stats`]): tests read it to prove faults were
//! injected, benchmarks for the requests in flight.
//!
//! It is written in Rust, on one thread, so that it can stand for a
//! network's latency without becoming the bottleneck: the Python proxy it
//! replaced spent 0.7 ms of CPU per request, a core's worth at the request
//! rates of a two-executor run.
//!
//! ```text
//! fault-proxy --listen 127.0.0.1:9100 --upstream 127.0.0.1:9000 \
//!     --latency-ms 20 --error-rate 0.1 --drop-rate 0.05 --seed 7
//! ```

mod faults;
mod forward;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use faults::{FaultRates, Faults};
use forward::Proxy;

/// Put latency, errors and dropped connections between an S3 client and server.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// host:port to listen on.
    #[arg(long)]
    listen: SocketAddr,
    /// host:port of the S3 server.
    #[arg(long)]
    upstream: SocketAddr,
    /// Delay added to every request, in milliseconds.
    #[arg(long, default_value_t = 0.0)]
    latency_ms: f64,
    /// Share of requests answered 503 SlowDown by the proxy.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Share of requests whose connection is cut without an answer.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Seed of the draws that pick the failed requests.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.latency_ms >= 0.0 && args.latency_ms.is_finite(),
        "--latency-ms must be a number of milliseconds, at least 0"
    );
    let rates = FaultRates::new(args.error_rate, args.drop_rate)?;
    let proxy = Arc::new(Proxy::new(
        args.upstream,
        Duration::from_secs_f64(args.latency_ms / 1000.0),
        Faults::new(rates, args.seed),
    ));
    // tokio listens with a backlog of 1,024: a client that opens a hundred
    // connections at once is not refused (a refused one waits a second for
    // TCP to retry, and the proxy, not the latency, would set the pace).
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    println!("fault proxy on {} -> {}", args.listen, args.upstream);
    loop {
        let (stream, _) = listener.accept().await.context("accepting a connection")?;
        let proxy = Arc::clone(&proxy);
        tokio::spawn(async move {
            let service = service_fn(move |request| Arc::clone(&proxy).handle(request));
            // A connection ends with an error when the proxy drops it on
            // purpose or the client hangs up: neither is the proxy's fault.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
