//! Versions of a plan (section 6, "Versions of a plan"): documents that
//! share a name with `effective` ranges that do not overlap. Each deal is
//! credited under the version in force on its close date and each line
//! names its version; the draw applies once, a clawback once. Amounts
//! below are computed by hand.

use dealrules_core::Snapshot;
use dealrules_model::PackSource;
use serde_json::{Value as Json, json};

const NOW: &str = "2026-04-01T00:00:00Z";

fn version(from: &str, to: &str, rate: &str, currency: &str) -> String {
    format!(
        "apiVersion: dealrules/v1\nkind: IncentivePlan\nmetadata: {{ name: ae }}\nspec:\n  effective: {{ from: {from}, to: {to} }}\n  period: quarter\n  currency: {currency}\n  credit: {{ when: 'deal.stage == \"won\"', amount: deal.amount }}\n  components:\n    - {{ id: commission, type: tiered, basis: amount, tiers: [ {{ rate: {rate} }} ] }}\n  clawback: {{ within: 90d, share: 1.0 }}\n  draw: {{ amount: 3000, recoverable: true }}\n"
    )
}

fn load(docs: &[String]) -> Result<Snapshot, String> {
    let texts: Vec<(String, &str)> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("ae-{i}.yaml"), d.as_str()))
        .collect();
    Snapshot::load(PackSource::from_texts(texts.iter().map(|(p, t)| (p.as_str(), *t)))).map_err(|e| e.to_string())
}

fn two_versions() -> Snapshot {
    load(&[
        version("2026-02-15", "2026-12-31", "0.12", "USD"),
        version("2026-01-01", "2026-02-14", "0.10", "USD"),
    ])
    .unwrap()
}

fn decide(s: &Snapshot, input: &Json) -> Json {
    let d = s.decide_json("ae", &input.to_string(), NOW).unwrap();
    serde_json::to_value(&d).unwrap()
}

fn statement<'j>(d: &'j Json, rep: &str) -> &'j Json {
    d["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["rep"] == rep)
        .unwrap()
}

#[test]
fn each_deal_is_credited_under_the_version_in_force_on_its_close_date() {
    let s = two_versions();
    let input = json!({
        "period": "2026-Q1",
        "reps": [{"id": "r1"}],
        "deals": [
            {"id": "d1", "owner": "r1", "stage": "won", "amount": "10000", "closed_at": "2026-01-20"},
            {"id": "d2", "owner": "r1", "stage": "won", "amount": "5000", "closed_at": "2026-02-14"},
            {"id": "d3", "owner": "r1", "stage": "won", "amount": "20000", "closed_at": "2026-02-15"},
        ],
    });
    let d = decide(&s, &input);
    let r1 = statement(&d, "r1");
    // v1 (10%): 15,000 -> 1,500.00; v2 (12%): 20,000 -> 2,400.00.
    let lines = r1["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{r1:#}");
    assert_eq!(lines[0]["version"], "2026-01-01");
    assert_eq!(lines[0]["amount"], "1500.00");
    assert_eq!(lines[0]["deals"], json!(["d1", "d2"]));
    assert_eq!(lines[1]["version"], "2026-02-15");
    assert_eq!(lines[1]["amount"], "2400.00");
    assert_eq!(lines[1]["deals"], json!(["d3"]));
    assert_eq!(r1["credit"], "35000.00");
    assert_eq!(r1["earned"], "3900.00");
    // The draw (3,000) applies once, to the sum: 3,900 >= 3,000 pays 3,900.
    assert_eq!(r1["total"], "3900.00");
    assert_eq!(r1["draw"]["paid"], "3900.00");
}

#[test]
fn the_draw_applies_once_across_versions() {
    let s = two_versions();
    let input = json!({
        "period": "2026-Q1",
        "reps": [{"id": "r2"}],
        "deals": [{"id": "d4", "owner": "r2", "stage": "won", "amount": "1000", "closed_at": "2026-01-05"}],
    });
    let d = decide(&s, &input);
    let r2 = statement(&d, "r2");
    assert_eq!(r2["earned"], "100.00");
    assert_eq!(r2["total"], "3000.00");
    assert_eq!(r2["draw"]["owed_after"], "2900.00");
    assert_eq!(d["statements"].as_array().unwrap().len(), 1);
}

#[test]
fn a_cancellation_is_taken_back_once_by_the_version_in_force() {
    let s = two_versions();
    // Closed in 2025 (no version then), cancelled 2026-01-10: the version
    // in force on the cancellation takes it back, once.
    let input = json!({
        "period": "2026-Q1",
        "reps": [{"id": "r1"}],
        "deals": [{"id": "d0", "owner": "r1", "stage": "won", "amount": "2000", "closed_at": "2025-12-20",
                   "cancelled_at": "2026-01-10"}],
        "history": [{"rep": "r1", "period": "2025-Q4", "lines": [{"component": "commission", "amount": "200.00",
                     "by_deal": {"d0": "200.00"}}]}],
    });
    let d = decide(&s, &input);
    let lines = statement(&d, "r1")["lines"].as_array().unwrap().clone();
    let clawbacks: Vec<&Json> = lines.iter().filter(|l| l["component"] == "clawback").collect();
    assert_eq!(clawbacks.len(), 1, "{lines:#?}");
    assert_eq!(clawbacks[0]["amount"], "-200.00");
    assert_eq!(clawbacks[0]["version"], "2026-01-01");
}

#[test]
fn a_plan_of_one_version_names_no_version() {
    let s = load(&[version("2026-01-01", "2026-12-31", "0.10", "USD")]).unwrap();
    let input = json!({
        "period": "2026-Q1",
        "reps": [{"id": "r1"}],
        "deals": [{"id": "d1", "owner": "r1", "stage": "won", "amount": "10000", "closed_at": "2026-01-20"}],
    });
    let d = decide(&s, &input);
    assert!(statement(&d, "r1")["lines"][0].get("version").is_none());
}

#[test]
fn overlapping_versions_are_refused() {
    let e = load(&[
        version("2026-01-01", "2026-02-15", "0.10", "USD"),
        version("2026-02-15", "2026-12-31", "0.12", "USD"),
    ])
    .unwrap_err();
    assert!(
        e.contains("duplicate IncentivePlan name `ae`") && e.contains("overlap"),
        "{e}"
    );
}

#[test]
fn versions_in_two_currencies_are_refused() {
    let e = load(&[
        version("2026-01-01", "2026-02-14", "0.10", "USD"),
        version("2026-02-15", "2026-12-31", "0.12", "EUR"),
    ])
    .unwrap_err();
    assert!(e.contains("one currency"), "{e}");
}

#[test]
fn a_second_plan_of_one_name_without_effective_is_refused() {
    let plain = version("2026-01-01", "2026-12-31", "0.10", "USD")
        .replace("  effective: { from: 2026-01-01, to: 2026-12-31 }\n", "");
    let e = load(&[plain, version("2026-01-01", "2026-12-31", "0.12", "USD")]).unwrap_err();
    assert!(
        e.contains("duplicate IncentivePlan name `ae`") && e.contains("each need an `effective` range"),
        "{e}"
    );
}

/// A version of `ae` with two tiers (`upto 1000`, then above) and a cap of 250.
fn tiered_version(from: &str, to: &str, low: &str, high: &str) -> String {
    format!(
        "apiVersion: dealrules/v1\nkind: IncentivePlan\nmetadata: {{ name: ae }}\nspec:\n  effective: {{ from: {from}, to: {to} }}\n  period: quarter\n  currency: USD\n  credit: {{ when: 'deal.stage == \"won\"', amount: deal.amount }}\n  components:\n    - {{ id: commission, type: tiered, basis: amount, mode: marginal, cap: 250, tiers: [ {{ upto: 1000, rate: {low} }}, {{ rate: {high} }} ] }}\n"
    )
}

#[test]
fn tiers_fill_with_the_periods_credit_across_versions() {
    let s = load(&[
        tiered_version("2026-01-01", "2026-02-14", "0.10", "0.20"),
        tiered_version("2026-02-15", "2026-12-31", "0.12", "0.24"),
    ])
    .unwrap();
    let input = json!({
        "period": "2026-Q1",
        "reps": [{"id": "ana"}, {"id": "ben"}],
        "deals": [
            {"id": "d1", "owner": "ana", "stage": "won", "amount": "800", "closed_at": "2026-01-20"},
            {"id": "d2", "owner": "ana", "stage": "won", "amount": "600", "closed_at": "2026-03-02"},
            {"id": "d3", "owner": "ben", "stage": "won", "amount": "900", "closed_at": "2026-02-01"},
            {"id": "d4", "owner": "ben", "stage": "won", "amount": "900", "closed_at": "2026-03-01"},
        ],
    });
    let d = decide(&s, &input);
    // ana: 800 x 10% = 80.00 under the first version; the second goes on
    // from 800: 200 x 12% + 400 x 24% = 24 + 96 = 120.00 (not 600 x 12%).
    let ana = statement(&d, "ana");
    let amounts: Vec<&Json> = ana["lines"].as_array().unwrap().iter().map(|l| &l["amount"]).collect();
    assert_eq!(amounts, [&json!("80.00"), &json!("120.00")], "{ana:#}");
    assert!(
        ana["lines"][1]["explain"]
            .as_str()
            .unwrap()
            .starts_with("tiers from 800.00 credited under earlier versions"),
        "{ana:#}"
    );
    assert_eq!(ana["total"], "200.00");
    // ben: 900 x 10% = 90.00; then from 900: 100 x 12% + 800 x 24% =
    // 204.00, and the cap of 250 for the period leaves 160.00.
    let ben = statement(&d, "ben");
    let amounts: Vec<&Json> = ben["lines"].as_array().unwrap().iter().map(|l| &l["amount"]).collect();
    assert_eq!(amounts, [&json!("90.00"), &json!("160.00")], "{ben:#}");
    assert_eq!(ben["total"], "250.00");
}
