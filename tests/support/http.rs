//! Just enough HTTP/1.0 for the harness to poll readiness and create a
//! bucket, without a client library (the harness runs inside async tests,
//! where a blocking client's own runtime cannot be dropped).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends `method path` to 127.0.0.1:`port`; the status and body, or `None`
/// when nothing answers.
pub fn http_request(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let request =
        format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Whether `GET path` answers 2xx.
pub fn answers(port: u16, path: &str) -> bool {
    http_request(port, "GET", path).is_some_and(|(status, _)| (200..300).contains(&status))
}

/// The value of a metric in a Prometheus scrape, `name value` on its line.
pub fn prometheus_value(scrape: &str, name: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
