//! Plans over time and together, on the real binary over loopback, on
//! SQLite and (when `DEALRULES_TEST_POSTGRES` names a server) PostgreSQL:
//! a plan changed mid-quarter credits each deal under the version in force
//! on its close date; a run of two plans gives one statement per rep with
//! each plan's lines; a late close and a corrected split after the period
//! is locked are paid in the next period as adjustment lines, once, with
//! no cent lost or invented, by a run of one plan and by a run of two.
//! Every amount is computed by hand below.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use dealrules_store::scratch;
use rust_decimal::Decimal;
use serde_json::{Value, json as j};

const FUNNEL: &str = r#"apiVersion: dealrules/v1
kind: Funnel
metadata: { name: sales }
spec:
  initial: open
  stages:
    - { id: open, probability: 0.3 }
    - { id: won, probability: 1, terminal: true }
    - { id: lost, probability: 0, terminal: true }
  transitions:
    - { from: open, to: won }
    - { from: "*", to: lost }
  timers:
    - { id: nudge, in: [open], after: 7d, do: [ { set: { nudged: "true" } } ] }
"#;

/// `ae-plan` pays 10% of each deal closed up to 2026-02-14 and 12% from
/// 2026-02-15: two versions of one plan.
const AE_PLAN: &str = r#"apiVersion: dealrules/v1
kind: IncentivePlan
metadata: { name: ae-plan }
spec:
  applies_to: 'rep.role == "ae"'
  effective: { from: 2026-01-01, to: 2026-02-14 }
  period: quarter
  currency: USD
  credit: { when: 'deal.stage == "won"', amount: deal.amount }
  components:
    - { id: commission, type: tiered, basis: amount, tiers: [ { rate: 0.10 } ] }
---
apiVersion: dealrules/v1
kind: IncentivePlan
metadata: { name: ae-plan }
spec:
  applies_to: 'rep.role == "ae"'
  effective: { from: 2026-02-15, to: 2026-12-31 }
  period: quarter
  currency: USD
  credit: { when: 'deal.stage == "won"', amount: deal.amount }
  components:
    - { id: commission, type: tiered, basis: amount, tiers: [ { rate: 0.12 } ] }
"#;

/// `se-plan` pays 1% of each deal, split as the deal says.
const SE_PLAN: &str = r#"apiVersion: dealrules/v1
kind: IncentivePlan
metadata: { name: se-plan }
spec:
  applies_to: 'rep.role == "ae"'
  period: quarter
  currency: USD
  credit: { when: 'deal.stage == "won"', amount: deal.amount, splits: deal.splits }
  components:
    - { id: overlay, type: tiered, basis: amount, tiers: [ { rate: 0.01 } ] }
"#;

const PEOPLE_CSV: &str = "id,name,role,manager,region,team,effective_from,quota\n\
frank,Frank,manager,,NA,west,,\n\
ana,Ana,ae,frank,NA,west,,\n\
ben,Ben,ae,frank,NA,west,,\n";

const DEALS: &str = r#"{"id": "d-1", "owner": "ana", "stage": "won", "amount": 10000, "closed_at": "2026-01-20"}
{"id": "d-2", "owner": "ana", "stage": "won", "amount": 20000, "closed_at": "2026-02-20"}
{"id": "d-3", "owner": "ben", "stage": "won", "amount": 5000, "closed_at": "2026-02-14"}
"#;

fn pack(dir: &Path) -> PathBuf {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("funnel.yaml"), FUNNEL).unwrap();
    std::fs::write(rules.join("ae.yaml"), AE_PLAN).unwrap();
    std::fs::write(rules.join("se.yaml"), SE_PLAN).unwrap();
    rules
}

fn token(server: &Server, role: &str, subject: &str) -> String {
    let body = j!({ "role": role, "subject": subject }).to_string();
    let (code, text) = http(&server.addr, "POST", "/v1/tokens", &body);
    assert_eq!(code, 201, "{text}");
    json(&text)["token"].as_str().unwrap().to_string()
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("{v} is not a decimal string"))
        .parse()
        .unwrap()
}

/// Starts a run (`path`, `body`) and waits until it is computed.
fn run(server: &Server, path: &str, body: &str) -> Value {
    let (code, text) = http(&server.addr, "POST", path, body);
    assert_eq!(code, 202, "{text}");
    let id = json(&text)["id"].as_str().unwrap().to_string();
    let mut done = Value::Null;
    wait_for("the run", || {
        done = json(&http(&server.addr, "GET", &format!("/v1/incentives/runs/{id}"), "").1);
        if done["state"] == "running" {
            // Seen mid-run: how far it has got, never past the end.
            let p = &done["progress"];
            assert!(p["phase"] == "reading" || p["phase"] == "computing", "{done}");
            assert!(
                p["processed"].as_u64().unwrap() <= p["total"].as_u64().unwrap(),
                "{done}"
            );
        }
        done["state"] != "running"
    });
    assert_eq!(done["state"], "draft", "{done}");
    assert!(done.get("progress").is_none(), "{done}");
    done
}

fn rep_total(run: &Value, rep: &str) -> Value {
    run["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["rep"] == rep)
        .map(|s| s["total"].clone())
        .unwrap_or(Value::Null)
}

/// Approves (as the other admin), publishes and, if asked, locks a run.
fn release(server: &Server, admin2: &str, id: &str, lock: bool) {
    let (code, text) = http_as(
        &server.addr,
        admin2,
        "POST",
        &format!("/v1/incentives/runs/{id}/approve"),
        "",
    );
    assert_eq!(code, 200, "{text}");
    let steps: &[&str] = if lock { &["publish", "lock"] } else { &["publish"] };
    for step in steps {
        let (code, text) = http(&server.addr, "POST", &format!("/v1/incentives/runs/{id}/{step}"), "");
        assert_eq!(code, 200, "{step}: {text}");
    }
}

fn statement_of(server: &Server, rep: &str, period: &str, plan: &str) -> Value {
    let (code, text) = http(&server.addr, "GET", &format!("/v1/statements/{rep}/{period}"), "");
    assert_eq!(code, 200, "{text}");
    json(&text)["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["plan"] == plan)
        .unwrap_or_else(|| panic!("no {plan} statement in {text}"))["statement"]
        .clone()
}

fn plans_over_time(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let rules = pack(dir.path());
    let server = start_on(&rules, url, tempfile::tempdir().unwrap());
    let addr = server.addr.clone();
    let admin2 = token(&server, "admin", "controller");
    assert_eq!(http(&addr, "POST", "/v1/people:import", PEOPLE_CSV).0, 200);
    let (code, text) = http(&addr, "POST", "/v1/deals:import", DEALS);
    assert_eq!(code, 200, "{text}");
    assert_eq!(json(&text)["created"], 3);

    // Imported open deals get their stage's timers, as new deals do; a
    // re-import that moves one on cancels them.
    let (code, text) = http(
        &addr,
        "POST",
        "/v1/deals:import",
        r#"{"id": "d-9", "owner": "ana", "stage": "open", "amount": 100}"#,
    );
    assert_eq!(code, 200, "{text}");
    let d9 = json(&http(&addr, "GET", "/v1/deals/d-9", "").1);
    let timers = d9["timers"].as_array().unwrap();
    assert_eq!(timers.len(), 1, "{d9}");
    assert_eq!(timers[0]["name"], "nudge");
    assert_eq!(timers[0]["state"], "scheduled");
    let due = chrono::DateTime::parse_from_rfc3339(timers[0]["due_at"].as_str().unwrap()).unwrap();
    let in_days = (due.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
    assert!((7 * 24 - 1..=7 * 24).contains(&in_days), "due in 7 days: {d9}");
    let (code, text) = http(
        &addr,
        "POST",
        "/v1/deals:import",
        r#"{"id": "d-9", "owner": "ana", "stage": "lost", "amount": 100}"#,
    );
    assert_eq!(code, 200, "{text}");
    let d9 = json(&http(&addr, "GET", "/v1/deals/d-9", "").1);
    assert!(
        d9["timers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] != "scheduled"),
        "{d9}"
    );

    // 1. Two versions in one quarter. ana: d-1 (2026-01-20) 10000 x 10% =
    // 1000.00 under the first; d-2 (2026-02-20) 20000 x 12% = 2400.00 under
    // the second. ben: d-3 closed on the first version's last day, 500.00.
    let ae = run(&server, "/v1/incentives/ae-plan/runs", r#"{"period": "2026-Q1"}"#);
    assert_eq!(rep_total(&ae, "ana"), "3400.00", "{ae}");
    assert_eq!(rep_total(&ae, "ben"), "500.00", "{ae}");
    assert_eq!(ae["total"], "3900.00");

    // 2. Both plans in one run: each rep one statement with each plan's
    // lines. se-plan pays ana 30000 x 1% = 300.00 and ben 5000 x 1% = 50.00.
    for (body, code) in [
        (r#"{"period": "2026-Q1", "plans": []}"#, 400),
        (r#"{"period": "2026-Q1", "plans": ["ae-plan", "ae-plan"]}"#, 400),
        (r#"{"period": "2026-Q1", "plans": ["ae-plan", "no-such-plan"]}"#, 404),
        (r#"{"period": "2026-Q1", "plans": ["ae-plan", "sales"]}"#, 422),
        (r#"{"period": "Q1", "plans": ["ae-plan"]}"#, 400),
    ] {
        let (got, text) = http(&addr, "POST", "/v1/incentives/runs", body);
        assert_eq!(got, code, "{body}: {text}");
    }
    let both = run(
        &server,
        "/v1/incentives/runs",
        r#"{"period": "2026-Q1", "plans": ["ae-plan", "se-plan"]}"#,
    );
    assert_eq!(both["plan"], "ae-plan+se-plan");
    assert_eq!(rep_total(&both, "ana"), "3700.00", "{both}");
    assert_eq!(rep_total(&both, "ben"), "550.00", "{both}");
    assert_eq!(both["total"], "4250.00");
    let both_id = both["id"].as_str().unwrap().to_string();
    // Locked, so the changes below are paid as adjustments (part 4).
    release(&server, &admin2, &both_id, true);
    let ana = statement_of(&server, "ana", "2026-Q1", "ae-plan+se-plan");
    let lines: Vec<(String, String, String, String)> = ana["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["plan"].as_str().unwrap().to_string(),
                l["version"].as_str().unwrap_or("").to_string(),
                l["amount"].as_str().unwrap().to_string(),
                l["deals"].to_string(),
            )
        })
        .collect();
    let line = |p: &str, v: &str, a: &str, d: &str| (p.to_string(), v.to_string(), a.to_string(), d.to_string());
    assert_eq!(
        lines,
        vec![
            line("ae-plan", "2026-01-01", "1000.00", r#"["d-1"]"#),
            line("ae-plan", "2026-02-15", "2400.00", r#"["d-2"]"#),
            line("se-plan", "", "300.00", r#"["d-1","d-2"]"#),
        ]
    );
    assert_eq!(ana["total"], "3700.00");
    assert_eq!(ana["plans"][0]["plan"], "ae-plan");
    assert_eq!(ana["plans"][0]["total"], "3400.00");
    assert_eq!(ana["plans"][1]["total"], "300.00");
    // The documents say which plan and which version.
    let (code, md) = http_full(
        &addr,
        TOKEN,
        "GET",
        "/v1/statements/ana/2026-Q1?format=md",
        &[("Accept", "*/*")],
        "",
    )
    .unwrap();
    assert_eq!(code, 200, "{md}");
    assert!(md.contains("ae-plan: commission (version 2026-02-15)"), "{md}");
    assert!(md.contains("se-plan: overlay"), "{md}");
    let (_, csv) = http(
        &addr,
        "GET",
        &format!("/v1/incentives/runs/{both_id}/export?format=csv"),
        "",
    );
    assert!(csv.contains("ana,2026-Q1,USD,3700.00,0,0,3700.00"), "{csv}");
    assert!(csv.contains("total,2026-Q1,USD,4250.00,0,0,4250.00"), "{csv}");

    // 3. se-plan alone for Q1, locked: ana 300.00, ben 50.00.
    let se_q1 = run(&server, "/v1/incentives/se-plan/runs", r#"{"period": "2026-Q1"}"#);
    assert_eq!(se_q1["total"], "350.00");
    let se_q1_id = se_q1["id"].as_str().unwrap().to_string();
    release(&server, &admin2, &se_q1_id, true);
    // After the lock: d-4 (7000, ana) closes late in Q1, and d-3 is split
    // half and half between ben and ana.
    let late = r#"{"id": "d-4", "owner": "ana", "stage": "won", "amount": 7000, "closed_at": "2026-03-30"}
{"id": "d-3", "owner": "ben", "stage": "won", "amount": 5000, "closed_at": "2026-02-14", "splits": [{"rep": "ben", "share": 0.5}, {"rep": "ana", "share": 0.5}]}
"#;
    let (code, text) = http(&addr, "POST", "/v1/deals:import", late);
    assert_eq!(code, 200, "{text}");
    assert_eq!(json(&text)["created"], 1);
    assert_eq!(json(&text)["updated"], 1);
    // Q2 pays the difference: ana d-3 +25.00 and d-4 +70.00, ben d-3
    // -25.00; 70.00 in all, the late deal's 1%; the split moves 25.00.
    let se_q2 = run(&server, "/v1/incentives/se-plan/runs", r#"{"period": "2026-Q2"}"#);
    assert_eq!(rep_total(&se_q2, "ana"), "95.00", "{se_q2}");
    assert_eq!(rep_total(&se_q2, "ben"), "-25.00", "{se_q2}");
    assert_eq!(dec(&se_q2["total"]), Decimal::new(7000, 2));
    let se_q2_id = se_q2["id"].as_str().unwrap().to_string();
    release(&server, &admin2, &se_q2_id, false);
    let ana_q2 = statement_of(&server, "ana", "2026-Q2", "se-plan");
    let adjustments: Vec<(String, String, String)> = ana_q2["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["component"] == "adjustment")
        .map(|l| {
            assert_eq!(l["locked_run"], se_q1_id.as_str());
            assert!(l["explain"].as_str().unwrap().contains("(locked, run"), "{l}");
            (
                l["deals"][0].as_str().unwrap().to_string(),
                l["adjusts"].as_str().unwrap().to_string(),
                l["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        adjustments,
        vec![
            ("d-3".to_string(), "2026-Q1".to_string(), "25.00".to_string()),
            ("d-4".to_string(), "2026-Q1".to_string(), "70.00".to_string()),
        ]
    );
    // In Chinese, each line explains itself in Chinese.
    let (code, zh) = http_full(
        &addr,
        TOKEN,
        "GET",
        "/v1/statements/ana/2026-Q2?format=md&locale=zh-CN&plan=se-plan",
        &[("Accept", "*/*")],
        "",
    )
    .unwrap();
    assert_eq!(code, 200, "{zh}");
    assert!(zh.contains("交易 d-4（2026-Q1，已锁定，运行"), "{zh}");
    assert!(zh.contains("现应付 70.00：+70.00"), "{zh}");
    assert!(!zh.contains("pays"), "{zh}");
    // The locked statement never changes.
    assert_eq!(statement_of(&server, "ana", "2026-Q1", "se-plan")["total"], "300.00");
    assert_eq!(statement_of(&server, "ben", "2026-Q1", "se-plan")["total"], "50.00");
    // Payroll: the adjustments column.
    let (_, csv) = http(
        &addr,
        "GET",
        &format!("/v1/incentives/runs/{se_q2_id}/export?format=csv"),
        "",
    );
    let ana_row: Vec<&str> = csv
        .lines()
        .find(|l| l.starts_with("ana,"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(ana_row[5].parse::<Decimal>().unwrap(), Decimal::new(9500, 2), "{csv}");
    assert_eq!(ana_row[6].parse::<Decimal>().unwrap(), Decimal::new(9500, 2), "{csv}");
    // Q3, nothing changed: what Q2 adjusted is not paid again.
    let se_q3 = run(&server, "/v1/incentives/se-plan/runs", r#"{"period": "2026-Q3"}"#);
    assert_eq!(dec(&se_q3["total"]), Decimal::ZERO, "{se_q3}");

    // 4. The run of both plans adjusts its locked Q1 the same way, each
    // line naming its plan: ae-plan pays ana d-4 (2026-03-30, the second
    // version) 7000 x 12% = +840.00 (d-3's split does not move ae-plan,
    // which credits owners); se-plan as in part 3. ana 935.00, ben -25.00.
    let both_q2 = run(
        &server,
        "/v1/incentives/runs",
        r#"{"period": "2026-Q2", "plans": ["ae-plan", "se-plan"]}"#,
    );
    assert_eq!(rep_total(&both_q2, "ana"), "935.00", "{both_q2}");
    assert_eq!(rep_total(&both_q2, "ben"), "-25.00", "{both_q2}");
    assert_eq!(dec(&both_q2["total"]), Decimal::new(91000, 2));
    let both_q2_id = both_q2["id"].as_str().unwrap().to_string();
    release(&server, &admin2, &both_q2_id, true);
    let ana_q2 = statement_of(&server, "ana", "2026-Q2", "ae-plan+se-plan");
    let adjustments: Vec<(String, String, String, String)> = ana_q2["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["component"] == "adjustment")
        .map(|l| {
            assert_eq!(l["locked_run"], both_id.as_str());
            (
                l["plan"].as_str().unwrap().to_string(),
                l["deals"][0].as_str().unwrap().to_string(),
                l["adjusts"].as_str().unwrap().to_string(),
                l["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let adj = |p: &str, d: &str, a: &str| (p.to_string(), d.to_string(), "2026-Q1".to_string(), a.to_string());
    assert_eq!(
        adjustments,
        vec![
            adj("ae-plan", "d-4", "840.00"),
            adj("se-plan", "d-3", "25.00"),
            adj("se-plan", "d-4", "70.00"),
        ]
    );
    assert_eq!(
        statement_of(&server, "ana", "2026-Q1", "ae-plan+se-plan")["total"],
        "3700.00"
    );
    // Q3 of both, nothing changed: nothing is adjusted twice.
    let both_q3 = run(
        &server,
        "/v1/incentives/runs",
        r#"{"period": "2026-Q3", "plans": ["ae-plan", "se-plan"]}"#,
    );
    assert_eq!(dec(&both_q3["total"]), Decimal::ZERO, "{both_q3}");
    drop(server);
}

#[test]
fn plans_over_time_on_sqlite() {
    let db = tempfile::tempdir().unwrap();
    plans_over_time(&format!("sqlite://{}", db.path().join("dealrules.db").display()));
}

#[test]
fn plans_over_time_on_postgres() {
    let Some(server) = scratch::postgres_server() else {
        eprintln!("skipped: {} is not set", scratch::POSTGRES_ENV);
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = rt
        .block_on(scratch::create_postgres_database(&server, "plans_over_time"))
        .unwrap();
    plans_over_time(&url);
    rt.block_on(scratch::drop_postgres_database(&url)).unwrap();
}
