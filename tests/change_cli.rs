//! `dealrules change`, the real binary against a real server on loopback:
//! a folder proposed as a change (its diff, its impact), submitted,
//! approved and live; a broken folder refused with its error's place; the
//! author refused as their own approver when four eyes are on.

mod common;

use std::path::Path;
use std::process::Command;

use common::{TOKEN, copy_dir, http, json, start_with};

fn change(addr: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .arg("change")
        .args(args)
        .args(["--server", &format!("http://{addr}"), "--token", TOKEN])
        .env_remove("DEALRULES_SERVER")
        .env_remove("DEALRULES_TOKEN")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The id `create` prints first.
fn id_of(stdout: &str) -> String {
    stdout.split_whitespace().next().unwrap_or_default().to_string()
}

fn rules_copy(dir: &Path, name: &str) -> std::path::PathBuf {
    let to = dir.join(name);
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"), &to);
    to
}

#[test]
fn a_folder_becomes_a_change_that_goes_live() {
    let dir = tempfile::tempdir().unwrap();
    let active = rules_copy(dir.path(), "active");
    let proposed = rules_copy(dir.path(), "proposed");
    let plan = proposed.join("incentives.yaml");
    let text = std::fs::read_to_string(&plan).unwrap();
    assert!(text.contains("{ upto: 1.0, rate: 0.08 }"));
    std::fs::write(
        &plan,
        text.replace("{ upto: 1.0, rate: 0.08 }", "{ upto: 1.0, rate: 0.09 }"),
    )
    .unwrap();
    // The pack's own test of the plan moves with it.
    let test = proposed.join("tests/incentives.yaml");
    let expected = std::fs::read_to_string(&test).unwrap();
    assert!(expected.contains("\"67000.00\""));
    std::fs::write(&test, expected.replace("\"67000.00\"", "\"73000.00\"")).unwrap();
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("dealrules.db").display());
    let server = start_with(&active, &url, db, &["--four-eyes", "off"]);
    let addr = server.addr.clone();
    let (_, before) = http(&addr, "GET", "/v1/status", "");
    let before = json(&before)["version"].as_str().unwrap().to_string();

    // Unchanged: nothing to propose.
    let (code, _, stderr) = change(&addr, &["create", &active.display().to_string(), "--title", "none"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("nothing to propose"), "{stderr}");

    let (code, stdout, stderr) = change(
        &addr,
        &["create", &proposed.display().to_string(), "--title", "9% to target"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("[draft]"), "{stdout}");
    assert!(stdout.contains("modified  incentives.yaml"), "{stdout}");
    assert!(stdout.contains("modified  tests/incentives.yaml"), "{stdout}");
    assert!(stdout.contains("passes: tests"), "{stdout}");
    let id = id_of(&stdout);
    assert!(id.starts_with("chg_"), "{stdout}");

    let (code, diff, _) = change(&addr, &["diff", &id]);
    assert_eq!(code, 0);
    assert!(diff.contains("-        - { upto: 1.0, rate: 0.08 }"), "{diff}");
    assert!(diff.contains("+        - { upto: 1.0, rate: 0.09 }"), "{diff}");

    let (code, impact, stderr) = change(&addr, &["impact", &id, "--periods", "2026-Q1"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(impact.contains("decisions: 0 replayed, 0 would change"), "{impact}");
    assert!(impact.contains("funnels: 0 open deals checked"), "{impact}");
    let (code, impact_json, _) = change(&addr, &["impact", &id, "--periods", "2026-Q1", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json(&impact_json)["active_version"], before.as_str());

    let (code, stdout, stderr) = change(&addr, &["submit", &id, "--comment", "from CI"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("[submitted]"), "{stdout}");
    assert!(stdout.contains("draft -> submitted by"), "{stdout}");
    let (code, stdout, stderr) = change(&addr, &["approve", &id]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("[active]"), "{stdout}");
    let (_, after) = http(&addr, "GET", "/v1/status", "");
    let after = json(&after);
    assert_ne!(after["version"], before.as_str());
    assert_eq!(after["source"], "change", "{after}");

    let (code, list, _) = change(&addr, &["list", "--state", "active"]);
    assert_eq!(code, 0);
    assert!(list.contains(&id) && list.contains("9% to target"), "{list}");
}

#[test]
fn a_broken_folder_is_refused_with_the_place_of_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let active = rules_copy(dir.path(), "active");
    let proposed = rules_copy(dir.path(), "proposed");
    let plan = proposed.join("incentives.yaml");
    let text = std::fs::read_to_string(&plan).unwrap();
    std::fs::write(&plan, text.replace("rate: 0.08", "rate: lots")).unwrap();
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("dealrules.db").display());
    let server = start_with(&active, &url, db, &[]);
    let addr = server.addr.clone();

    let (code, stdout, _) = change(&addr, &["create", &proposed.display().to_string(), "--title", "broken"]);
    assert_eq!(code, 1, "a change that does not pass fails the CI job: {stdout}");
    assert!(stdout.contains("does not pass"), "{stdout}");
    assert!(
        stdout.contains("incentives.yaml:23:7: IncentivePlan/ae-commission"),
        "{stdout}"
    );
    let id = id_of(&stdout);
    let (code, _, stderr) = change(&addr, &["submit", &id]);
    assert_eq!(code, 1);
    assert!(stderr.contains("422") || stderr.contains("409"), "{stderr}");

    // With four eyes on, the author cannot approve their own change.
    let good = rules_copy(dir.path(), "good");
    let plan = good.join("incentives.yaml");
    let text = std::fs::read_to_string(&plan).unwrap();
    std::fs::write(&plan, format!("# Reviewed with finance.\n{text}")).unwrap();
    let (code, stdout, _) = change(&addr, &["create", &good.display().to_string(), "--title", "a note"]);
    assert_eq!(code, 0, "{stdout}");
    let id = id_of(&stdout);
    assert_eq!(change(&addr, &["submit", &id]).0, 0);
    let (code, _, stderr) = change(&addr, &["approve", &id]);
    assert_eq!(code, 1);
    assert!(stderr.contains("403"), "{stderr}");
}
