//! Plugins built from source (C and Rust) inside a pack, through the real
//! binary: `plugin build|test|inspect`, the pack's own tests, an incentive
//! statement with a plugin line, a funnel action calling a plugin on a
//! running server, a module that does not match its manifest, and a
//! hostile plugin failing its decision while the server goes on.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{copy_dir, http, json, start_with};

fn dealrules(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .args(args)
        .env(
            "DEALRULES_PLUGIN_CACHE",
            std::env::temp_dir().join("dealrules-test-plugin-cache"),
        )
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The partners pack with both plugins built and pinned.
fn built_pack(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pack = dir.join("partners");
    copy_dir(&root.join("examples/partners"), &pack);
    let p = |s: &str| pack.join(s).display().to_string();
    let fx = dealrules(&[
        "plugin",
        "build",
        &root.join("plugins/examples/fx-c/fx.c").display().to_string(),
        "--out",
        &p("plugins/fx-convert.wasm"),
        "--manifest",
        &p("plugins/fx-convert.yaml"),
    ]);
    assert!(fx.status.success(), "{}", text(&fx));
    let credit = dealrules(&[
        "plugin",
        "build",
        &root.join("plugins/examples/credit-rust").display().to_string(),
        "--out",
        &p("plugins/credit-check.wasm"),
        "--manifest",
        &p("plugins/credit-check.yaml"),
    ]);
    assert!(credit.status.success(), "{}", text(&credit));
    pack
}

#[test]
fn plugins_in_a_pack_from_build_to_statement() {
    let dir = tempfile::tempdir().unwrap();
    let pack = built_pack(dir.path());
    let p = |s: &str| pack.join(s).display().to_string();

    let o = dealrules(&["test", &p("")]);
    assert!(o.status.success(), "{}", text(&o));
    let o = dealrules(&[
        "plugin",
        "test",
        &p("plugins/fx-convert.yaml"),
        "--cases",
        &p("cases/fx"),
    ]);
    assert!(
        o.status.success() && text(&o).contains("2 passed, 0 failed"),
        "{}",
        text(&o)
    );
    let o = dealrules(&["plugin", "inspect", &p("plugins/credit-check.wasm")]);
    let shown = text(&o);
    assert!(
        o.status.success()
            && shown.contains("abi:     dealrules v1")
            && shown.contains("score func(i32, i32) -> (i64)")
            && shown.contains("imports:\n  (none)"),
        "{shown}"
    );

    // A statement with the plugin's line, and its cost in the line.
    let o = dealrules(&[
        "eval",
        "emea-ae-2026",
        "--rules",
        &p(""),
        "--input",
        &p("data/2026-q1.json"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let result = json(&String::from_utf8_lossy(&o.stdout));
    let george = result["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["rep"] == "ae-george")
        .unwrap()
        .clone();
    let line = george["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["component"] == "fx-bonus")
        .unwrap()
        .clone();
    assert_eq!(line["amount"], "632.00", "80,000 x 1% x 0.79 GBP: {line}");
    assert!(
        line["plugin"]["fuel_used"].as_u64().unwrap() > 0 && line["plugin"]["micros"].as_u64().is_some(),
        "{line}"
    );

    // An approval rule reads the plugin's answer; the decision shows the call.
    let input = pack.join("deal.json");
    std::fs::write(&input, r#"{"deal": {"amount": 150000}, "customer": {"annual_revenue": "1200000", "late_payments_12m": 1, "open_ar": "20000"}}"#).unwrap();
    let o = dealrules(&[
        "eval",
        "credit-terms",
        "--rules",
        &p(""),
        "--input",
        &input.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let d = json(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(
        (d["level"].as_str(), d["rule"].as_str()),
        (Some("finance"), Some("good-credit")),
        "{d}"
    );
    assert_eq!(
        (
            d["plugins"][0]["plugin"].as_str(),
            d["plugins"][0]["answer"]["band"].as_str()
        ),
        (Some("credit-check"), Some("B")),
        "{d}"
    );
    assert!(d["plugins"][0]["fuel_used"].as_u64().unwrap() > 0);
    // Asked why not: the rule that compares with the plugin's answer cannot
    // say which amount would pass (the answer may change with the input).
    std::fs::write(&input, r#"{"deal": {"amount": 150000}, "customer": {"annual_revenue": "1200000", "late_payments_12m": 1, "open_ar": "20000"}, "why_not": true}"#).unwrap();
    let o = dealrules(&[
        "eval",
        "credit-terms",
        "--rules",
        &p(""),
        "--input",
        &input.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let d = json(&String::from_utf8_lossy(&o.stdout));
    let within = &d["trace"][0];
    assert_eq!(
        (within["rule"].as_str(), within["matched"].as_bool()),
        (Some("within-limit"), Some(false)),
        "{d}"
    );
    assert_eq!(within["why_not"][0]["cannot_say"], true, "{d}");
    assert!(
        within["why_not"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("`plugins.credit.credit_limit` is a plugin's answer"),
        "{d}"
    );
    assert_eq!(d["to_reach"][0]["level"], "auto", "{d}");

    // A module that is not the pinned one: the pack does not load.
    let wasm = pack.join("plugins/fx-convert.wasm");
    let mut bytes = std::fs::read(&wasm).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&wasm, bytes).unwrap();
    let o = dealrules(&["check", &p("")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("plugins/fx-convert.yaml:") && text(&o).contains("not the pinned"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_funnel_action_calls_a_plugin_and_a_hostile_plugin_fails_only_its_decision() {
    let dir = tempfile::tempdir().unwrap();
    let pack = built_pack(dir.path());
    // A hostile plugin in the same pack, used by a second plan.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = dealrules(&[
        "plugin",
        "build",
        &root.join("plugins/hostile/loop.c").display().to_string(),
        "--out",
        &pack.join("plugins/spinner.wasm").display().to_string(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let sha = text(&o)
        .split("sha256 ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    std::fs::write(
        pack.join("plugins/spinner.yaml"),
        format!("apiVersion: dealrules/v1\nkind: Plugin\nmetadata: {{ name: spinner }}\nspec:\n  wasm: spinner.wasm\n  sha256: {sha}\n  exports: [run]\n  limits: {{ fuel: 100000000000, timeout: 30ms }}\n"),
    )
    .unwrap();
    std::fs::write(
        pack.join("spinner-plan.yaml"),
        "apiVersion: dealrules/v1\nkind: IncentivePlan\nmetadata: { name: spinner-plan }\nspec:\n  period: quarter\n  currency: USD\n  credit: { when: 'deal.stage == \"won\"', amount: deal.amount }\n  quota: 1\n  components:\n    - { id: spin, type: plugin, plugin: spinner, function: run }\n",
    )
    .unwrap();
    // A plain table: no plugin, decided on the async workers.
    std::fs::write(
        pack.join("plain-size.yaml"),
        "apiVersion: dealrules/v1\nkind: DecisionTable\nmetadata: { name: plain-size }\nspec:\n  outputs: [band]\n  rules:\n    - { id: large, when: 'deal.amount >= 100000', band: large }\n    - { id: small, band: small }\n",
    )
    .unwrap();
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("dealrules.db").display());
    let server = start_with(&pack, &url, tempfile::tempdir().unwrap(), &[]);

    // Entering proposal asks the credit check; the answer is on the deal's history.
    let deal = r#"{"id": "p-1", "funnel": "emea", "owner": "ae-elsa", "fields": {"amount": 90000},
        "context": {"customer": {"annual_revenue": "1200000", "late_payments_12m": 0, "open_ar": "0", "tax_id": "kept from the plugin"}}}"#;
    let (code, body) = http(&server.addr, "POST", "/v1/deals", deal);
    assert_eq!(code, 201, "{body}");
    let (code, body) = http(
        &server.addr,
        "POST",
        "/v1/deals/p-1/events",
        r#"{"type": "move", "to": "proposal"}"#,
    );
    assert_eq!(code, 200, "{body}");
    let d = json(&body);
    let call = d["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["detail"]["action"] == "plugin")
        .unwrap()
        .clone();
    let r = &call["detail"]["result"];
    assert_eq!(
        (
            r["score"].as_u64(),
            r["band"].as_str(),
            r["credit_limit"].to_string().as_str()
        ),
        (Some(762), Some("A"), "120000.00"),
        "{call}"
    );
    assert!(call["detail"]["fuel_used"].as_u64().unwrap() > 0);

    // The spinning plugin fails its own decision, named, within its deadline...
    let input = r#"{"period": "2026-Q1", "reps": [{"id": "r1", "role": "ae"}], "deals": [{"id": "x", "owner": "r1", "amount": 10, "stage": "won", "closed_at": "2026-02-01"}]}"#;
    let started = std::time::Instant::now();
    let (code, body) = http(&server.addr, "POST", "/v1/decide/spinner-plan", input);
    assert_eq!(code, 422, "{body}");
    assert!(
        json(&body)["detail"]
            .as_str()
            .unwrap()
            .contains("plugin `spinner` (run): did not finish within 30ms"),
        "{body}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // ...and every other decision goes on.
    let (code, body) = http(
        &server.addr,
        "POST",
        "/v1/decide/emea-ae-2026",
        &input.replace("\"role\": \"ae\"", "\"role\": \"ae\", \"currency\": \"EUR\""),
    );
    assert_eq!(code, 200, "{body}");

    // Regression: 200 concurrent decisions of a plugin that spins to its
    // deadline stalled the whole server (~20 s, health checks included):
    // they now run on the bounded long-work pool, whose full queue answers
    // 503 at once, while health checks and plain decisions keep answering.
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let storm: Vec<_> = (0..200)
        .map(|_| {
            let (addr, input, finished) = (server.addr.clone(), input.to_string(), finished.clone());
            std::thread::spawn(move || {
                let code = http(&addr, "POST", "/v1/decide/spinner-plan", &input).0;
                finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                code
            })
        })
        .collect();
    let mut answered_during_storm = 0;
    while finished.load(std::sync::atomic::Ordering::SeqCst) < 200 {
        let health = http(&server.addr, "GET", "/healthz", "").0;
        let plain = http(
            &server.addr,
            "POST",
            "/v1/decide/plain-size",
            r#"{"deal": {"amount": 5}}"#,
        )
        .0;
        assert_eq!((health, plain), (200, 200));
        if finished.load(std::sync::atomic::Ordering::SeqCst) < 200 {
            answered_during_storm += 1;
        }
    }
    let codes: Vec<u16> = storm.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(codes.iter().all(|c| *c == 422 || *c == 503), "{codes:?}");
    assert!(
        codes.contains(&422) && codes.contains(&503),
        "some ran to their deadline, the rest were told to retry: {codes:?}"
    );
    assert!(
        answered_during_storm > 0,
        "health checks and plain decisions answered while the spinners ran"
    );
}

#[test]
fn plugin_new_makes_a_plugin_that_builds_and_passes_its_case() {
    for lang in ["c", "rust"] {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("tax");
        let at_s = at.display().to_string();
        let o = dealrules(&["plugin", "new", "tax", "--lang", lang, "--dir", &at_s]);
        assert!(o.status.success(), "{}", text(&o));
        let source = if lang == "c" {
            format!("{at_s}/tax.c")
        } else {
            at_s.clone()
        };
        let o = dealrules(&[
            "plugin",
            "build",
            &source,
            "--out",
            &format!("{at_s}/tax.wasm"),
            "--manifest",
            &format!("{at_s}/tax.yaml"),
        ]);
        assert!(o.status.success(), "{lang}: {}", text(&o));
        let o = dealrules(&[
            "plugin",
            "test",
            &format!("{at_s}/tax.yaml"),
            "--cases",
            &format!("{at_s}/cases"),
        ]);
        assert!(
            o.status.success() && text(&o).contains("1 passed, 0 failed"),
            "{lang}: {}",
            text(&o)
        );
    }
}
