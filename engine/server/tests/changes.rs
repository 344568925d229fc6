//! Change requests over real HTTP on loopback, on a real SQLite file (and
//! PostgreSQL when `DEALRULES_TEST_POSTGRES` names a server): every
//! transition and every refusal (approving one's own change, a stale one,
//! one whose tests fail), four eyes off, emergency rollback, scheduled
//! activation fired once across two nodes, and impact checked against
//! hand-computed expectations on a small history.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dealrules_server::auth::{Role, TokenBook, hash_token};
use dealrules_server::state::{AppState, Setup};
use dealrules_store::{Store, scratch};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FUNNEL: &str = r#"apiVersion: dealrules/v1
kind: Funnel
metadata: { name: sales }
spec:
  initial: open
  stages:
    - { id: open, probability: 0.3 }
    - { id: proposal, probability: 0.5 }
    - { id: won, probability: 1, terminal: true }
    - { id: lost, probability: 0, terminal: true }
  transitions:
    - { from: open, to: proposal, when: "deal.amount > 0" }
    - { from: proposal, to: won }
    - { from: "*", to: lost }
  timers:
    - id: nudge
      in: [open, proposal]
      after: 7d
      do: [ { notify: { template: stale-deal, to: "deal.owner" } } ]
"#;

const PLAN: &str = r#"apiVersion: dealrules/v1
kind: IncentivePlan
metadata: { name: ae-plan }
spec:
  applies_to: 'rep.role == "ae"'
  period: quarter
  currency: USD
  rounding: { places: 2, mode: half_up }
  credit:
    when: 'deal.stage == "won"'
    amount: deal.amount
  quota: rep.quota
  components:
    - id: commission
      type: tiered
      basis: attainment
      mode: marginal
      tiers:
        - { upto: 1.0, rate: 0.10 }
        - { rate: 0.15 }
"#;

const APPROVALS: &str = r#"apiVersion: dealrules/v1
kind: ApprovalPolicy
metadata: { name: discounts }
spec:
  levels: [auto, manager]
  hit: first
  rules:
    - { id: small, when: "deal.discount_pct <= 10", level: auto }
    - { id: rest, level: manager }
  approvers:
    manager: "rep.manager"
"#;

const APPROVAL_TESTS: &str = r#"tests:
  - name: ten percent is auto
    policy: discounts
    input: { deal: { discount_pct: 10 }, rep: { manager: m-1 } }
    expect: { level: auto }
  - name: thirty percent needs the manager
    policy: discounts
    input: { deal: { discount_pct: 30 }, rep: { manager: m-1 } }
    expect: { level: manager }
"#;

const PEOPLE_CSV: &str = "id,name,role,manager,region,team,effective_from,quota\n\
frank,Frank,manager,,NA,west,,\n\
ana,Ana,ae,frank,NA,west,,100000\n\
ben,Ben,ae,frank,NA,west,,50000\n\
cleo,Cleo,ae,,EMEA,east,,80000\n";

const DEALS_CSV: &str = "id,owner,stage,amount,closed_at\n\
d-1,ana,won,60000,2026-01-20\n\
d-2,ana,won,20000,2026-03-02\n\
d-3,ben,won,10000,2026-02-10\n\
d-4,cleo,won,100000,2026-02-28\n";

fn write_pack(dir: &Path) -> PathBuf {
    let rules = dir.join("rules");
    std::fs::create_dir_all(rules.join("tests")).unwrap();
    std::fs::write(rules.join("funnel.yaml"), FUNNEL).unwrap();
    std::fs::write(rules.join("plans.yaml"), PLAN).unwrap();
    std::fs::write(rules.join("approvals.yaml"), APPROVALS).unwrap();
    std::fs::write(rules.join("tests/approvals.yaml"), APPROVAL_TESTS).unwrap();
    rules
}

/// One server node: its state and where it listens.
struct Node {
    state: Arc<AppState>,
    addr: std::net::SocketAddr,
}

/// Admin `ada` (t-ada), admin `bo` (t-bo), service `crm` (t-crm).
async fn node(url: &str, rules: &Path, four_eyes: bool, tokens: bool) -> Node {
    let store = Arc::new(Store::open(url).await.unwrap());
    if tokens {
        for (t, role, subject) in [
            ("t-ada", Role::Admin, "ada"),
            ("t-bo", Role::Admin, "bo"),
            ("t-crm", Role::Service, "crm"),
        ] {
            store
                .tokens()
                .add_token(&hex::encode(hash_token(t)), role.as_str(), subject, &[], "test")
                .await
                .unwrap();
        }
    }
    let (snapshot, activation, errors) = dealrules_server::reload::startup(&store, rules).await.unwrap();
    assert!(errors.is_none(), "{errors:?}");
    let state = AppState::start(Setup {
        snapshot,
        activation,
        rules_dir: rules.to_path_buf(),
        store,
        fixed_tokens: TokenBook::default(),
        decision_log: true,
        clock: Default::default(),
        four_eyes,
    })
    .await
    .unwrap();
    dealrules_server::workers::scheduled_changes(state.clone(), Duration::from_millis(50));
    dealrules_server::workers::follow_activations(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = dealrules_server::routes::app(state.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Node { state, addr }
}

/// One HTTP/1.1 request over a fresh loopback connection.
async fn http(
    addr: std::net::SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    ctype: &str,
    body: &str,
) -> (u16, Value) {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let value = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()));
    (status, value)
}

impl Node {
    async fn call(&self, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
        let text = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        http(self.addr, token, method, path, "application/json", &text).await
    }

    async fn ok(&self, token: &str, method: &str, path: &str, body: Value) -> Value {
        let (code, v) = self.call(token, method, path, body).await;
        assert!((200..300).contains(&code), "{method} {path}: {code} {v}");
        v
    }

    async fn change(&self, title: &str, files: Value) -> String {
        let v = self
            .ok(
                "t-ada",
                "POST",
                "/v1/changes",
                json!({ "title": title, "files": files }),
            )
            .await;
        v["id"].as_str().unwrap().to_string()
    }

    fn active(&self) -> String {
        self.state.snapshot.load().version.to_string()
    }
}

fn sqlite(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("dealrules.db").display())
}

fn moves(v: &Value) -> Vec<(String, String, String)> {
    v["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["from"].as_str().unwrap_or("-").to_string(),
                t["to"].as_str().unwrap().to_string(),
                t["by"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn raised(threshold: &str) -> String {
    APPROVALS.replace("deal.discount_pct <= 10", &format!("deal.discount_pct <= {threshold}"))
}

#[tokio::test]
async fn a_change_goes_from_draft_to_active_with_a_second_admin() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write_pack(dir.path());
    let n = node(&sqlite(dir.path()), &rules, true, true).await;
    let base = n.active();

    // Saving validates, runs the tests and answers the diff.
    let (code, v) = n
        .call(
            "t-ada",
            "POST",
            "/v1/changes",
            json!({ "title": "Raise auto-approval to 15%", "files": { "approvals.yaml": raised("15") } }),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["state"], "draft");
    assert_eq!(v["kind"], "change");
    assert_eq!(v["base_version"], base.as_str());
    assert_eq!(v["validation"]["valid"], true, "{v}");
    assert_eq!(v["validation"]["tests"]["passed"], 2);
    assert_eq!(v["diff"][0]["path"], "approvals.yaml");
    assert_eq!(v["diff"][0]["status"], "modified");
    let diff = v["diff"][0]["diff"].as_str().unwrap();
    assert!(
        diff.starts_with("--- a/approvals.yaml\n+++ b/approvals.yaml\n@@"),
        "{diff}"
    );
    assert!(
        diff.contains("\n-    - { id: small, when: \"deal.discount_pct <= 10\", level: auto }\n+    - { id: small, when: \"deal.discount_pct <= 15\", level: auto }\n"),
        "{diff}"
    );
    let id = v["id"].as_str().unwrap().to_string();

    // An edit with an error answers it as file:line:col, and is saved.
    let (code, v) = n
        .call(
            "t-ada",
            "PUT",
            &format!("/v1/changes/{id}"),
            json!({ "files": { "approvals.yaml": raised("15").replace("level: auto", "level: automatic") } }),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["validation"]["valid"], false);
    let first = v["validation"]["errors"][0].as_str().unwrap();
    assert!(first.starts_with("approvals.yaml:"), "{first}");
    let parts: Vec<&str> = first.splitn(4, ':').collect();
    assert!(
        parts[1].parse::<u32>().is_ok() && parts[2].parse::<u32>().is_ok(),
        "{first}"
    );
    // ... and a draft that does not pass is not submitted.
    let (code, p) = n
        .call("t-ada", "POST", &format!("/v1/changes/{id}/submit"), Value::Null)
        .await;
    assert_eq!(code, 422, "{p}");
    assert!(p["errors"][0].as_str().unwrap().starts_with("approvals.yaml:"), "{p}");
    // Only the author edits.
    let (code, _) = n
        .call(
            "t-bo",
            "PUT",
            &format!("/v1/changes/{id}"),
            json!({ "title": "mine now" }),
        )
        .await;
    assert_eq!(code, 403);
    n.ok(
        "t-ada",
        "PUT",
        &format!("/v1/changes/{id}"),
        json!({ "files": { "approvals.yaml": raised("15") } }),
    )
    .await;
    let v = n
        .ok(
            "t-ada",
            "POST",
            &format!("/v1/changes/{id}/submit"),
            json!({ "comment": "as discussed" }),
        )
        .await;
    assert_eq!(v["state"], "submitted");
    // Submitted twice, or edited once submitted: conflicts.
    assert_eq!(
        n.call("t-ada", "POST", &format!("/v1/changes/{id}/submit"), Value::Null)
            .await
            .0,
        409
    );
    assert_eq!(
        n.call("t-ada", "PUT", &format!("/v1/changes/{id}"), json!({ "title": "x" }))
            .await
            .0,
        409
    );

    // Four eyes: the author may not approve.
    let (code, p) = n
        .call("t-ada", "POST", &format!("/v1/changes/{id}/approve"), Value::Null)
        .await;
    assert_eq!(code, 403, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("four eyes"), "{p}");
    assert_eq!(n.active(), base, "nothing was activated");

    let v = n
        .ok(
            "t-bo",
            "POST",
            &format!("/v1/changes/{id}/approve"),
            json!({ "comment": "looks right" }),
        )
        .await;
    assert_eq!(v["state"], "active", "{v}");
    assert_ne!(n.active(), base);
    assert_eq!(n.active(), v["validation"]["version"].as_str().unwrap());
    assert_eq!(
        moves(&v),
        [
            ("-".into(), "draft".into(), "ada".into()),
            ("draft".into(), "submitted".into(), "ada".into()),
            ("submitted".into(), "approved".into(), "bo".into()),
            ("approved".into(), "active".into(), "bo".into()),
        ]
    );
    assert_eq!(v["transitions"][1]["comment"], "as discussed");
    assert_eq!(v["transitions"][2]["comment"], "looks right");
    // The activation names the change.
    let a = n.state.store.packs().latest_activation(None).await.unwrap().unwrap();
    assert_eq!(a.change_id.as_deref(), Some(id.as_str()));
    assert_eq!(a.source, "change");
    assert_eq!(a.activated_by, "bo");
    assert_eq!(v["activation_id"], a.id.as_str());
    let status = n.ok("t-ada", "GET", "/v1/status", Value::Null).await;
    assert_eq!(status["source"], "change");
    // Active is final.
    for action in ["approve", "reject", "cancel", "submit"] {
        assert_eq!(
            n.call("t-bo", "POST", &format!("/v1/changes/{id}/{action}"), Value::Null)
                .await
                .0,
            409,
            "{action}"
        );
    }
    let listed = n.ok("t-ada", "GET", "/v1/changes?state=active", Value::Null).await;
    assert_eq!(listed["changes"][0]["id"], id.as_str());
    assert_eq!(
        n.call("t-ada", "GET", "/v1/changes?state=done", Value::Null).await.0,
        400
    );
}

#[tokio::test]
async fn rejected_and_cancelled_changes_end_there() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write_pack(dir.path());
    let n = node(&sqlite(dir.path()), &rules, true, true).await;
    let a = n
        .change("Rejected one", json!({ "approvals.yaml": raised("12") }))
        .await;
    // Only a submitted (or scheduled) change can be rejected.
    assert_eq!(
        n.call("t-bo", "POST", &format!("/v1/changes/{a}/reject"), Value::Null)
            .await
            .0,
        409
    );
    n.ok("t-ada", "POST", &format!("/v1/changes/{a}/submit"), Value::Null)
        .await;
    let v = n
        .ok(
            "t-bo",
            "POST",
            &format!("/v1/changes/{a}/reject"),
            json!({ "comment": "too generous" }),
        )
        .await;
    assert_eq!(v["state"], "rejected");
    assert_eq!(v["transitions"][2]["comment"], "too generous");
    assert_eq!(
        n.call("t-bo", "POST", &format!("/v1/changes/{a}/approve"), Value::Null)
            .await
            .0,
        409
    );

    // A draft, a submitted change: cancelled.
    let b = n
        .change("Cancelled draft", json!({ "approvals.yaml": raised("11") }))
        .await;
    let v = n
        .ok("t-ada", "POST", &format!("/v1/changes/{b}/cancel"), Value::Null)
        .await;
    assert_eq!(v["state"], "cancelled");
    let c = n
        .change("Cancelled submitted", json!({ "approvals.yaml": raised("13") }))
        .await;
    n.ok("t-ada", "POST", &format!("/v1/changes/{c}/submit"), Value::Null)
        .await;
    let v = n
        .ok("t-ada", "POST", &format!("/v1/changes/{c}/cancel"), Value::Null)
        .await;
    assert_eq!(v["state"], "cancelled");
    assert_eq!(
        n.call("t-ada", "POST", &format!("/v1/changes/{c}/cancel"), Value::Null)
            .await
            .0,
        409
    );
    // Unknown, unauthenticated, bad bodies.
    assert_eq!(n.call("t-ada", "GET", "/v1/changes/chg_nope", Value::Null).await.0, 404);
    assert_eq!(
        n.call("t-crm", "POST", "/v1/changes", json!({ "title": "x" })).await.0,
        403
    );
    assert_eq!(
        n.call("t-ada", "POST", "/v1/changes", json!({ "title": "" })).await.0,
        400
    );
    assert_eq!(
        n.call(
            "t-ada",
            "POST",
            "/v1/changes",
            json!({ "title": "x", "files": { "../etc/passwd": "x" } })
        )
        .await
        .0,
        400
    );
}

#[tokio::test]
async fn a_stale_change_is_refused_naming_the_files_and_a_clean_one_is_carried_forward() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write_pack(dir.path());
    let n = node(&sqlite(dir.path()), &rules, true, true).await;
    let first = n
        .change("Threshold 15", json!({ "approvals.yaml": raised("15") }))
        .await;
    let same_file = n
        .change("Threshold 12", json!({ "approvals.yaml": raised("12") }))
        .await;
    let other_file = n
        .change(
            "Plan rate 12%",
            json!({ "plans.yaml": PLAN.replace("rate: 0.10", "rate: 0.12") }),
        )
        .await;
    for id in [&first, &same_file, &other_file] {
        n.ok("t-ada", "POST", &format!("/v1/changes/{id}/submit"), Value::Null)
            .await;
    }
    n.ok("t-bo", "POST", &format!("/v1/changes/{first}/approve"), Value::Null)
        .await;
    let after_first = n.active();

    // Stale: approvals.yaml changed since its base.
    let (code, p) = n
        .call("t-bo", "POST", &format!("/v1/changes/{same_file}/approve"), Value::Null)
        .await;
    assert_eq!(code, 409, "{p}");
    assert_eq!(p["conflicts"], json!(["approvals.yaml"]));
    assert_eq!(n.active(), after_first);
    let v = n
        .ok("t-ada", "GET", &format!("/v1/changes/{same_file}"), Value::Null)
        .await;
    assert_eq!(v["state"], "submitted");
    assert_eq!(v["conflicts"], json!(["approvals.yaml"]));

    // Clean: carried forward onto the new active version, keeping both.
    let v = n
        .ok(
            "t-bo",
            "POST",
            &format!("/v1/changes/{other_file}/approve"),
            Value::Null,
        )
        .await;
    assert_eq!(v["state"], "active", "{v}");
    assert_eq!(v["base_version"], after_first.as_str());
    let active = n.state.snapshot.load_full();
    let approvals = String::from_utf8(
        n.state
            .store
            .packs()
            .pack(&active.version)
            .await
            .unwrap()
            .unwrap()
            .files["approvals.yaml"]
            .clone(),
    )
    .unwrap();
    assert!(approvals.contains("<= 15"), "the first change is kept");

    // The author resolves the conflict by rebasing with the whole file.
    n.ok("t-ada", "POST", &format!("/v1/changes/{same_file}/cancel"), Value::Null)
        .await;
    let redo = n
        .change("Threshold 12, again", json!({ "approvals.yaml": raised("12") }))
        .await;
    let v = n.ok("t-ada", "GET", &format!("/v1/changes/{redo}"), Value::Null).await;
    assert_eq!(v["base_version"], n.active().as_str());
    assert_eq!(v["conflicts"], json!([]));
}

#[tokio::test]
async fn a_change_whose_tests_fail_once_carried_forward_is_not_activated() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write_pack(dir.path());
    let n = node(&sqlite(dir.path()), &rules, true, true).await;
    // A new test that holds today: 12% needs the manager.
    let test = "tests:\n  - name: twelve percent needs the manager\n    policy: discounts\n    input: { deal: { discount_pct: 12 }, rep: { manager: m-1 } }\n    expect: { level: manager }\n";
    let pinned = n.change("Pin 12%", json!({ "tests/pinned.yaml": test })).await;
    let v = n
        .ok("t-ada", "GET", &format!("/v1/changes/{pinned}"), Value::Null)
        .await;
    assert_eq!(v["validation"]["tests"]["passed"], 3, "{v}");
    assert_eq!(v["diff"][0]["status"], "added");
    n.ok("t-ada", "POST", &format!("/v1/changes/{pinned}/submit"), Value::Null)
        .await;
    // Meanwhile another change raises the threshold to 15%.
    let raise = n
        .change("Threshold 15", json!({ "approvals.yaml": raised("15") }))
        .await;
    n.ok("t-ada", "POST", &format!("/v1/changes/{raise}/submit"), Value::Null)
        .await;
    n.ok("t-bo", "POST", &format!("/v1/changes/{raise}/approve"), Value::Null)
        .await;
    let active = n.active();

    // Carried forward, its test fails: refused, and it stays submitted.
    let (code, p) = n
        .call("t-bo", "POST", &format!("/v1/changes/{pinned}/approve"), Value::Null)
        .await;
    assert_eq!(code, 422, "{p}");
    let errors: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 1, "{p}");
    assert!(
        errors[0].starts_with("tests/pinned.yaml:") && errors[0].contains("twelve percent needs the manager"),
        "{p}"
    );
    assert_eq!(n.active(), active);
    let v = n
        .ok("t-ada", "GET", &format!("/v1/changes/{pinned}"), Value::Null)
        .await;
    assert_eq!(v["state"], "submitted");
}

#[tokio::test]
async fn with_four_eyes_off_a_lone_admin_approves_their_own_change() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write_pack(dir.path());
    let n = node(&sqlite(dir.path()), &rules, false, true).await;
    let id = n
        .change("Threshold 15", json!({ "approvals.yaml": raised("15") }))
        .await;
    n.ok("t-ada", "POST", &format!("/v1/changes/{id}/submit"), Value::Null)
        .await;
    let v = n
        .ok("t-ada", "POST", &format!("/v1/changes/{id}/approve"), Value::Null)
        .await;
    assert_eq!(v["state"], "active");
    assert_eq!(v["transitions"][2]["by"], "ada");
}

#[tokio::test]
async fn a_rollback_is_a_change_and_an_emergency_one_is_recorded_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write_pack(dir.path());
    let n = node(&sqlite(dir.path()), &rules, true, true).await;
    let original = n.active();
    let id = n
        .change("Threshold 15", json!({ "approvals.yaml": raised("15") }))
        .await;
    n.ok("t-ada", "POST", &format!("/v1/changes/{id}/submit"), Value::Null)
        .await;
    n.ok("t-bo", "POST", &format!("/v1/changes/{id}/approve"), Value::Null)
        .await;
    let changed = n.active();

    // An ordinary rollback waits for a second admin.
    let (code, v) = n
        .call("t-ada", "POST", "/v1/changes/rollback", json!({ "version": original }))
        .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(
        (v["kind"].as_str(), v["state"].as_str()),
        (Some("rollback"), Some("submitted"))
    );
    assert_eq!(v["diff"][0]["path"], "approvals.yaml");
    let plain = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        n.call("t-ada", "POST", &format!("/v1/changes/{plain}/approve"), Value::Null)
            .await
            .0,
        403
    );
    assert_eq!(n.active(), changed);
    n.ok("t-ada", "POST", &format!("/v1/changes/{plain}/cancel"), Value::Null)
        .await;

    // An emergency: one admin, at once, and it says so.
    let (code, v) = n
        .call(
            "t-ada",
            "POST",
            "/v1/changes/rollback",
            json!({ "version": original, "emergency": true, "comment": "bad threshold in production" }),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["state"], "active");
    assert_eq!(v["emergency"], true);
    assert_eq!(n.active(), original);
    let approved = &v["transitions"][2];
    assert_eq!(approved["to"], "approved");
    assert_eq!(approved["by"], "ada");
    assert!(
        approved["comment"]
            .as_str()
            .unwrap()
            .starts_with("emergency rollback by ada"),
        "{v}"
    );
    let a = n.state.store.packs().latest_activation(None).await.unwrap().unwrap();
    assert_eq!(a.source, "rollback");
    assert_eq!(a.change_id.as_deref(), v["id"].as_str());
    // Rolling back to the active version is a conflict.
    assert_eq!(
        n.call("t-ada", "POST", "/v1/changes/rollback", json!({ "version": original }))
            .await
            .0,
        409
    );
}

/// Approves `id` to activate 1.5 s from now on `approver`'s node; checks it
/// fires once, on time, on whichever node leases it.
async fn scheduled_fires_once(nodes: &[Node]) {
    let id = nodes[0]
        .change("Threshold 15 tonight", json!({ "approvals.yaml": raised("15") }))
        .await;
    nodes[0]
        .ok("t-ada", "POST", &format!("/v1/changes/{id}/submit"), Value::Null)
        .await;
    let base = nodes[0].active();
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let at_text = dealrules_store::timestamp(at);
    let approver = nodes.last().unwrap();
    let (code, p) = approver
        .call(
            "t-bo",
            "POST",
            &format!("/v1/changes/{id}/approve"),
            json!({ "activate_at": "tomorrow" }),
        )
        .await;
    assert_eq!(code, 400, "{p}");
    let v = approver
        .ok(
            "t-bo",
            "POST",
            &format!("/v1/changes/{id}/approve"),
            json!({ "activate_at": at.to_rfc3339(), "comment": "after hours" }),
        )
        .await;
    assert_eq!(v["state"], "scheduled", "{v}");
    assert_eq!(v["activate_at"], at_text.as_str());
    tokio::time::sleep(Duration::from_millis(800)).await;
    for n in nodes {
        assert_eq!(n.active(), base, "not before its time");
    }
    let store = &nodes[0].state.store;
    let started = std::time::Instant::now();
    loop {
        let c = store.changes().change(&id).await.unwrap().unwrap();
        if c.state == dealrules_store::ChangeState::Active {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "not fired: {c:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Once: one activation from the change, made on time.
    let from_change: Vec<_> = store
        .packs()
        .activations(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.change_id.as_deref() == Some(id.as_str()))
        .collect();
    assert_eq!(from_change.len(), 1, "{from_change:?}");
    let made = &from_change[0];
    assert!(made.activated_at >= at_text, "{} before {at_text}", made.activated_at);
    let late = chrono::DateTime::parse_from_rfc3339(&made.activated_at)
        .unwrap()
        .with_timezone(&chrono::Utc)
        - at;
    assert!(late < chrono::Duration::seconds(2), "fired {late} late");
    assert_eq!(made.activated_by, "bo", "the activation names the approver");
    // Every node serves it.
    for n in nodes {
        let started = std::time::Instant::now();
        while n.active() != made.version {
            assert!(started.elapsed() < Duration::from_secs(5), "a node did not follow");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let v = nodes[0]
        .ok("t-ada", "GET", &format!("/v1/changes/{id}"), Value::Null)
        .await;
    let states: Vec<&str> = v["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["draft", "submitted", "approved", "scheduled", "active"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_change_fires_once_on_time_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write_pack(dir.path());
    let n = node(&sqlite(dir.path()), &rules, true, true).await;
    scheduled_fires_once(&[n]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_change_fires_once_across_two_nodes_on_postgres() {
    let Some(server) = scratch::postgres_server() else {
        eprintln!("skipped: {} is not set", scratch::POSTGRES_ENV);
        return;
    };
    let url = scratch::create_postgres_database(&server, "changes").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rules = write_pack(dir.path());
    let a = node(&url, &rules, true, true).await;
    let b = node(&url, &rules, true, false).await;
    scheduled_fires_once(&[a, b]).await;
    scratch::drop_postgres_database(&url).await.unwrap();
}

async fn impact(n: &Node, id: &str, request: Value) -> Value {
    let (code, job) = n
        .call("t-ada", "POST", &format!("/v1/changes/{id}/impact"), request)
        .await;
    assert_eq!(code, 202, "{job}");
    assert_eq!(job["state"], "running");
    let job_id = job["id"].as_str().unwrap().to_string();
    let started = std::time::Instant::now();
    loop {
        let j = n
            .ok(
                "t-ada",
                "GET",
                &format!("/v1/changes/{id}/impact/{job_id}"),
                Value::Null,
            )
            .await;
        match j["state"].as_str() {
            Some("done") => return j,
            Some("failed") => panic!("impact failed: {j}"),
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "impact did not finish: {j}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impact_shows_the_exact_per_rep_delta_of_a_rate_change() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write_pack(dir.path());
    let n = node(&sqlite(dir.path()), &rules, true, true).await;
    let (code, v) = http(n.addr, "t-ada", "POST", "/v1/people:import", "text/csv", PEOPLE_CSV).await;
    assert_eq!(code, 200, "{v}");
    let (code, v) = http(n.addr, "t-ada", "POST", "/v1/deals:import", "text/csv", DEALS_CSV).await;
    assert_eq!(code, 200, "{v}");
    let id = n
        .change(
            "Commission 12%",
            json!({ "plans.yaml": PLAN.replace("rate: 0.10", "rate: 0.12") }),
        )
        .await;
    let j = impact(&n, &id, json!({ "incentive_periods": ["2026-Q1"] })).await;
    let r = &j["result"];
    assert_eq!(j["progress"]["incentives_done"], 1, "{j}");
    assert_eq!(r["decisions"]["replayed"], 0);
    // By hand: ana 80,000 of 100,000 at 10% -> 12%: 8,000 -> 9,600;
    // ben 10,000 of 50,000: 1,000 -> 1,200; cleo 100,000 of 80,000:
    // 80,000 at 10% + 20,000 at 15% = 11,000 -> 80,000 at 12% + 3,000 = 12,600.
    let plan = &r["incentives"][0];
    assert_eq!(
        (plan["plan"].as_str(), plan["period"].as_str()),
        (Some("ae-plan"), Some("2026-Q1"))
    );
    let by_rep: Vec<(String, String, String, String)> = plan["by_rep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            (s("rep"), s("before"), s("after"), s("delta"))
        })
        .collect();
    assert_eq!(
        by_rep,
        [
            ("ana".into(), "8000.00".into(), "9600.00".into(), "1600.00".into()),
            ("ben".into(), "1000.00".into(), "1200.00".into(), "200.00".into()),
            ("cleo".into(), "11000.00".into(), "12600.00".into(), "1600.00".into()),
        ],
        "{plan}"
    );
    assert_eq!(plan["reps"], 3);
    assert_eq!(plan["reps_changed"], 3);
    assert_eq!(plan["total_before"], "20000.00");
    assert_eq!(plan["total_after"], "23400.00");
    assert_eq!(plan["delta"], "3400.00");
    assert_eq!(plan["currency"], "USD");
    // Nothing was activated or stored as a run.
    assert_ne!(n.active(), r["candidate_version"].as_str().unwrap());
    assert!(n.state.store.runs().runs(&Default::default()).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impact_lists_exactly_the_decisions_that_flip_and_the_moves_and_timers_affected() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write_pack(dir.path());
    let n = node(&sqlite(dir.path()), &rules, true, true).await;
    let since = dealrules_store::timestamp_now();
    for pct in [json!(5), json!(10), json!(12), json!(15), json!(20), json!(12.5)] {
        n.ok(
            "t-crm",
            "POST",
            "/v1/decide/discounts",
            json!({ "deal": { "discount_pct": pct }, "rep": { "manager": "m-1" } }),
        )
        .await;
    }
    // Open deals: one in `open` (timer nudge runs there), one in `proposal`.
    for (id, amount) in [("o-1", 30000), ("o-2", 90000)] {
        n.ok(
            "t-crm",
            "POST",
            "/v1/deals",
            json!({ "id": id, "funnel": "sales", "owner": "ana", "fields": { "amount": amount } }),
        )
        .await;
    }
    n.ok(
        "t-crm",
        "POST",
        "/v1/deals/o-2/events",
        json!({ "type": "move", "to": "proposal" }),
    )
    .await;
    n.state.log.flush().await;

    // 15% and under is auto: 12, 15 and 12.5 flip from manager to auto. The
    // funnel now wants 50,000 to propose, and nudges only in proposal.
    let funnel = FUNNEL
        .replace("when: \"deal.amount > 0\"", "when: \"deal.amount > 50000\"")
        .replace("in: [open, proposal]", "in: [proposal]");
    let id = n
        .change(
            "Auto to 15%, proposals from 50k",
            json!({ "approvals.yaml": raised("15"), "funnel.yaml": funnel }),
        )
        .await;
    let j = impact(&n, &id, json!({ "decisions_since": since, "examples": 2 })).await;
    let d = &j["result"]["decisions"];
    assert_eq!(d["replayed"], 6, "{j}");
    assert_eq!(d["changed"], 3);
    assert_eq!(
        d["by_policy"],
        json!([{ "policy": "discounts", "replayed": 6, "changed": 3 }])
    );
    // Listed up to the cap, oldest first, with input, before and after.
    let examples = d["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 2);
    let flipped: Vec<&Value> = examples.iter().map(|e| &e["input"]["deal"]["discount_pct"]).collect();
    assert_eq!(flipped, [&json!(12), &json!(15)]);
    assert_eq!(examples[0]["before"]["level"], "manager");
    assert_eq!(examples[0]["after"]["level"], "auto");
    assert!(examples[0]["fields"].as_array().unwrap().contains(&json!("level")));
    assert_eq!(j["progress"]["decisions_replayed"], 6);
    assert_eq!(j["progress"]["decisions_total"], 6);

    let f = &j["result"]["funnels"];
    assert_eq!(f["open_deals"], 2, "{f}");
    // o-1 (30,000) may no longer move to proposal; o-2 is already there.
    assert_eq!(f["refused"], 1, "{f}");
    assert_eq!(f["refused_moves"][0]["deal"], "o-1");
    assert_eq!(f["refused_moves"][0]["to"], "proposal");
    // o-1's nudge in `open` would be cancelled; o-2's in proposal stays.
    assert_eq!(f["cancelled"], 1, "{f}");
    assert_eq!(f["cancelled_timers"][0]["deal"], "o-1");
    assert_eq!(f["cancelled_timers"][0]["timer"], "nudge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impact_job_whose_node_stopped_starts_again_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write_pack(dir.path());
    let n = node(&sqlite(dir.path()), &rules, true, true).await;
    let (code, v) = http(n.addr, "t-ada", "POST", "/v1/people:import", "text/csv", PEOPLE_CSV).await;
    assert_eq!(code, 200, "{v}");
    let (code, v) = http(n.addr, "t-ada", "POST", "/v1/deals:import", "text/csv", DEALS_CSV).await;
    assert_eq!(code, 200, "{v}");
    let id = n
        .change(
            "Commission 12%",
            json!({ "plans.yaml": PLAN.replace("rate: 0.10", "rate: 0.12") }),
        )
        .await;
    // What a node stopping mid-job leaves behind: the job `running`, with
    // no process computing it.
    let job = dealrules_store::ImpactJob {
        id: "imp_left_behind".into(),
        change_id: id.clone(),
        state: dealrules_store::ImpactState::Running,
        request: json!({ "incentive_periods": ["2026-Q1"] }),
        progress: json!({ "phase": "incentives", "decisions_replayed": 0, "decisions_total": 0,
            "incentives_done": 0, "incentives_total": 1, "deals_checked": 0 }),
        result: None,
        error: None,
        requested_by: "ada".into(),
        started_at: dealrules_store::timestamp_now(),
        finished_at: None,
        restarts: 0,
    };
    n.state.store.changes().insert_impact(&job).await.unwrap();
    let path = format!("/v1/changes/{id}/impact/imp_left_behind");
    // While its heartbeat is fresh, no node takes it (its own may be alive).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let j = n.ok("t-ada", "GET", &path, Value::Null).await;
    assert_eq!(
        (j["state"].as_str(), j["restarts"].as_i64()),
        (Some("running"), Some(0)),
        "{j}"
    );
    // Silent for longer than a heartbeat allows: the running node starts
    // it again from the beginning and the job says so.
    n.state.clock.advance(chrono::Duration::seconds(31));
    let started = std::time::Instant::now();
    let j = loop {
        let j = n.ok("t-ada", "GET", &path, Value::Null).await;
        if j["state"] != "running" {
            break j;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "not resumed: {j}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(j["state"], "done", "{j}");
    assert_eq!(j["restarts"], 1, "{j}");
    assert_eq!(j["result"]["incentives"][0]["delta"], "3400.00", "{j}");
    // Done jobs are never taken again.
    n.state.clock.advance(chrono::Duration::seconds(60));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = n.ok("t-ada", "GET", &path, Value::Null).await;
    assert_eq!(again["restarts"], 1, "{again}");
}
