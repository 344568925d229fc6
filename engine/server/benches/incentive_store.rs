//! Paying people from stored deals at size: import 10,000 people and
//! 1,000,000 deals (CSV text parsed and stored in files of 50,000 deals,
//! each file one transaction, as `POST /v1/deals:import` takes them), then
//! one run of `examples/acme`'s `ae-2026` plan for 2026-Q1 read from the
//! store; import rate, run time and the peak resident memory. On SQLite,
//! and on PostgreSQL when `DEALRULES_TEST_POSTGRES` names a server.
//!
//! `cargo bench -p dealrules-server --bench incentive_store` runs the full
//! size; under `cargo test` (no `--bench` argument) a small smoke size.
//! `INCENTIVE_PEOPLE` and `INCENTIVE_DEALS` set the sizes. The scratch
//! database is deleted at the end.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use dealrules_core::Snapshot;
use dealrules_store::{Store, scratch};
use dealrules_workflow::imports::{self, ImportFormat};
use dealrules_workflow::{Actor, Clock, LongWork, Workflow};

/// Deals per import file.
const FILE: usize = 50_000;

/// xorshift64*: a fixed sequence, so every run imports the same data.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Starts the peak resident memory over from what is resident now, so
/// each phase's own peak can be read.
fn reset_peak_rss() {
    // Linux: writing 5 to clear_refs resets the peak (VmHWM).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn people_csv(people: usize) -> String {
    let regions = ["NA", "EMEA", "APAC"];
    let mut out = String::from("id,name,role,manager,region,team\n");
    for r in 0..people {
        out.push_str(&format!("r{r},Rep {r},ae,,{},t{}\n", regions[r % 3], r % 40));
    }
    out
}

fn deals_csv(rng: &mut Rng, from: usize, to: usize, people: usize) -> String {
    let mut out = String::from("id,owner,stage,amount,discount_pct,closed_at,new_logo\n");
    for d in from..to {
        let owner = rng.below(people as u64);
        let amount = 1_000 + rng.below(199_000);
        let cents = rng.below(100);
        let discount = rng.below(31);
        let stage = if rng.below(10) < 7 { "won" } else { "lost" };
        let month = 1 + rng.below(4); // a quarter close in April, outside Q1
        let day = 1 + rng.below(28);
        let new_logo = rng.below(5) == 0;
        out.push_str(&format!(
            "d{d:07},r{owner},{stage},{amount}.{cents:02},{discount},2026-{month:02}-{day:02},{new_logo}\n"
        ));
    }
    out
}

fn measure(runtime: &tokio::runtime::Runtime, label: &str, url: &str, people: usize, deals: usize) {
    let acme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme");
    let snapshot = Arc::new(
        Snapshot::load(dealrules_model::PackSource::from_dir(&acme).unwrap()).unwrap_or_else(|e| panic!("{e}")),
    );
    runtime.block_on(async {
        let store = Arc::new(Store::open(url).await.unwrap());
        reset_peak_rss();
        let started = Instant::now();
        let roster = imports::people(people_csv(people).as_bytes(), ImportFormat::Csv).unwrap();
        store.people().import_people(&roster, "bench").await.unwrap();
        let people_s = started.elapsed().as_secs_f64();

        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let started = Instant::now();
        let no_timers = |_: &dealrules_store::Deal| Vec::new();
        let mut from = 0;
        while from < deals {
            let to = (from + FILE).min(deals);
            let text = deals_csv(&mut rng, from, to, people);
            let at = dealrules_store::timestamp_now();
            let parsed = imports::deals(text.as_bytes(), ImportFormat::Csv, "imported", &at).unwrap();
            let counts = store
                .deals()
                .import_deals(&parsed, &snapshot.version, "bench", &at, &no_timers)
                .await
                .unwrap();
            assert_eq!(counts.created as usize, to - from);
            from = to;
        }
        let import_s = started.elapsed().as_secs_f64();
        let import_peak = peak_rss_mib().unwrap_or(f64::NAN);
        reset_peak_rss();

        let workflow = Workflow::new(
            store.clone(),
            Arc::new(Clock::default()),
            Arc::new(LongWork::new(1, 4)),
            "bench".into(),
        )
        .unwrap();
        let actor = Actor {
            subject: "bench".into(),
            admin: true,
            groups: vec![],
        };
        let started = Instant::now();
        let run = workflow
            .run_now(snapshot.clone(), &actor, "ae-2026", "2026-Q1")
            .await
            .unwrap();
        let run_s = started.elapsed().as_secs_f64();
        assert_eq!(run.reps as usize, people, "{run:?}");
        println!(
            "{label}: {people} people in {people_s:.2} s; {deals} deals imported in {import_s:.2} s ({:.0} deals/s, \
             peak RSS {import_peak:.0} MiB); run of ae-2026 for 2026-Q1: {run_s:.2} s, {} statements, total {}, \
             peak RSS {:.0} MiB",
            deals as f64 / import_s,
            run.reps,
            run.total,
            peak_rss_mib().unwrap_or(f64::NAN)
        );
        store.close().await;
    });
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let size = |var: &str, full_size: usize, smoke: usize| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if full { full_size } else { smoke })
    };
    let people = size("INCENTIVE_PEOPLE", 10_000, 50);
    let deals = size("INCENTIVE_DEALS", 1_000_000, 2_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("incentives.db").display());
    measure(&runtime, "SQLite", &sqlite, people, deals);
    drop(dir);
    if let Some(server) = scratch::postgres_server() {
        let url = runtime
            .block_on(scratch::create_postgres_database(&server, "incentive_bench"))
            .unwrap();
        measure(&runtime, "PostgreSQL", &url, people, deals);
        // A server process (autovacuum) can hold the database; say so
        // rather than fail after the figures are out.
        if let Err(e) = runtime.block_on(scratch::drop_postgres_database(&url)) {
            eprintln!("the scratch database is left behind, drop it by hand: {e}");
        }
    }
}
