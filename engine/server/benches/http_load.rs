//! Decisions over HTTP on loopback with keep-alive: throughput and latency.
//!
//! `cargo bench -p dealrules-server --bench http_load` starts the server in
//! process on 127.0.0.1 with the default `rules/` pack and runs client
//! threads, each on one kept-alive connection, for a fixed time. Under
//! `cargo test` (no `--bench`) it runs for a moment as a smoke test.
//! `LOAD_CLIENTS` and `LOAD_SECONDS` change the shape.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dealrules_server::auth::{Principal, Role, TokenBook};
use dealrules_server::state::AppState;

const BODY: &str = r#"{"deal": {"id": "d-1001", "amount": 120000, "discount_pct": 22.5, "region": "APAC", "payment_terms_days": 90, "owner": "r1"}}"#;

fn client(addr: String, until: Instant) -> Vec<Duration> {
    let stream = TcpStream::connect(&addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let request = format!(
        "POST /v1/decide/discount-approvals HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut line = String::new();
    while Instant::now() < until {
        let t = Instant::now();
        writer.write_all(request.as_bytes()).unwrap();
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

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let clients = env("LOAD_CLIENTS", 4) as usize;
    let seconds = env("LOAD_SECONDS", if full { 10 } else { 1 });
    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules");

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let addr = runtime.block_on(async {
        let mut tokens = TokenBook::default();
        tokens.add("bench", Principal { subject: "bench".into(), role: Role::Service, groups: vec![] });
        let state = AppState::new(dealrules_server::reload::build(&rules).unwrap(), rules.clone(), tokens);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, dealrules_server::routes::app(state)).await });
        addr
    });

    // Warm up, then measure.
    let _ = client(addr.clone(), Instant::now() + Duration::from_millis(300));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let a = addr.clone();
            std::thread::spawn(move || client(a, until))
        })
        .collect();
    let mut all: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let elapsed = started.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "http_load: {clients} keep-alive clients, {:.1} s: {} decisions, {:.0} decisions/s, p50 {:?}, p99 {:?}, max {:?}",
        elapsed.as_secs_f64(),
        all.len(),
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        all[all.len() - 1]
    );
}
