//! The workflow runtime under load, in process on loopback:
//! deal events per second through one node (update events on 200 deals
//! from keep-alive clients, each event one transaction with its history),
//! and timers fired per second (deals in `qualified`, the clock moved past
//! their 14-day timer). On SQLite, and on PostgreSQL when
//! `DEALRULES_TEST_POSTGRES` names a server.
//!
//! `cargo bench -p dealrules-server --bench workflow_load`; under `cargo
//! test` it runs for a moment as a smoke test. `LOAD_CLIENTS`,
//! `LOAD_SECONDS` and `TIMERS` change the shape.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dealrules_server::auth::{Principal, Role, TokenBook, hash_token};
use dealrules_server::state::{AppState, Setup};
use dealrules_store::Store;

#[path = "support/load_client.rs"]
mod load_client;

fn deal(id: &str) -> String {
    format!(
        r#"{{"id": "{id}", "funnel": "b2b", "owner": "r1", "fields": {{"amount": 120000, "close_date": "2026-12-15", "contact_email": "a@b.example", "discount_pct": 15, "payment_terms_days": 30}}, "context": {{"rep": {{"manager": "u-17"}}}}}}"#
    )
}

fn run(runtime: &tokio::runtime::Runtime, label: &str, db: &str, clients: usize, seconds: u64, timers: usize) {
    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    let (addr, state) = runtime.block_on(async {
        let store = Arc::new(Store::open(db).await.unwrap());
        store
            .tokens()
            .add_token(&hex::encode(hash_token("bench")), "service", "bench", &[], "bench")
            .await
            .unwrap();
        let (snapshot, activation, _) = dealrules_server::reload::startup(&store, &rules).await.unwrap();
        let state = AppState::start(Setup {
            snapshot,
            activation,
            rules_dir: rules.clone(),
            store,
            fixed_tokens: TokenBook::default(),
            decision_log: true,
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
    let who = Principal {
        subject: "bench".into(),
        role: Role::Service,
        groups: vec![],
    };

    // Deal events: updates spread over 200 deals.
    runtime.block_on(async {
        for i in 0..200 {
            let req = serde_json::from_str(&deal(&format!("e-{i}"))).unwrap();
            dealrules_server::workflow::create_deal(&state, &who, req)
                .await
                .unwrap();
        }
    });
    let warm = Instant::now() + Duration::from_millis(300);
    let a = addr.clone();
    let _ = load_client::client(&a, warm, |i| {
        load_client::post(
            &a,
            &format!("/v1/deals/e-{}/events", i % 200),
            "bench",
            "",
            r#"{"type": "update", "fields": {"next_step": "warm"}}"#,
        )
    });
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let a = addr.clone();
            std::thread::spawn(move || {
                load_client::client(&a, until, |i| {
                    let deal = (c * 50 + i) % 200;
                    let key = format!("Idempotency-Key: c{c}-{i}\r\n");
                    load_client::post(
                        &a,
                        &format!("/v1/deals/e-{deal}/events"),
                        "bench",
                        &key,
                        &format!(r#"{{"type": "update", "fields": {{"next_step": "call {i}"}}}}"#),
                    )
                })
            })
        })
        .collect();
    let mut all: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let elapsed = started.elapsed();
    let (p50, p99) = load_client::percentiles(&mut all);
    println!(
        "workflow_load [{label}] events: {clients} keep-alive clients, {seconds} s: {} events, {:.0} events/s, p50 {p50:?}, p99 {p99:?}",
        all.len(),
        all.len() as f64 / elapsed.as_secs_f64()
    );

    // Timers: deals in qualified, each with its stale timer; 15 days on.
    runtime.block_on(async {
        for i in 0..timers {
            let id = format!("t-{i}");
            let req = serde_json::from_str(&deal(&id)).unwrap();
            dealrules_server::workflow::create_deal(&state, &who, req).await.unwrap();
            dealrules_server::workflow::apply_event(&state, &who, &id, None, br#"{"type": "move", "to": "qualified"}"#).await.unwrap();
        }
        state.clock.advance(chrono::Duration::days(15));
        let t = Instant::now();
        let mut fired = 0;
        loop {
            let n = dealrules_server::workflow::fire_due_timers(&state, 100).await.unwrap();
            fired += n;
            if n == 0 {
                break;
            }
        }
        let took = t.elapsed();
        assert_eq!(fired, timers, "every timer fires once");
        println!("workflow_load [{label}] timers: {fired} fired in {took:?}: {:.0} timers/s (each: history, notification, outbox row)", fired as f64 / took.as_secs_f64());
        state.log.flush().await;
    });
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let clients = env("LOAD_CLIENTS", 4) as usize;
    let seconds = env("LOAD_SECONDS", if full { 10 } else { 1 });
    let timers = env("TIMERS", if full { 5000 } else { 100 }) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(
        &runtime,
        "SQLite",
        &format!("sqlite://{}", dir.path().join("bench.db").display()),
        clients,
        seconds,
        timers,
    );
    if let Some(server) = dealrules_store::scratch::postgres_server() {
        let url = runtime
            .block_on(dealrules_store::scratch::create_postgres_database(
                &server,
                "workflow_load",
            ))
            .unwrap();
        run(&runtime, "PostgreSQL", &url, clients, seconds, timers);
        runtime
            .block_on(dealrules_store::scratch::drop_postgres_database(&url))
            .unwrap();
    }
}
