//! `examples/acme` against the server: its sample data imported (the reps
//! as the roster, the deals as stored deals), each plan run for the
//! quarter on the real binary over loopback, approved, published, and
//! every rep's statement read back equals the statement in `expected/`
//! that `dealrules eval` gives from the same data as a file.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn acme() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme")
}

/// A JSON list as JSON lines.
fn jsonl(items: &[Value]) -> String {
    items.iter().map(|v| v.to_string() + "\n").collect()
}

#[test]
fn acme_statements_from_imported_data_equal_the_expected_files() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("acme");
    copy_dir(&acme(), &rules);
    let db = format!("sqlite://{}", dir.path().join("dealrules.db").display());
    let server = start_on(&rules, &db, tempfile::tempdir().unwrap());
    let addr = server.addr.clone();
    let (code, text) = http(
        &addr,
        "POST",
        "/v1/tokens",
        r#"{"role": "admin", "subject": "controller"}"#,
    );
    assert_eq!(code, 201, "{text}");
    let admin2 = json(&text)["token"].as_str().unwrap().to_string();

    let data: Value =
        serde_json::from_str(&std::fs::read_to_string(acme().join("data/2026-q1.json")).unwrap()).unwrap();
    let (code, text) = http(
        &addr,
        "POST",
        "/v1/people:import",
        &jsonl(data["reps"].as_array().unwrap()),
    );
    assert_eq!(code, 200, "{text}");
    let deals = data["deals"].as_array().unwrap();
    let (code, text) = http(&addr, "POST", "/v1/deals:import", &jsonl(deals));
    assert_eq!(code, 200, "{text}");
    assert_eq!(json(&text)["created"], deals.len());

    for plan in ["ae-2026", "se-2026", "partner-rebates", "manager-kpi"] {
        let (code, text) = http(
            &addr,
            "POST",
            &format!("/v1/incentives/{plan}/runs"),
            r#"{"period": "2026-Q1"}"#,
        );
        assert_eq!(code, 202, "{plan}: {text}");
        let id = json(&text)["id"].as_str().unwrap().to_string();
        let mut run = Value::Null;
        wait_for("the run", || {
            run = json(&http(&addr, "GET", &format!("/v1/incentives/runs/{id}"), "").1);
            run["state"] != "running"
        });
        assert_eq!(run["state"], "draft", "{plan}: {run}");
        let (code, text) = http_as(&addr, &admin2, "POST", &format!("/v1/incentives/runs/{id}/approve"), "");
        assert_eq!(code, 200, "{text}");
        let (code, text) = http(&addr, "POST", &format!("/v1/incentives/runs/{id}/publish"), "");
        assert_eq!(code, 200, "{text}");

        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(acme().join(format!("expected/{plan}-2026-q1.json"))).unwrap(),
        )
        .unwrap();
        let expected = expected["statements"].as_array().unwrap();
        assert_eq!(run["reps"], expected.len(), "{plan}: {run}");
        for want in expected {
            let rep = want["rep"].as_str().unwrap();
            let (code, text) = http(&addr, "GET", &format!("/v1/statements/{rep}/2026-Q1?plan={plan}"), "");
            assert_eq!(code, 200, "{plan} {rep}: {text}");
            let got = &json(&text)["statements"][0]["statement"];
            assert_eq!(got, want, "{plan}, {rep}");
        }
    }
    drop(server);
}
