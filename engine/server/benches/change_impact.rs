//! The impact of a one-rate change (the commission plan's first tier, 10% to
//! 12%) on real history, on a SQLite file:
//!
//! - `impact/decisions`: every logged decision since a date replayed on the
//!   active pack and the candidate, counted by policy, changes listed up to
//!   100. The log holds discount approvals (what a CRM asks all day); the
//!   impact cannot know a decision is untouched without replaying it, so
//!   each one costs two decisions whatever the change.
//! - `impact/quarter`: every rep's statement for 2026-Q1 recomputed from the
//!   stored deals and people on both packs, with the delta per rep.
//!
//! Sizes come from the environment so `cargo test --all-targets` runs it
//! small: `IMPACT_DECISIONS` (default 2,000), `IMPACT_REPS` (50) and
//! `IMPACT_DEALS` (1,000). The issue's aim is 1,000,000 decisions and
//! 10,000 reps with 1,000,000 deals under 30 s each; each run prints its
//! time, and `/usr/bin/time -v` gives the peak memory:
//!
//! ```text
//! IMPACT_DECISIONS=1000000 IMPACT_REPS=10000 IMPACT_DEALS=1000000 \
//!   /usr/bin/time -v cargo bench -p dealrules-server --bench change_impact -- --test
//! ```

use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use dealrules_core::Snapshot;
use dealrules_model::PackSource;
use dealrules_store::{DecisionRecord, Store};
use dealrules_workflow::impact::{ImpactProgress, ImpactRequest, measure};
use serde_json::json;

const PLAN: &str = r#"apiVersion: dealrules/v1
kind: IncentivePlan
metadata: { name: ae-plan }
spec:
  applies_to: 'rep.role == "ae"'
  period: quarter
  currency: USD
  rounding: { places: 2, mode: half_up }
  credit:
    when: 'deal.stage == "won"'
    amount: deal.amount
  quota: rep.quota
  components:
    - id: commission
      type: tiered
      basis: attainment
      mode: marginal
      tiers:
        - { upto: 1.0, rate: 0.10 }
        - { rate: 0.15 }
"#;

const APPROVALS: &str = r#"apiVersion: dealrules/v1
kind: ApprovalPolicy
metadata: { name: discounts }
spec:
  levels: [auto, manager, director]
  hit: first
  rules:
    - { id: small, when: "deal.discount_pct <= 10 && deal.amount <= 50000", level: auto }
    - { id: mid, when: "deal.discount_pct <= 20", level: manager }
    - { id: rest, level: director }
  approvers:
    manager: "rep.manager"
    director: "role:sales-director"
"#;

/// Starts the peak resident memory over from what is resident now (Linux:
/// writing 5 to clear_refs resets VmHWM), so each measurement's own peak
/// can be read.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_string();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn size(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn snapshot(plan: &str) -> Arc<Snapshot> {
    Arc::new(
        Snapshot::load(PackSource::from_texts([
            ("plans.yaml", plan),
            ("approvals.yaml", APPROVALS),
        ]))
        .unwrap(),
    )
}

/// A store with `decisions` logged approvals, `reps` reps and `deals` won
/// deals closed in 2026-Q1.
async fn history(url: &str, decisions: usize, reps: usize, deals: usize) -> Store {
    let store = Store::open(url).await.unwrap();
    let at = "2026-02-01T10:00:00.000Z";
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..decisions {
        let input = json!({ "deal": { "amount": 1000 + (i % 97) * 1000, "discount_pct": i % 31 }, "rep": { "manager": "m-1" } });
        batch.push(DecisionRecord::new(
            &store,
            at,
            "discounts",
            "sha256:bench",
            "ok",
            "crm",
            &input.to_string(),
            "{}",
        ));
        if batch.len() == 10_000 {
            store.decisions().log_decisions(&batch).await.unwrap();
            batch.clear();
        }
    }
    store.decisions().log_decisions(&batch).await.unwrap();
    let people: Vec<dealrules_store::Person> = (0..reps)
        .map(|i| {
            serde_json::from_value(json!({
                "id": format!("rep-{i:05}"), "name": format!("Rep {i}"), "role": "ae", "region": "NA",
                "attributes": { "quota": 100000 + (i % 7) * 10000 },
                "valid_from": dealrules_store::people::BEGINNING,
            }))
            .unwrap()
        })
        .collect();
    for chunk in people.chunks(5000) {
        store.people().import_people(chunk, "bench").await.unwrap();
    }
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..deals {
        let fields = json!({
            "id": format!("d-{i:07}"), "owner": format!("rep-{:05}", i % reps.max(1)), "stage": "won",
            "amount": 500 + (i % 211) * 100, "closed_at": format!("2026-0{}-{:02}", 1 + i % 3, 1 + i % 28),
        });
        let serde_json::Value::Object(m) = fields else {
            unreachable!()
        };
        batch.push(dealrules_workflow::imports::deal(m, "sales", at).unwrap());
        if batch.len() == 10_000 {
            store
                .deals()
                .import_deals(&batch, "sha256:bench", "bench", at, &|_: &dealrules_store::Deal| {
                    Vec::new()
                })
                .await
                .unwrap();
            batch.clear();
        }
    }
    store
        .deals()
        .import_deals(&batch, "sha256:bench", "bench", at, &|_: &dealrules_store::Deal| {
            Vec::new()
        })
        .await
        .unwrap();
    store
}

fn impact(c: &mut Criterion) {
    let decisions = size("IMPACT_DECISIONS", 2_000);
    let reps = size("IMPACT_REPS", 50);
    let deals = size("IMPACT_DEALS", 1_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("impact.db").display());
    let started = Instant::now();
    let store = runtime.block_on(history(&url, decisions, reps, deals));
    eprintln!(
        "history: {decisions} decisions, {reps} reps, {deals} deals stored in {:.1?}",
        started.elapsed()
    );
    let active = snapshot(PLAN);
    let candidate = snapshot(&PLAN.replace("rate: 0.10", "rate: 0.12"));
    let run = |request: &ImpactRequest, what: &str| {
        let (progress, _) = tokio::sync::watch::channel(ImpactProgress::default());
        reset_peak_rss();
        let started = Instant::now();
        let impact = runtime
            .block_on(measure(
                &store,
                active.clone(),
                candidate.clone(),
                request,
                "2026-04-02T00:00:00.000Z",
                &progress,
            ))
            .unwrap();
        eprintln!(
            "impact over {what}: {:.2?}, peak RSS {:.0} MiB",
            started.elapsed(),
            peak_rss_mib()
        );
        impact
    };
    let mut group = c.benchmark_group("impact");
    group.sample_size(10);
    let by_decisions = ImpactRequest {
        decisions_since: Some("2026-01-01".into()),
        ..Default::default()
    };
    group.bench_function("decisions", |b| {
        b.iter(|| {
            let i = run(&by_decisions, &format!("{decisions} decisions"));
            assert_eq!(i.decisions.replayed, decisions as u64);
        })
    });
    let quarter = ImpactRequest {
        incentive_periods: vec!["2026-Q1".into()],
        ..Default::default()
    };
    group.bench_function("quarter", |b| {
        b.iter(|| {
            let i = run(&quarter, &format!("a quarter of {reps} reps and {deals} deals"));
            assert_eq!(i.incentives[0].reps, reps as u64);
            assert!(i.incentives[0].delta > rust_decimal::Decimal::ZERO);
        })
    });
    group.finish();
    runtime.block_on(store.close());
}

criterion_group!(benches, impact);
criterion_main!(benches);
