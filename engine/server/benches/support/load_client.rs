//! A keep-alive HTTP/1.1 load client for the benchmarks: one connection,
//! requests back to back until a deadline, each request's latency.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sends `request(i)` (the whole HTTP request text) for i = 0, 1, ...
/// until `until`; every answer must be 200.
pub fn client(addr: &str, until: Instant, mut request: impl FnMut(usize) -> String) -> Vec<Duration> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut line = String::new();
    let mut i = 0;
    while Instant::now() < until {
        let text = request(i);
        i += 1;
        let t = Instant::now();
        writer.write_all(text.as_bytes()).unwrap();
        let mut length = 0usize;
        let mut status_ok = false;
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line.starts_with("HTTP/1.1 ") {
                status_ok = line.starts_with("HTTP/1.1 200");
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).unwrap();
        assert!(status_ok, "{}", String::from_utf8_lossy(&body));
        latencies.push(t.elapsed());
    }
    latencies
}

/// A POST with a bearer token and a JSON body.
pub fn post(addr: &str, path: &str, token: &str, headers: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Median and 99th percentile.
pub fn percentiles(all: &mut [Duration]) -> (Duration, Duration) {
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    (pct(0.50), pct(0.99))
}
