//! Targets and the funnel, measured, over many stored deals: funnel
//! analytics (`funnel/<backend>`) and progress against targets by region
//! (`progress/<backend>`, from the credits the store keeps, after a first
//! report made them), each one whole report as the server computes it.
//! On SQLite, and on PostgreSQL when `DEALRULES_TEST_POSTGRES` names a
//! server (a scratch database, dropped after).
//!
//! The data is written by bulk SQL inserts (not through the API):
//! `MEASURED_DEALS` deals (default 2,000, so the smoke run under `cargo
//! test` stays small) of 100 reps, each with five history entries —
//! created in lead, to qualified, to proposal, then won, lost or an update,
//! and one action — spread over Q1 2026.
//!
//! Then, once each (printed, not criterion samples): the first progress
//! report after a pack change that leaves crediting as it was (the kept
//! credits carried over), and after one that changes a credit rule, whose
//! credits the activation owner fills in the background (the time from
//! the activation to the first report answered, and that report's own
//! latency), beside the first report that fills them itself.
//!
//! `MEASURED_DEALS=1000000 cargo bench -p dealrules-server --bench measured`
//! is the issue's size (1,000,000 deals, 5,000,000 history entries).
//!
//! `MEASURED_SQLITE=path` keeps the SQLite database at `path`: written
//! there when the file is not, and read as it is when it is (the writing
//! and summarizing, four minutes at the issue's size, are skipped; copy
//! the file first to start each run from the same data, as the pack
//! changes each run makes stay in it).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use dealrules_core::measure::progress::ProgressBy;
use dealrules_server::auth::TokenBook;
use dealrules_server::state::{AppState, Setup};
use dealrules_store::Store;
use sqlx::AssertSqlSafe;

fn deals_wanted() -> usize {
    std::env::var("MEASURED_DEALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

fn pack_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/measured")
}

fn ts(day: usize, hour: usize) -> String {
    let t = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        + chrono::Duration::days(day as i64)
        + chrono::Duration::hours(hour as i64);
    dealrules_store::timestamp(t)
}

/// Writes `n` deals with five history entries each, in batches.
async fn fill(url: &str, n: usize, version: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    let mut people = String::from(
        "INSERT INTO people (id, valid_from, valid_to, name, role, manager, region, team, attributes, updated_at, updated_by) VALUES ",
    );
    for r in 0..100 {
        let region = if r % 2 == 0 { "NA" } else { "EMEA" };
        people.push_str(&format!(
            "{}('rep{r:03}', '1900-01-01', NULL, 'Rep {r}', 'ae', 'mgr{}', '{region}', NULL, '{{}}', '{}', 'bench')",
            if r == 0 { "" } else { "," },
            r % 10,
            ts(0, 0)
        ));
    }
    sqlx::query(AssertSqlSafe(people)).execute(&pool).await.unwrap();
    let batch = 500;
    let started = Instant::now();
    for start in (0..n).step_by(batch) {
        let end = (start + batch).min(n);
        let mut deals = String::from(
            "INSERT INTO deals (id, funnel, owner, stage, fields, context, stage_entered_at, created_at, updated_at, revision) VALUES ",
        );
        let mut history =
            String::from("INSERT INTO deal_history (id, deal_id, at, type, detail, version, actor) VALUES ");
        for i in start..end {
            let id = format!("d{i:08}");
            let owner = format!("rep{:03}", i % 100);
            let day = i % 80;
            let outcome = i % 3;
            let stage = ["won", "lost", "proposal"][outcome];
            let last = ts(day + 6, 0);
            let closed = if outcome == 0 {
                format!(r#", "closed_at": "{}""#, &last[..10])
            } else {
                String::new()
            };
            let sep = if i == start { "" } else { "," };
            deals.push_str(&format!(
                "{sep}('{id}', 'b2b', '{owner}', '{stage}', '{{\"amount\": {}, \"close_date\": \"2026-03-31\"{closed}}}', '{{}}', '{}', '{}', '{}', 5)",
                1000 + i % 5000,
                if outcome == 2 { ts(day + 3, 0) } else { last.clone() },
                ts(day, 0),
                last
            ));
            let moves = [
                (
                    ts(day, 0),
                    "created",
                    r#"{"funnel": "b2b", "stage": "lead"}"#.to_string(),
                ),
                (
                    ts(day + 1, 0),
                    "move",
                    r#"{"from": "lead", "to": "qualified"}"#.to_string(),
                ),
                (
                    ts(day + 3, 0),
                    "move",
                    r#"{"from": "qualified", "to": "proposal"}"#.to_string(),
                ),
                match outcome {
                    0 => (last.clone(), "move", r#"{"from": "proposal", "to": "won"}"#.to_string()),
                    1 => (
                        last.clone(),
                        "move",
                        r#"{"from": "proposal", "to": "lost"}"#.to_string(),
                    ),
                    _ => (
                        last.clone(),
                        "update",
                        r#"{"fields": {"next_step": "call"}}"#.to_string(),
                    ),
                },
                (last.clone(), "action", r#"{"action": "notify"}"#.to_string()),
            ];
            for (k, (at, kind, detail)) in moves.iter().enumerate() {
                let sep = if i == start && k == 0 { "" } else { "," };
                history.push_str(&format!(
                    "{sep}('{id}-{k}', '{id}', '{at}', '{kind}', '{detail}', '{version}', 'bench')"
                ));
            }
        }
        let mut tx = pool.begin().await.unwrap();
        sqlx::query(AssertSqlSafe(deals)).execute(&mut *tx).await.unwrap();
        sqlx::query(AssertSqlSafe(history)).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    eprintln!(
        "measured: wrote {n} deals and {} history entries in {:.1} s",
        5 * n,
        started.elapsed().as_secs_f64()
    );
    pool.close().await;
}

async fn state(url: &str, written: bool) -> Arc<AppState> {
    let store = Arc::new(Store::open(url).await.unwrap());
    let (snapshot, activation, errors) = dealrules_server::reload::startup(&store, &pack_dir()).await.unwrap();
    assert!(errors.is_none(), "{errors:?}");
    let version = snapshot.version.to_string();
    let state = AppState::start(Setup {
        snapshot,
        activation,
        rules_dir: pack_dir(),
        store,
        fixed_tokens: TokenBook::default(),
        decision_log: false,
        clock: Default::default(),
        four_eyes: true,
    })
    .await
    .unwrap();
    if !written {
        fill(url, deals_wanted(), &version).await;
        // Rows written outside the store: summarized as an older
        // database's are when it first opens with the summaries.
        let started = Instant::now();
        let summarized = state.store.rebuild_measured_summaries().await.unwrap();
        eprintln!(
            "measured: summarized {summarized} deals in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    // Measured as of mid-February.
    let at: chrono::DateTime<chrono::Utc> = "2026-02-14T12:00:00Z".parse().unwrap();
    state.workflow.clock.advance(at - state.workflow.clock.now());
    state
}

/// Progress against `fy2026` for 2026-Q1 by region, as the server
/// answers it under `snapshot`.
fn q1_by_region(
    runtime: &tokio::runtime::Runtime,
    state: &Arc<AppState>,
    snapshot: &dealrules_core::Snapshot,
) -> dealrules_core::measure::progress::Progress {
    runtime
        .block_on(
            state
                .workflow
                .target_progress(snapshot, "fy2026", "2026-Q1", ProgressBy::Region),
        )
        .unwrap()
}

fn reports(c: &mut Criterion, runtime: &tokio::runtime::Runtime, backend: &str, state: &Arc<AppState>) {
    let snapshot = state.snapshot.load_full();
    // The first progress report credits the quarter's deals and keeps the
    // credits; the timed ones read them added up.
    let started = Instant::now();
    q1_by_region(runtime, state, &snapshot);
    eprintln!(
        "measured: first progress report ({backend}, credits kept) in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    // It answered from what it credited; the next report waits for the
    // credits to be stored, then reads them added up.
    q1_by_region(runtime, state, &snapshot);
    eprintln!(
        "measured: its credits stored and read back ({backend}) {:.2} s after it began",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let recomputed = runtime
        .block_on(
            state
                .workflow
                .target_progress_from_deals(&snapshot, "fy2026", "2026-Q1", ProgressBy::Region),
        )
        .unwrap();
    eprintln!(
        "measured: progress report from every deal ({backend}) in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let kept = q1_by_region(runtime, state, &snapshot);
    assert_eq!(kept, recomputed, "the kept credits add up to the same progress");
    // What the fill reads, alone: every deal closed or cancelled in Q1.
    let started = Instant::now();
    let read = runtime
        .block_on(
            state
                .store
                .analytics()
                .deals_closed_or_cancelled_between("2026-01-01", "2026-03-31"),
        )
        .unwrap();
    eprintln!(
        "measured: reading the {} deals Q1 reads ({backend}) in {:.2} s",
        read.len(),
        started.elapsed().as_secs_f64()
    );
    drop(read);
    settle(runtime, state);
    let mut group = c.benchmark_group("measured");
    group.sample_size(10);
    group.bench_function(format!("funnel/{backend}"), |b| {
        b.iter(|| {
            runtime
                .block_on(state.workflow.funnel_analytics(&snapshot, "b2b", None, None, None))
                .unwrap()
        })
    });
    group.bench_function(format!("progress/{backend}"), |b| {
        b.iter(|| q1_by_region(runtime, state, &snapshot))
    });
    group.finish();
    pack_changes(runtime, backend, state);
}

/// The bench's pack with `edit` applied to one file.
fn edited_pack(file: &str, edit: impl Fn(&str) -> String) -> dealrules_model::PackSource {
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(pack_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        texts.push((name.clone(), if name == file { edit(&text) } else { text }));
    }
    dealrules_model::PackSource::from_texts(texts.iter().map(|(p, t)| (p.as_str(), t.as_str())))
}

fn activate(runtime: &tokio::runtime::Runtime, state: &Arc<AppState>, source: dealrules_model::PackSource) {
    let outcome = runtime.block_on(state.activations.activate(
        source,
        "bench",
        dealrules_store::ActivationSource::Upload,
        None,
    ));
    assert!(
        matches!(outcome, dealrules_server::activation::Outcome::Activated(_)),
        "{outcome:?}"
    );
}

/// Waits until the fills made so far are stored and the credits of the
/// fills they replaced deleted, so each figure is of one thing at a time.
fn settle(runtime: &tokio::runtime::Runtime, state: &Arc<AppState>) {
    while state.workflow.credit_fills.working_behind() > 0 {
        runtime.block_on(async { tokio::time::sleep(std::time::Duration::from_millis(20)).await });
    }
}

/// The first report after a pack change, once each: one that leaves
/// crediting alone, then one that changes a credit rule (each with the
/// fills before it stored).
fn pack_changes(runtime: &tokio::runtime::Runtime, backend: &str, state: &Arc<AppState>) {
    settle(runtime, state);
    // Another commission rate: the credits kept carry over.
    let made = state.workflow.credit_fills.made();
    activate(
        runtime,
        state,
        edited_pack("incentives.yaml", |t| t.replace("rate: 0.15", "rate: 0.16")),
    );
    let snapshot = state.snapshot.load_full();
    let started = Instant::now();
    q1_by_region(runtime, state, &snapshot);
    eprintln!(
        "measured: first progress report after a pack change that leaves crediting alone ({backend}, carried over) in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(state.workflow.credit_fills.made(), made, "carried over, not filled");
    settle(runtime, state);
    // Another credit rule: the activation fills Q1 (the clock's quarter)
    // in the background; the report asked right away waits for it.
    let started = Instant::now();
    activate(
        runtime,
        state,
        edited_pack("incentives.yaml", |t| {
            t.replace("amount: \"deal.amount\"", "amount: \"deal.amount * 2\"")
        }),
    );
    let snapshot = state.snapshot.load_full();
    let asked = Instant::now();
    let first = q1_by_region(runtime, state, &snapshot);
    eprintln!(
        "measured: first progress report after a credit rule change ({backend}, filled in the background from the activation): answered {:.2} s after the activation began, the report itself {:.2} s",
        started.elapsed().as_secs_f64(),
        asked.elapsed().as_secs_f64()
    );
    assert_eq!(state.workflow.credit_fills.made(), made + 1, "one fill");
    let started = Instant::now();
    let next = q1_by_region(runtime, state, &snapshot);
    eprintln!(
        "measured: the report after it ({backend}) in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(first, next);
    let started = Instant::now();
    settle(runtime, state);
    eprintln!(
        "measured: its credits stored and the replaced fill's deleted ({backend}) {:.2} s later",
        started.elapsed().as_secs_f64()
    );
}

fn measured(c: &mut Criterion) {
    // The fills' own phases (read and credited, stored), as they log them.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("MEASURED_LOG").unwrap_or_else(|_| "dealrules_workflow::measured=info".into()),
        ))
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = std::env::var_os("MEASURED_SQLITE").map_or_else(|| dir.path().join("measured.db"), PathBuf::from);
    let written = path.exists();
    let sqlite = format!("sqlite://{}", path.display());
    let s = runtime.block_on(state(&sqlite, written));
    // The figures are right before they are fast: a third of the deals won.
    let (report, _) = runtime
        .block_on(
            s.workflow
                .funnel_analytics(&s.snapshot.load_full(), "b2b", None, None, None),
        )
        .unwrap();
    if !written {
        assert_eq!(report.deals as usize, deals_wanted());
    }
    reports(c, &runtime, "sqlite", &s);
    runtime.block_on(s.store.close());
    if let Some(server) = dealrules_store::scratch::postgres_server() {
        let url = runtime
            .block_on(dealrules_store::scratch::create_postgres_database(
                &server,
                "measured_bench",
            ))
            .unwrap();
        let s = runtime.block_on(state(&url, false));
        reports(c, &runtime, "postgres", &s);
        runtime.block_on(s.store.close());
        runtime
            .block_on(dealrules_store::scratch::drop_postgres_database(&url))
            .unwrap();
    }
}

criterion_group!(benches, measured);
criterion_main!(benches);
