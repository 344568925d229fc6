//! The `examples/` packs: their own tests pass, their statements for the
//! sample data match `expected/` exactly, and the rendered statements
//! (HTML, Markdown, CSV; English and Chinese) are pinned by snapshots.
//! `UPDATE_GOLDEN=1` rewrites `expected/` after a reviewed change.

use std::path::{Path, PathBuf};
use std::process::Command;

const NOW: &str = "2026-04-05T00:00:00Z";

fn acme() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme")
}

fn eval(policy: &str, data: &str, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .args(["eval", policy, "--now", NOW, "--rules"])
        .arg(acme())
        .arg("--input")
        .arg(acme().join("data").join(data))
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{policy}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_example_pack_tests_pass() {
    let out = Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .arg("test")
        .arg(acme())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("3 passed, 0 failed"), "{stdout}");
}

#[test]
fn statements_match_the_expected_files() {
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for (policy, data) in [
        ("ae-2026", "2026-q1.json"),
        ("se-2026", "2026-q1.json"),
        ("partner-rebates", "2026-q1.json"),
        ("manager-kpi", "2026-q1.json"),
        ("ae-2026-cn", "2026-q1-cn.json"),
    ] {
        let mut got: serde_json::Value = serde_json::from_str(&eval(policy, data, &[])).unwrap();
        got["version"] = serde_json::json!("<version>");
        let file = acme().join("expected").join(format!("{policy}-{}", data));
        if update {
            std::fs::write(&file, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
            continue;
        }
        let want: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap_or_default()).unwrap_or_default();
        if want != got {
            failures.push(format!(
                "{}: got {}",
                file.display(),
                serde_json::to_string(&got).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The pack's version changes with any file of it (its data and expected
/// files included); the snapshots pin the rendering, not the hash.
fn redact(s: String) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(i) = rest.find("sha256:") {
        out.push_str(&rest[..i]);
        out.push_str("sha256:<version>");
        let after = &rest[i + 7..];
        rest = after.trim_start_matches(|c: char| c.is_ascii_hexdigit());
    }
    out.push_str(rest);
    out
}

#[test]
fn rendered_statements() {
    insta::assert_snapshot!(
        "acme-ae-md",
        redact(eval("ae-2026", "2026-q1.json", &["--format", "md"]))
    );
    insta::assert_snapshot!("acme-ae-csv", eval("ae-2026", "2026-q1.json", &["--format", "csv"]));
    insta::assert_snapshot!(
        "acme-ae-html",
        redact(eval("ae-2026", "2026-q1.json", &["--format", "html"]))
    );
    insta::assert_snapshot!(
        "acme-cn-html",
        redact(eval(
            "ae-2026-cn",
            "2026-q1-cn.json",
            &["--format", "html", "--locale", "zh-CN"]
        ))
    );
    insta::assert_snapshot!(
        "acme-cn-md",
        redact(eval(
            "ae-2026-cn",
            "2026-q1-cn.json",
            &["--format", "md", "--locale", "zh-CN"]
        ))
    );
}

#[test]
fn deal_fields_are_escaped_in_html_and_defused_in_csv() {
    let dir = tempfile::tempdir().unwrap();
    let data = r#"{"period": "2026-Q1", "reps": [{"id": "<script>alert(1)</script>", "role": "partner"}],
      "deals": [{"id": "=HYPERLINK(\"http://x\")", "owner": "x", "partner": "<script>alert(1)</script>", "channel": "partner", "amount": 1000, "stage": "won", "closed_at": "2026-01-05"}]}"#;
    let file = dir.path().join("in.json");
    std::fs::write(&file, data).unwrap();
    let run = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_dealrules"))
            .args(["eval", "partner-rebates", "--format", format, "--rules"])
            .arg(acme())
            .arg("--input")
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let html = run("html");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    let csv = run("csv");
    assert!(csv.contains("\"'=HYPERLINK(\"\"http://x\"\")\""), "{csv}");
}

#[test]
fn formats_other_than_json_are_for_statements() {
    let out = Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .args(["eval", "fy2026", "--format", "html", "--rules"])
        .arg(acme())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

// The Chinese distributor (examples/distributor-cn): its own tests, its
// statements for the sample months and quarter, the zh-CN rendering, and
// its notification templates.

fn distributor_cn() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/distributor-cn")
}

fn eval_cn(policy: &str, data: &str, now: &str, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .args(["eval", policy, "--now", now, "--rules"])
        .arg(distributor_cn())
        .arg("--input")
        .arg(distributor_cn().join("data").join(data))
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{policy}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Compares `got` with `expected/<name>`, or writes it with UPDATE_GOLDEN=1.
fn golden(name: &str, got: &str, failures: &mut Vec<String>) {
    let file = distributor_cn().join("expected").join(name);
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&file).unwrap_or_default();
    if want != got {
        failures.push(format!("{}: got\n{got}", file.display()));
    }
}

#[test]
fn the_distributor_cn_pack_tests_pass() {
    let out = Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .arg("test")
        .arg(distributor_cn())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("27 passed, 0 failed"), "{stdout}");
    assert!(!stdout.contains("never matched"), "{stdout}");
}

#[test]
fn distributor_cn_statements_match_the_expected_files() {
    let mut failures = Vec::new();
    for (policy, data, now, name) in [
        (
            "rep-commission",
            "2026-03.json",
            "2026-04-05T00:00:00Z",
            "rep-commission-2026-03.json",
        ),
        // Mid-April: half the month gone, pace alerts for the reps behind.
        (
            "rep-commission",
            "2026-04.json",
            "2026-04-15T00:00:00Z",
            "rep-commission-2026-04-mid.json",
        ),
        ("rebate-gold", "2026-q1.json", NOW, "rebate-gold-2026-q1.json"),
        ("rebate-silver", "2026-q1.json", NOW, "rebate-silver-2026-q1.json"),
        ("rebate-bronze", "2026-q1.json", NOW, "rebate-bronze-2026-q1.json"),
        (
            "manager-kpi-bonus",
            "2026-q1.json",
            NOW,
            "manager-kpi-bonus-2026-q1.json",
        ),
    ] {
        let mut got: serde_json::Value = serde_json::from_str(&eval_cn(policy, data, now, &[])).unwrap();
        assert_eq!(got["currency"], "CNY", "{name}");
        got["version"] = serde_json::json!("<version>");
        golden(
            name,
            &(serde_json::to_string_pretty(&got).unwrap() + "\n"),
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn distributor_cn_statements_render_in_chinese() {
    let mut failures = Vec::new();
    for (format, name) in [
        ("md", "rep-commission-2026-03.zh-CN.md"),
        ("html", "rep-commission-2026-03.zh-CN.html"),
    ] {
        let text = eval_cn(
            "rep-commission",
            "2026-03.json",
            "2026-04-05T00:00:00Z",
            &["--format", format, "--locale", "zh-CN"],
        );
        assert!(text.contains("张伟") && text.contains("回款提成"), "{text}");
        golden(name, &redact(text), &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The pack's notification texts in Simplified Chinese, rendered with the
/// fields the workflow gives a template (`deal`, `approval`, `step`).
#[test]
fn distributor_cn_notifications_render() {
    let dir = distributor_cn().join("notifications");
    let context: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(distributor_cn().join("data/notifications.json")).unwrap())
            .unwrap();
    let context = tera::Context::from_value(context).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".zh-CN.tera"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 5, "{names:?}");
    let mut failures = Vec::new();
    for name in names {
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![]);
        tera.add_raw_template(&name, &std::fs::read_to_string(dir.join(&name)).unwrap())
            .unwrap();
        let text = tera.render(&name, &context).unwrap();
        assert!(!text.contains("{{"), "{name}: {text}");
        let stem = name.trim_end_matches(".tera");
        golden(&format!("notifications/{stem}.txt"), &text, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
