//! The workflow runtime on the real binary and a real database: a deal
//! from lead to won through a two-step approval, a refused move with every
//! reason, an idempotent retry, recall and delegation; a timer that fires
//! after a restart; and, on PostgreSQL, three nodes sharing one database.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, TOKEN, copy_dir, http, http_as, http_full, json, pack_files, start_with, stop, wait_for};
use dealrules_store::{Store, scratch};
use serde_json::Value;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn rules_copy(dir: &Path, edit: impl Fn(&str) -> String) -> std::path::PathBuf {
    let rules = dir.join("rules");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"), &rules);
    let funnel = rules.join("funnel.yaml");
    std::fs::write(&funnel, edit(&std::fs::read_to_string(&funnel).unwrap())).unwrap();
    rules
}

/// An approver token made through the API.
fn token(server: &Server, subject: &str, groups: &[&str]) -> String {
    let body = serde_json::json!({ "role": "approver", "subject": subject, "groups": groups }).to_string();
    let (code, text) = http(&server.addr, "POST", "/v1/tokens", &body);
    assert_eq!(code, 201, "{text}");
    json(&text)["token"].as_str().unwrap().to_string()
}

fn event(server: &Server, deal: &str, body: &str) -> (u16, Value) {
    let (code, text) = http(&server.addr, "POST", &format!("/v1/deals/{deal}/events"), body);
    (code, json(&text))
}

const DEAL: &str = r#"{"id": "d-1001", "funnel": "b2b", "owner": "r1",
  "fields": {"name": "Acme", "amount": 120000, "close_date": "2026-12-15", "contact_email": "cfo@acme.example", "discount_pct": 25, "payment_terms_days": 30},
  "context": {"rep": {"manager": "u-17"}}}"#;

fn lifecycle(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_copy(dir.path(), |t| t.to_string());
    let mut server = start_with(&rules, url, tempfile::tempdir().unwrap(), &[]);
    let manager = token(&server, "u-17", &[]);
    let director = token(&server, "u-99", &["role:sales-director"]);
    let stand_in = token(&server, "u-18", &[]);

    assert_eq!(http(&server.addr, "POST", "/v1/deals", DEAL).0, 201);
    assert_eq!(http(&server.addr, "POST", "/v1/deals", DEAL).0, 409);
    // A refused move: every reason.
    let (code, p) = event(&server, "d-1001", r#"{"type": "move", "to": "won"}"#);
    assert_eq!(code, 409);
    let codes: Vec<&str> = p["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["no_transition", "missing_field"], "{p}");
    // An idempotent retry: one move however often it is sent.
    let mv = r#"{"type": "move", "to": "qualified"}"#;
    let first = http_full(
        &server.addr,
        TOKEN,
        "POST",
        "/v1/deals/d-1001/events",
        &[("Idempotency-Key", "crm-42")],
        mv,
    )
    .unwrap();
    let retry = http_full(
        &server.addr,
        TOKEN,
        "POST",
        "/v1/deals/d-1001/events",
        &[("Idempotency-Key", "crm-42")],
        mv,
    )
    .unwrap();
    assert_eq!((first.0, &first.1), (200, &retry.1));
    // Proposal: a two-step approval (manager, then director).
    assert_eq!(event(&server, "d-1001", r#"{"type": "move", "to": "proposal"}"#).0, 200);
    let approvals = json(&http(&server.addr, "GET", "/v1/approvals?state=pending&deal=d-1001", "").1);
    let id = approvals["approvals"][0]["id"].as_str().unwrap().to_string();
    let decide = |t: &str, d: &str| {
        http_as(
            &server.addr,
            t,
            "POST",
            &format!("/v1/approvals/{id}/decision"),
            &format!(r#"{{"decision": "{d}", "comment": "e2e"}}"#),
        )
    };
    assert_eq!(decide(&director, "approve").0, 403, "not the director's turn yet");
    // The manager is away: u-18 stands in for today.
    let today = chrono::Utc::now().date_naive().to_string();
    let (code, text) = http_as(
        &server.addr,
        &manager,
        "POST",
        "/v1/delegations",
        &format!(r#"{{"to": "u-18", "starts": "{today}", "ends": "{today}"}}"#),
    );
    assert_eq!(code, 201, "{text}");
    assert_eq!(decide(&stand_in, "approve").0, 200);
    assert_eq!(decide(&director, "approve").0, 200);
    for to in ["negotiation", "won"] {
        if to == "won" {
            event(
                &server,
                "d-1001",
                r#"{"type": "update", "fields": {"signed_contract_url": "https://docs.example/acme.pdf"}}"#,
            );
        }
        let (code, d) = event(&server, "d-1001", &format!(r#"{{"type": "move", "to": "{to}"}}"#));
        assert_eq!(code, 200, "{d}");
    }
    let d = json(&http(&server.addr, "GET", "/v1/deals/d-1001", "").1);
    assert_eq!(d["stage"], "won");
    assert_eq!(
        d["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["type"] == "move")
            .count(),
        4,
        "lead -> qualified -> proposal -> negotiation -> won: {}",
        d["history"]
    );

    // Recall: a second deal's request, taken back by its submitter.
    assert_eq!(
        http(&server.addr, "POST", "/v1/deals", &DEAL.replace("d-1001", "d-1002")).0,
        201
    );
    event(&server, "d-1002", r#"{"type": "move", "to": "qualified"}"#);
    event(&server, "d-1002", r#"{"type": "move", "to": "proposal"}"#);
    let a = json(&http(&server.addr, "GET", "/v1/approvals?state=pending&deal=d-1002", "").1)["approvals"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        http_as(&server.addr, &manager, "POST", &format!("/v1/approvals/{a}/recall"), "").0,
        403
    );
    assert_eq!(
        http(&server.addr, "POST", &format!("/v1/approvals/{a}/recall"), "").0,
        200
    );
    assert_eq!(
        json(&http(&server.addr, "GET", "/v1/deals/d-1002", "").1)["approvals"][0]["state"],
        "recalled"
    );
    stop(&mut server, "-TERM");
}

#[test]
fn lifecycle_on_sqlite() {
    let db = tempfile::tempdir().unwrap();
    lifecycle(&format!("sqlite://{}", db.path().join("dealrules.db").display()));
}

#[test]
fn lifecycle_on_postgres() {
    let Some(server) = scratch::postgres_server() else {
        eprintln!("skipped: {} is not set", scratch::POSTGRES_ENV);
        return;
    };
    let rt = runtime();
    let url = rt
        .block_on(scratch::create_postgres_database(&server, "lifecycle"))
        .unwrap();
    lifecycle(&url);
    rt.block_on(scratch::drop_postgres_database(&url)).unwrap();
}

#[test]
fn a_timer_fires_after_a_restart_once() {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("dealrules.db").display());
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_copy(dir.path(), |t| t.to_string());
    let mut server = start_with(&rules, &url, tempfile::tempdir().unwrap(), &[]);
    assert_eq!(http(&server.addr, "POST", "/v1/deals", DEAL).0, 201);
    assert_eq!(
        event(&server, "d-1001", r#"{"type": "move", "to": "qualified"}"#).0,
        200
    );
    stop(&mut server, "-TERM");
    // Fifteen days later (the clock moved, not the test).
    let server = start_with(
        &rules,
        &url,
        tempfile::tempdir().unwrap(),
        &["--clock-offset", "15d", "--timer-tick", "100ms"],
    );
    wait_for("the stale timer", || {
        json(&http(&server.addr, "GET", "/v1/deals/d-1001", "").1)["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["type"] == "timer")
    });
    std::thread::sleep(Duration::from_millis(500));
    let d = json(&http(&server.addr, "GET", "/v1/deals/d-1001", "").1);
    assert_eq!(
        d["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["type"] == "timer")
            .count(),
        1,
        "once"
    );
    let outbox = json(&http(&server.addr, "GET", "/v1/outbox?deal=d-1001", "").1);
    assert!(
        outbox["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["template"] == "stale-deal" && n["recipient"] == "r1"),
        "{outbox}"
    );
}

#[test]
fn notifications_are_posted_to_the_webhook_with_retries() {
    use std::io::{BufRead, BufReader, Read, Write};
    // A webhook that fails the first request and accepts the rest.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/hooks/sales", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let got = received.clone();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut length = 0;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let status = if n == 0 { "503 Service Unavailable" } else { "200 OK" };
            if n > 0 {
                got.lock().unwrap().push(String::from_utf8(body).unwrap());
            }
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("dealrules.db").display());
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_copy(dir.path(), |t| t.to_string());
    let server = start_with(&rules, &url, tempfile::tempdir().unwrap(), &["--webhook-url", &hook]);
    assert_eq!(http(&server.addr, "POST", "/v1/deals", DEAL).0, 201);
    event(&server, "d-1001", r#"{"type": "move", "to": "qualified"}"#);
    event(&server, "d-1001", r#"{"type": "move", "to": "proposal"}"#);
    wait_for("both notifications delivered", || received.lock().unwrap().len() == 2);
    let bodies: Vec<Value> = received.lock().unwrap().iter().map(|b| json(b)).collect();
    let templates: Vec<&str> = bodies.iter().map(|b| b["template"].as_str().unwrap()).collect();
    assert!(
        templates.contains(&"approval-requested") && templates.contains(&"proposal-sent"),
        "{templates:?}"
    );
    // The worker records the delivery after the webhook has answered.
    wait_for("the outbox to say sent", || {
        json(&http(&server.addr, "GET", "/v1/outbox?deal=d-1001", "").1)["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "sent")
    });
    let outbox = json(&http(&server.addr, "GET", "/v1/outbox?deal=d-1001", "").1);
    let attempts: i64 = outbox["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["attempts"].as_i64().unwrap())
        .sum();
    assert_eq!(attempts, 3, "one failed attempt, then both delivered: {outbox}");
    assert!(
        outbox["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "sent")
    );
}

/// Three nodes on one PostgreSQL database: an activation on one is live on
/// all within a second; 1,000 timers fall due and fire once each across
/// the three, while one node is killed with SIGKILL mid-run and events sent
/// to it that were acknowledged are all stored.
#[test]
fn three_nodes_share_one_postgres() {
    let Some(pg) = scratch::postgres_server() else {
        eprintln!("skipped: {} is not set", scratch::POSTGRES_ENV);
        return;
    };
    let rt = runtime();
    let url = rt
        .block_on(scratch::create_postgres_database(&pg, "three_nodes"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The stale timer runs from the first stage, 6 s after a deal is made.
    let rules = rules_copy(dir.path(), |t| {
        t.replace(
            "in: [qualified, proposal, negotiation]\n      after: 14d",
            "in: [lead, qualified, proposal, negotiation]\n      after: 6s",
        )
    });
    let mut nodes: Vec<Server> = (0..3)
        .map(|_| start_with(&rules, &url, tempfile::tempdir().unwrap(), &["--timer-tick", "50ms"]))
        .collect();

    // An activation on node 0 is seen by all within a second.
    let pack = {
        let source = pack_files(&rules);
        let map: serde_json::Map<String, Value> = source
            .into_iter()
            .map(|(p, t)| {
                (
                    p.clone(),
                    Value::String(if p == "funnel.yaml" { format!("{t}\n# v2\n") } else { t }),
                )
            })
            .collect();
        Value::Object(map).to_string()
    };
    let (code, text) = http(&nodes[0].addr, "PUT", "/v1/packs/active", &pack);
    assert_eq!(code, 200, "{text}");
    let version = json(&text)["version"].as_str().unwrap().to_string();
    let started = Instant::now();
    for n in &nodes {
        wait_for("the activation on every node", || {
            json(&http(&n.addr, "GET", "/v1/status", "").1)["version"] == version.as_str()
        });
    }
    let seen_after = started.elapsed();
    assert!(
        seen_after < Duration::from_secs(1),
        "all nodes served {version} after {seen_after:?}"
    );
    eprintln!("activation live on 3 nodes after {seen_after:?}");

    // 1,000 deals, spread over the nodes: 1,000 timers due 6 s later.
    for i in 0..1000 {
        let body = DEAL.replace("d-1001", &format!("d-{i:04}"));
        assert_eq!(http(&nodes[i % 3].addr, "POST", "/v1/deals", &body).0, 201);
    }
    // Events to node 2 while the timers fire, until it is killed.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let halt = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (addr, acked, halt, sent) = (nodes[2].addr.clone(), acked.clone(), halt.clone(), sent.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !halt.load(Ordering::Relaxed) {
                let deal = format!("d-{:04}", i % 1000);
                let note = format!("note-{i}");
                sent.fetch_add(1, Ordering::Relaxed);
                if let Ok((200, _)) = http_full(
                    &addr,
                    TOKEN,
                    "POST",
                    &format!("/v1/deals/{deal}/events"),
                    &[("Idempotency-Key", &note)],
                    &format!(r#"{{"type": "update", "fields": {{"last_note": "{note}"}}}}"#),
                ) {
                    acked.lock().unwrap().push(note);
                }
                i += 1;
            }
        })
    };
    let store = rt.block_on(Store::open(&url)).unwrap();
    let fired = |rt: &tokio::runtime::Runtime| {
        rt.block_on(store.deals().timer_counts())
            .unwrap()
            .into_iter()
            .find(|(s, _)| s == "fired")
            .map(|(_, n)| n)
            .unwrap_or(0)
    };
    let begun = Instant::now();
    while fired(&rt) < 100 {
        assert!(begun.elapsed() < Duration::from_secs(30), "timers did not start firing");
        std::thread::sleep(Duration::from_millis(10));
    }
    stop(&mut nodes[2], "-KILL");
    halt.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    while fired(&rt) < 1000 {
        assert!(
            begun.elapsed() < Duration::from_secs(60),
            "only {} of 1,000 timers fired",
            fired(&rt)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));

    // Each timer fired once: one `timer` entry per deal, 1,000 in all.
    let deals = rt.block_on(store.deals().deals()).unwrap();
    let mut by_node: HashMap<String, usize> = HashMap::new();
    for d in &deals {
        let history = rt.block_on(store.deals().history(&d.id)).unwrap();
        assert_eq!(history.iter().filter(|h| h.kind == "timer").count(), 1, "deal {}", d.id);
        for t in rt
            .block_on(store.deals().timers_of(&d.id))
            .unwrap()
            .iter()
            .filter(|t| t.state == "fired")
        {
            *by_node.entry(t.fired_by.clone().unwrap_or_default()).or_default() += 1;
        }
    }
    assert_eq!(by_node.values().sum::<usize>(), 1000);
    eprintln!("timers fired per node: {by_node:?}");
    // Every acknowledged event is stored.
    let acked = acked.lock().unwrap();
    let mut notes = std::collections::HashSet::new();
    for d in &deals {
        for h in rt
            .block_on(store.deals().history(&d.id))
            .unwrap()
            .iter()
            .filter(|h| h.kind == "update")
        {
            if let Some(n) = h.detail["fields"]["last_note"].as_str() {
                notes.insert(n.to_string());
            }
        }
    }
    let lost: Vec<&String> = acked.iter().filter(|n| !notes.contains(*n)).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    eprintln!(
        "{} events sent to the killed node, {} acknowledged, all stored",
        sent.load(Ordering::Relaxed),
        acked.len()
    );
    drop(nodes);
    rt.block_on(store.close());
    rt.block_on(scratch::drop_postgres_database(&url)).unwrap();
}
