//! Regressions in the money of incentive statements, each named after the
//! bug it pins: split payouts that invented a cent, amounts sent as text,
//! numbers rounded twice, and sums past the decimal's range that panicked.

use std::sync::Arc;

use dealrules_core::{DecideError, PluginCall, PluginRuntime, Snapshot};
use dealrules_expr::Value;
use dealrules_model::PackSource;
use serde_json::{Value as Json, json};

const NOW: &str = "2026-04-01T00:00:00Z";

/// A pack of one plan named `p`, quarterly in USD, crediting `deal.amount`
/// split by `deal.splits`, with `rest` appended to its spec.
fn plan(rest: &str) -> Snapshot {
    let yaml = format!(
        "apiVersion: dealrules/v1\nkind: IncentivePlan\nmetadata: {{ name: p }}\nspec:\n  period: quarter\n  currency: USD\n  credit: {{ when: 'true', amount: deal.amount, splits: deal.splits }}\n{rest}"
    );
    Snapshot::load(PackSource::from_texts([("p.yaml", yaml.as_str())])).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn decide(s: &Snapshot, input: &Json) -> Result<Json, DecideError> {
    // The JSON text and the parsed value take different roads; they agree.
    let from_text = s
        .decide_json("p", &input.to_string(), NOW)
        .map(|d| serde_json::to_value(&d).unwrap());
    let from_value = s
        .decide("p", &Value::from_json(input), NOW)
        .map(|d| serde_json::to_value(&d).unwrap());
    assert_eq!(from_text, from_value);
    from_value
}

fn money(v: &Json) -> rust_decimal::Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("{v} is not money"))
        .parse()
        .unwrap()
}

fn line_amounts(d: &Json) -> Vec<String> {
    d["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["lines"][0]["amount"].as_str().unwrap().to_string())
        .collect()
}

const FLAT_10: &str =
    "  components:\n    - { id: commission, type: tiered, basis: amount, tiers: [ { rate: 0.10 } ] }\n";

#[test]
fn split_of_80_in_thirds_pays_8_00_not_8_01() {
    let s = plan(FLAT_10);
    let input = json!({
        "period": "2026-Q1",
        "reps": [{"id": "r1"}, {"id": "r2"}, {"id": "r3"}],
        "deals": [{"id": "d1", "owner": "r1", "amount": 80.00, "closed_at": "2026-02-10",
                   "splits": [{"rep": "r1", "share": 0.3333}, {"rep": "r2", "share": 0.3333}, {"rep": "r3", "share": 0.3334}]}]
    });
    let d = decide(&s, &input).unwrap();
    let credits: Vec<&str> = d["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["credit"].as_str().unwrap())
        .collect();
    assert_eq!(credits, ["26.67", "26.66", "26.67"]);
    // 8.00 by largest remainder over 0.3333/0.3333/0.3334: 2.6664, 2.6664
    // and 2.6672 floor to 2.66 each; the two cents left go to r3, then r1.
    assert_eq!(line_amounts(&d), ["2.67", "2.66", "2.67"]);
    let paid: rust_decimal::Decimal = d["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| money(&s["total"]))
        .sum();
    assert_eq!(paid.to_string(), "8.00");
    // The line that differs from its own credit x rate says why.
    let r2 = &d["statements"][1]["lines"][0];
    assert_eq!(
        r2["explain"],
        "d1: split deal paid as one, 80.00 x 10% = 8.00, 33.33% of it by largest remainder = 2.66"
    );
    assert_eq!(r2["by_deal"], json!({"d1": "2.66"}));
    // Lines whose plain arithmetic gives the same amount keep it.
    assert_eq!(d["statements"][0]["lines"][0]["explain"], "26.67 x 10%");
}

#[test]
fn split_deal_pays_as_one_next_to_the_reps_own_deals() {
    let s = plan(FLAT_10);
    let input = json!({
        "period": "2026-Q1",
        "reps": [{"id": "r1"}, {"id": "r2"}, {"id": "r3"}],
        "deals": [
            {"id": "own1", "owner": "r1", "amount": 10.05, "closed_at": "2026-01-10"},
            {"id": "own2", "owner": "r2", "amount": 0.04, "closed_at": "2026-01-11"},
            {"id": "own3", "owner": "r3", "amount": 0.05, "closed_at": "2026-01-12"},
            {"id": "d1", "owner": "r1", "amount": 8.00, "closed_at": "2026-02-10",
             "splits": [{"rep": "r1", "share": 0.3333333333}, {"rep": "r2", "share": 0.3333333333}, {"rep": "r3", "share": 0.3333333333}]}
        ]
    });
    let d = decide(&s, &input).unwrap();
    let statements = d["statements"].as_array().unwrap();
    // d1 pays 0.80 as a whole, 0.27 + 0.27 + 0.26, whatever else each rep sold.
    let d1: Vec<&str> = statements
        .iter()
        .map(|s| s["lines"][0]["by_deal"]["d1"].as_str().unwrap())
        .collect();
    assert_eq!(d1, ["0.27", "0.27", "0.26"]);
    for st in statements {
        let line = &st["lines"][0];
        let by_deal: rust_decimal::Decimal = line["by_deal"].as_object().unwrap().values().map(money).sum();
        assert_eq!(by_deal, money(&line["amount"]), "{line}");
    }
    // r3's own 0.05 pays 0.005 -> 0.01, rounded once on its own; d1 adds 0.26.
    assert_eq!(statements[2]["lines"][0]["amount"], "0.27");
    assert_eq!(
        statements[2]["lines"][0]["explain"],
        "0.05 x 10% = 0.01; d1: split deal paid as one, 8.00 x 10% = 0.80, 33.33333333% of it by largest remainder = 0.26"
    );
}

#[test]
fn split_reps_in_different_bands_each_pay_their_own_rate() {
    // Retroactive tiers: r1's 70% of 10,000.00 reaches the 8% band, r2's
    // 30% stays at 5%. There is no one rate for the deal, so each rep pays
    // its own credit at its own rate, rounded once.
    let s = plan(
        "  components:\n    - { id: c, type: tiered, basis: amount, mode: retroactive, tiers: [ { upto: 5000, rate: 0.05 }, { rate: 0.08 } ] }\n",
    );
    let input = json!({
        "period": "2026-Q1",
        "reps": [{"id": "r1"}, {"id": "r2"}],
        "deals": [{"id": "d1", "owner": "r1", "amount": 10000.01, "closed_at": "2026-02-10",
                   "splits": [{"rep": "r1", "share": 0.7}, {"rep": "r2", "share": 0.3}]}]
    });
    let d = decide(&s, &input).unwrap();
    // Credits 7000.01 (7000.007 -> 7000.00 plus the cent left) and 3000.00.
    assert_eq!(d["statements"][0]["credit"], "7000.01");
    assert_eq!(d["statements"][1]["credit"], "3000.00");
    assert_eq!(line_amounts(&d), ["560.00", "150.00"]);
    assert_eq!(d["statements"][0]["lines"][0]["explain"], "7000.01 x 8%");
    assert_eq!(d["statements"][1]["lines"][0]["explain"], "3000.00 x 5%");
}

#[test]
fn a_cap_that_binds_takes_the_split_deal_out_of_paying_as_one() {
    let s = plan("  components:\n    - { id: c, type: tiered, basis: amount, tiers: [ { rate: 0.10 } ], cap: 2.66 }\n");
    let input = json!({
        "period": "2026-Q1",
        "reps": [{"id": "r1"}, {"id": "r2"}, {"id": "r3"}],
        "deals": [{"id": "d1", "owner": "r1", "amount": 80.00, "closed_at": "2026-02-10",
                   "splits": [{"rep": "r1", "share": 0.3333}, {"rep": "r2", "share": 0.3333}, {"rep": "r3", "share": 0.3334}]}]
    });
    let d = decide(&s, &input).unwrap();
    // Paid as one, r1 and r3 would get 2.67, over the cap: every line is
    // capped on its own credit instead, and none pays more than the cap.
    assert_eq!(line_amounts(&d), ["2.66", "2.66", "2.66"]);
    assert!(
        d["statements"][0]["lines"][0]["explain"]
            .as_str()
            .unwrap()
            .ends_with("capped at 2.66")
    );
}

#[test]
fn amount_sent_as_numeric_text_is_read_as_the_number() {
    let s = plan(
        "  quota: rep.quota\n  components:\n    - { id: c, type: tiered, basis: attainment, tiers: [ { rate: 0.10 } ] }\n    - id: card\n      type: scorecard\n      target_bonus: 1000\n      metrics:\n        - { id: csat, weight: 1, actual: rep.csat, target: rep.csat_target }\n",
    );
    let as_numbers = json!({
        "period": "2026-Q1",
        "reps": [{"id": "r1", "quota": 100, "csat": 45, "csat_target": 90}, {"id": "r2", "quota": 100, "csat": 90, "csat_target": 90}],
        "deals": [{"id": "d1", "owner": "r1", "amount": 1.005, "closed_at": "2026-02-10",
                   "splits": [{"rep": "r1", "share": 0.6}, {"rep": "r2", "share": 0.4}]}]
    });
    let as_text = json!({
        "period": "2026-Q1",
        "reps": [{"id": "r1", "quota": "100", "csat": "45", "csat_target": " 90 "}, {"id": "r2", "quota": "1e2", "csat": "90", "csat_target": "90.0"}],
        "deals": [{"id": "d1", "owner": "r1", "amount": "1.005", "closed_at": "2026-02-10",
                   "splits": [{"rep": "r1", "share": "0.6"}, {"rep": "r2", "share": "0.40"}]}]
    });
    let (a, b) = (decide(&s, &as_numbers).unwrap(), decide(&s, &as_text).unwrap());
    assert_eq!(a, b);
    // 1.005 is credited as 1.01 (half up, once), split 0.61 / 0.40.
    assert_eq!(b["statements"][0]["credit"], "0.61");
    assert_eq!(b["statements"][1]["credit"], "0.40");
    assert_eq!(b["statements"][0]["lines"][1]["amount"], "500.00");
    // Text that is not a number still fails, and says what it was.
    let mut bad = as_text.clone();
    bad["deals"][0]["amount"] = json!("1.005 USD");
    let err = decide(&s, &bad).unwrap_err().to_string();
    assert!(
        err.contains("credit.amount for deal `d1` gave text `1.005 USD`, not a number"),
        "{err}"
    );
}

#[test]
fn history_amounts_that_are_not_numbers_are_errors_not_zero() {
    let s = plan(
        "  components:\n    - { id: c, type: tiered, basis: amount, tiers: [ { rate: 0.10 } ] }\n  clawback: { within: 90d, share: 1.0 }\n",
    );
    let input = |paid: Json| {
        json!({
            "period": "2026-Q2",
            "reps": [{"id": "r1"}],
            "deals": [{"id": "d1", "owner": "r1", "amount": 1000, "closed_at": "2026-03-01", "cancelled_at": "2026-04-15"}],
            "history": [{"rep": "r1", "lines": [{"component": "c", "by_deal": {"d1": paid}}]}]
        })
    };
    let d = decide(&s, &input(json!("100.00"))).unwrap();
    assert_eq!(d["statements"][0]["lines"][1]["amount"], "-100.00");
    let err = decide(&s, &input(json!("a hundred"))).unwrap_err();
    assert!(matches!(err, DecideError::BadInput(_)), "{err}");
    assert!(
        err.to_string()
            .contains("`by_deal.d1` is text `a hundred`, not a number"),
        "{err}"
    );
}

/// 1.00499999999999999999999999999999 rounds half up to 1.00. Read into a
/// 28-digit decimal it became 1.005 first, and then 1.01.
const TOO_PRECISE: &str = "1.00499999999999999999999999999999";

#[test]
fn a_number_with_more_digits_than_a_decimal_holds_is_refused_not_rounded_twice() {
    let s = plan(FLAT_10);
    let text = format!(
        r#"{{"period": "2026-Q1", "reps": [{{"id": "r1"}}], "deals": [{{"id": "d1", "owner": "r1", "amount": {TOO_PRECISE}, "closed_at": "2026-02-10"}}]}}"#
    );
    let err = s.decide_json("p", &text, NOW).unwrap_err();
    assert!(matches!(err, DecideError::BadInput(_)), "{err}");
    assert!(
        err.to_string().contains(&format!(
            "number {TOO_PRECISE} has more digits than an exact decimal holds"
        )),
        "{err}"
    );
    let parsed = serde_json::from_str::<Json>(&text).unwrap();
    assert!(
        s.decide("p", &Value::from_json(&parsed), NOW)
            .unwrap_err()
            .to_string()
            .contains("has more digits than an exact decimal holds")
    );
    // As text, the same.
    let mut as_text = parsed.clone();
    as_text["deals"][0]["amount"] = json!(TOO_PRECISE);
    let err = decide(&s, &as_text).unwrap_err().to_string();
    assert!(err.contains("has more digits than an exact decimal holds"), "{err}");
    // Digits an exact decimal holds are read as they are.
    as_text["deals"][0]["amount"] = json!("1.004999999999999999999999999");
    assert_eq!(decide(&s, &as_text).unwrap()["statements"][0]["credit"], "1.00");
}

/// Answers every call with one fixed JSON text.
struct Answers(&'static str);

impl PluginRuntime for Answers {
    fn call(&self, _: &str, _: &str, _: &Json) -> Result<PluginCall, dealrules_core::PluginCallError> {
        Ok(PluginCall {
            value: serde_json::from_str(self.0).unwrap(),
            fuel_used: 1,
            micros: 1,
            log: vec![],
        })
    }
}

fn plugin_plan(answer: &'static str) -> Snapshot {
    use sha2::Digest;
    let module = "not really wasm: the test runtime answers instead";
    let sha = hex::encode(sha2::Sha256::digest(module.as_bytes()));
    let manifest = format!(
        "apiVersion: dealrules/v1\nkind: Plugin\nmetadata: {{ name: fx }}\nspec:\n  wasm: fx.wasm\n  sha256: {sha}\n  exports: [payout]\n"
    );
    let yaml = "apiVersion: dealrules/v1\nkind: IncentivePlan\nmetadata: { name: p }\nspec:\n  period: quarter\n  currency: USD\n  credit: { when: 'true', amount: deal.amount }\n  components:\n    - { id: fx, type: plugin, plugin: fx, function: payout }\n";
    let mut s = Snapshot::load(PackSource::from_texts([
        ("p.yaml", yaml),
        ("fx.yaml", manifest.as_str()),
        ("fx.wasm", module),
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    s.attach_plugins(Arc::new(Answers(answer)));
    s
}

#[test]
fn a_plugin_answer_with_more_digits_than_a_decimal_holds_is_refused_not_rounded_twice() {
    let input = json!({"period": "2026-Q1", "reps": [{"id": "r1"}], "deals": []});
    for answer in [
        "1.00499999999999999999999999999999",
        r#"{"amount": 1.00499999999999999999999999999999}"#,
        r#"{"amount": "1.00499999999999999999999999999999"}"#,
    ] {
        let err = plugin_plan(answer)
            .decide("p", &Value::from_json(&input), NOW)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("has more digits than an exact decimal holds"),
            "{answer}: {err}"
        );
    }
    // A plugin answering money as text is read exactly, and rounded once.
    let s = plugin_plan(r#"{"amount": "1.004999999999999999999999999"}"#);
    let d = serde_json::to_value(s.decide("p", &Value::from_json(&input), NOW).unwrap()).unwrap();
    assert_eq!(d["statements"][0]["total"], "1.00");
}

/// The largest decimal, 2^96 - 1.
const MAX: &str = "79228162514264337593543950335";

fn overflow_at(err: DecideError) -> String {
    match err {
        DecideError::Overflow { at, .. } => at,
        other => panic!("expected an overflow error, got {other:?}"),
    }
}

#[test]
fn a_line_amount_near_the_decimal_maximum_is_an_overflow_error_not_a_panic() {
    // The reported crash: a line near the maximum added to another line.
    let s = plan(
        "  components:\n    - { id: all, type: tiered, basis: amount, tiers: [ { rate: 1 } ] }\n    - { id: bonus, type: spiff, when: 'true', amount: 500 }\n",
    );
    let deal = |id: &str, amount: &str| json!({"id": id, "owner": "r1", "amount": amount, "closed_at": "2026-02-10"});
    let input = json!({"period": "2026-Q1", "reps": [{"id": "r1"}], "deals": [deal("d1", MAX)]});
    assert_eq!(overflow_at(decide(&s, &input).unwrap_err()), "earned of rep `r1`");
    // Two deals whose credit adds up past the maximum.
    let input = json!({"period": "2026-Q1", "reps": [{"id": "r1"}], "deals": [deal("d1", MAX), deal("d2", "1")]});
    assert_eq!(overflow_at(decide(&s, &input).unwrap_err()), "credit of rep `r1`");
    // A rate that takes a payout past it names the component.
    let s = plan("  components:\n    - { id: double, type: tiered, basis: amount, tiers: [ { rate: 2 } ] }\n");
    let input =
        json!({"period": "2026-Q1", "reps": [{"id": "r1"}], "deals": [deal("d1", "50000000000000000000000000000")]});
    assert_eq!(
        overflow_at(decide(&s, &input).unwrap_err()),
        "component `double` for rep `r1`"
    );
    // So does a spiff paid on many deals (quoted: the pack loader reads
    // integers past 64 bits only from text).
    let s = plan(
        "  components:\n    - { id: bonus, type: spiff, when: 'true', amount: '40000000000000000000000000000' }\n",
    );
    let input = json!({"period": "2026-Q1", "reps": [{"id": "r1"}], "deals": [deal("d1", "1"), deal("d2", "1")]});
    assert_eq!(
        overflow_at(decide(&s, &input).unwrap_err()),
        "spiff `bonus` for rep `r1`"
    );
}

#[test]
fn a_split_deal_near_the_decimal_maximum_is_an_overflow_error_not_a_panic() {
    let s = plan(FLAT_10);
    let input = json!({"period": "2026-Q1", "reps": [{"id": "r1"}, {"id": "r2"}],
        "deals": [{"id": "d1", "owner": "r1", "amount": MAX, "closed_at": "2026-02-10",
                   "splits": [{"rep": "r1", "share": 0.5}, {"rep": "r2", "share": 0.5}]}]});
    // Dividing the credit multiplies it by each share first.
    assert_eq!(
        overflow_at(decide(&s, &input).unwrap_err()),
        "the credit of deal `d1` split among its reps"
    );
    // Below the maximum it divides exactly.
    let mut fits = input.clone();
    fits["deals"][0]["amount"] = json!("7922816251426433759354395033");
    let d = decide(&s, &fits).unwrap();
    // 10% of it is 792281625142643375935439503.30, in halves.
    assert_eq!(
        line_amounts(&d),
        ["396140812571321687967719751.65", "396140812571321687967719751.65"]
    );
}

#[test]
fn an_expression_that_overflows_is_an_error_naming_it() {
    let s = Snapshot::load(PackSource::from_texts([(
        "p.yaml",
        "apiVersion: dealrules/v1\nkind: IncentivePlan\nmetadata: { name: p }\nspec:\n  period: quarter\n  currency: USD\n  credit: { when: 'true', amount: deal.amount * 10 }\n  components:\n    - { id: c, type: tiered, basis: amount, tiers: [ { rate: 0.1 } ] }\n",
    )]))
    .unwrap();
    let input = json!({"period": "2026-Q1", "reps": [{"id": "r1"}], "deals": [{"id": "d1", "owner": "r1", "amount": MAX, "closed_at": "2026-02-10"}]});
    let err = s.decide("p", &Value::from_json(&input), NOW).unwrap_err();
    assert!(matches!(err, DecideError::Eval { .. }), "{err:?}");
    assert!(err.to_string().contains("credit.amount for deal `d1`"), "{err}");
}

#[test]
fn pack_numbers_that_add_up_past_the_decimal_maximum_are_load_errors_not_a_panic() {
    let yaml = format!(
        "apiVersion: dealrules/v1\nkind: IncentivePlan\nmetadata: {{ name: p }}\nspec:\n  period: quarter\n  currency: USD\n  credit: {{ when: 'true', amount: deal.amount }}\n  components:\n    - id: card\n      type: scorecard\n      target_bonus: 1000\n      metrics:\n        - {{ id: a, weight: '{MAX}', actual: '1', target: 1 }}\n        - {{ id: b, weight: '{MAX}', actual: '1', target: 1 }}\n"
    );
    let err = Snapshot::load(PackSource::from_texts([("p.yaml", yaml.as_str())]))
        .expect_err("the pack is refused")
        .to_string();
    assert!(
        err.contains("metric weights must sum to 1, they sum to more than the largest decimal"),
        "{err}"
    );
}

#[test]
fn targets_beyond_the_decimal_maximum_are_an_error_not_a_panic() {
    // The shares sum to 1, but the first one takes the total out of range.
    let yaml = format!(
        "apiVersion: dealrules/v1\nkind: Targets\nmetadata: {{ name: t }}\nspec:\n  measure: bookings\n  year: 2026\n  total: 1000\n  split:\n    - by: region\n      shares: {{ NA: '{MAX}', EMEA: '-79228162514264337593543950334' }}\n"
    );
    let s = Snapshot::load(PackSource::from_texts([("t.yaml", yaml.as_str())])).unwrap_or_else(|e| panic!("{e}"));
    let input = json!({"reps": [{"id": "r1", "region": "NA"}]});
    let err = s.decide("t", &Value::from_json(&input), NOW).unwrap_err().to_string();
    assert!(err.contains("the target of rep `r1` is out of range"), "{err}");
}
