//! What a plugin call costs: a fresh instance per call (instantiate, write
//! the request, run, read and parse the answer), for each language: ABI v1
//! modules in C and Rust, ABI v2 components in Rust, JavaScript and Python
//! (the last two when their toolchain is installed:
//! `scripts/component-toolchain`); and the first load, compiled vs read
//! back from the disk cache.
//!
//! `cargo bench -p dealrules-plugin-host --bench plugin_call`; under `cargo
//! test` it runs a few calls as a smoke test. `CALLS` sets the count.

use std::path::Path;
use std::time::{Duration, Instant};

use dealrules_model::{PluginLimits, PluginSpec};
use dealrules_plugin_host::Plugin;
use serde_json::json;
use sha2::Digest;

fn spec(bytes: &[u8], exports: &[&str], inputs: &[&str], config: serde_json::Value) -> PluginSpec {
    // A JavaScript or Python runtime starts with tens of MiB and burns more fuel.
    let limits = if dealrules_plugin_host::component::is_component(bytes) {
        PluginLimits {
            memory: Some("64MiB".into()),
            fuel: Some(1_000_000_000),
            timeout: Some(dealrules_model::DurationText("1s".into())),
            ..PluginLimits::default()
        }
    } else {
        PluginLimits::default()
    };
    PluginSpec {
        wasm: "x.wasm".into(),
        sha256: hex::encode(sha2::Sha256::digest(bytes)),
        exports: exports.iter().map(|s| s.to_string()).collect(),
        limits: Some(limits),
        capabilities: vec![],
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        config: serde_json::from_value(config).unwrap(),
    }
}

fn median(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[((v.len() as f64) * 0.99) as usize % v.len()])
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let calls: usize = std::env::var("CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 20_000 } else { 50 });
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
    let out = tempfile::tempdir().unwrap();
    let fx = dealrules_plugin_host::build::build_c(&plugins.join("examples/fx-c/fx.c"), &out.path().join("fx.wasm"))
        .unwrap();
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins");
    let credit = dealrules_plugin_host::build::build_rust(&plugins.join("examples/credit-rust"), &target).unwrap();
    // The builds the tests keep (same sources, same bytes).
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-builds");
    let component = |rel: &str| {
        dealrules_plugin_host::build::build_cached(&plugins.join(rel), &kept)
            .map(|(b, _)| b)
            .map_err(|e| eprintln!("plugin_call: {rel} not built ({e}); skipped"))
            .ok()
    };
    let territories = json!({"territories": [
        {"name": "DACH South", "team": "munich", "country": "DE", "postal_prefixes": ["8", "9"], "bonus_rate": "0.015"},
        {"name": "DACH North", "team": "hamburg", "country": "DE", "postal_prefixes": ["2"], "bonus_rate": "0.01"},
        {"name": "Austria", "team": "vienna", "country": "AT", "bonus_rate": "0.0125"}
    ]});
    let account = json!({"account": {"country": "DE", "postal_code": "80331"}, "deal": {"amount": "1.00"}});
    let mut cases = vec![
        (
            "C fx-convert.convert",
            fx.clone(),
            spec(&fx, &["convert"], &["amount", "currency"], json!({"EUR": "1.08"})),
            "convert",
            json!({"amount": "1000.00", "currency": "EUR", "other": "x"}),
        ),
        (
            "Rust credit-check.score",
            credit.clone(),
            spec(&credit, &["score"], &["customer"], json!({"limit_share": "0.10"})),
            "score",
            json!({"customer": {"annual_revenue": "1200000", "late_payments_12m": 1, "open_ar": "20000"}}),
        ),
    ];
    if let Some(b) = component("examples/territory-rust") {
        let s = spec(&b, &["lookup"], &["account"], territories.clone());
        cases.push(("Rust component territory.lookup", b, s, "lookup", account.clone()));
    }
    if let Some(b) = component("examples/territory-py/territory.py") {
        let s = spec(&b, &["lookup"], &["account"], territories.clone());
        cases.push(("Python component territory.lookup", b, s, "lookup", account.clone()));
    }
    if let Some(b) = component("examples/credit-js/credit.js") {
        let s = spec(
            &b,
            &["score"],
            &["customer"],
            json!({"limit_share": {"A": "0.25", "B": "0.15", "C": "0.05", "D": "0"}}),
        );
        let facts = json!({"customer": {"annual_revenue": "1200000.00", "bureau": {"score": 712, "inquiries_6m": 3, "utilization": "0.42", "tradelines": [{"status": "late_30"}]}}});
        cases.push(("JavaScript component credit-bureau.score", b, s, "score", facts));
    }
    for (label, bytes, s, function, facts) in &cases {
        // JavaScript and Python runtimes compile for seconds: 3 loads, and
        // a tenth of the calls.
        let big = bytes.len() > 4 << 20;
        let calls = if big { (calls / 10).max(20) } else { calls };
        // First load: compiled, then read back from a warm disk cache.
        let mut compile = Vec::new();
        let mut cached = Vec::new();
        let loads = match (full, big) {
            (false, _) => 1,
            (true, true) => 3,
            (true, false) => 5,
        };
        for _ in 0..loads {
            let cache = tempfile::tempdir().unwrap();
            let t = Instant::now();
            let p = Plugin::load(label, s, bytes, Some(cache.path())).unwrap();
            compile.push(t.elapsed());
            assert!(!p.from_cache);
            let t = Instant::now();
            let p = Plugin::load(label, s, bytes, Some(cache.path())).unwrap();
            cached.push(t.elapsed());
            assert!(p.from_cache);
        }
        let plugin = Plugin::load(label, s, bytes, None).unwrap();
        for _ in 0..(calls / 10).max(5) {
            plugin.call(function, facts).unwrap();
        }
        let mut times = Vec::with_capacity(calls);
        let mut fuel = 0;
        for _ in 0..calls {
            let t = Instant::now();
            let o = plugin.call(function, facts).unwrap();
            times.push(t.elapsed());
            fuel = o.fuel_used;
        }
        let (p50, p99) = median(times);
        let (c50, _) = median(compile);
        let (k50, _) = median(cached);
        println!(
            "plugin_call [{label}] {} bytes: per call (fresh instance) median {p50:?}, p99 {p99:?}, fuel {fuel}; first load compiled {c50:?}, from the disk cache {k50:?} ({:.0}x)",
            bytes.len(),
            c50.as_secs_f64() / k50.as_secs_f64()
        );
    }
}
