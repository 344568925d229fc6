//! Golden tests: every folder under `tests/golden/` holds a `pack/` and
//! `cases/*.json`, each `{policy, input, now?, expected | expected_error}`.
//! Adding a case is adding a file; `UPDATE_GOLDEN=1 cargo test --test golden`
//! writes the expected results of new or changed cases for review.

use std::path::Path;

use dealrules_core::Snapshot;
use dealrules_expr::Value;
use dealrules_model::PackSource;
use serde_json::{Value as Json, json};

const DEFAULT_NOW: &str = "2026-11-23T00:00:00Z";

fn run_case(snapshot: &Snapshot, case: &Json) -> Json {
    let policy = case["policy"].as_str().expect("case needs a policy");
    let now = case.get("now").and_then(Json::as_str).unwrap_or(DEFAULT_NOW);
    let input = Value::from_json(&case["input"]);
    // Parsed input and JSON text take different roads to the facts (slots
    // filled from a value, or straight from the text); both must agree.
    let from_text = snapshot
        .decide_json(policy, &case["input"].to_string(), now)
        .map(|d| serde_json::to_value(&d).unwrap())
        .map_err(|e| e.to_string());
    let from_value = snapshot
        .decide(policy, &input, now)
        .map(|d| serde_json::to_value(&d).unwrap())
        .map_err(|e| e.to_string());
    assert_eq!(from_text, from_value, "decide_json and decide differ for {policy}");
    match snapshot.decide(policy, &input, now) {
        Ok(d) => {
            let mut v = serde_json::to_value(&d).unwrap();
            // The pack's hash changes with any edit of the pack; the cases
            // pin behaviour, not bytes.
            v["version"] = json!("<version>");
            json!({ "expected": v })
        }
        Err(e) => json!({ "expected_error": e.to_string() }),
    }
}

#[test]
fn golden_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut count = 0;
    let mut suites: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    suites.sort();
    for suite in suites {
        let snapshot = Snapshot::load(PackSource::from_dir(&suite.join("pack")).unwrap())
            .unwrap_or_else(|e| panic!("{}: pack does not load:\n{e}", suite.display()));
        let mut cases: Vec<_> = std::fs::read_dir(suite.join("cases"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        cases.sort();
        for path in cases {
            count += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            let mut case: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let got = run_case(&snapshot, &case);
            let want = json!({
                "expected": case.get("expected"),
                "expected_error": case.get("expected_error"),
            });
            let got_full = json!({ "expected": got.get("expected"), "expected_error": got.get("expected_error") });
            if want == got_full {
                continue;
            }
            if update {
                let obj = case.as_object_mut().unwrap();
                obj.remove("expected");
                obj.remove("expected_error");
                for (k, v) in got.as_object().unwrap() {
                    obj.insert(k.clone(), v.clone());
                }
                std::fs::write(&path, serde_json::to_string_pretty(&case).unwrap() + "\n").unwrap();
            } else {
                failures.push(format!(
                    "{}:\n  want {}\n  got  {}",
                    path.strip_prefix(&root).unwrap().display(),
                    serde_json::to_string(&want).unwrap(),
                    serde_json::to_string(&got_full).unwrap()
                ));
            }
        }
    }
    assert!(count >= 40, "only {count} golden cases found");
    assert!(
        failures.is_empty(),
        "{} golden case(s) differ (UPDATE_GOLDEN=1 to accept):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
