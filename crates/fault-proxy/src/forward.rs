//! One request: stats, a fault, or a delayed forward to the upstream server.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::faults::{Action, Faults};

/// Where the proxy serves its counts.
const STATS_PATH: &str = "/_proxy/stats";

/// Headers about one hop, not the message: never passed on.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::TE,
    header::UPGRADE,
];

type Body = BoxBody<Bytes, hyper::Error>;

/// What a request can fail with; hyper then closes the connection without
/// an answer, which is how a dropped connection is made.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("connection dropped on purpose")]
    Dropped,
    #[error("upstream: {0}")]
    Upstream(#[from] hyper_util::client::legacy::Error),
    #[error("building the upstream request: {0}")]
    Request(#[from] hyper::http::Error),
}

pub struct Proxy {
    upstream: SocketAddr,
    latency: Duration,
    faults: Faults,
    client: Client<HttpConnector, Incoming>,
}

impl Proxy {
    pub fn new(upstream: SocketAddr, latency: Duration, faults: Faults) -> Self {
        Self {
            upstream,
            latency,
            faults,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Answers one request. It counts as in flight from its arrival to the
    /// upstream server's answer (its headers; bodies here are small).
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<Body>, ProxyError> {
        if request.uri().path() == STATS_PATH {
            return Ok(stats_response(&self.faults));
        }
        let _in_flight = self.faults.in_flight();
        let action = self.faults.decide();
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        match action {
            Action::Drop => Err(ProxyError::Dropped),
            Action::Error => Ok(slow_down()),
            Action::Forward => self.forward(request).await,
        }
    }

    /// Sends the request on with its Host header as the client signed it
    /// (SigV4 covers it) and streams the answer back.
    async fn forward(&self, request: Request<Incoming>) -> Result<Response<Body>, ProxyError> {
        let (mut parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = Uri::builder()
            .scheme("http")
            .authority(self.upstream.to_string())
            .path_and_query(path)
            .build()?;
        strip_hop_by_hop(&mut parts.headers);
        let response = self
            .client
            .request(Request::from_parts(parts, body))
            .await?;
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, body.boxed()))
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// S3's answer when a client should back off and retry.
fn slow_down() -> Response<Body> {
    let message = "<Error><Code>SlowDown</Code><Message>injected by fault-proxy</Message></Error>";
    let mut response = Response::new(full(message));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response
}

fn stats_response(faults: &Faults) -> Response<Body> {
    let body = serde_json::to_vec(&faults.snapshot()).expect("stats are plain numbers");
    let mut response = Response::new(full(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
