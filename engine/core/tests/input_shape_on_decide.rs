//! The decide path checks an input's shape while it reads it (the slot
//! walk) or before (every other path). Whichever path a policy takes, the
//! verdict and the message are those of `input_shape::check` on the whole
//! text: generated inputs with repeated keys, in the parts a policy reads
//! and the parts it skips, at any depth.

use dealrules_core::{DecideError, Snapshot};
use dealrules_expr::input_shape;
use dealrules_model::PackSource;
use proptest::prelude::*;

/// Reads `deal.amount` (a number), `deal.items` (a list, read whole) and
/// skips everything else; compiled, so it takes the slot walk.
const SLOTS: &str = r#"
apiVersion: dealrules/v1
kind: ApprovalPolicy
metadata: { name: slots }
spec:
  levels: [auto, manager]
  rules:
    - { id: big, when: "deal.amount > 10 && deal.items == deal.items", level: manager }
    - { id: rest, level: auto }
"#;

/// The same reads through Rhai (no slot plan): the parse-after-check path.
const MAP: &str = r#"
apiVersion: dealrules/v1
kind: ApprovalPolicy
metadata: { name: map }
spec:
  levels: [auto, manager]
  rules:
    - { id: big, when: "deal.amount.to_string().len() > 1", level: manager }
    - { id: rest, level: auto }
"#;

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["deal", "amount", "items", "a", "b", "r\\u0065p", "rep", "x"]).prop_map(String::from)
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("1".to_string()),
        Just("12.50".to_string()),
        Just("\"t[x]{\"".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
    ];
    leaf.prop_recursive(5, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((key(), inner), 0..5).prop_map(|kv| {
                let fields: Vec<String> = kv.into_iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                format!("{{{}}}", fields.join(", "))
            }),
        ]
    })
}

/// An input shaped like a decide body: mostly a `deal` with an amount.
fn input() -> impl Strategy<Value = String> {
    (prop::collection::vec((key(), value()), 0..4), value(), any::<bool>()).prop_map(|(extra, items, dup_amount)| {
        let mut deal = vec!["\"amount\": 20".to_string(), format!("\"items\": {items}")];
        if dup_amount {
            deal.push("\"am\\u006funt\": 30".into());
        }
        let mut top = vec![format!("\"deal\": {{{}}}", deal.join(", "))];
        top.extend(extra.into_iter().map(|(k, v)| format!("\"{k}\": {v}")));
        format!("{{{}}}", top.join(", "))
    })
}

fn shape_words(message: &str) -> bool {
    ["appears twice", "nested deeper", "more than"]
        .iter()
        .any(|w| message.contains(w))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn the_decide_path_and_the_whole_text_check_agree(text in input()) {
        let pack = Snapshot::load(PackSource::from_texts([("slots.yaml", SLOTS), ("map.yaml", MAP)])).unwrap();
        let verdict = input_shape::check(&text);
        for policy in ["slots", "map"] {
            let decided = pack.decide_json(policy, &text, "2026-11-29T00:00:00Z");
            match (&verdict, decided) {
                (Err(e), Err(DecideError::BadInput(m))) => {
                    prop_assert_eq!(m, format!("input is not valid JSON: {e}"), "{}", policy)
                }
                (Err(e), other) => prop_assert!(false, "{policy}: {text} should be refused ({e}), got {other:?}"),
                (Ok(()), Err(e)) => {
                    prop_assert!(!shape_words(&e.to_string()), "{policy}: {text} refused: {e}")
                }
                (Ok(()), Ok(_)) => {}
            }
        }
    }
}
