//! `dealrules serve --demo` as a new user runs it: in a folder that already
//! holds a `dealrules.db`, the real binary on a loopback port answers with
//! a whole company (deals in every stage with their history, pending
//! approvals, a published run and its statements), and leaves the folder
//! (and the database in it) exactly as it found it.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Server, TOKEN, copy_dir, http, json, stop};

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

/// `dealrules serve --demo` run in `cwd` (its ./rules), temporary files
/// under `tmp`; the server and the store path it printed.
fn serve_demo(cwd: &Path, tmp: &Path) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .current_dir(cwd)
        .env("DEALRULES_ADMIN_TOKEN", TOKEN)
        .env("TMPDIR", tmp)
        .env_remove("DEALRULES_DB")
        .env_remove("DEALRULES_RULES")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let (addr, store) = loop {
        let line = lines.next().expect("server exited").unwrap();
        printed.push(line.clone());
        if let Some(url) = line.split("http://").nth(1) {
            let store = line.split("(store ").nth(1).unwrap().trim_end_matches(')').to_string();
            break (url.split_whitespace().next().unwrap().to_string(), store);
        }
    };
    assert!(
        printed
            .iter()
            .any(|l| l.starts_with("Demo company: 15 people, 48 deals")),
        "{printed:?}"
    );
    std::thread::spawn(move || for _ in lines {});
    let keep = tempfile::tempdir().unwrap();
    (Server { child, addr, _db: keep }, store)
}

#[test]
fn the_demo_company_is_served_and_nothing_is_written_beside_it() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"),
        &work.path().join("rules"),
    );
    // A real store in the working folder, as after a first `serve`.
    let made = Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .args(["token", "create", "--role", "admin", "--subject", "owner"])
        .current_dir(work.path())
        .env_remove("DEALRULES_DB")
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let before = files(work.path());
    assert!(before.iter().any(|(p, _)| p.ends_with("dealrules.db")));

    let (mut server, store) = serve_demo(work.path(), tmp.path());
    assert!(
        store.starts_with(&format!("sqlite://{}", tmp.path().display())),
        "{store}"
    );
    let addr = server.addr.clone();

    // Deals in every stage of the funnel, each with its history.
    let mut stages = BTreeSet::new();
    for n in 1001..=1048 {
        let (code, body) = http(&addr, "GET", &format!("/v1/deals/d-{n}"), "");
        assert_eq!(code, 200, "{body}");
        let deal = json(&body);
        assert!(!deal["history"].as_array().unwrap().is_empty());
        if deal["stage"] == "won" {
            assert_eq!(deal["approvals"][0]["state"], "approved", "{deal}");
        }
        stages.insert(deal["stage"].as_str().unwrap().to_string());
    }
    let all: BTreeSet<String> = ["lead", "qualified", "proposal", "negotiation", "won", "lost"]
        .map(String::from)
        .into();
    assert_eq!(stages, all);
    let (code, body) = http(&addr, "GET", "/v1/pipeline", "");
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["groups"].as_array().unwrap().len(), 4, "{body}");

    // Approvals waiting for their approvers, opened in the last days.
    let (code, body) = http(&addr, "GET", "/v1/approvals?state=pending", "");
    assert_eq!(code, 200, "{body}");
    let pending = json(&body)["approvals"].as_array().unwrap().clone();
    assert_eq!(pending.len(), 8, "{body}");
    assert!(
        pending
            .iter()
            .all(|a| a["steps"][0]["approver"].as_str().unwrap().starts_with("u-"))
    );

    // A published run of the previous quarter, approved by another admin,
    // and a rep's statement from it.
    let (code, body) = http(&addr, "GET", "/v1/incentives/runs", "");
    assert_eq!(code, 200, "{body}");
    let runs = json(&body)["runs"].as_array().unwrap().clone();
    let run = runs
        .iter()
        .find(|r| r["state"] == "published")
        .expect("a published run");
    assert_ne!(run["started_by"], run["approved_by"]);
    assert_eq!(run["reps"], 8);
    let period = run["period"].as_str().unwrap();
    let (code, body) = http(&addr, "GET", &format!("/v1/statements/ana/{period}"), "");
    assert_eq!(code, 200, "{body}");
    let statement = &json(&body)["statements"][0]["statement"];
    assert_eq!(statement["rep"], "ana");
    assert!(!statement["lines"].as_array().unwrap().is_empty(), "{statement}");

    // Notifications in each recipient's language: the APAC manager's
    // roster entry has `locale: zh-CN`.
    let (code, body) = http(&addr, "GET", "/v1/outbox", "");
    assert_eq!(code, 200, "{body}");
    let outbox = json(&body)["notifications"].as_array().unwrap().clone();
    let requested = |to: &str| {
        outbox
            .iter()
            .find(|n| n["recipient"] == to && n["template"] == "approval-requested")
            .unwrap_or_else(|| panic!("no approval request to {to}"))["body"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(requested("u-liwei").starts_with("待审批："), "{}", requested("u-liwei"));
    assert!(
        requested("u-priya").starts_with("Approval needed: "),
        "{}",
        requested("u-priya")
    );

    // The console answers.
    let (code, _) = http(&addr, "GET", "/admin/signin", "");
    assert_eq!(code, 200);

    stop(&mut server, "-TERM");
    assert_eq!(files(work.path()), before, "the working folder changed");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the throwaway store was left behind"
    );
}

#[test]
fn demo_and_db_are_one_or_the_other() {
    let out = Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .args(["serve", "--demo", "--db", "sqlite://dealrules.db"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--db"));
}
