//! Rates per product line in an IncentivePlan: a component's `when`, and
//! `type: rate` with a rate per deal from a number, an expression or a
//! DecisionTable. The worked example is `examples/commissions`.

use std::path::Path;

use dealrules_core::Snapshot;
use dealrules_expr::Value;
use dealrules_model::PackSource;

const NOW: &str = "2026-04-05T00:00:00Z";

fn example() -> Snapshot {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/commissions");
    Snapshot::load(PackSource::from_dir(&dir).unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_commissions_example_pack_tests_pass() {
    let report = example().run_tests(NOW);
    let failures: Vec<_> = report.tests.iter().filter(|t| !t.passed).collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(report.passed, 4);
}

#[test]
fn statements_for_the_sample_data_add_up_to_the_cent() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/commissions");
    let input = std::fs::read_to_string(dir.join("data/2026-q1.json")).unwrap();
    let s = example();
    let d = serde_json::to_value(s.decide_json("ae-products-2026", &input, NOW).unwrap()).unwrap();
    let st = d["statements"].as_array().unwrap();
    let lines = |i: usize| -> Vec<(String, String)> {
        st[i]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["component"].as_str().unwrap().to_string(), l["amount"].to_string()))
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), format!("\"{b}\""))).collect()
    };
    assert_eq!(
        lines(0),
        pairs(&[
            ("core-commission", "7000.00"),
            ("product-rate", "4200.00"),
            ("services-kicker", "1200.00")
        ])
    );
    assert_eq!(
        lines(1),
        pairs(&[
            ("core-commission", "0.00"),
            ("product-rate", "1313.84"),
            ("services-kicker", "0.00")
        ])
    );
    // The split deal d5 pays 2,000.00 as one deal: 1,200.00 + 800.00.
    let part = |i: usize| st[i]["lines"][1]["by_deal"]["d5"].as_str().unwrap().to_string();
    assert_eq!((part(0), part(1)), ("1200.00".to_string(), "800.00".to_string()));
    assert_eq!(
        st[1]["lines"][1]["explain"],
        "d5: split deal paid as one, 33333.33 x 6% = 2000.00, 40% of it by largest remainder = 800.00; \
         d6: 12345.67 x 4% = 493.83; d8: 1000.50 x 2% = 20.01"
    );
}

/// Every split of a deal into parts, at any rate, adds up to what the deal
/// pays unsplit: the rate component never invents or loses a cent.
#[test]
fn split_deals_paid_at_a_rate_add_up_to_the_unsplit_deal() {
    let plan = r#"apiVersion: dealrules/v1
kind: IncentivePlan
metadata: { name: p }
spec:
  period: quarter
  currency: USD
  credit: { when: "true", amount: deal.amount, splits: deal.splits }
  components:
    - { id: c, type: rate, rate: deal.rate }
"#;
    let s = Snapshot::load(PackSource::from_texts([("p.yaml", plan)])).unwrap();
    for (amount, rate, shares) in [
        ("8.00", "1", vec!["0.3333333", "0.3333333", "0.3333334"]),
        ("33333.33", "0.06", vec!["0.6", "0.4"]),
        ("100.01", "0.015", vec!["0.5", "0.5"]),
        ("9999.99", "0.0725", vec!["0.2", "0.3", "0.5"]),
    ] {
        let reps: Vec<String> = (0..shares.len()).map(|i| format!(r#"{{"id": "r{i}"}}"#)).collect();
        let splits: Vec<String> = shares
            .iter()
            .enumerate()
            .map(|(i, sh)| format!(r#"{{"rep": "r{i}", "share": {sh}}}"#))
            .collect();
        let input = format!(
            r#"{{"period": "2026-Q1", "reps": [{}], "deals": [{{"id": "d", "owner": "r0", "amount": {amount}, "rate": {rate}, "closed_at": "2026-02-01", "splits": [{}]}}]}}"#,
            reps.join(","),
            splits.join(",")
        );
        let d = serde_json::to_value(s.decide_json("p", &input, NOW).unwrap()).unwrap();
        let paid: rust_decimal::Decimal = d["statements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|st| st["total"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap())
            .sum();
        let whole = (amount.parse::<rust_decimal::Decimal>().unwrap() * rate.parse::<rust_decimal::Decimal>().unwrap())
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        assert_eq!(paid, whole, "{amount} x {rate} split {shares:?}");
    }
}

#[test]
fn a_rate_must_come_from_a_table_that_answers_once_with_that_output() {
    let table = r#"apiVersion: dealrules/v1
kind: DecisionTable
metadata: { name: rates }
spec:
  hit: collect
  inputs: { product: deal.product }
  outputs: [rate]
  rules:
    - { rate: 0.05 }
"#;
    let plan = |rate: &str| {
        format!(
            r#"apiVersion: dealrules/v1
kind: IncentivePlan
metadata: {{ name: p }}
spec:
  period: quarter
  currency: USD
  credit: {{ when: "true", amount: deal.amount }}
  components:
    - {{ id: c, type: rate, when: "deal.product ==", rate: {rate} }}
"#
        )
    };
    let errors = |rate: &str| {
        Snapshot::load(PackSource::from_texts([
            ("t.yaml", table),
            ("p.yaml", plan(rate).as_str()),
        ]))
        .unwrap_err()
        .to_string()
    };
    let e = errors("{ table: rate, output: rate }");
    assert!(
        e.contains("IncentivePlan/p component c: no DecisionTable `rate` in the pack; did you mean `rates`?"),
        "{e}"
    );
    assert!(
        e.contains("p.yaml:9:50: IncentivePlan/p component c: bad expression:"),
        "{e}"
    );
    let e = errors("{ table: rates, output: pct }");
    assert!(e.contains("table `rates` has no output `pct` (outputs: rate)"), "{e}");
    assert!(
        e.contains("table `rates` collects rows; a rate needs one answer"),
        "{e}"
    );
    let e = errors("-0.01");
    assert!(e.contains("a rate cannot be negative"), "{e}");
}

#[test]
fn a_deal_without_a_rate_fails_the_statement_naming_component_and_deal() {
    let s = example();
    let input = r#"{"period": "2026-Q1", "reps": [{"id": "r1", "role": "ae"}],
        "deals": [{"id": "x1", "owner": "r1", "amount": 100, "stage": "won", "closed_at": "2026-02-01"}]}"#;
    let err = s.decide_json("ae-products-2026", input, NOW).unwrap_err().to_string();
    assert_eq!(
        err,
        "ae-products-2026: component `core-commission` when for deal `x1`: deal.product is missing"
    );
    // A rate that is not a number names the component and the deal too.
    let text_rate = r#"apiVersion: dealrules/v1
kind: IncentivePlan
metadata: { name: p }
spec:
  period: quarter
  currency: USD
  credit: { when: "true", amount: deal.amount }
  components:
    - { id: c, type: rate, rate: deal.rate }
"#;
    let s = Snapshot::load(PackSource::from_texts([("p.yaml", text_rate)])).unwrap();
    let input = Value::from_json_str(
        r#"{"period": "2026-Q1", "reps": [{"id": "r1"}],
        "deals": [{"id": "x1", "owner": "r1", "amount": 100, "rate": "high", "closed_at": "2026-02-01"}]}"#,
    )
    .unwrap();
    let err = s.decide("p", &input, NOW).unwrap_err().to_string();
    assert_eq!(
        err,
        "p: component `c` rate for deal `x1` gave text `high`, not a number"
    );
}
