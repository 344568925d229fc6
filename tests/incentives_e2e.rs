//! Paying people from the deals the server holds, on the real binary over
//! loopback, on SQLite and (when `DEALRULES_TEST_POSTGRES` names a server)
//! PostgreSQL: import people and deals, move deals to won through the
//! funnel, run Q1, approve (refused for the starter), publish, read a
//! statement in every format and as whom, export payroll that reconciles,
//! lock, cancel a deal inside its clawback window, run Q2 and see it taken
//! back.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use dealrules_store::scratch;
use rust_decimal::Decimal;
use serde_json::Value;

const FUNNEL: &str = r#"apiVersion: dealrules/v1
kind: Funnel
metadata: { name: sales }
spec:
  initial: open
  stages:
    - { id: open, probability: 0.3 }
    - id: won
      probability: 1
      terminal: true
      on_enter:
        - set: { booked_on: "date(now)" }
    - { id: lost, probability: 0, terminal: true }
  transitions:
    - { from: open, to: won, when: "deal.amount > 0" }
    - { from: "*", to: lost }
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
    - { id: new-logo, type: spiff, when: "deal.new_logo", amount: 500 }
  clawback: { within: 90d, share: 1.0 }
  draw: { amount: 2000, recoverable: true }
"#;

const PEOPLE_CSV: &str = "id,name,role,manager,region,team,effective_from,quota\n\
frank,Frank,manager,,NA,west,,\n\
ana,Ana,ae,frank,NA,west,,100000\n\
ben,Ben,ae,frank,NA,west,,50000\n\
cleo,Cleo,ae,,EMEA,east,,80000\n";

const DEALS_CSV: &str = "id,owner,stage,amount,closed_at,new_logo\n\
d-1,ana,won,60000,2026-01-20,true\n\
d-2,ana,won,55000,2026-03-02,false\n\
d-3,ben,won,10000,2026-02-10,false\n\
d-4,cleo,won,33333.33,2026-02-28,false\n\
d-5,ben,open,2000,,false\n\
d-6,ana,open,12000,,false\n";

fn pack(dir: &Path) -> PathBuf {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("funnel.yaml"), FUNNEL).unwrap();
    std::fs::write(rules.join("plans.yaml"), PLAN).unwrap();
    rules
}

fn token(server: &Server, role: &str, subject: &str) -> String {
    let body = serde_json::json!({ "role": role, "subject": subject }).to_string();
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

/// Starts a run and waits for it to finish computing.
fn run(server: &Server, period: &str) -> Value {
    let (code, text) = http(
        &server.addr,
        "POST",
        "/v1/incentives/ae-plan/runs",
        &format!(r#"{{"period": "{period}"}}"#),
    );
    assert_eq!(code, 202, "{text}");
    let started = json(&text);
    assert_eq!(started["state"], "running");
    let id = started["id"].as_str().unwrap().to_string();
    let mut done = Value::Null;
    wait_for("the run", || {
        done = json(&http(&server.addr, "GET", &format!("/v1/incentives/runs/{id}"), "").1);
        done["state"] != "running"
    });
    assert_eq!(done["state"], "draft", "{done}");
    done
}

/// The whole answer as bytes (a workbook is not text).
fn http_bytes(addr: &str, path: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

fn post(server: &Server, token: &str, path: &str) -> (u16, Value) {
    let (code, text) = http_as(&server.addr, token, "POST", path, "");
    (code, json(&text))
}

fn lifecycle(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let rules = pack(dir.path());
    let server = start_on(&rules, url, tempfile::tempdir().unwrap());
    let addr = server.addr.clone();
    let admin2 = token(&server, "admin", "controller");
    let ana = token(&server, "viewer", "ana");
    let ben = token(&server, "viewer", "ben");
    let frank = token(&server, "viewer", "frank");

    // The roster: a file, then one change effective mid-quarter.
    let (code, text) = http(&addr, "POST", "/v1/people:import", PEOPLE_CSV);
    assert_eq!(code, 200, "{text}");
    assert_eq!(json(&text)["imported"], 4);
    let (code, text) = http(
        &addr,
        "PUT",
        "/v1/people/ana",
        r#"{"name": "Ana", "role": "ae", "manager": "frank", "region": "EMEA", "team": "west", "attributes": {"quota": 100000}, "effective": {"from": "2026-02-15"}}"#,
    );
    assert_eq!(code, 200, "{text}");
    let roster = json(&http(&addr, "GET", "/v1/people?as_of=2026-02-01&role=ae", "").1);
    assert_eq!(roster["people"].as_array().unwrap().len(), 3, "{roster}");
    assert_eq!(roster["people"][0]["region"], "NA");
    let later = json(&http(&addr, "GET", "/v1/people?as_of=2026-02-15", "").1);
    assert_eq!(later["people"][0]["id"], "ana");
    assert_eq!(later["people"][0]["region"], "EMEA");

    // Deals: a bad file goes in not at all, with its lines named.
    let bad = "id,owner,stage,amount,closed_at\nx-1,ana,won,10,2026-01-05\nx-2,,won,10,2026-01-05\nx-3,ana,won,ten,2026-01-05\n";
    let (code, text) = http(&addr, "POST", "/v1/deals:import", bad);
    assert_eq!(code, 422, "{text}");
    let refused = json(&text);
    let lines: Vec<u64> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 4]);
    assert_eq!(http(&addr, "GET", "/v1/deals/x-1", "").0, 404, "nothing half imported");

    let (code, text) = http(&addr, "POST", "/v1/deals:import", DEALS_CSV);
    assert_eq!(code, 200, "{text}");
    assert_eq!(
        json(&text),
        serde_json::json!({"created": 6, "updated": 0, "unchanged": 0, "errors": []})
    );
    // Idempotent by id: again, with one deal changed.
    let again = DEALS_CSV.replace("d-3,ben,won,10000", "d-3,ben,won,12000");
    let (code, text) = http(&addr, "POST", "/v1/deals:import", &again);
    assert_eq!(code, 200, "{text}");
    assert_eq!(
        json(&text),
        serde_json::json!({"created": 0, "updated": 1, "unchanged": 5, "errors": []})
    );
    // Imported deals are ordinary deals: in the pipeline, and they move on.
    let d5 = json(&http(&addr, "GET", "/v1/deals/d-5", "").1);
    assert_eq!(d5["funnel"], "sales");
    assert_eq!(d5["history"][0]["type"], "import");
    for (deal, closed) in [("d-5", "2026-03-10"), ("d-6", "2026-03-31")] {
        let (code, text) = http(
            &addr,
            "POST",
            &format!("/v1/deals/{deal}/events"),
            &format!(r#"{{"type": "update", "fields": {{"closed_at": "{closed}"}}}}"#),
        );
        assert_eq!(code, 200, "{text}");
        let (code, text) = http(
            &addr,
            "POST",
            &format!("/v1/deals/{deal}/events"),
            r#"{"type": "move", "to": "won"}"#,
        );
        assert_eq!(code, 200, "{text}");
        assert_eq!(json(&text)["stage"], "won");
    }

    // Q1: ana 60000 + 55000 + 12000 = 127000 on a 100000 quota:
    // 100000 x 10% + 27000 x 15% = 14050, + 500 new logo.
    let q1 = run(&server, "2026-Q1");
    assert_eq!(q1["reps"], 3);
    let id = q1["id"].as_str().unwrap().to_string();
    let (code, problem) = post(&server, TOKEN, &format!("/v1/incentives/runs/{id}/approve"));
    assert_eq!(code, 403, "the admin who started it cannot approve: {problem}");
    assert_eq!(
        post(&server, TOKEN, &format!("/v1/incentives/runs/{id}/publish")).0,
        409
    );
    let (code, approved) = post(&server, &admin2, &format!("/v1/incentives/runs/{id}/approve"));
    assert_eq!(code, 200, "{approved}");
    assert_eq!(approved["approved_by"], "controller");
    assert_eq!(
        http_as(&addr, &ana, "GET", "/v1/statements/ana/2026-Q1", "").0,
        404,
        "not published yet"
    );
    assert_eq!(
        post(&server, TOKEN, &format!("/v1/incentives/runs/{id}/publish")).0,
        200
    );

    let (code, text) = http_as(&addr, &ana, "GET", "/v1/statements/ana/2026-Q1", "");
    assert_eq!(code, 200, "{text}");
    let mine = json(&text);
    let st = &mine["statements"][0]["statement"];
    assert_eq!(mine["statements"][0]["plan"], "ae-plan");
    assert_eq!(st["credit"], "127000.00");
    assert_eq!(st["earned"], "14550.00");
    assert_eq!(st["total"], "14550.00");
    assert_eq!(st["lines"][0]["deals"], serde_json::json!(["d-1", "d-2", "d-6"]));

    // Who may read: the rep, their manager, admins; not a peer.
    assert_eq!(http_as(&addr, &ben, "GET", "/v1/statements/ana/2026-Q1", "").0, 403);
    assert_eq!(http_as(&addr, &frank, "GET", "/v1/statements/ana/2026-Q1", "").0, 200);
    assert_eq!(http_as(&addr, &frank, "GET", "/v1/statements/cleo/2026-Q1", "").0, 403);
    assert_eq!(http(&addr, "GET", "/v1/statements/cleo/2026-Q1", "").0, 200);

    // Every format, by Accept and by ?format=, and in Chinese.
    let as_doc = |accept: &str, query: &str| {
        http_full(
            &addr,
            &ana,
            "GET",
            &format!("/v1/statements/ana/2026-Q1{query}"),
            &[("Accept", accept)],
            "",
        )
        .unwrap()
    };
    let (code, html) = as_doc("text/html", "");
    assert_eq!(code, 200);
    assert!(html.contains("<html") && html.contains("14550.00"), "{html}");
    let (_, csv) = as_doc("*/*", "?format=csv");
    assert!(csv.starts_with("rep,period,currency,component"), "{csv}");
    assert!(csv.contains("ana,2026-Q1,USD,total,,14550.00"), "{csv}");
    let (_, md) = as_doc("text/markdown", "");
    assert!(md.contains("# Commission statement: ana, 2026-Q1"), "{md}");
    let (_, zh) = as_doc("text/html", "?locale=zh-CN");
    assert!(zh.contains("lang=\"zh-CN\"") || zh.contains("佣金"), "{zh}");

    // Payroll: one line per rep that reconciles with the statements to the cent.
    let (code, csv) = http(&addr, "GET", &format!("/v1/incentives/runs/{id}/export?format=csv"), "");
    assert_eq!(code, 200, "{csv}");
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0],
        ["rep", "period", "currency", "earned", "draw", "adjustments", "paid"]
    );
    let mut paid = Decimal::ZERO;
    for row in &rows[1..rows.len() - 1] {
        let (_, text) = http(&addr, "GET", &format!("/v1/statements/{}/2026-Q1", row[0]), "");
        let statement = &json(&text)["statements"][0]["statement"];
        let line_paid: Decimal = row[6].parse().unwrap();
        assert_eq!(line_paid, dec(&statement["total"]), "{}", row[0]);
        let parts: Decimal = row[3].parse::<Decimal>().unwrap()
            + row[4].parse::<Decimal>().unwrap()
            + row[5].parse::<Decimal>().unwrap();
        assert_eq!(parts, line_paid, "earned + draw + adjustments = paid for {}", row[0]);
        paid += line_paid;
    }
    let totals = rows.last().unwrap();
    assert_eq!(totals[0], "total");
    assert_eq!(totals[6].parse::<Decimal>().unwrap(), paid);
    assert_eq!(paid, dec(&q1["total"]));
    // ben earned (12000 + 2000) x 10% = 1400 and is paid his 2000 draw.
    assert!(csv.contains("ben,2026-Q1,USD,1400.00,600.00,0,2000.00"), "{csv}");
    let xlsx = http_bytes(&addr, &format!("/v1/incentives/runs/{id}/export?format=xlsx"));
    assert!(
        xlsx.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&xlsx[..40])
    );
    let body = xlsx.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(&xlsx[body..body + 2], b"PK", "a zip container");

    // Locked: the period cannot run again.
    assert_eq!(post(&server, TOKEN, &format!("/v1/incentives/runs/{id}/lock")).0, 200);
    let (code, text) = http(&addr, "POST", "/v1/incentives/ae-plan/runs", r#"{"period": "2026-Q1"}"#);
    assert_eq!(code, 409, "{text}");

    // d-1 (closed 2026-01-20) is cancelled 2026-04-15, inside the 90 days:
    // Q2 takes back what Q1 paid for it.
    let (code, text) = http(
        &addr,
        "POST",
        "/v1/deals/d-1/events",
        r#"{"type": "update", "fields": {"cancelled_at": "2026-04-15"}}"#,
    );
    assert_eq!(code, 200, "{text}");
    let q1_d1 = dec(&st["lines"][0]["by_deal"]["d-1"]) + dec(&st["lines"][1]["by_deal"]["d-1"]);
    let q2 = run(&server, "2026-Q2");
    let q2_id = q2["id"].as_str().unwrap();
    // A re-run of an unlocked period replaces its draft.
    let q2b = run(&server, "2026-Q2");
    let replaced = json(&http(&addr, "GET", &format!("/v1/incentives/runs/{q2_id}"), "").1);
    assert_eq!(replaced["state"], "replaced");
    let q2_id = q2b["id"].as_str().unwrap();
    assert_eq!(
        post(&server, &admin2, &format!("/v1/incentives/runs/{q2_id}/approve")).0,
        200
    );
    assert_eq!(
        post(&server, TOKEN, &format!("/v1/incentives/runs/{q2_id}/publish")).0,
        200
    );
    let q2st = json(&http_as(&addr, &ana, "GET", "/v1/statements/ana/2026-Q2", "").1);
    let lines = q2st["statements"][0]["statement"]["lines"].as_array().unwrap().clone();
    let clawback = lines
        .iter()
        .find(|l| l["component"] == "clawback")
        .unwrap_or_else(|| panic!("no clawback: {lines:?}"));
    assert_eq!(clawback["deals"], serde_json::json!(["d-1"]));
    assert_eq!(dec(&clawback["amount"]), -q1_d1);
    let (_, csv) = http(&addr, "GET", &format!("/v1/incentives/runs/{q2_id}/export"), "");
    assert!(
        csv.lines()
            .any(|l| l.starts_with("ana,2026-Q2,USD,0.00,") && l.contains(&format!(",{},", -q1_d1))),
        "{csv}"
    );
    // Runs can be listed by period and state.
    let listed = json(&http(&addr, "GET", "/v1/incentives/runs?period=2026-Q2&state=published", "").1);
    assert_eq!(listed["runs"].as_array().unwrap().len(), 1);
    drop(server);
}

#[test]
fn incentive_runs_on_sqlite() {
    let db = tempfile::tempdir().unwrap();
    lifecycle(&format!("sqlite://{}", db.path().join("dealrules.db").display()));
}

#[test]
fn incentive_runs_on_postgres() {
    let Some(server) = scratch::postgres_server() else {
        eprintln!("skipped: {} is not set", scratch::POSTGRES_ENV);
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = rt
        .block_on(scratch::create_postgres_database(&server, "incentives"))
        .unwrap();
    lifecycle(&url);
    rt.block_on(scratch::drop_postgres_database(&url)).unwrap();
}

fn dealrules(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_command_line_imports_into_a_store_or_a_server_and_runs_a_plan() {
    let dir = tempfile::tempdir().unwrap();
    let rules = pack(dir.path());
    let rules = rules.to_str().unwrap();
    let db = format!("sqlite://{}", dir.path().join("dealrules.db").display());
    let people = dir.path().join("people.csv");
    let deals = dir.path().join("deals.csv");
    std::fs::write(&people, PEOPLE_CSV).unwrap();
    std::fs::write(&deals, DEALS_CSV).unwrap();
    let (ok, out, err) = dealrules(&["import", "people", people.to_str().unwrap(), "--db", &db]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["imported"], 4);
    let (ok, out, err) = dealrules(&[
        "import",
        "deals",
        deals.to_str().unwrap(),
        "--db",
        &db,
        "--rules",
        rules,
    ]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["created"], 6);
    // A bad file: every bad line on stderr as FILE:LINE: message, nothing in.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "id,owner,stage\nz-1,ana,won\nz-2,,won\n").unwrap();
    let (ok, _, err) = dealrules(&["import", "deals", bad.to_str().unwrap(), "--db", &db, "--rules", rules]);
    assert!(!ok);
    assert!(err.contains("bad.csv:3: `owner` is missing"), "{err}");

    let (ok, out, err) = dealrules(&["run", "ae-plan", "--period", "2026-Q1", "--db", &db, "--rules", rules]);
    assert!(ok, "{err}");
    let run = json(&out);
    assert_eq!(run["state"], "draft");
    assert_eq!(run["reps"], 3);
    // ana: d-1 + d-2 = 115000 on 100000: 10000 + 15000 x 15% + 500.
    let server = start_on(Path::new(rules), &db, tempfile::tempdir().unwrap());
    let detail = json(
        &http(
            &server.addr,
            "GET",
            &format!("/v1/incentives/runs/{}", run["id"].as_str().unwrap()),
            "",
        )
        .1,
    );
    let ana = detail["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["rep"] == "ana")
        .unwrap()
        .clone();
    assert_eq!(ana["total"], "12750.00", "{detail}");

    // Into a running server, with a token.
    let more = dir.path().join("more.jsonl");
    std::fs::write(
        &more,
        "{\"id\": \"d-9\", \"owner\": \"cleo\", \"stage\": \"won\", \"amount\": 1000, \"closed_at\": \"2026-03-01\"}\n",
    )
    .unwrap();
    let url = format!("http://{}", server.addr);
    let (ok, out, err) = dealrules(&[
        "import",
        "deals",
        more.to_str().unwrap(),
        "--server",
        &url,
        "--token",
        TOKEN,
    ]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["created"], 1);
}
