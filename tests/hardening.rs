//! Regression tests on the real binary for inputs that crashed or fooled
//! it: a pack nested thousands of levels deep (uploaded, saved into the
//! watched folder, and there at the next start), and duplicate keys in an
//! input given to the CLI.

mod common;

use std::path::Path;
use std::process::Command;

use common::{DEAL, copy_dir, http, json, pack_files, start_on, stop, wait_for};

/// About 24 KB of block-style YAML nested 10,000 levels deep.
fn deep_yaml() -> String {
    format!(
        "kind: DecisionTable\nmetadata: {{ name: deep }}\nspec:\n  rows:\n    {}1\n",
        "- ".repeat(10_000)
    )
}

fn alive(addr: &str) -> bool {
    http(addr, "POST", "/v1/decide/discount-approvals", DEAL).0 == 200
}

/// Regression: a block sequence nested ~4,000 levels deep aborted the
/// server with a stack overflow, when uploaded and when saved into the
/// watched folder, and again at every restart over that folder.
#[test]
fn a_deeply_nested_pack_never_crashes_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"), &rules);
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("dealrules.db").display());
    let mut server = start_on(&rules, &url, tempfile::tempdir().unwrap());
    let good = json(&http(&server.addr, "GET", "/v1/status", "").1)["version"]
        .as_str()
        .unwrap()
        .to_string();

    // Uploaded: refused with the file and line, the server goes on.
    let mut files: serde_json::Map<String, serde_json::Value> =
        pack_files(&rules).into_iter().map(|(p, t)| (p, t.into())).collect();
    files.insert("deep.yaml".into(), deep_yaml().into());
    let (code, body) = http(
        &server.addr,
        "PUT",
        "/v1/packs/active",
        &serde_json::Value::Object(files).to_string(),
    );
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("deep.yaml:5:") && body.contains("nested deeper than 64 levels"),
        "{body}"
    );
    assert!(alive(&server.addr));

    // Saved into the watched folder: the error is in the status, the last
    // good pack keeps serving.
    std::fs::write(rules.join("deep.yaml"), deep_yaml()).unwrap();
    wait_for("the refused reload", || {
        let status = json(&http(&server.addr, "GET", "/v1/status", "").1);
        status["last_reload_errors"]
            .as_array()
            .is_some_and(|e| e.iter().any(|l| l.as_str().unwrap_or("").contains("deep.yaml")))
    });
    assert!(alive(&server.addr));
    assert_eq!(
        json(&http(&server.addr, "GET", "/v1/status", "").1)["version"],
        good.as_str()
    );
    stop(&mut server, "-TERM");

    // A restart over that folder serves the last stored activation and
    // says why the folder was not loaded.
    let server = start_on(&rules, &url, tempfile::tempdir().unwrap());
    let status = json(&http(&server.addr, "GET", "/v1/status", "").1);
    assert_eq!(status["version"], good.as_str(), "{status}");
    let errors = status["last_reload_errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        errors.iter().any(|l| l.as_str().unwrap().starts_with("deep.yaml:5:")
            && l.as_str().unwrap().contains("nested deeper than 64 levels")),
        "{status}"
    );
    assert!(alive(&server.addr));
    drop(db);
}

/// `dealrules check` reports the same error, file:line:col.
#[test]
fn check_reports_a_deeply_nested_file_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"), &rules);
    std::fs::write(rules.join("deep.yaml"), deep_yaml()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .arg("check")
        .arg(&rules)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("deep.yaml:5:") && text.contains("nested deeper than 64 levels"),
        "{text}"
    );
}

/// Regression: duplicate keys in an input silently took the last value.
#[test]
fn eval_refuses_duplicate_keys_naming_the_key() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.json");
    std::fs::write(&input, r#"{"deal": {"amount": 40000, "discount_pct": 5, "discount_pct": 35, "region": "NA", "payment_terms_days": 30}}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .args(["eval", "discount-approvals", "--rules"])
        .arg(&rules)
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the key `deal.discount_pct` appears twice"), "{err}");
}
