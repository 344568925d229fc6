//! What a plugin call costs: a fresh instance per call (instantiate, write
//! the request, run, read and parse the answer), for the C and the Rust
//! example; and the first load of a module, compiled vs read back from the
//! disk cache.
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
    PluginSpec {
        wasm: "x.wasm".into(),
        sha256: hex::encode(sha2::Sha256::digest(bytes)),
        exports: exports.iter().map(|s| s.to_string()).collect(),
        limits: Some(PluginLimits::default()),
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
    let cases = [
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
    for (label, bytes, s, function, facts) in &cases {
        // First load: compiled, then read back from a warm disk cache.
        let mut compile = Vec::new();
        let mut cached = Vec::new();
        for _ in 0..5 {
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
