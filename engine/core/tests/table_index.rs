//! The row index never changes a table's answer: random tables and inputs,
//! decided with the index and by a plain scan, give the same result.

use dealrules_core::Snapshot;
use dealrules_expr::Value;
use dealrules_model::PackSource;
use proptest::prelude::*;

/// "7" reads as a number: a row testing `region == "7"` matches the number 7.
const REGIONS: [&str; 4] = ["NA", "EMEA", "APAC", "7"];

fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..4usize).prop_map(|r| format!("region == \"{}\"", REGIONS[r])),
        (0..4usize, 0..4usize).prop_map(|(a, b)| format!("region in [\"{}\", \"{}\"]", REGIONS[a], REGIONS[b])),
        (0..6i64, prop::sample::select(vec![">=", ">", "<", "<=", "==", "!="]))
            .prop_map(|(n, op)| format!("amount {op} {}", n * 1000)),
        (0..6i64).prop_map(|n| format!("{n}000 <= amount")),
        any::<bool>().prop_map(|b| format!("vip == {b}")),
        // not indexable: must stay a candidate
        Just("amount % 2000 == 0".to_string()),
        Just("region != \"NA\" || vip".to_string()),
    ]
}

fn row() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        8 => prop::collection::vec(atom(), 1..4).prop_map(|atoms| Some(atoms.join(" && "))),
    ]
}

fn table(hit: &str, rows: &[Option<String>]) -> String {
    let mut y = format!(
        "apiVersion: dealrules/v1\nkind: DecisionTable\nmetadata: {{ name: t }}\nspec:\n  hit: {hit}\n  inputs: {{ region: deal.region, amount: deal.amount, vip: deal.vip }}\n  outputs: [n]\n  rules:\n"
    );
    for (i, r) in rows.iter().enumerate() {
        let when = r.as_ref().map(|w| format!(", when: '{w}'")).unwrap_or_default();
        y.push_str(&format!("    - {{ id: r{i}, priority: {}, n: {i}{when} }}\n", i % 7));
    }
    y
}

fn comparable(d: Result<serde_json::Value, String>) -> Result<serde_json::Value, String> {
    d.map(|mut v| {
        let o = v.as_object_mut().unwrap();
        o.remove("trace");
        o.remove("skipped");
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn index_and_scan_agree(
        hit in prop::sample::select(vec!["first", "unique", "priority", "collect"]),
        rows in prop::collection::vec(row(), 16..48),
        inputs in prop::collection::vec((0..5usize, prop_oneof![(0..7i64).prop_map(|n| n * 1000), -1i64..7000], any::<bool>()), 12),
    ) {
        let yaml = table(hit, &rows);
        let src = || PackSource::from_texts([("t.yaml", yaml.as_str())]);
        let indexed = Snapshot::load(src()).unwrap();
        let mut scan = Snapshot::load(src()).unwrap();
        scan.disable_table_indexes();
        for (r, amount, vip) in inputs {
            // region 4 is a number: the index must fall back, not guess
            let region = if r < 4 { format!("\"{}\"", REGIONS[r]) } else { "7".to_string() };
            let input = format!(r#"{{"deal": {{"region": {region}, "amount": {amount}, "vip": {vip}}}}}"#);
            let v = Value::from_json_str(&input).unwrap();
            let run = |s: &Snapshot| comparable(s.decide("t", &v, "2026-01-01").map(|d| serde_json::to_value(&d).unwrap()).map_err(|e| e.to_string()));
            prop_assert_eq!(run(&indexed), run(&scan), "{}\n{}", yaml, input);
        }
    }
}
