//! Quarterly statements for 10,000 reps and 1,000,000 deals, single
//! process: generate a data file, then time reading, parsing, deciding and
//! writing the statements, and report the peak resident memory.
//!
//! `cargo bench -p dealrules-core --bench statements` runs the full size;
//! under `cargo test` (no `--bench` argument) it runs a small smoke size.
//! Sizes can be set with `STATEMENTS_REPS` and `STATEMENTS_DEALS`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use dealrules_core::Snapshot;
use dealrules_expr::Value;
use dealrules_model::PackSource;

/// xorshift64*: a fixed, dependency-free sequence, so every run uses the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn generate(path: &PathBuf, reps: usize, deals: usize) -> std::io::Result<()> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    write!(f, "{{\"period\": \"2026-Q1\", \"reps\": [")?;
    let regions = ["NA", "EMEA", "APAC"];
    for r in 0..reps {
        let sep = if r == 0 { "" } else { "," };
        write!(
            f,
            "{sep}{{\"id\": \"r{r}\", \"role\": \"ae\", \"region\": \"{}\"}}",
            regions[r % 3]
        )?;
    }
    write!(f, "], \"deals\": [")?;
    for d in 0..deals {
        let sep = if d == 0 { "" } else { "," };
        let owner = rng.below(reps as u64);
        let amount = 1_000 + rng.below(199_000);
        let cents = rng.below(100);
        let discount = rng.below(31);
        let stage = if rng.below(10) < 7 { "won" } else { "lost" };
        let month = 1 + rng.below(4); // a quarter of them close in April, outside Q1
        let day = 1 + rng.below(28);
        let new_logo = rng.below(5) == 0;
        write!(
            f,
            "{sep}{{\"id\": \"d{d}\", \"owner\": \"r{owner}\", \"amount\": {amount}.{cents:02}, \"discount_pct\": {discount}, \"stage\": \"{stage}\", \"closed_at\": \"2026-{month:02}-{day:02}\", \"new_logo\": {new_logo}}}"
        )?;
    }
    write!(f, "]}}")?;
    f.flush()
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let size = |var: &str, full_size: usize, smoke: usize| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if full { full_size } else { smoke })
    };
    let (reps, deals) = (
        size("STATEMENTS_REPS", 10_000, 100),
        size("STATEMENTS_DEALS", 1_000_000, 5_000),
    );

    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let snapshot =
        Snapshot::load(PackSource::from_dir(&repo.join("examples/acme")).expect("examples/acme")).expect("pack loads");
    let dir = std::env::temp_dir().join("dealrules-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join(format!("statements-{reps}-{deals}.json"));
    if !data.exists() {
        let t = Instant::now();
        generate(&data, reps, deals).unwrap();
        println!(
            "generated {} ({:.0} MiB) in {:.2?}",
            data.display(),
            std::fs::metadata(&data).unwrap().len() as f64 / 1048576.0,
            t.elapsed()
        );
    }

    let started = Instant::now();
    let text = std::fs::read_to_string(&data).unwrap();
    let read = started.elapsed();
    let t = Instant::now();
    let input = Value::from_json_str(&text).unwrap();
    drop(text);
    let parse = t.elapsed();
    let t = Instant::now();
    let decision = snapshot.decide("ae-2026", &input, "2026-04-05T00:00:00Z").unwrap();
    let decide = t.elapsed();
    let t = Instant::now();
    let out = serde_json::to_vec(&decision).unwrap();
    let write = t.elapsed();
    let total = started.elapsed();

    let statements = match &decision {
        dealrules_core::Decision::Plan(p) => p.statements.len(),
        _ => 0,
    };
    assert_eq!(statements, reps, "one statement per rep");
    println!(
        "statements: {reps} reps, {deals} deals -> {statements} statements, {:.1} MiB of JSON",
        out.len() as f64 / 1048576.0
    );
    println!("  read {read:.2?}, parse {parse:.2?}, decide {decide:.2?}, write {write:.2?}");
    println!(
        "  total {total:.2?}, peak memory {:.0} MiB",
        peak_rss_mib().unwrap_or(f64::NAN)
    );
}
