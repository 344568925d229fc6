//! The Calculation kind: steps in order, errors at their place in the file
//! naming the step, policy tests, and the same result from JSON text and
//! from a parsed input.

use dealrules_core::Snapshot;
use dealrules_expr::Value;
use dealrules_model::PackSource;

const NOW: &str = "2026-11-23T00:00:00Z";

const CALC: &str = r#"apiVersion: dealrules/v1
kind: Calculation
metadata: { name: deal-commission }
spec:
  vars: { cap: 20000 }
  steps:
    net:        "deal.amount * (1 - deal.discount_pct / 100)"
    rate:       "if deal.product in [\"core\", \"platform\"] { 0.08 } else { 0.05 }"
    commission: "min(round(net * rate, 2), vars.cap)"
  outputs: [commission]
"#;

fn load(files: &[(&str, &str)]) -> Result<Snapshot, String> {
    Snapshot::load(PackSource::from_texts(files.iter().copied())).map_err(|e| e.to_string())
}

#[test]
fn steps_run_in_order_and_the_result_shows_every_one() {
    let s = load(&[("calc.yaml", CALC)]).unwrap();
    let summary = s
        .summary(dealrules_model::Kind::Calculation, "deal-commission")
        .unwrap();
    assert_eq!(summary["steps_compiled_ahead_of_time"], 3);
    assert_eq!(summary["reads_input_through_slots"], true);
    let input = r#"{"deal": {"amount": 64125.35, "discount_pct": "12.5", "product": "platform", "notes": "x"}}"#;
    let from_text = serde_json::to_value(s.decide_json("deal-commission", input, NOW).unwrap()).unwrap();
    let parsed = Value::from_json_str(input).unwrap();
    let from_value = serde_json::to_value(s.decide("deal-commission", &parsed, NOW).unwrap()).unwrap();
    assert_eq!(from_text, from_value);
    from_text
        .as_object()
        .unwrap()
        .get("version")
        .expect("every result carries its version");
    assert_eq!(from_text["kind"], "Calculation");
    // 64125.35 x 0.875 = 56109.68125; x 0.08 = 4488.7745, half away from zero 4488.77
    assert_eq!(from_text["outputs"], serde_json::json!({"commission": "4488.77"}));
    assert_eq!(
        from_text["steps"],
        serde_json::json!({"net": "56109.68125", "rate": "0.08", "commission": "4488.77"})
    );
}

#[test]
fn a_step_reading_a_later_step_is_a_load_error() {
    let bad = CALC.replace("deal.amount * (1", "commission + deal.amount * (1");
    let err = load(&[("calc.yaml", &bad)]).unwrap_err();
    assert!(
        err.contains(
            "calc.yaml:7:17: Calculation/deal-commission step net: step `net` reads `commission`, which comes after it"
        ),
        "{err}"
    );
}

#[test]
fn bad_expressions_names_and_outputs_are_load_errors_at_their_place() {
    let bad = CALC
        .replace("min(round(net * rate, 2)", "min(round(net * , 2)")
        .replace("outputs: [commission]", "outputs: [comission]")
        .replace("    rate: ", "    now: ");
    let err = load(&[("calc.yaml", &bad)]).unwrap_err();
    for want in [
        "calc.yaml:9:34: Calculation/deal-commission step commission: bad expression:",
        "Calculation/deal-commission: `comission` is not a step of this calculation; did you mean `commission`?",
        "calc.yaml:8:16: Calculation/deal-commission step now: `now` is a reserved name",
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
}

#[test]
fn a_failing_step_names_itself() {
    let s = load(&[("calc.yaml", CALC)]).unwrap();
    let err = s
        .decide_json(
            "deal-commission",
            r#"{"deal": {"amount": 100, "discount_pct": 0}}"#,
            NOW,
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "deal-commission: step `rate`: deal.product is missing");
}

#[test]
fn policy_tests_check_calculations() {
    let tests = r#"tests:
  - name: platform deal pays 8 percent of net
    policy: deal-commission
    input: { deal: { amount: 10000, discount_pct: 10, product: platform } }
    expect: { outputs: { commission: "720.00" }, steps: { rate: 0.08 } }
  - name: a big deal is capped
    policy: deal-commission
    input: { deal: { amount: 1000000, discount_pct: 0, product: core } }
    expect: { outputs: { commission: 20000 } }
  - name: no product is an error
    policy: deal-commission
    input: { deal: { amount: 1, discount_pct: 0 } }
    expect_error: "step `rate`: deal.product is missing"
  - name: a wrong expectation fails
    policy: deal-commission
    input: { deal: { amount: 10000, discount_pct: 0, product: other } }
    expect: { outputs: { commission: "500.01" } }
"#;
    let s = load(&[("calc.yaml", CALC), ("tests/calc.yaml", tests)]).unwrap();
    let report = s.run_tests(NOW);
    assert_eq!((report.passed, report.failed), (3, 1), "{report:#?}");
    let failed = report.tests.iter().find(|t| !t.passed).unwrap();
    assert_eq!(failed.name, "a wrong expectation fails");
    assert!(
        failed
            .failure
            .as_deref()
            .unwrap()
            .contains("outputs.commission: expected \"500.01\", got \"500.00\""),
        "{failed:?}"
    );
}

#[test]
fn a_calculation_on_rhai_reads_the_whole_input() {
    let calc = CALC.replace(
        "if deal.product in [\\\"core\\\", \\\"platform\\\"]",
        "if deal.product.to_lower() == \\\"core\\\"",
    );
    let s = load(&[("calc.yaml", &calc)]).unwrap();
    let summary = s
        .summary(dealrules_model::Kind::Calculation, "deal-commission")
        .unwrap();
    assert_eq!(summary["steps_compiled_ahead_of_time"], 2);
    assert_eq!(summary["reads_input_through_slots"], false);
    let d = s
        .decide_json(
            "deal-commission",
            r#"{"deal": {"amount": 1000, "discount_pct": 0, "product": "CORE"}}"#,
            NOW,
        )
        .unwrap();
    assert_eq!(serde_json::to_value(d).unwrap()["outputs"]["commission"], "80.00");
}
