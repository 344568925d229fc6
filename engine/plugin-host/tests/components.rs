//! ABI v2: plugins as WebAssembly components (`plugins/abi/dealrules.wit`),
//! built from source here: Rust (wit-bindgen, always), JavaScript
//! (componentize-js) and Python (componentize-py) when their toolchain is
//! installed (`scripts/component-toolchain`, which CI runs). Built
//! components are kept under the target folder, keyed by their sources, so
//! a second run does not rebuild them.

use std::path::{Path, PathBuf};
use std::process::Command;

use dealrules_model::{PluginLimits, PluginSpec};
use dealrules_plugin_host::{ErrorKind, Plugin, build};
use serde_json::{Value, json};
use sha2::Digest;

fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins")
}

fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-builds")
}

fn built(rel: &str) -> Vec<u8> {
    build::build_cached(&plugins_dir().join(rel), &build_dir())
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .0
}

/// The JavaScript or Python example, or `None` (with the reason printed)
/// when that toolchain is not installed on this machine. CI installs it:
/// `DEALRULES_REQUIRE_COMPONENT_TOOLS=1` turns a missing toolchain into a
/// failure.
fn built_if_tools(rel: &str, tool: Option<PathBuf>, name: &str) -> Option<Vec<u8>> {
    if tool.is_none() {
        assert!(
            std::env::var_os("DEALRULES_REQUIRE_COMPONENT_TOOLS").is_none(),
            "{name} is required (DEALRULES_REQUIRE_COMPONENT_TOOLS) but not installed: run scripts/component-toolchain"
        );
        eprintln!("SKIPPED {rel}: {name} is not installed here; run scripts/component-toolchain");
        return None;
    }
    Some(built(rel))
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

fn territories() -> Value {
    json!({"territories": [
        {"name": "DACH South", "team": "munich", "country": "DE", "postal_prefixes": ["8", "9"], "bonus_rate": "0.015"},
        {"name": "DACH North", "team": "hamburg", "country": "DE", "postal_prefixes": ["2"], "bonus_rate": "0.01"},
        {"name": "Munich City", "team": "munich-city", "country": "DE", "postal_prefixes": ["803"], "bonus_rate": "0.02"},
        {"name": "Austria", "team": "vienna", "country": "AT", "bonus_rate": "0.0125"}
    ]})
}

fn hostile(limits: PluginLimits, caps: &[&str]) -> Plugin {
    let bytes = built("hostile/component");
    let s = spec(
        &bytes,
        &[
            "spin", "grow", "huge", "recurse", "trap", "clock", "random", "log", "echo",
        ],
        limits,
        caps,
        &["deal"],
        json!({}),
    );
    Plugin::load("hostile", &s, &bytes, None).unwrap()
}

/// The territory lookup, the same answers whatever language it is in.
fn territory_answers(plugin: &Plugin) {
    let out = plugin
        .call(
            "lookup",
            &json!({"account": {"country": "de", "postal_code": "80331"}, "deal": {"amount": 5}}),
        )
        .unwrap();
    assert_eq!(
        out.value,
        json!({"territory": "Munich City", "team": "munich-city", "matched": "DE 803"})
    );
    let out = plugin
        .call("lookup", &json!({"account": {"country": "AT", "postal_code": "1010"}}))
        .unwrap();
    assert_eq!(
        out.value,
        json!({"territory": "Austria", "team": "vienna", "matched": "AT"})
    );
    let e = plugin
        .call("lookup", &json!({"account": {"country": "FR", "postal_code": "75001"}}))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Plugin);
    assert!(e.to_string().contains("no territory covers FR 75001"), "{e}");
}

#[test]
fn a_rust_component_looks_up_territories() {
    let bytes = built("examples/territory-rust");
    assert!(dealrules_plugin_host::component::is_component(&bytes));
    let s = spec(
        &bytes,
        &["lookup"],
        PluginLimits::default(),
        &[],
        &["account"],
        territories(),
    );
    let plugin = Plugin::load("territory", &s, &bytes, None).unwrap();
    assert_eq!(plugin.abi, 2);
    territory_answers(&plugin);
}

#[test]
fn a_python_component_looks_up_territories_and_pays_an_exact_bonus() {
    let Some(bytes) = built_if_tools(
        "examples/territory-py/territory.py",
        build::componentize_py(),
        "componentize-py",
    ) else {
        return;
    };
    let limits = PluginLimits {
        memory: Some("64MiB".into()),
        ..PluginLimits::default()
    };
    let s = spec(
        &bytes,
        &["lookup", "bonus"],
        limits,
        &[],
        &["account", "rep.territory", "totals.credit"],
        territories(),
    );
    let plugin = Plugin::load("territory", &s, &bytes, None).unwrap();
    territory_answers(&plugin);
    let out = plugin
        .call(
            "bonus",
            &json!({"rep": {"territory": "DACH South", "id": "r1"}, "totals": {"credit": "130000.10"}}),
        )
        .unwrap();
    // 130000.10 x 0.015 = 1950.0015, half away from zero to the cent.
    assert_eq!(
        out.value,
        json!({"amount": "1950.00", "explain": "130000.10 x 0.015 (DACH South)"})
    );
}

#[test]
fn a_javascript_component_scores_a_bureau_report_exactly() {
    let Some(bytes) = built_if_tools(
        "examples/credit-js/credit.js",
        build::componentize_js(),
        "componentize-js",
    ) else {
        return;
    };
    let limits = PluginLimits {
        memory: Some("64MiB".into()),
        ..PluginLimits::default()
    };
    let config = json!({"limit_share": {"A": "0.25", "B": "0.15", "C": "0.05", "D": "0"}});
    let s = spec(&bytes, &["score"], limits, &[], &["customer"], config);
    let plugin = Plugin::load("credit-bureau", &s, &bytes, None).unwrap();
    let out = plugin
        .call(
            "score",
            &json!({"customer": {"annual_revenue": "1200000.05", "bureau": {
                "score": 712, "inquiries_6m": 3, "derogatory": 0, "utilization": "0.42",
                "tradelines": [{"status": "current"}, {"status": "late_30"}]}}}),
        )
        .unwrap();
    // 712 - 15 (one inquiry over 2) - 12 (42% utilization) - 25 (one late) = 660: C, 5%.
    assert_eq!(
        out.value,
        serde_json::from_str::<Value>(
            r#"{"score": 660, "band": "C", "credit_limit": 60000.00,
               "reasons": ["3 credit inquiries in 6 months", "utilization 0.42", "1 late tradeline(s)"]}"#
        )
        .unwrap()
    );
    let e = plugin
        .call("score", &json!({"customer": {"annual_revenue": "1"}}))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Plugin);
    assert!(e.to_string().contains("no bureau report"), "{e}");
}

#[test]
fn a_component_sees_only_its_declared_inputs() {
    let p = hostile(PluginLimits::default(), &[]);
    let out = p
        .call("echo", &json!({"deal": {"amount": "10.00"}, "rep": {"salary": 100000}}))
        .unwrap();
    assert_eq!(out.value, json!({"deal": {"amount": "10.00"}}));
}

#[test]
fn a_spinning_component_runs_out_of_fuel_or_time() {
    let p = hostile(
        PluginLimits {
            fuel: Some(5_000_000),
            ..PluginLimits::default()
        },
        &[],
    );
    let e = p.call("spin", &json!({})).unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfFuel, "{e}");
    let p = hostile(
        PluginLimits {
            fuel: Some(50_000_000_000),
            timeout: Some(dealrules_model::DurationText("20ms".into())),
            ..PluginLimits::default()
        },
        &[],
    );
    let e = p.call("spin", &json!({})).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.to_string().contains("plugin `hostile` (spin)"), "{e}");
}

#[test]
fn a_component_growing_without_end_hits_the_memory_limit() {
    let p = hostile(
        PluginLimits {
            memory: Some("8MiB".into()),
            fuel: Some(10_000_000_000),
            timeout: Some(dealrules_model::DurationText("2s".into())),
            ..PluginLimits::default()
        },
        &[],
    );
    let e = p.call("grow", &json!({})).unwrap_err();
    assert_eq!(e.kind, ErrorKind::MemoryLimit, "{e}");
    assert!(e.to_string().contains("memory limit of 8388608 bytes"), "{e}");
}

#[test]
fn a_component_answering_too_much_is_refused() {
    let p = hostile(
        PluginLimits {
            memory: Some("64MiB".into()),
            output: Some("64KiB".into()),
            fuel: Some(1_000_000_000),
            // The output limit is what is tested, not the clock: on a busy
            // machine the default 50 ms ran out first.
            timeout: Some(dealrules_model::DurationText("5s".into())),
        },
        &[],
    );
    let e = p.call("huge", &json!({})).unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutputTooLarge, "{e}");
    assert!(e.to_string().contains("more than the output limit of 65536"), "{e}");
}

#[test]
fn deep_recursion_and_traps_in_a_component_fail_the_call_only() {
    let p = hostile(
        PluginLimits {
            fuel: Some(1_000_000_000),
            ..PluginLimits::default()
        },
        &[],
    );
    let e = p.call("recurse", &json!({})).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::StackOverflow | ErrorKind::Trap), "{e}");
    let e = p.call("trap", &json!({})).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Trap, "{e}");
    // The same plugin answers the next call: every call is a fresh instance.
    assert_eq!(p.call("echo", &json!({"deal": 1})).unwrap().value, json!({"deal": 1}));
}

#[test]
fn a_components_capabilities_are_granted_by_the_manifest_only() {
    let denied = hostile(PluginLimits::default(), &[]);
    for (f, cap) in [("clock", "clock"), ("random", "random"), ("log", "log")] {
        let e = denied.call(f, &json!({})).unwrap_err();
        assert_eq!(e.kind, ErrorKind::CapabilityDenied, "{e}");
        assert!(e.to_string().contains(&format!("`{cap}` is not granted")), "{e}");
    }
    let granted = hostile(PluginLimits::default(), &["clock", "random", "log"]);
    let now = granted.call("clock", &json!({})).unwrap().value;
    assert!(now.as_i64().unwrap() > 1_700_000_000_000, "{now}");
    assert_eq!(granted.call("random", &json!({})).unwrap().value, json!(16));
    let out = granted.call("log", &json!({})).unwrap();
    assert_eq!(out.log, vec!["hello from the component".to_string()]);
}

#[test]
fn a_component_importing_wasi_files_or_sockets_is_refused_at_load_naming_them() {
    let dir = plugins_dir().join("hostile/component-wasi");
    let target = build_dir().join("wasip2");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "building {} for wasm32-wasip2 (`rustup target add wasm32-wasip2`): {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(target.join("wasm32-wasip2/release/hostile_component_wasi.wasm")).unwrap();
    let s = spec(
        &bytes,
        &["snoop"],
        PluginLimits::default(),
        &["clock", "random", "log"],
        &[],
        json!({}),
    );
    let e = Plugin::load("snoop", &s, &bytes, None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Load);
    let msg = e.to_string();
    assert!(
        msg.contains("`wasi:filesystem/types@0.2.") && msg.contains("(files)"),
        "{msg}"
    );
    assert!(msg.contains("`wasi:sockets/"), "{msg}");
    assert!(msg.contains("which plugins never get"), "{msg}");
}

#[test]
fn a_component_whose_hash_differs_is_never_compiled() {
    let bytes = built("examples/territory-rust");
    let mut s = spec(
        &bytes,
        &["lookup"],
        PluginLimits::default(),
        &[],
        &["account"],
        territories(),
    );
    s.sha256 = "0".repeat(64);
    let e = Plugin::load("territory", &s, &bytes, None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Load);
    assert!(e.to_string().contains("not the pinned"), "{e}");
}

#[test]
fn a_manifest_listing_a_function_the_component_lacks_is_refused() {
    let bytes = built("examples/territory-rust");
    let s = spec(
        &bytes,
        &["lookup", "reassign"],
        PluginLimits::default(),
        &[],
        &["account"],
        territories(),
    );
    let e = Plugin::load("territory", &s, &bytes, None).unwrap_err();
    assert!(
        e.to_string()
            .contains("lists `reassign`, which the component does not serve (its functions: lookup)"),
        "{e}"
    );
}

#[test]
fn a_component_comes_back_from_the_disk_cache() {
    let bytes = built("examples/territory-rust");
    let s = spec(
        &bytes,
        &["lookup"],
        PluginLimits::default(),
        &[],
        &["account"],
        territories(),
    );
    let cache = tempfile::tempdir().unwrap();
    let first = Plugin::load("territory", &s, &bytes, Some(cache.path())).unwrap();
    assert!(!first.from_cache);
    let second = Plugin::load("territory", &s, &bytes, Some(cache.path())).unwrap();
    assert!(second.from_cache);
    territory_answers(&second);
}
