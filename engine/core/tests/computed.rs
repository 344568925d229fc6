//! Computed outputs of a DecisionTable (`{ expr: "..." }`): errors at their
//! place in the file, compiled like conditions, and computed only for the
//! rows that answer.

use dealrules_core::Snapshot;
use dealrules_expr::Value;
use dealrules_model::PackSource;

const NOW: &str = "2026-11-23T00:00:00Z";

fn table(commission: &str) -> String {
    format!(
        r#"apiVersion: dealrules/v1
kind: DecisionTable
metadata: {{ name: commission }}
spec:
  inputs: {{ net: "deal.amount * (1 - deal.discount_pct / 100)" }}
  outputs: [band, commission]
  rules:
    - {{ id: large, when: "net >= 100000", band: large, commission: {commission} }}
    - {{ id: small, band: small, commission: 0 }}
"#
    )
}

fn load(yaml: &str) -> Result<Snapshot, String> {
    Snapshot::load(PackSource::from_texts([("commission.yaml", yaml)])).map_err(|e| e.to_string())
}

#[test]
fn a_bad_computed_output_is_reported_at_its_line_and_column_naming_the_row() {
    let err = load(&table(r#"{ expr: "round(net * , 2)" }"#)).unwrap_err();
    // line 8; the expression starts at column 77, the stray `,` is at column 89
    assert!(
        err.contains("commission.yaml:8:89: DecisionTable/commission rule large: bad expression:"),
        "{err}"
    );
}

#[test]
fn expr_must_be_text_and_alone() {
    for bad in [r#"{ expr: 5 }"#, r#"{ expr: "net", places: 2 }"#] {
        let err = load(&table(bad)).unwrap_err();
        assert!(
            err.contains("DecisionTable/commission rule large: a computed output is written `{ expr: \"...\" }`"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn computed_outputs_are_compiled_ahead_of_time_and_read_through_slots() {
    let s = load(&table(r#"{ expr: "min(round(net * 0.08, 2), 20000)" }"#)).unwrap();
    let summary = s.decision_table("commission").unwrap().summary();
    assert_eq!(summary["computed_outputs"], 1);
    assert_eq!(summary["computed_outputs_compiled_ahead_of_time"], 1);
    assert_eq!(summary["reads_input_through_slots"], true);
    let input = r#"{"deal": {"amount": "150000.125", "discount_pct": 0}}"#;
    let d = serde_json::to_value(s.decide_json("commission", input, NOW).unwrap()).unwrap();
    // 150000.125 x 0.08 = 12000.01 exactly, under the cap
    assert_eq!(
        (&d["band"], &d["commission"]),
        (&"large".into(), &serde_json::json!(12000.01))
    );
    let parsed = Value::from_json_str(input).unwrap();
    let p = serde_json::to_value(s.decide("commission", &parsed, NOW).unwrap()).unwrap();
    assert_eq!(d, p);
}

#[test]
fn a_computed_output_on_rhai_still_works_and_the_table_reads_the_whole_input() {
    let s = load(&table(r#"{ expr: "deal.region.to_lower() + \"-\" + net" }"#)).unwrap();
    let summary = s.decision_table("commission").unwrap().summary();
    assert_eq!(summary["computed_outputs_compiled_ahead_of_time"], 0);
    assert_eq!(summary["reads_input_through_slots"], false);
    let input = r#"{"deal": {"amount": 200000, "discount_pct": 50, "region": "EMEA"}}"#;
    let d = serde_json::to_value(s.decide_json("commission", input, NOW).unwrap()).unwrap();
    assert_eq!(d["commission"], "emea-100000");
}

#[test]
fn only_the_answering_row_is_computed() {
    // The large row's output reads a field the input lacks; a small deal
    // never computes it.
    let s = load(&table(r#"{ expr: "net * deal.rate" }"#)).unwrap();
    let small = r#"{"deal": {"amount": 1000, "discount_pct": 0}}"#;
    let d = serde_json::to_value(s.decide_json("commission", small, NOW).unwrap()).unwrap();
    assert_eq!(d["band"], "small");
    let large = r#"{"deal": {"amount": 100000, "discount_pct": 0}}"#;
    let err = s.decide_json("commission", large, NOW).unwrap_err().to_string();
    assert_eq!(err, "commission: row `large` output `commission`: deal.rate is missing");
}
