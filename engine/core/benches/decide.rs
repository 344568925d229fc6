//! Decision speed, in process, one thread, JSON input parsing included.
//!
//! - `approval/compiled`: the spec's discount-approvals policy (4 rules, one
//!   escalation) with expressions lowered ahead of time.
//! - `approval/rhai`: the same policy with every expression run by Rhai.
//! - `approval/native`: the same logic hand-written in Rust, reading the
//!   same JSON into typed structs; the baseline for the overhead ratio.
//! - `table-1000/indexed` and `table-1000/scan`: a 1,000-row first-hit table
//!   (10 regions x 10 products x 10 amount bands), the matching row near the
//!   end, with and without the row index.
//! - `.../why-not`: the same decisions asking `"why_not": true`, so every
//!   unmatched rule says why (and the approval gives `to_reach`); what the
//!   opt-in costs.
//!
//! - `commission/calculation`: a deal's commission written whole in the
//!   pack as a Calculation (net, a product rate by `if`, an accelerator
//!   band, `min(round(..., 2), cap)`), compiled ahead of time;
//!   `commission/calculation-rhai` the same on Rhai; `commission/table`
//!   the same as a DecisionTable whose matched row computes the amount
//!   (`{ expr }` output); `commission/native` hand-written Rust reading the
//!   same JSON, the baseline.
//! - `many/approval+commission`: both policies over one input in one call
//!   (`decide_many_json`), against `many/two-calls`, each decided alone.
//!
//! Run: `cargo bench -p dealrules-core --bench decide`; medians are in
//! `target/criterion/*/*/new/estimates.json`.

use std::hint::black_box;
use std::str::FromStr;

use criterion::{Criterion, criterion_group, criterion_main};
use dealrules_core::Snapshot;
use dealrules_expr::{ExprEngine, Limits, Value};
use dealrules_model::PackSource;
use rust_decimal::Decimal;
use serde::Deserialize;

const APPROVALS: &str = r#"
apiVersion: dealrules/v1
kind: ApprovalPolicy
metadata: { name: discount-approvals }
spec:
  levels: [auto, manager, director, vp]
  rules:
    - { id: small, when: "deal.discount_pct <= 10 && deal.amount <= 50000",  level: auto }
    - { id: mid,   when: "deal.discount_pct <= 20 && deal.amount <= 250000", level: manager }
    - { id: large, when: "deal.discount_pct <= 30 || (deal.region == \"APAC\" && deal.discount_pct <= 35)", level: director }
    - { id: rest,  level: vp }
  escalate:
    - { id: long-terms, when: "deal.payment_terms_days > 60", by: 1 }
"#;

const INPUT: &str = r#"{"deal": {"id": "d-1001", "amount": 120000, "discount_pct": 22.5, "region": "APAC", "payment_terms_days": 90, "owner": "r1"}}"#;

const INPUT_WHY_NOT: &str = r#"{"deal": {"id": "d-1001", "amount": 120000, "discount_pct": 22.5, "region": "APAC", "payment_terms_days": 90, "owner": "r1"}, "why_not": true}"#;

const NOW: &str = "2026-11-23T00:00:00Z";

#[derive(Deserialize)]
struct NativeInput {
    deal: NativeDeal,
}

#[derive(Deserialize)]
struct NativeDeal {
    amount: Decimal,
    discount_pct: Decimal,
    region: String,
    payment_terms_days: Decimal,
}

/// The same policy, written by hand: level index and the rule that set it.
fn native_approval(input: &str) -> (usize, &'static str, bool) {
    let i: NativeInput = serde_json::from_str(input).expect("valid input");
    let d = &i.deal;
    let (mut level, rule) = if d.discount_pct <= Decimal::from(10) && d.amount <= Decimal::from(50000) {
        (0, "small")
    } else if d.discount_pct <= Decimal::from(20) && d.amount <= Decimal::from(250000) {
        (1, "mid")
    } else if d.discount_pct <= Decimal::from(30) || (d.region == "APAC" && d.discount_pct <= Decimal::from(35)) {
        (2, "large")
    } else {
        (3, "rest")
    };
    let escalated = d.payment_terms_days > Decimal::from(60);
    if escalated {
        level = (level + 1).min(3);
    }
    (level, rule, escalated)
}

fn table_pack() -> String {
    let mut yaml = String::from(
        "apiVersion: dealrules/v1\nkind: DecisionTable\nmetadata: { name: price-book }\nspec:\n  hit: first\n  inputs: { region: deal.region, product: deal.product, amount: deal.amount }\n  outputs: [list_price, max_discount]\n  rules:\n",
    );
    for r in 0..10 {
        for p in 0..10 {
            for band in 0..10 {
                let lo = band * 10_000;
                let hi = lo + 10_000;
                yaml.push_str(&format!(
                    "    - {{ id: r{r}-p{p}-b{band}, when: \"region == \\\"R{r}\\\" && product == \\\"P{p}\\\" && amount >= {lo} && amount < {hi}\", list_price: {}, max_discount: {} }}\n",
                    100 + r * 10 + p,
                    band
                ));
            }
        }
    }
    yaml
}

const COMMISSION: &str = r#"
apiVersion: dealrules/v1
kind: Calculation
metadata: { name: deal-commission }
spec:
  steps:
    net:         "deal.amount * (1 - deal.discount_pct / 100)"
    rate:        "if deal.product == \"core\" { 0.08 } else if deal.product == \"addon\" { 0.05 } else { 0.03 }"
    accelerator: "if rep.attainment > 1.5 { 2 } else if rep.attainment > 1.0 { 1.5 } else { 1 }"
    commission:  "min(round(net * rate * accelerator, 2), 20000)"
  outputs: [commission]
---
apiVersion: dealrules/v1
kind: DecisionTable
metadata: { name: commission-band }
spec:
  inputs:
    attainment: rep.attainment
    net: "deal.amount * (1 - deal.discount_pct / 100)"
    rate: "if deal.product == \"core\" { 0.08 } else if deal.product == \"addon\" { 0.05 } else { 0.03 }"
  outputs: [band, commission]
  rules:
    - { id: top,  when: "attainment > 1.5", band: top,  commission: { expr: "min(round(net * rate * 2, 2), 20000)" } }
    - { id: over, when: "attainment > 1.0", band: over, commission: { expr: "min(round(net * rate * 1.5, 2), 20000)" } }
    - { id: base, band: base, commission: { expr: "min(round(net * rate, 2), 20000)" } }
"#;

const COMMISSION_INPUT: &str = r#"{"deal": {"id": "d-1001", "amount": 120000, "discount_pct": 22.5, "region": "APAC", "payment_terms_days": 90, "owner": "r1", "product": "core"}, "rep": {"attainment": 1.3}}"#;

#[derive(Deserialize)]
struct NativeCommissionInput {
    deal: NativeCommissionDeal,
    rep: NativeRep,
}

#[derive(Deserialize)]
struct NativeCommissionDeal {
    amount: Decimal,
    discount_pct: Decimal,
    product: String,
}

#[derive(Deserialize)]
struct NativeRep {
    attainment: Decimal,
}

/// The same commission, written by hand.
fn native_commission(input: &str) -> Decimal {
    let i: NativeCommissionInput = serde_json::from_str(input).expect("valid input");
    let d = &i.deal;
    let net = d.amount * (Decimal::ONE - d.discount_pct / Decimal::ONE_HUNDRED);
    let rate = match d.product.as_str() {
        "core" => Decimal::new(8, 2),
        "addon" => Decimal::new(5, 2),
        _ => Decimal::new(3, 2),
    };
    let a = i.rep.attainment;
    let accelerator = if a > Decimal::new(15, 1) {
        Decimal::TWO
    } else if a > Decimal::ONE {
        Decimal::new(15, 1)
    } else {
        Decimal::ONE
    };
    let c = (net * rate * accelerator).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    c.min(Decimal::from(20000))
}

fn bench(c: &mut Criterion) {
    let src = || PackSource::from_texts([("approvals.yaml", APPROVALS)]);
    let compiled = Snapshot::load(src()).unwrap();
    let rhai = Snapshot::load_with_engine(src(), ExprEngine::rhai_only(Limits::default())).unwrap();
    assert!(compiled.approval_policy("discount-approvals").is_some());

    // All three give the same answer before anything is timed.
    let want = native_approval(INPUT);
    for s in [&compiled, &rhai] {
        let d = serde_json::to_value(s.decide_json("discount-approvals", INPUT, NOW).unwrap()).unwrap();
        assert_eq!(d["level"], ["auto", "manager", "director", "vp"][want.0]);
        assert_eq!(d["rule"], want.1);
        let w = serde_json::to_value(s.decide_json("discount-approvals", INPUT_WHY_NOT, NOW).unwrap()).unwrap();
        assert_eq!((&w["level"], &w["rule"]), (&d["level"], &d["rule"]));
        assert!(w["trace"][0]["why_not"].is_array() && w["to_reach"].is_array(), "{w}");
    }

    let mut g = c.benchmark_group("approval");
    g.bench_function("compiled", |b| {
        b.iter(|| {
            compiled
                .decide_json("discount-approvals", black_box(INPUT), NOW)
                .unwrap()
        })
    });
    g.bench_function("rhai", |b| {
        b.iter(|| rhai.decide_json("discount-approvals", black_box(INPUT), NOW).unwrap())
    });
    g.bench_function("native", |b| b.iter(|| native_approval(black_box(INPUT))));
    g.bench_function("compiled-why-not", |b| {
        b.iter(|| {
            compiled
                .decide_json("discount-approvals", black_box(INPUT_WHY_NOT), NOW)
                .unwrap()
        })
    });
    let parsed = Value::from_json_str(INPUT).unwrap();
    g.bench_function("compiled-decide-only", |b| {
        b.iter(|| compiled.decide("discount-approvals", black_box(&parsed), NOW).unwrap())
    });
    g.finish();

    let yaml = table_pack();
    let table_src = || PackSource::from_texts([("tables/price-book.yaml", yaml.as_str())]);
    let indexed = Snapshot::load(table_src()).unwrap();
    assert!(indexed.decision_table("price-book").unwrap().is_indexed());
    let scan = {
        let mut s = Snapshot::load(table_src()).unwrap();
        s.disable_table_indexes();
        s
    };
    // Row 979 of 1,000: region R9, product P7, band 9.
    let input = r#"{"deal": {"region": "R9", "product": "P7", "amount": 95000.50}}"#;
    let input_why_not = r#"{"deal": {"region": "R9", "product": "P7", "amount": 95000.50}, "why_not": true}"#;
    for s in [&indexed, &scan] {
        let d = serde_json::to_value(s.decide_json("price-book", input, NOW).unwrap()).unwrap();
        assert_eq!(d["rule"], "r9-p7-b9");
        assert_eq!(d["list_price"], 197);
        let w = serde_json::to_value(s.decide_json("price-book", input_why_not, NOW).unwrap()).unwrap();
        assert_eq!(w["rule"], "r9-p7-b9");
        let trace = w["trace"].as_array().unwrap();
        assert!(
            trace.iter().all(|t| t["matched"] == true || t["why_not"].is_array()),
            "{w}"
        );
    }
    let mut g = c.benchmark_group("table-1000");
    g.bench_function("indexed", |b| {
        b.iter(|| indexed.decide_json("price-book", black_box(input), NOW).unwrap())
    });
    g.bench_function("scan", |b| {
        b.iter(|| scan.decide_json("price-book", black_box(input), NOW).unwrap())
    });
    g.bench_function("indexed-why-not", |b| {
        b.iter(|| {
            indexed
                .decide_json("price-book", black_box(input_why_not), NOW)
                .unwrap()
        })
    });
    g.bench_function("scan-why-not", |b| {
        b.iter(|| scan.decide_json("price-book", black_box(input_why_not), NOW).unwrap())
    });
    g.finish();

    let both = || PackSource::from_texts([("approvals.yaml", APPROVALS), ("commission.yaml", COMMISSION)]);
    let formula = Snapshot::load(both()).unwrap();
    let formula_rhai = Snapshot::load_with_engine(both(), ExprEngine::rhai_only(Limits::default())).unwrap();
    let want = native_commission(COMMISSION_INPUT);
    assert_eq!(want.to_string(), "11160.00");
    for s in [&formula, &formula_rhai] {
        let d = serde_json::to_value(s.decide_json("deal-commission", COMMISSION_INPUT, NOW).unwrap()).unwrap();
        assert_eq!(d["outputs"]["commission"], want.to_string());
        let t = serde_json::to_value(s.decide_json("commission-band", COMMISSION_INPUT, NOW).unwrap()).unwrap();
        assert_eq!(
            (&t["rule"], t["commission"].to_string()),
            (&"over".into(), "11160".to_string())
        );
    }
    assert_eq!(
        formula.calculation("deal-commission").unwrap().summary()["steps_compiled_ahead_of_time"],
        4
    );
    let mut g = c.benchmark_group("commission");
    g.bench_function("calculation", |b| {
        b.iter(|| {
            formula
                .decide_json("deal-commission", black_box(COMMISSION_INPUT), NOW)
                .unwrap()
        })
    });
    g.bench_function("calculation-rhai", |b| {
        b.iter(|| {
            formula_rhai
                .decide_json("deal-commission", black_box(COMMISSION_INPUT), NOW)
                .unwrap()
        })
    });
    g.bench_function("table", |b| {
        b.iter(|| {
            formula
                .decide_json("commission-band", black_box(COMMISSION_INPUT), NOW)
                .unwrap()
        })
    });
    g.bench_function("native", |b| b.iter(|| native_commission(black_box(COMMISSION_INPUT))));
    g.finish();

    let policies = ["discount-approvals", "deal-commission"];
    let many = formula.decide_many_json(&policies, COMMISSION_INPUT, NOW).unwrap();
    assert!(many.all_decided());
    let mut g = c.benchmark_group("many");
    g.bench_function("approval+commission", |b| {
        b.iter(|| {
            formula
                .decide_many_json(&policies, black_box(COMMISSION_INPUT), NOW)
                .unwrap()
        })
    });
    g.bench_function("two-calls", |b| {
        b.iter(|| {
            (
                formula
                    .decide_json("discount-approvals", black_box(COMMISSION_INPUT), NOW)
                    .unwrap(),
                formula
                    .decide_json("deal-commission", black_box(COMMISSION_INPUT), NOW)
                    .unwrap(),
            )
        })
    });
    g.finish();

    // Parsing alone, for reading the figures above.
    c.bench_function("parse-input-only", |b| {
        b.iter(|| Value::from_json_str(black_box(INPUT)).unwrap())
    });
    let _ = Decimal::from_str("0");
}

criterion_group!(benches, bench);
criterion_main!(benches);
