//! Targets and the funnel, measured, over real HTTP on loopback, on a small
//! dated history whose figures are worked out by hand below: progress and
//! pace at a fixed day, a mid-year change of the total, conversion and
//! days in stage across a pack change that reordered the funnel, and pace
//! alerts sent once per period and rep, also by two nodes sharing one
//! PostgreSQL database.
//!
//! The history (pack v1 orders lead, qualified, proposal; v2, activated on
//! January 15, puts proposal before qualified):
//!
//! | day    | event                                   |
//! |--------|-----------------------------------------|
//! | Jan 5  | d1 (ana, 30,000), d2 (bo, 20,000), d4 (cy, 40,000) created in lead |
//! | Jan 6  | d2 and d4 to proposal                   |
//! | Jan 7  | d1 to qualified                         |
//! | Jan 8  | d2 back to qualified (a step back in v1)|
//! | Jan 10 | d1 to proposal                          |
//! | Jan 13 | d2 lost                                 |
//! | Jan 14 | d1 won                                  |
//! | Jan 15 | v2 active; d3 (bo, 15,000) created      |
//! | Jan 16 | d3 to proposal                          |
//! | Jan 22 | d3 to qualified (an advance in v2)      |
//! | Feb 1  | d3 won                                  |
//!
//! Measured on February 14 (noon): 45 of Q1's 90 days are done.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use dealrules_server::auth::{Role, TokenBook, hash_token};
use dealrules_server::state::{AppState, Setup};
use dealrules_store::people::BEGINNING;
use dealrules_store::{Person, Store};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pack_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/measured")
}

/// One HTTP/1.1 request on a fresh connection: status and body.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

async fn ok(addr: std::net::SocketAddr, method: &str, path: &str, body: Value) -> Value {
    let (status, text) = http(addr, method, path, "t-admin", &body.to_string()).await;
    assert!((200..300).contains(&status), "{method} {path}: {status} {text}");
    common::json(&text)
}

/// Sets the server's clock to `at`.
fn set_clock(state: &AppState, at: &str) {
    let want: chrono::DateTime<chrono::Utc> = at.parse().unwrap();
    state.workflow.clock.advance(want - state.workflow.clock.now());
}

async fn start(url: &str) -> Arc<AppState> {
    let store = Arc::new(Store::open(url).await.unwrap());
    if store.tokens().tokens().await.unwrap().is_empty() {
        for (t, role) in [("t-viewer", Role::Viewer), ("t-admin", Role::Admin)] {
            store
                .tokens()
                .add_token(&hex::encode(hash_token(t)), role.as_str(), t, &[], "test")
                .await
                .unwrap();
        }
    }
    let (snapshot, activation, errors) = dealrules_server::reload::startup(&store, &pack_dir()).await.unwrap();
    assert!(errors.is_none(), "{errors:?}");
    AppState::start(Setup {
        snapshot,
        activation,
        rules_dir: pack_dir(),
        store,
        fixed_tokens: TokenBook::default(),
        decision_log: false,
        clock: Default::default(),
        four_eyes: true,
    })
    .await
    .unwrap()
}

async fn serve(state: Arc<AppState>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, dealrules_server::routes::app(state)).await });
    addr
}

/// The pack with the funnel's stages reordered: proposal before qualified.
fn reordered_pack() -> Value {
    let mut files = serde_json::Map::new();
    for name in ["targets.yaml", "funnel.yaml", "incentives.yaml"] {
        let mut text = std::fs::read_to_string(pack_dir().join(name)).unwrap();
        if name == "funnel.yaml" {
            let qualified = "    - { id: qualified, probability: 0.3 }\n";
            let proposal = "    - { id: proposal,  probability: 0.5, sla: 10d }\n";
            text = text.replace(&format!("{qualified}{proposal}"), &format!("{proposal}{qualified}"));
        }
        files.insert(name.into(), Value::String(text));
    }
    Value::Object(files)
}

/// Builds the history of the module's table on a fresh store at `url`.
async fn scenario(url: &str) -> (Arc<AppState>, std::net::SocketAddr) {
    let state = start(url).await;
    for (id, region, manager) in [("ana", "NA", "mia"), ("bo", "NA", "mia"), ("cy", "EMEA", "max")] {
        let person = Person {
            id: id.into(),
            name: id.into(),
            role: "ae".into(),
            manager: Some(manager.into()),
            region: Some(region.into()),
            team: None,
            attributes: Default::default(),
            valid_from: BEGINNING.into(),
            valid_to: None,
        };
        state.store.people().put_person(&person, "test").await.unwrap();
    }
    let addr = serve(state.clone()).await;
    let create = |id: &'static str, owner: &'static str, amount: i64| json!({"id": id, "funnel": "b2b", "owner": owner, "fields": {"amount": amount, "close_date": "2026-03-31"}});
    let step = |to: &str| json!({"type": "move", "to": to});
    set_clock(&state, "2026-01-05T09:00:00Z");
    for (id, owner, amount) in [("d1", "ana", 30000), ("d2", "bo", 20000), ("d4", "cy", 40000)] {
        ok(addr, "POST", "/v1/deals", create(id, owner, amount)).await;
    }
    let moves: [(&str, &[(&str, &str)]); 6] = [
        ("2026-01-06T09:00:00Z", &[("d2", "proposal"), ("d4", "proposal")]),
        ("2026-01-07T09:00:00Z", &[("d1", "qualified")]),
        ("2026-01-08T09:00:00Z", &[("d2", "qualified")]),
        ("2026-01-10T09:00:00Z", &[("d1", "proposal")]),
        ("2026-01-13T09:00:00Z", &[("d2", "lost")]),
        ("2026-01-14T09:00:00Z", &[("d1", "won")]),
    ];
    for (at, events) in moves {
        set_clock(&state, at);
        for (id, to) in events {
            ok(addr, "POST", &format!("/v1/deals/{id}/events"), step(to)).await;
        }
    }
    set_clock(&state, "2026-01-15T09:00:00Z");
    ok(addr, "PUT", "/v1/packs/active", reordered_pack()).await;
    ok(addr, "POST", "/v1/deals", create("d3", "bo", 15000)).await;
    for (at, to) in [
        ("2026-01-16T09:00:00Z", "proposal"),
        ("2026-01-22T09:00:00Z", "qualified"),
        ("2026-02-01T09:00:00Z", "won"),
    ] {
        set_clock(&state, at);
        ok(addr, "POST", "/v1/deals/d3/events", step(to)).await;
    }
    set_clock(&state, "2026-02-14T12:00:00Z");
    (state, addr)
}

fn row<'a>(rows: &'a Value, key: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key || r["stage"] == key)
        .unwrap_or_else(|| panic!("no row {key} in {rows}"))
}

/// Q1 is 240,000 (1,200,000 x 0.2): NA's 120,000 split between ana and bo,
/// EMEA's 120,000 for cy. ana won 30,000 (0.5 attained, pace 1.0), bo
/// 15,000 (0.25, pace 0.5: an alert), cy nothing (pace 0: an alert).
async fn check_progress(addr: std::net::SocketAddr) {
    let (status, text) = http(
        addr,
        "GET",
        "/v1/targets/fy2026/progress?period=2026-Q1&by=rep",
        "t-viewer",
        "",
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let p = common::json(&text);
    assert_eq!(p["elapsed_share"], "0.5");
    assert_eq!(p["today"], "2026-02-14");
    let expect = [
        ("ana", "60000.00", "30000.00", "0.5", "1", false),
        ("bo", "60000.00", "15000.00", "0.25", "0.5", true),
        ("cy", "120000.00", "0.00", "0", "0", true),
    ];
    for (key, target, actual, attainment, pace, alert) in expect {
        let r = row(&p["rows"], key);
        assert_eq!(
            (&r["target"], &r["actual"], &r["attainment"], &r["pace"], &r["alert"]),
            (
                &json!(target),
                &json!(actual),
                &json!(attainment),
                &json!(pace),
                &json!(alert)
            ),
            "{key}: {r}"
        );
    }
    // By month: January's 80,000 against ana's 30,000 (the only January win).
    let p = ok(
        addr,
        "GET",
        "/v1/targets/fy2026/progress?period=2026-Q1&by=month",
        json!(null),
    )
    .await;
    assert_eq!(row(&p["rows"], "2026-01")["actual"], "30000.00");
    assert_eq!(row(&p["rows"], "2026-02")["actual"], "15000.00");
    assert_eq!(row(&p["rows"], "2026-01")["target"], "80000.00");
}

/// The total becomes 1,500,000 on August 16: Q2 keeps 1,200,000 x 0.25 =
/// 300,000; Q3 is July at the old 100,000 a month, August 15 days old and
/// 16 new (100,000 x 15/31 + 125,000 x 16/31), September 125,000: NA's half
/// is 168,951.61.
async fn check_adjustment(addr: std::net::SocketAddr) {
    let q2 = ok(
        addr,
        "GET",
        "/v1/targets/fy2026/progress?period=2026-Q2&by=region",
        json!(null),
    )
    .await;
    assert_eq!(row(&q2["rows"], "NA")["target"], "150000.00");
    assert_eq!(q2["figures"].as_array().unwrap().len(), 1);
    let q3 = ok(
        addr,
        "GET",
        "/v1/targets/fy2026/progress?period=2026-Q3&by=region",
        json!(null),
    )
    .await;
    assert_eq!(row(&q3["rows"], "NA")["target"], "168951.61");
    assert_eq!(
        q3["figures"],
        json!([
            {"from": "2026-07-01", "to": "2026-08-15", "total": "1200000"},
            {"from": "2026-08-16", "to": "2026-09-30", "total": "1500000", "reason": "new region opened"}
        ])
    );
    let q4 = ok(
        addr,
        "GET",
        "/v1/targets/fy2026/progress?period=2026-Q4&by=region",
        json!(null),
    )
    .await;
    assert_eq!(row(&q4["rows"], "EMEA")["target"], "225000.00");
}

/// Per stage, by hand from the table:
/// - lead: 4 entered, all advanced; days 2, 1, 1, 1 (median 1, p90 2); 2 of
///   the 4 deals were won.
/// - proposal: 4 entered; d1 (to won) and d3 (to qualified, under v2)
///   advanced, d2 (to qualified, under v1) moved back, d4 still there since
///   Jan 6: stalled past its 10-day SLA; days 2, 4, 6 (median 4, p90 6).
/// - qualified: 3 entered; d1 advanced (to proposal, v1), d3 advanced (to
///   won), d2 lost; days 3, 5, 10 (median 5, p90 10).
async fn check_funnel(addr: std::net::SocketAddr) {
    let f = ok(addr, "GET", "/v1/analytics/funnel?funnel=b2b", json!(null)).await;
    assert_eq!(f["deals"], 4);
    let stages: Vec<&str> = f["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["lead", "proposal", "qualified", "won", "lost"],
        "rows in the active order"
    );
    let lead = row(&f["stages"], "lead");
    assert_eq!(
        (&lead["entered"], &lead["advanced"], &lead["lost"]),
        (&json!(4), &json!(4), &json!(0))
    );
    assert_eq!(
        (&lead["days_median"], &lead["days_p90"]),
        (&json!("1.00"), &json!("2.00"))
    );
    assert_eq!(lead["conversion_to_won"], "0.5");
    let proposal = row(&f["stages"], "proposal");
    assert_eq!(
        (
            &proposal["entered"],
            &proposal["advanced"],
            &proposal["moved_back"],
            &proposal["lost"]
        ),
        (&json!(4), &json!(2), &json!(1), &json!(0))
    );
    assert_eq!(proposal["conversion_to_next"], "0.5");
    assert_eq!(
        (&proposal["days_median"], &proposal["days_p90"]),
        (&json!("4.00"), &json!("6.00"))
    );
    assert_eq!(
        (&proposal["open"], &proposal["weighted"], &proposal["stalled"]),
        (&json!(1), &json!("20000.00"), &json!(1))
    );
    let qualified = row(&f["stages"], "qualified");
    assert_eq!(
        (&qualified["entered"], &qualified["advanced"], &qualified["lost"]),
        (&json!(3), &json!(2), &json!(1))
    );
    assert_eq!(
        (&qualified["days_median"], &qualified["days_p90"]),
        (&json!("5.00"), &json!("10.00"))
    );
    assert_eq!(row(&f["stages"], "won")["entered"], 2);

    // A window: only the visits that began from January 10 on.
    let f = ok(
        addr,
        "GET",
        "/v1/analytics/funnel?funnel=b2b&since=2026-01-10&by=owner",
        json!(null),
    )
    .await;
    assert_eq!(row(&f["stages"], "lead")["entered"], 1, "d3's");
    assert_eq!(row(&f["stages"], "proposal")["entered"], 2, "d1's second and d3's");
    let bo = f["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == "bo")
        .unwrap();
    assert_eq!(row(&bo["stages"], "qualified")["entered"], 1);

    // The forecast: d4's 40,000 in proposal, closing in Q1; configured 0.5,
    // measured 2/3 (of proposal's resolved visits, d1 and d3 won, d2 lost):
    // 26,666.67.
    let fc = ok(addr, "GET", "/v1/analytics/forecast?funnel=b2b", json!(null)).await;
    assert_eq!(
        fc["periods"],
        json!([{"period": "2026-Q1", "open": 1, "amount": "40000.00", "weighted_configured": "20000.00", "weighted_measured": "26666.67"}])
    );
    assert_eq!(row(&fc["stages"], "proposal")["measured"], "0.6667");
    let lead = row(&fc["stages"], "lead");
    assert_eq!(
        (&lead["configured"], &lead["measured"]),
        (&json!("0.1"), &json!("0.6667"))
    );

    // Bad input is a 4xx problem, not a crash.
    for path in [
        "/v1/analytics/funnel?funnel=nope",
        "/v1/analytics/funnel?funnel=b2b&since=yesterday",
        "/v1/analytics/funnel?funnel=b2b&by=planet",
        "/v1/targets/fy2026/progress?period=2027-Q1",
        "/v1/targets/fy2026/progress?period=2026-Q5",
        "/v1/targets/fy2026/progress?period=2026-Q1&by=planet",
        "/v1/targets/nope/progress?period=2026-Q1",
    ] {
        let (status, text) = http(addr, "GET", path, "t-viewer", "").await;
        assert!((400..500).contains(&status), "{path}: {status} {text}");
    }
}

async fn outbox(state: &AppState) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = state
        .store
        .outbox()
        .outbox(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.template == "pace-behind")
        .map(|o| (o.recipient, o.body))
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn progress_funnel_and_alerts_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("dealrules.db").display());
    let (state, addr) = scenario(&url).await;
    check_progress(addr).await;
    check_adjustment(addr).await;
    check_funnel(addr).await;

    // The check tells bo and cy, and their managers; once per period.
    let snapshot = state.snapshot.load_full();
    assert_eq!(state.workflow.check_pace(&snapshot).await.unwrap(), 4);
    assert_eq!(
        state.workflow.check_pace(&snapshot).await.unwrap(),
        0,
        "this week's check ran"
    );
    set_clock(&state, "2026-02-23T12:00:00Z");
    assert_eq!(
        state.workflow.check_pace(&snapshot).await.unwrap(),
        0,
        "next week's check: still behind, already told this quarter"
    );
    let sent = outbox(&state).await;
    let to: Vec<&str> = sent.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(to, ["bo", "cy", "max", "mia"]);
    assert!(
        sent[0].1.contains("bo has 15000.00 of a 60000.00 target for 2026-Q1"),
        "{}",
        sent[0].1
    );
}

#[tokio::test]
async fn alerts_are_sent_once_across_two_nodes_on_postgres() {
    let Some(server) = dealrules_store::scratch::postgres_server() else {
        eprintln!("skipped: {} is not set", dealrules_store::scratch::POSTGRES_ENV);
        return;
    };
    let url = dealrules_store::scratch::create_postgres_database(&server, "measured")
        .await
        .unwrap();
    let (a, addr) = scenario(&url).await;
    check_progress(addr).await;
    check_funnel(addr).await;
    // A second node on the same database, its clock on the same day.
    let b = start(&url).await;
    set_clock(&b, "2026-02-14T12:00:00Z");
    let (sa, sb) = (a.snapshot.load_full(), b.snapshot.load_full());
    let mut queued = 0;
    for _ in 0..3 {
        let (x, y) = tokio::join!(a.workflow.check_pace(&sa), b.workflow.check_pace(&sb));
        queued += x.unwrap() + y.unwrap();
    }
    assert_eq!(queued, 4);
    let to: Vec<String> = outbox(&a).await.into_iter().map(|(r, _)| r).collect();
    assert_eq!(to, ["bo", "cy", "max", "mia"]);
    let alerts = a.store.analytics().pace_alerts("fy2026").await.unwrap();
    assert_eq!(
        alerts
            .iter()
            .map(|(p, r, pace, _)| (p.as_str(), r.as_str(), pace.as_str()))
            .collect::<Vec<_>>(),
        [("2026-Q1", "bo", "0.5"), ("2026-Q1", "cy", "0")]
    );
    a.store.close().await;
    b.store.close().await;
    dealrules_store::scratch::drop_postgres_database(&url).await.unwrap();
}

/// A small xorshift generator: the randomized history is the same on
/// every run.
struct Seeded(u64);

impl Seeded {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Writes `deals` deals with random trails through the store's own write
/// path (as the workflow and imports use it): stages of either pack
/// version and a stage no pack has, moves out of won and lost, entries
/// under a version the store does not hold, times out of order, updates
/// and actions between the moves, amounts as numbers and as text.
async fn random_history(store: &Store, rng: &mut Seeded, deals: usize, versions: &[&str], first: usize) {
    let stages = ["lead", "qualified", "proposal", "won", "lost", "archived"];
    let owners = ["ana", "bo", "cy"];
    for n in first..first + deals {
        let id = format!("r{n:04}");
        let day = |rng: &mut Seeded| {
            let t = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                + chrono::Duration::minutes(rng.below(60 * 24 * 60) as i64);
            dealrules_store::timestamp(t)
        };
        let mut at = day(rng);
        let mut stage = rng.pick(&["lead", "lead", "qualified"]).to_string();
        let amount = match rng.below(3) {
            0 => json!(rng.below(100000)),
            1 => json!(format!(" {}.{:02} ", rng.below(5000), rng.below(100))),
            _ => json!(rng.below(900) as f64 / 8.0),
        };
        let mut fields = json!({"amount": amount});
        if rng.below(4) > 0 {
            fields["close_date"] = json!(format!("2026-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28)));
        }
        if rng.below(3) == 0 {
            fields["region"] = json!(rng.pick(&["NA", "EMEA"]));
        }
        let mut deal = dealrules_store::Deal {
            id: id.clone(),
            funnel: "b2b".into(),
            owner: rng.pick(&owners).to_string(),
            stage: stage.clone(),
            fields,
            context: json!({"rep": {"region": "APAC"}}),
            stage_entered_at: at.clone(),
            created_at: at.clone(),
            updated_at: at.clone(),
            revision: 1,
        };
        let entry = |kind: &str, detail: Value, at: &str, version: &str| dealrules_store::HistoryEntry {
            id: store.new_id(),
            at: at.to_string(),
            kind: kind.into(),
            detail,
            version: version.to_string(),
            actor: "test".into(),
        };
        let mut tx = store.begin_write().await.unwrap();
        store.deals().insert_deal(&mut tx, &deal).await.unwrap();
        let created = entry(
            "created",
            json!({"funnel": "b2b", "stage": stage}),
            &at,
            rng.pick(versions),
        );
        store.deals().insert_history_at(&mut tx, &id, &created).await.unwrap();
        tx.commit().await.unwrap();
        for _ in 0..rng.below(7) {
            // Mostly later, sometimes earlier than the entry before.
            at = if rng.below(8) == 0 {
                day(rng)
            } else {
                let t: chrono::DateTime<chrono::Utc> = at.parse().unwrap();
                dealrules_store::timestamp(t + chrono::Duration::minutes(rng.below(60 * 24 * 9) as i64))
            };
            let mut tx = store.begin_write().await.unwrap();
            match rng.below(6) {
                0 => {
                    let e = entry(
                        "update",
                        json!({"fields": {"next_step": "call"}}),
                        &at,
                        rng.pick(versions),
                    );
                    store.deals().insert_history_at(&mut tx, &id, &e).await.unwrap();
                }
                1 if rng.below(3) == 0 => {
                    // A move without a destination: no visit.
                    let e = entry("move", json!({"from": stage}), &at, rng.pick(versions));
                    store.deals().insert_history_at(&mut tx, &id, &e).await.unwrap();
                }
                _ => {
                    let to = rng.pick(&stages).to_string();
                    let e = entry("move", json!({"from": stage, "to": to}), &at, rng.pick(versions));
                    store.deals().insert_history_at(&mut tx, &id, &e).await.unwrap();
                    stage = to;
                    deal.stage = stage.clone();
                    deal.stage_entered_at = at.clone();
                    if stage == "won" && rng.below(2) == 0 {
                        deal.fields["closed_at"] = json!(&at[..10]);
                    }
                    if rng.below(5) == 0 {
                        deal.owner = rng.pick(&owners).to_string();
                    }
                    deal.revision += 1;
                    store.deals().update_deal(&mut tx, &deal).await.unwrap();
                }
            }
            tx.commit().await.unwrap();
        }
    }
}

/// The funnel report from the summaries equals the one recomputed from
/// every deal's history, for several windows and groupings, after writes
/// through the store and after a rebuild of the summaries; and the deals
/// a period's progress reads by the summary are those a full scan finds.
async fn summaries_agree_with_history(state: &AppState) {
    let snapshot = state.snapshot.load_full();
    let t = |s: &str| Some(s.parse::<chrono::DateTime<chrono::Utc>>().unwrap());
    let windows = [
        (None, None),
        (t("2026-01-20T00:00:00Z"), None),
        (None, t("2026-02-10T07:30:00Z")),
        (t("2026-01-10T12:00:00Z"), t("2026-02-20T00:00:00Z")),
    ];
    for (since, until) in windows {
        for by in [None, Some("owner"), Some("region")] {
            let by = by.map(|b| dealrules_workflow::measured::FunnelBy::parse(b).unwrap());
            // The server's clock runs: both reports within milliseconds of
            // the same noon, then compared at one `now`.
            set_clock(state, "2026-02-14T12:00:00Z");
            let summed = state
                .workflow
                .funnel_analytics(&snapshot, "b2b", since, until, by)
                .await
                .unwrap();
            let mut recomputed = state
                .workflow
                .funnel_analytics_from_history(&snapshot, "b2b", since, until, by)
                .await
                .unwrap();
            recomputed.0.now = summed.0.now;
            assert_eq!(summed, recomputed, "since {since:?}, until {until:?}, by {by:?}");
        }
    }
    for label in ["2026-Q1", "2026-02", "2026"] {
        let period = dealrules_core::plan_input::period_of(label).unwrap();
        let (first, last) = (period.start.to_string(), period.end.to_string());
        let by_summary: Vec<String> = state
            .store
            .analytics()
            .deals_closed_or_cancelled_between(&first, &last)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        let scanned: Vec<String> = state
            .store
            .deals()
            .scan_deals(100, |d| {
                let s = dealrules_core::plan_input::StoredDeal {
                    id: &d.id,
                    owner: &d.owner,
                    stage: &d.stage,
                    fields: &d.fields,
                    stage_entered_at: &d.stage_entered_at,
                };
                dealrules_core::plan_input::PlanInput::reads(&period, &s).then_some(d.id)
            })
            .await
            .unwrap();
        assert_eq!(by_summary, scanned, "{label}");
        assert!(!scanned.is_empty(), "{label}");
    }
}

#[tokio::test]
async fn summaries_equal_a_recomputation_from_history() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("dealrules.db").display());
    let (state, _addr) = scenario(&url).await;
    // The scenario's two pack versions: v1 ordered qualified before
    // proposal, v2 (active) the other way round.
    let v2 = state.snapshot.load_full().version.to_string();
    let v1 = state.store.deals().history("d1").await.unwrap()[0].version.clone();
    assert_ne!(v1, v2);
    let mut rng = Seeded(0x5eed_2026_1130);
    random_history(&state.store, &mut rng, 150, &[&v1, &v2, "v-not-stored"], 0).await;
    set_clock(&state, "2026-02-14T12:00:00Z");
    summaries_agree_with_history(&state).await;
    // A database summarized when it opens agrees the same way.
    state.store.rebuild_measured_summaries().await.unwrap();
    summaries_agree_with_history(&state).await;
}

/// A pack whose plan credits by the rep a deal carries (its owner on the
/// close date): only NA reps' won deals, at twice their amount.
fn rep_reading_pack() -> Value {
    let mut files = reordered_pack();
    let plan = files["incentives.yaml"].as_str().unwrap().replace(
        "    when: \"deal.stage == \\\"won\\\"\"\n    amount: \"deal.amount\"",
        "    when: \"deal.stage == \\\"won\\\" && deal.rep.region == \\\"NA\\\"\"\n    amount: \"deal.amount * 2\"",
    );
    assert!(plan.contains("deal.amount * 2"), "{plan}");
    files["incentives.yaml"] = Value::String(plan);
    files
}

/// Progress from the credits the store keeps equals progress from every
/// deal of the period credited again, for every grouping and a quarter, a
/// month and the year; both the first report (which fills) and the next
/// (which reads the sums).
async fn kept_progress_agrees(state: &AppState, when: &str) {
    use dealrules_core::measure::progress::ProgressBy;
    let snapshot = state.snapshot.load_full();
    for period in ["2026-Q1", "2026-02", "2026"] {
        for by in ["rep", "region", "team", "product", "channel", "month"] {
            let by: ProgressBy = by.parse().unwrap();
            for _ in 0..2 {
                let kept = state
                    .workflow
                    .target_progress(&snapshot, "fy2026", period, by)
                    .await
                    .unwrap();
                let recomputed = state
                    .workflow
                    .target_progress_from_deals(&snapshot, "fy2026", period, by)
                    .await
                    .unwrap();
                assert_eq!(kept, recomputed, "{when}: {period} by {by:?}");
            }
        }
    }
    // The reports read kept credits: every fill made is ready, unmarked.
    for period in ["2026-Q1", "2026-02", "2026"] {
        let p = dealrules_core::plan_input::period_of(period).unwrap();
        let (first, last) = (p.start.to_string(), p.end.to_string());
        let basis = snapshot.credit_basis("fy2026");
        let key = dealrules_store::credits::FillKey {
            basis: &basis,
            targets: "fy2026",
            period,
            first_day: &first,
            last_day: &last,
        };
        let fill = state
            .store
            .analytics()
            .find_credit_fill(&key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{when}: {period} has no fill"));
        assert_eq!(
            fill.state,
            dealrules_store::credits::FillState::Ready,
            "{when}: {period}"
        );
        assert!(!state.store.analytics().has_credit_marks(&fill.id).await.unwrap());
    }
}

/// The plans credit numbers: an amount written as text becomes its number.
async fn numeric_amounts(store: &Store) {
    for deal in store.deals().deals().await.unwrap() {
        if let Some(text) = deal.fields["amount"].as_str() {
            let number: f64 = text.trim().parse().unwrap();
            edit_deal(store, &deal.id, |d| d.fields["amount"] = json!(number)).await;
        }
    }
}

/// Rewrites deal `id` through the store's write path: `change` edits it.
async fn edit_deal(store: &Store, id: &str, change: impl FnOnce(&mut dealrules_store::Deal)) {
    let mut tx = store.begin_write().await.unwrap();
    let mut deal = store.deals().lock_deal(&mut tx, id).await.unwrap().unwrap();
    change(&mut deal);
    deal.revision += 1;
    store.deals().update_deal(&mut tx, &deal).await.unwrap();
    tx.commit().await.unwrap();
}

/// The kept credits follow deal edits, cancellations, a rep moving
/// region and a pack change with other credit rules.
async fn kept_credits_follow_every_change(url: &str) {
    let (state, addr) = scenario(url).await;
    let v2 = state.snapshot.load_full().version.to_string();
    let v1 = state.store.deals().history("d1").await.unwrap()[0].version.clone();
    let mut rng = Seeded(0x00c0_ffee_2026);
    random_history(&state.store, &mut rng, 120, &[&v1, &v2], 0).await;
    numeric_amounts(&state.store).await;
    // Products and channels of their own on some deals.
    for (n, product, channel) in [
        (3, "cloud", "partner"),
        (7, "onprem", "direct"),
        (11, "cloud", "direct"),
    ] {
        edit_deal(&state.store, &format!("r{n:04}"), |d| {
            d.fields["product"] = json!(product);
            d.fields["channel"] = json!(channel);
            d.stage = "won".into();
            d.fields["closed_at"] = json!("2026-02-03");
        })
        .await;
    }
    set_clock(&state, "2026-02-14T12:00:00Z");
    kept_progress_agrees(&state, "filled").await;

    // Deal edits: an amount, a deal won, one reopened, one won in March.
    edit_deal(&state.store, "d1", |d| d.fields["amount"] = json!("31000.50")).await;
    edit_deal(&state.store, "d4", |d| {
        d.stage = "won".into();
        d.fields["closed_at"] = json!("2026-02-10");
    })
    .await;
    edit_deal(&state.store, "r0003", |d| d.stage = "proposal".into()).await;
    edit_deal(&state.store, "r0007", |d| d.fields["closed_at"] = json!("2026-03-02")).await;
    kept_progress_agrees(&state, "after deal edits").await;

    // A cancellation: d3 (won February 1) cancelled on February 12.
    edit_deal(&state.store, "d3", |d| {
        d.stage = "lost".into();
        d.fields["cancelled_at"] = json!("2026-02-12");
    })
    .await;
    kept_progress_agrees(&state, "after a cancellation").await;

    // A pack change: credit only NA reps' deals, at twice the amount.
    ok(addr, "PUT", "/v1/packs/active", rep_reading_pack()).await;
    set_clock(&state, "2026-02-14T12:00:00Z");
    assert_ne!(state.snapshot.load_full().version.to_string(), v2);
    kept_progress_agrees(&state, "after a pack change").await;

    // A person change: ana moves to EMEA from February 1, bo to a team.
    for (id, region, team) in [("ana", "EMEA", None), ("bo", "NA", Some("hunters"))] {
        let person = Person {
            id: id.into(),
            name: id.into(),
            role: "ae".into(),
            manager: Some("mia".into()),
            region: Some(region.into()),
            team: team.map(str::to_string),
            attributes: Default::default(),
            valid_from: "2026-02-01".into(),
            valid_to: None,
        };
        state.store.people().put_person(&person, "test").await.unwrap();
    }
    kept_progress_agrees(&state, "after a rep moved region").await;

    // And more writes on top: new deals, moves, owners changed.
    random_history(&state.store, &mut rng, 40, &[&v1, &v2], 500).await;
    numeric_amounts(&state.store).await;
    set_clock(&state, "2026-02-14T12:00:00Z");
    kept_progress_agrees(&state, "after more deals").await;

    // A bulk import on top, one transaction as `POST /v1/deals:import`
    // writes it: new deals won and cancelled in the filled periods, and
    // stored deals it changes (d1 closed in March now, d2 won).
    let at = dealrules_store::timestamp_now();
    let csv = "id,funnel,owner,stage,amount,closed_at,cancelled_at\n\
               i1,b2b,ana,won,12000,2026-02-05,\n\
               i2,b2b,cy,won,7000.5,2026-01-20,\n\
               i3,b2b,bo,lost,3000,2026-02-07,2026-02-09\n\
               i4,b2b,bo,won,4500,2026-04-02,\n\
               d1,b2b,ana,won,33000,2026-03-03,\n\
               d2,b2b,bo,won,8000,2026-02-11,\n";
    let deals = dealrules_workflow::imports::deals(
        csv.as_bytes(),
        dealrules_workflow::imports::ImportFormat::Csv,
        "b2b",
        &at,
    )
    .unwrap();
    let version = state.snapshot.load_full().version.to_string();
    let counts = state
        .store
        .deals()
        .import_deals(&deals, &version, "test", &at, &|_| Vec::new())
        .await
        .unwrap();
    assert_eq!((counts.created, counts.updated), (4, 2));
    set_clock(&state, "2026-02-14T12:00:00Z");
    kept_progress_agrees(&state, "after a bulk import").await;
    state.store.close().await;
}

#[tokio::test]
async fn kept_credits_equal_a_recomputation_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("dealrules.db").display());
    kept_credits_follow_every_change(&url).await;
}

#[tokio::test]
async fn kept_credits_equal_a_recomputation_on_postgres() {
    let Some(server) = dealrules_store::scratch::postgres_server() else {
        eprintln!("skipped: {} is not set", dealrules_store::scratch::POSTGRES_ENV);
        return;
    };
    let url = dealrules_store::scratch::create_postgres_database(&server, "kept_credits")
        .await
        .unwrap();
    kept_credits_follow_every_change(&url).await;
    dealrules_store::scratch::drop_postgres_database(&url).await.unwrap();
}

/// The pack with another commission rate: nothing a deal credits changes.
fn rate_changed_pack() -> Value {
    let mut files = reordered_pack();
    let plan = files["incentives.yaml"]
        .as_str()
        .unwrap()
        .replace("{ upto: 1.0, rate: 0.1 }", "{ upto: 1.0, rate: 0.11 }");
    assert!(plan.contains("rate: 0.11"), "{plan}");
    files["incentives.yaml"] = Value::String(plan);
    files
}

/// The fill of `fy2026` over `period` under the active pack's credit
/// rules, if one is stored.
async fn fill_of(state: &AppState, period: &str) -> Option<dealrules_store::credits::CreditFill> {
    let snapshot = state.snapshot.load_full();
    let basis = snapshot.credit_basis("fy2026");
    let p = dealrules_core::plan_input::period_of(period).unwrap();
    let (first, last) = (p.start.to_string(), p.end.to_string());
    let key = dealrules_store::credits::FillKey {
        basis: &basis,
        targets: "fy2026",
        period,
        first_day: &first,
        last_day: &last,
    };
    state.store.analytics().find_credit_fill(&key).await.unwrap()
}

/// Waits (30 s at most) until the fills made are stored and the credits
/// of those they replaced deleted.
async fn settled(state: &AppState) {
    for _ in 0..600 {
        if state.workflow.credit_fills.working_behind() == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("fills still being stored after 30 s");
}

/// A pack change that leaves every credit rule as it was reads the fills
/// already made (no deal is credited again, and writes after it are);
/// one that changes them has the current quarter filled when it goes
/// live, once, however many reports arrive meanwhile.
async fn kept_credits_carry_over_and_fill_on_activation(url: &str) {
    use dealrules_core::measure::progress::ProgressBy;
    let (state, addr) = scenario(url).await;
    let v2 = state.snapshot.load_full().version.to_string();
    let v1 = state.store.deals().history("d1").await.unwrap()[0].version.clone();
    let mut rng = Seeded(0x0ca7_2026_1130);
    random_history(&state.store, &mut rng, 80, &[&v1, &v2], 0).await;
    numeric_amounts(&state.store).await;
    set_clock(&state, "2026-02-14T12:00:00Z");
    kept_progress_agrees(&state, "filled").await;
    let quarter = fill_of(&state, "2026-Q1").await.unwrap();
    let (made, basis) = (
        state.workflow.credit_fills.made(),
        state.snapshot.load_full().credit_basis("fy2026"),
    );

    // Another commission rate: a new pack version, the same credit basis.
    ok(addr, "PUT", "/v1/packs/active", rate_changed_pack()).await;
    assert_ne!(state.snapshot.load_full().version.to_string(), v2);
    assert_eq!(state.snapshot.load_full().credit_basis("fy2026"), basis);
    kept_progress_agrees(&state, "after a commission rate change").await;
    assert_eq!(fill_of(&state, "2026-Q1").await.unwrap().id, quarter.id, "carried over");
    assert_eq!(state.workflow.credit_fills.made(), made, "no fill made again");
    // Writes under the new version are credited again in the carried fills.
    edit_deal(&state.store, "d1", |d| d.fields["amount"] = json!(33333)).await;
    edit_deal(&state.store, "r0005", |d| {
        d.stage = "won".into();
        d.fields["closed_at"] = json!("2026-01-30");
    })
    .await;
    kept_progress_agrees(&state, "after edits under the new version").await;
    assert_eq!(state.workflow.credit_fills.made(), made, "no fill made again");

    // Other credit rules: the activation fills the current quarter (Q1 on
    // February 14) in the background; two reports arriving meanwhile wait
    // for that fill or read it, and the three make one fill.
    let made = state.workflow.credit_fills.made();
    settled(&state).await;
    assert!(
        !state
            .store
            .analytics()
            .summed_credits(&quarter.id)
            .await
            .unwrap()
            .is_empty()
    );
    ok(addr, "PUT", "/v1/packs/active", rep_reading_pack()).await;
    let snapshot = state.snapshot.load_full();
    assert_ne!(snapshot.credit_basis("fy2026"), basis);
    let report = || {
        state
            .workflow
            .target_progress(&snapshot, "fy2026", "2026-Q1", ProgressBy::Rep)
    };
    let (a, b) = tokio::join!(report(), report());
    let recomputed = state
        .workflow
        .target_progress_from_deals(&snapshot, "fy2026", "2026-Q1", ProgressBy::Rep)
        .await
        .unwrap();
    assert_eq!(a.unwrap(), recomputed);
    assert_eq!(b.unwrap(), recomputed);
    // The fill is stored after the report that made it answered.
    for _ in 0..600 {
        if fill_of(&state, "2026-Q1")
            .await
            .is_some_and(|f| f.state == dealrules_store::credits::FillState::Ready)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        fill_of(&state, "2026-Q1").await.unwrap().state,
        dealrules_store::credits::FillState::Ready
    );
    assert_eq!(state.workflow.credit_fills.made(), made + 1, "one fill for Q1");
    // The fill the old rules made was dropped when the new one was made;
    // its credits are deleted once the new one is stored.
    let analytics = state.store.analytics();
    assert_eq!(analytics.credit_fill_state(&quarter.id).await.unwrap(), None);
    settled(&state).await;
    assert!(analytics.summed_credits(&quarter.id).await.unwrap().is_empty());
    assert_eq!(
        analytics.clear_dropped_fills().await.unwrap(),
        0,
        "nothing left to delete"
    );
    kept_progress_agrees(&state, "after a credit rule change").await;
    state.store.close().await;
}

#[tokio::test]
async fn kept_credits_carry_over_and_fill_on_activation_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("dealrules.db").display());
    kept_credits_carry_over_and_fill_on_activation(&url).await;
}

#[tokio::test]
async fn kept_credits_carry_over_and_fill_on_activation_on_postgres() {
    let Some(server) = dealrules_store::scratch::postgres_server() else {
        eprintln!("skipped: {} is not set", dealrules_store::scratch::POSTGRES_ENV);
        return;
    };
    let url = dealrules_store::scratch::create_postgres_database(&server, "kept_carry")
        .await
        .unwrap();
    kept_credits_carry_over_and_fill_on_activation(&url).await;
    dealrules_store::scratch::drop_postgres_database(&url).await.unwrap();
}

/// While the credits of a fill are being stored, a report adds up what the
/// fill's maker credited with the deals written since credited again: the
/// store is held up here by a lock on `credits` (PostgreSQL), so the
/// report cannot be reading stored credits.
#[tokio::test]
async fn a_report_while_credits_are_stored_counts_writes_made_since_on_postgres() {
    use dealrules_core::measure::progress::ProgressBy;
    let Some(server) = dealrules_store::scratch::postgres_server() else {
        eprintln!("skipped: {} is not set", dealrules_store::scratch::POSTGRES_ENV);
        return;
    };
    let url = dealrules_store::scratch::create_postgres_database(&server, "kept_storing")
        .await
        .unwrap();
    let (state, _addr) = scenario(&url).await;
    let v2 = state.snapshot.load_full().version.to_string();
    let v1 = state.store.deals().history("d1").await.unwrap()[0].version.clone();
    let mut rng = Seeded(0x5707_2026_1130);
    random_history(&state.store, &mut rng, 80, &[&v1, &v2], 0).await;
    numeric_amounts(&state.store).await;
    set_clock(&state, "2026-02-14T12:00:00Z");
    let snapshot = state.snapshot.load_full();
    let month = "2026-03";
    assert!(fill_of(&state, month).await.is_none());
    // Inserts into `credits` wait while this transaction lives.
    sqlx::any::install_default_drivers();
    let mut blocker = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("LOCK TABLE credits IN EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let report = || async {
        let kept = state
            .workflow
            .target_progress(&snapshot, "fy2026", month, ProgressBy::Rep)
            .await
            .unwrap();
        let recomputed = state
            .workflow
            .target_progress_from_deals(&snapshot, "fy2026", month, ProgressBy::Rep)
            .await
            .unwrap();
        assert_eq!(kept, recomputed);
        kept
    };
    let first = report().await;
    // Writes after the fill was read: one deal won in March, one moved out.
    edit_deal(&state.store, "d4", |d| {
        d.stage = "won".into();
        d.fields["closed_at"] = json!("2026-03-05");
    })
    .await;
    edit_deal(&state.store, "r0009", |d| {
        d.stage = "won".into();
        d.fields["closed_at"] = json!("2026-03-20");
        d.fields["amount"] = json!(4321);
    })
    .await;
    let meanwhile = report().await;
    assert_ne!(first, meanwhile, "the writes count");
    assert_eq!(
        fill_of(&state, month).await.unwrap().state,
        dealrules_store::credits::FillState::Filling,
        "still being stored"
    );
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    for _ in 0..600 {
        if fill_of(&state, month)
            .await
            .is_some_and(|f| f.state == dealrules_store::credits::FillState::Ready)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Stored, then brought up to date by the marks: the same answer.
    assert_eq!(report().await, meanwhile);
    state.store.close().await;
    drop(blocker);
    dealrules_store::scratch::drop_postgres_database(&url).await.unwrap();
}
