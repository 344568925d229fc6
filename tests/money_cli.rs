//! Money regressions on the real `dealrules` binary, where they were found:
//! `eval` of a plan whose lines add up past the decimal's maximum panicked
//! (`Addition overflowed`, exit 101); a split invented a cent; a number
//! with more digits than a decimal holds was rounded twice.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const PLAN: &str = "apiVersion: dealrules/v1\nkind: IncentivePlan\nmetadata: { name: p }\nspec:\n  period: quarter\n  currency: USD\n  credit: { when: 'true', amount: deal.amount, splits: deal.splits }\n  components:\n    - { id: commission, type: tiered, basis: amount, tiers: [ { rate: 1 } ] }\n    - { id: bonus, type: spiff, when: 'true', amount: 500 }\n";

fn eval(input: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.yaml"), PLAN).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .env_remove("DEALRULES_RULES")
        .args(["eval", "p", "--now", "2026-04-01T00:00:00Z", "--rules"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn eval_of_lines_adding_up_past_the_decimal_maximum_is_an_error_not_a_panic() {
    let out = eval(
        r#"{"period": "2026-Q1", "reps": [{"id": "r1"}], "deals": [{"id": "d1", "owner": "r1", "amount": 79228162514264337593543950335, "closed_at": "2026-02-10"}]}"#,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("p: earned of rep `r1`: amount out of range"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn eval_of_a_number_with_more_digits_than_a_decimal_holds_is_refused() {
    let out = eval(
        r#"{"period": "2026-Q1", "reps": [{"id": "r1"}], "deals": [{"id": "d1", "owner": "r1", "amount": 1.00499999999999999999999999999999, "closed_at": "2026-02-10"}]}"#,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .contains("number 1.00499999999999999999999999999999 has more digits than an exact decimal holds"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn eval_of_a_split_in_thirds_with_amounts_as_text_pays_the_whole_deal() {
    let out = eval(
        r#"{"period": "2026-Q1", "reps": [{"id": "r1"}, {"id": "r2"}, {"id": "r3"}], "deals": [{"id": "d1", "owner": "r1", "amount": "0.80", "closed_at": "2026-02-10",
            "splits": [{"rep": "r1", "share": "0.3333"}, {"rep": "r2", "share": "0.3333"}, {"rep": "r3", "share": "0.3334"}]}]}"#,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // At 100%, the commissions are the credits: 0.27 + 0.26 + 0.27.
    let paid: Vec<&str> = d["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["lines"][0]["amount"].as_str().unwrap())
        .collect();
    assert_eq!(paid, ["0.27", "0.26", "0.27"]);
}
