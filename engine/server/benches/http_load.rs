//! Decisions over HTTP on loopback with keep-alive: throughput and latency.
//!
//! `cargo bench -p dealrules-server --bench http_load` starts the server in
//! process on 127.0.0.1 with the default `rules/` pack and runs client
//! threads, each on one kept-alive connection, for a fixed time. Under
//! `cargo test` (no `--bench`) it runs for a moment as a smoke test.
//! `LOAD_CLIENTS` and `LOAD_SECONDS` change the shape. It runs with the
//! decision log off, on with SQLite, and on with PostgreSQL when
//! `DEALRULES_TEST_POSTGRES` names a server: the difference is what the log
//! costs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::sync::Arc;

use dealrules_server::auth::{TokenBook, hash_token};
use dealrules_server::state::{AppState, Setup};
use dealrules_store::Store;

#[path = "support/load_client.rs"]
mod load_client;

const BODY: &str = r#"{"deal": {"id": "d-1001", "amount": 120000, "discount_pct": 22.5, "region": "APAC", "payment_terms_days": 90, "owner": "r1"}}"#;

struct Run {
    decisions: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

/// One server, `clients` keep-alive clients for `seconds`.
fn run(
    runtime: &tokio::runtime::Runtime,
    db: &str,
    log: bool,
    clients: usize,
    seconds: u64,
) -> (Run, Option<(i64, Duration)>) {
    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    let (addr, state) = runtime.block_on(async {
        let store = Arc::new(Store::open(db).await.unwrap());
        // The same database may serve several runs: the token may be there.
        let _ = store
            .tokens()
            .add_token(&hex::encode(hash_token("bench")), "service", "bench", &[], "bench")
            .await;
        let (snapshot, activation, _) = dealrules_server::reload::startup(&store, &rules).await.unwrap();
        let state = AppState::start(Setup {
            snapshot,
            activation,
            rules_dir: rules.clone(),
            store,
            fixed_tokens: TokenBook::default(),
            decision_log: log,
            clock: Default::default(),
            four_eyes: true,
        })
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let app = dealrules_server::routes::app(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, state)
    });

    // Warm up, then measure.
    let request = load_client::post(&addr, "/v1/decide/discount-approvals", "bench", "", BODY);
    let _ = load_client::client(&addr, Instant::now() + Duration::from_millis(300), |_| request.clone());
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (a, r) = (addr.clone(), request.clone());
            std::thread::spawn(move || load_client::client(&a, until, |_| r.clone()))
        })
        .collect();
    let mut all: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let elapsed = started.elapsed();
    // What the log still had to write when the load stopped.
    let flushed = log.then(|| {
        let t = Instant::now();
        runtime.block_on(state.log.flush());
        let rows = runtime.block_on(state.store.decisions().count_decisions()).unwrap();
        (rows, t.elapsed())
    });
    let (p50, p99) = load_client::percentiles(&mut all);
    (
        Run {
            decisions: all.len(),
            per_second: all.len() as f64 / elapsed.as_secs_f64(),
            p50,
            p99,
            max: all[all.len() - 1],
        },
        flushed,
    )
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let clients = env("LOAD_CLIENTS", 4) as usize;
    let seconds = env("LOAD_SECONDS", if full { 10 } else { 1 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    let pg = dealrules_store::scratch::postgres_server().map(|server| {
        runtime
            .block_on(dealrules_store::scratch::create_postgres_database(&server, "http_load"))
            .unwrap()
    });
    let mut runs = vec![
        ("decision log off", sqlite.clone(), false),
        ("decision log on, SQLite", sqlite.clone(), true),
    ];
    if let Some(url) = &pg {
        runs.push(("decision log on, PostgreSQL", url.clone(), true));
    }
    for (label, db, log) in runs {
        let (r, flushed) = run(&runtime, &db, log, clients, seconds);
        println!(
            "http_load [{label}]: {clients} keep-alive clients, {seconds} s: {} decisions, {:.0} decisions/s, p50 {:?}, p99 {:?}, max {:?}",
            r.decisions, r.per_second, r.p50, r.p99, r.max
        );
        if let Some((rows, took)) = flushed {
            println!("    log: {rows} rows stored in all (backlog written {took:?} after the load stopped)");
        }
    }
    if let Some(url) = pg {
        runtime
            .block_on(dealrules_store::scratch::drop_postgres_database(&url))
            .unwrap();
    }
}
