//! Plugins built from source here (C with Debian's clang and wasi-libc),
//! friendly and hostile. Every hostile one is contained with an error that
//! names it, and the host goes on serving the friendly one.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use dealrules_model::{PluginLimits, PluginSpec};
use dealrules_plugin_host::{ErrorKind, Plugin};
use serde_json::{Value, json};
use sha2::Digest;

fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins")
}

/// Builds `plugins/<rel>.c` once per test run.
fn wasm(rel: &str) -> Vec<u8> {
    static OUT: OnceLock<tempfile::TempDir> = OnceLock::new();
    let out = OUT.get_or_init(|| tempfile::tempdir().unwrap());
    let dest = out.path().join(format!("{}.wasm", rel.replace('/', "-")));
    if let Ok(b) = std::fs::read(&dest) {
        return b;
    }
    dealrules_plugin_host::build::build_c(&plugins_dir().join(format!("{rel}.c")), &dest)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn spec(
    bytes: &[u8],
    exports: &[&str],
    limits: PluginLimits,
    caps: &[&str],
    inputs: &[&str],
    config: Value,
) -> PluginSpec {
    PluginSpec {
        wasm: "x.wasm".into(),
        sha256: hex::encode(sha2::Sha256::digest(bytes)),
        exports: exports.iter().map(|s| s.to_string()).collect(),
        limits: Some(limits),
        capabilities: caps.iter().map(|s| s.to_string()).collect(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        config: serde_json::from_value(config).unwrap(),
    }
}

fn load(name: &str, rel: &str, limits: PluginLimits, caps: &[&str]) -> Plugin {
    let bytes = wasm(rel);
    Plugin::load(
        name,
        &spec(&bytes, &["run"], limits, caps, &["deal"], json!({})),
        &bytes,
        None,
    )
    .unwrap()
}

fn fx() -> Plugin {
    let bytes = wasm("examples/fx-c/fx");
    let s = spec(
        &bytes,
        &["convert", "payout"],
        PluginLimits::default(),
        &[],
        &["amount", "currency", "totals.credit", "rep.currency"],
        json!({"EUR": "1.08", "GBP": "0.79", "bonus_rate": "0.01"}),
    );
    Plugin::load("fx-convert", &s, &bytes, None).unwrap()
}

fn fx_still_works(fx: &Plugin) {
    let out = fx
        .call("convert", &json!({"amount": "1000.00", "currency": "EUR"}))
        .unwrap();
    assert_eq!(out.value, json!("1080.00"));
}

#[test]
fn the_c_fx_plugin_converts_exactly() {
    let fx = fx();
    for (amount, currency, want) in [
        ("1000.00", "EUR", "1080.00"),
        ("0.05", "EUR", "0.05"),
        ("123456789.99", "GBP", "97530864.09"),
        ("-10.00", "EUR", "-10.80"),
    ] {
        let out = fx
            .call("convert", &json!({"amount": amount, "currency": currency}))
            .unwrap();
        assert_eq!(out.value, json!(want), "{amount} {currency}");
        assert!(out.fuel_used > 0 && out.micros > 0);
    }
    let out = fx
        .call(
            "payout",
            &json!({"totals": {"credit": "130000.00"}, "rep": {"currency": "EUR", "ssn": "123"}}),
        )
        .unwrap();
    assert_eq!(out.value["amount"], "1404.00");
    // Errors are values, named after the plugin.
    let e = fx
        .call("convert", &json!({"amount": "12", "currency": "XXX"}))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Plugin);
    assert!(
        e.to_string().starts_with("plugin `fx-convert` (convert): no rate"),
        "{e}"
    );
    assert!(fx.call("nope", &json!({})).is_err());
}

#[test]
fn a_plugin_sees_only_the_inputs_its_manifest_declares() {
    let bytes = wasm("hostile/spy");
    let s = spec(
        &bytes,
        &["run"],
        PluginLimits::default(),
        &[],
        &["deal.amount", "rep.id"],
        json!({"k": 1}),
    );
    let spy = Plugin::load("spy", &s, &bytes, None).unwrap();
    let facts = json!({"deal": {"amount": 5, "ssn": "secret", "notes": "x"}, "rep": {"id": "r1", "salary": 1}, "customer": {"name": "c"}});
    let seen = spy.call("run", &facts).unwrap().value;
    assert_eq!(
        seen,
        json!({"function": "run", "input": {"deal": {"amount": 5}, "rep": {"id": "r1"}}, "config": {"k": 1}})
    );
}

fn limits(fuel: u64, timeout: &str, memory: &str) -> PluginLimits {
    serde_json::from_value(json!({"fuel": fuel, "timeout": timeout, "memory": memory})).unwrap()
}

#[test]
fn hostile_plugins_are_contained_and_named() {
    let fx = fx();
    let cases: Vec<(&str, PluginLimits, &[&str], ErrorKind, &str)> = vec![
        (
            "hostile/loop",
            limits(1_000_000, "5s", "16MiB"),
            &[],
            ErrorKind::OutOfFuel,
            "ran out of fuel",
        ),
        (
            "hostile/loop",
            limits(10_000_000_000, "20ms", "16MiB"),
            &[],
            ErrorKind::Timeout,
            "did not finish within",
        ),
        (
            "hostile/bomb",
            limits(10_000_000_000, "5s", "8MiB"),
            &[],
            ErrorKind::MemoryLimit,
            "memory limit of 8388608 bytes",
        ),
        (
            "hostile/recurse",
            limits(10_000_000_000, "5s", "16MiB"),
            &[],
            ErrorKind::StackOverflow,
            "stack overflow",
        ),
        ("hostile/trap", PluginLimits::default(), &[], ErrorKind::Trap, "trapped"),
        (
            "hostile/huge",
            limits(10_000_000_000, "5s", "16MiB"),
            &[],
            ErrorKind::OutputTooLarge,
            "more than the output limit",
        ),
        (
            "hostile/clock",
            PluginLimits::default(),
            &[],
            ErrorKind::CapabilityDenied,
            "`clock` is not granted",
        ),
    ];
    for (rel, l, caps, kind, text) in cases {
        let p = load(rel, rel, l, caps);
        let started = std::time::Instant::now();
        let e = p.call("run", &json!({"deal": {"amount": 1}})).unwrap_err();
        assert_eq!(e.kind, kind, "{rel}: {e}");
        assert!(
            e.to_string().starts_with(&format!("plugin `{rel}` (run): ")) && e.to_string().contains(text),
            "{rel}: {e}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{rel} took {:?}",
            started.elapsed()
        );
        fx_still_works(&fx);
    }
}

#[test]
fn files_are_never_there_and_the_clock_needs_its_capability() {
    // No preopened directory exists: fopen fails inside the plugin, which says so.
    let p = load(
        "file",
        "hostile/file",
        PluginLimits::default(),
        &["clock", "random", "log"],
    );
    let e = p.call("run", &json!({})).unwrap_err();
    assert!(e.to_string().contains("no file"), "{e}");
    // With the capability the clock reads.
    let p = load("clock", "hostile/clock", PluginLimits::default(), &["clock"]);
    let now = p.call("run", &json!({})).unwrap().value.as_u64().unwrap();
    let sys = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(sys) < 5, "{now} vs {sys}");
}

#[test]
fn a_module_that_is_not_the_pinned_one_is_not_compiled() {
    let bytes = wasm("examples/fx-c/fx");
    let mut s = spec(&bytes, &["convert"], PluginLimits::default(), &[], &[], json!({}));
    s.sha256 = "0".repeat(64);
    let e = Plugin::load("fx-convert", &s, &bytes, None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Load);
    assert!(e.to_string().contains("not the pinned"), "{e}");
    // A module without the ABI's exports, or a missing export, is refused too.
    let s = spec(
        &bytes,
        &["convert", "refund"],
        PluginLimits::default(),
        &[],
        &[],
        json!({}),
    );
    assert!(
        Plugin::load("fx-convert", &s, &bytes, None)
            .unwrap_err()
            .to_string()
            .contains("`refund`")
    );
}

#[test]
fn compiled_code_is_cached_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let bytes = wasm("examples/fx-c/fx");
    let s = spec(
        &bytes,
        &["convert"],
        PluginLimits::default(),
        &[],
        &["amount", "currency"],
        json!({"EUR": "1.08"}),
    );
    let first = Plugin::load("fx-convert", &s, &bytes, Some(cache.path())).unwrap();
    let second = Plugin::load("fx-convert", &s, &bytes, Some(cache.path())).unwrap();
    assert!(!first.from_cache && second.from_cache);
    assert_eq!(
        second
            .call("convert", &json!({"amount": "10", "currency": "EUR"}))
            .unwrap()
            .value,
        json!("10.80")
    );
    // A damaged cache file is thrown away and the module compiled again.
    for f in std::fs::read_dir(cache.path()).unwrap() {
        std::fs::write(f.unwrap().path(), b"garbage").unwrap();
    }
    let third = Plugin::load("fx-convert", &s, &bytes, Some(cache.path())).unwrap();
    assert!(!third.from_cache);
}

#[test]
fn the_rust_credit_plugin_built_with_the_sdk_scores_exactly() {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins");
    let bytes = dealrules_plugin_host::build::build_rust(&plugins_dir().join("examples/credit-rust"), &target)
        .unwrap_or_else(|e| panic!("{e}"));
    let s = spec(
        &bytes,
        &["score"],
        PluginLimits::default(),
        &[],
        &["customer"],
        json!({"limit_share": "0.10"}),
    );
    let p = Plugin::load("credit-check", &s, &bytes, None).unwrap();
    let out = p.call("score", &json!({"customer": {"annual_revenue": "1200000.005", "late_payments_12m": 1, "open_ar": "20000"}, "deal": {"secret": 1}})).unwrap();
    assert_eq!(
        (out.value["score"].as_u64(), out.value["band"].as_str()),
        (Some(702), Some("B"))
    );
    assert_eq!(out.value["credit_limit"].to_string(), "100000.00", "an exact number");
    let e = p.call("score", &json!({"customer": {}})).unwrap_err();
    assert_eq!(
        (e.kind, e.detail.as_str()),
        (ErrorKind::Plugin, "customer.annual_revenue must be a decimal")
    );
}

/// Regression: a plugin granted `random` made the host allocate and fill
/// whatever length it asked for (4 GiB, 20+ s) before any bounds check.
#[test]
fn a_plugin_asking_the_host_for_more_than_its_memory_is_stopped_at_once() {
    let p = load(
        "random",
        "hostile/random",
        limits(10_000_000, "50ms", "16MiB"),
        &["random"],
    );
    let started = std::time::Instant::now();
    let e = p.call("run", &json!({})).unwrap_err();
    assert!(
        e.to_string().contains("outside its") && e.to_string().contains("bytes of memory"),
        "{e}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    fx_still_works(&fx());
}

/// Regression: `limits.timeout: 1000h` passed `check`.
#[test]
fn limits_above_the_engines_ceilings_are_refused_at_load_naming_the_limit() {
    let bytes = wasm("examples/fx-c/fx");
    for (l, named) in [
        (limits(1_000_000, "1000h", "16MiB"), "limits.timeout"),
        (limits(u64::MAX, "50ms", "16MiB"), "limits.fuel"),
        (limits(1_000_000, "50ms", "1GiB"), "limits.memory"),
    ] {
        let s = spec(&bytes, &["convert"], l, &[], &[], json!({}));
        let e = Plugin::load("fx-convert", &s, &bytes, None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Load);
        assert!(
            e.detail.starts_with(named) && e.detail.contains("above the engine's"),
            "{e}"
        );
    }
}

/// A module whose starting memory is over its limit fails at load, not at
/// every call, and says which limit.
#[test]
fn a_module_starting_with_more_memory_than_its_limit_is_refused_at_load() {
    let bytes = wasm("hostile/bigstart");
    let s = spec(
        &bytes,
        &["run"],
        limits(10_000_000, "50ms", "16MiB"),
        &[],
        &[],
        json!({}),
    );
    let e = Plugin::load("bigstart", &s, &bytes, None).unwrap_err();
    assert!(
        e.detail.contains("bytes of memory") && e.detail.contains("more than limits.memory of 16777216 bytes"),
        "{e}"
    );
    let s = spec(
        &bytes,
        &["run"],
        limits(10_000_000, "50ms", "64MiB"),
        &[],
        &[],
        json!({}),
    );
    assert_eq!(
        Plugin::load("bigstart", &s, &bytes, None)
            .unwrap()
            .call("run", &json!({}))
            .unwrap()
            .value,
        json!(0)
    );
}

/// Regression: "ran out of fuel" was all a plugin's author was told when
/// the module's start-up (data segments, tables, constructors) was what
/// used the limit up.
#[test]
fn a_limit_hit_while_the_module_starts_says_so() {
    let p = load("slowstart", "hostile/slowstart", limits(1_000_000, "5s", "16MiB"), &[]);
    let e = p.call("run", &json!({})).unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfFuel, "{e}");
    assert!(
        e.detail.contains("ran out of fuel") && e.detail.contains("while starting the module"),
        "{e}"
    );
    // A call that runs out during the call itself does not say so.
    let e = load("loop", "hostile/loop", limits(1_000_000, "5s", "16MiB"), &[])
        .call("run", &json!({}))
        .unwrap_err();
    assert!(!e.detail.contains("while starting"), "{e}");
}

/// A policy whose plugin fails says why in a typed cause across the
/// engine's boundary (not only in words): here a plugin that spins until
/// its fuel runs out, called from an approval policy's `plugins:`.
#[test]
fn a_decision_names_the_plugin_failure_kind() {
    let bytes = wasm("hostile/loop");
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let manifest = format!(
        "apiVersion: dealrules/v1\nkind: Plugin\nmetadata: {{ name: spinner }}\nspec:\n  wasm: spinner.wasm\n  sha256: {sha}\n  exports: [run]\n  inputs: [deal]\n  limits: {{ fuel: 1000000, timeout: 5s, memory: 16MiB }}\n"
    );
    let policy = "apiVersion: dealrules/v1\nkind: ApprovalPolicy\nmetadata: { name: spun }\nspec:\n  levels: [auto, manager]\n  plugins:\n    - { as: spin, plugin: spinner, function: run }\n  rules:\n    - { id: any, level: auto }\n  approvers:\n    manager: \"role:manager\"\n";
    let mut files = std::collections::BTreeMap::new();
    files.insert("spinner.yaml".to_string(), manifest.into_bytes());
    files.insert("spinner.wasm".to_string(), bytes);
    files.insert("spun.yaml".to_string(), policy.as_bytes().to_vec());
    let mut snapshot = dealrules_core::Snapshot::load(dealrules_model::PackSource { files }).unwrap();
    dealrules_plugin_host::attach(&mut snapshot, None).unwrap();
    let e = snapshot
        .decide_json("spun", r#"{"deal": {"amount": 1}}"#, "2026-11-30T00:00:00Z")
        .unwrap_err();
    match &e {
        dealrules_core::DecideError::Plugin { policy, at, error } => {
            assert_eq!((policy.as_str(), at.as_str()), ("spun", "plugins.spin"));
            assert_eq!(error.kind, dealrules_core::PluginFailure::OutOfFuel, "{e}");
        }
        other => panic!("expected a plugin failure, got {other:?}"),
    }
    assert!(
        e.to_string()
            .starts_with("spun: plugins.spin: plugin `spinner` (run): "),
        "{e}"
    );
    assert!(e.to_string().contains("ran out of fuel"), "{e}");
}
