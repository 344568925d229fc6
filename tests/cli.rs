//! The real `dealrules` binary: exit codes, output formats, stdin and files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dealrules"));
    c.env_remove("DEALRULES_RULES");
    c
}

fn rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")
}

fn run(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails before reading its input closes stdin early.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_accepts_the_default_pack() {
    let out = run(bin().arg("check").arg(rules()), "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("ok, 9 policies"), "{}", text(&out.stdout));
}

#[test]
fn check_reports_every_error_with_its_position_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), "apiVersion: dealrules/v1\nkind: ApprovalPolicy\nmetadata: { name: a }\nspec:\n  levels: [auto]\n  rules:\n    - { id: x, when: \"deal.amount >\", level: auto }\n    - { id: y, level: nope }\n").unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        "apiVersion: dealrules/v1\nkind: Funnel\nmetadata: { name: f }\nspec: { initial: a, stages: [ { id: b } ] }\n",
    )
    .unwrap();
    let out = run(bin().arg("check").arg(dir.path()), "");
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let d = dir.path().display();
    assert!(stdout.contains(&format!("{d}/a.yaml:7:")), "{stdout}");
    assert!(stdout.contains(&format!("{d}/a.yaml:8:")), "{stdout}");
    assert!(stdout.contains(&format!("{d}/b.yaml:4:")), "{stdout}");
    assert!(stdout.contains("3 errors"), "{stdout}");
}

#[test]
fn check_of_a_missing_folder_exits_2() {
    let out = run(bin().args(["check", "/nonexistent/pack"]), "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn eval_reads_stdin_and_prints_the_decision() {
    let out = run(
        bin().args(["eval", "discount-approvals", "--rules"]).arg(rules()),
        r#"{"deal": {"amount": 120000, "discount_pct": 15, "region": "NA", "payment_terms_days": 30}, "rep": {"manager": "u-17"}}"#,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["level"], "manager");
    assert_eq!(v["kind"], "ApprovalPolicy");
    assert!(v["version"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn eval_reads_a_file_and_matches_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let input = r#"{"customer": {"annual_revenue": 250000, "late_payments_12m": 1}}"#;
    let file = dir.path().join("in.json");
    std::fs::write(&file, input).unwrap();
    let out = run(
        bin()
            .args(["eval", "customer-tier", "--compact", "--rules"])
            .arg(rules())
            .arg("--input")
            .arg(&file),
        "",
    );
    assert_eq!(out.status.code(), Some(0));
    // The CLI and the library (and so the HTTP API) give the same JSON.
    let snapshot = dealrules_core::Snapshot::load(dealrules_model::PackSource::from_dir(&rules()).unwrap()).unwrap();
    let lib = snapshot
        .decide_json("customer-tier", input, "2026-11-23T00:00:00Z")
        .unwrap();
    assert_eq!(text(&out.stdout).trim(), serde_json::to_string(&lib).unwrap());
}

#[test]
fn eval_decision_errors_exit_1_with_the_message_on_stderr() {
    let out = run(
        bin().args(["eval", "discount-approvals", "--rules"]).arg(rules()),
        r#"{"deal": {"amount": 1}}"#,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("deal.discount_pct is missing"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    let out = run(bin().args(["eval", "discount-aprovals", "--rules"]).arg(rules()), "{}");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("did you mean `discount-approvals`"),
        "{}",
        text(&out.stderr)
    );

    let out = run(
        bin().args(["eval", "customer-tier", "--rules"]).arg(rules()),
        "{not json",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not valid JSON"), "{}", text(&out.stderr));
}

/// Several policies over one input: `{"results": ...}` as `POST /v1/decide`
/// answers, each what it decides alone; exit 1 when one could not decide.
#[test]
fn eval_of_several_policies_prints_each_result() {
    let input = r#"{"deal": {"amount": 120000, "discount_pct": 15, "region": "NA", "payment_terms_days": 30}, "customer": {"annual_revenue": 250000, "late_payments_12m": 1}}"#;
    let out = run(
        bin()
            .args([
                "eval",
                "discount-approvals",
                "customer-tier",
                "--compact",
                "--now",
                "2026-11-23T00:00:00Z",
                "--rules",
            ])
            .arg(rules()),
        input,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let snapshot = dealrules_core::Snapshot::load(dealrules_model::PackSource::from_dir(&rules()).unwrap()).unwrap();
    for policy in ["discount-approvals", "customer-tier"] {
        let alone = snapshot.decide_json(policy, input, "2026-11-23T00:00:00Z").unwrap();
        assert_eq!(v["results"][policy], serde_json::to_value(&alone).unwrap(), "{policy}");
    }
    let out = run(
        bin()
            .args(["eval", "customer-tier", "no-such-policy", "--rules"])
            .arg(rules()),
        input,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["results"]["no-such-policy"]["error"]["status"], 404);
    assert_eq!(v["results"]["customer-tier"]["kind"], "DecisionTable");
    // Statements render one at a time.
    let out = run(
        bin()
            .args([
                "eval",
                "customer-tier",
                "discount-approvals",
                "--format",
                "md",
                "--rules",
            ])
            .arg(rules()),
        input,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--format"), "{}", text(&out.stderr));
}

#[test]
fn eval_usage_errors_exit_2() {
    let out = run(bin().arg("eval"), "");
    assert_eq!(out.status.code(), Some(2));
    let out = run(bin().args(["eval", "x", "--rules", "/nonexistent"]), "{}");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn eval_honours_the_rules_environment_variable() {
    let out = run(
        bin().args(["eval", "customer-tier"]).env("DEALRULES_RULES", rules()),
        r#"{"customer": {"annual_revenue": 5, "late_payments_12m": 0}}"#,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn test_runs_the_default_packs_tests_with_coverage() {
    let out = run(bin().arg("test").arg(rules()), "");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(", 0 failed"), "{stdout}");
    assert!(
        stdout.contains("ApprovalPolicy/discount-approvals: 5/5 rules matched"),
        "{stdout}"
    );
}

#[test]
fn test_reports_failures_and_unmatched_rules_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::write(dir.path().join("a.yaml"), "apiVersion: dealrules/v1\nkind: ApprovalPolicy\nmetadata: { name: a }\nspec:\n  levels: [auto, boss]\n  rules:\n    - { id: small, when: \"deal.amount < 10\", level: auto }\n    - { id: big, level: boss }\n").unwrap();
    std::fs::write(dir.path().join("tests/a.yaml"), "tests:\n  - name: small is auto\n    policy: a\n    input: { deal: { amount: 5 } }\n    expect: { level: boss }\n").unwrap();
    let out = run(bin().arg("test").arg(dir.path()), "");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("tests/a.yaml:2: small is auto (a): level: expected \"boss\", got \"auto\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("ApprovalPolicy/a: 1/2 rules matched; never matched: big"),
        "{stdout}"
    );
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");
}

#[test]
fn backtest_reports_what_a_candidate_changes() {
    let dir = tempfile::tempdir().unwrap();
    let candidate = dir.path().join("candidate");
    std::fs::create_dir(&candidate).unwrap();
    // Copy the default pack, then raise the auto-approval limit to 15%.
    for entry in std::fs::read_dir(rules()).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, candidate.join(p.file_name().unwrap())).unwrap();
        }
    }
    for sub in ["tables", "scripts"] {
        std::fs::create_dir(candidate.join(sub)).unwrap();
        for entry in std::fs::read_dir(rules().join(sub)).unwrap() {
            let p = entry.unwrap().path();
            std::fs::copy(&p, candidate.join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    let approvals = std::fs::read_to_string(candidate.join("approvals.yaml")).unwrap();
    std::fs::write(
        candidate.join("approvals.yaml"),
        approvals.replace(
            "deal.discount_pct <= 10 && deal.amount <= 50000",
            "deal.discount_pct <= 15 && deal.amount <= 50000",
        ),
    )
    .unwrap();
    let cases = dir.path().join("cases.jsonl");
    std::fs::write(&cases, concat!(
        r#"{"id": "d-1", "policy": "discount-approvals", "input": {"deal": {"amount": 40000, "discount_pct": 12, "region": "NA", "payment_terms_days": 30}}}"#, "\n",
        r#"{"id": "d-2", "policy": "discount-approvals", "input": {"deal": {"amount": 40000, "discount_pct": 5, "region": "NA", "payment_terms_days": 30}}}"#, "\n",
        r#"{"id": "d-3", "policy": "customer-tier", "input": {"customer": {"annual_revenue": 10, "late_payments_12m": 0}}}"#, "\n",
    )).unwrap();
    let out = run(
        bin()
            .arg("backtest")
            .arg("--rules")
            .arg(rules())
            .arg("--candidate")
            .arg(&candidate)
            .arg("--input")
            .arg(&cases),
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["cases"], 3);
    assert_eq!(report["changed"], 1);
    let change = &report["changes"][0];
    assert_eq!(change["id"], "d-1");
    assert_eq!(change["before"]["level"], "manager");
    assert_eq!(change["after"]["level"], "auto");
    assert!(change["fields"].as_array().unwrap().iter().any(|f| f == "level"));
    assert_ne!(report["current"], report["candidate"]);
}

#[test]
fn a_long_backtest_counts_every_case_once_and_keeps_their_order() {
    // More cases than one step of the progress bar (256), every third changed
    // by the candidate (a 12% discount: manager today, auto for the candidate).
    let dir = tempfile::tempdir().unwrap();
    let candidate = dir.path().join("candidate");
    std::fs::create_dir(&candidate).unwrap();
    let approvals = std::fs::read_to_string(rules().join("approvals.yaml")).unwrap();
    std::fs::write(
        candidate.join("approvals.yaml"),
        approvals.replace(
            "deal.discount_pct <= 10 && deal.amount <= 50000",
            "deal.discount_pct <= 15 && deal.amount <= 50000",
        ),
    )
    .unwrap();
    let mut lines = String::new();
    for i in 0..700 {
        let discount = if i % 3 == 0 { 12 } else { 5 };
        lines.push_str(&format!(
            r#"{{"id": "d-{i}", "policy": "discount-approvals", "input": {{"deal": {{"amount": 40000, "discount_pct": {discount}, "region": "NA", "payment_terms_days": 30}}}}}}"#
        ));
        lines.push('\n');
    }
    let cases = dir.path().join("cases.jsonl");
    std::fs::write(&cases, lines).unwrap();
    // The current pack holds only the approvals too, so the versions differ
    // by that one rule.
    let current = dir.path().join("current");
    std::fs::create_dir(&current).unwrap();
    std::fs::write(current.join("approvals.yaml"), approvals).unwrap();
    let out = run(
        bin()
            .args(["backtest", "--now", "2026-11-23T00:00:00Z", "--rules"])
            .arg(&current)
            .arg("--candidate")
            .arg(&candidate)
            .arg("--input")
            .arg(&cases),
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["cases"], 700);
    assert_eq!(report["changed"], 234);
    assert_eq!(report["unchanged"], 466);
    let ids: Vec<String> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = (0..700).filter(|i| i % 3 == 0).map(|i| format!("d-{i}")).collect();
    assert_eq!(ids, want);
    // No progress bar when stderr is not a terminal: only the summary.
    assert_eq!(text(&out.stderr).trim(), "700 cases: 234 changed, 466 unchanged");
}
