//! "Why not" (POLICY-LANGUAGE.md section 10): what an approval's `to_reach`
//! promises holds when the change is made, a plugin's answer is "cannot
//! say", and asking is per request.

use std::sync::Arc;

use dealrules_core::{PluginCall, PluginRuntime, Snapshot};
use dealrules_expr::Value;
use dealrules_model::PackSource;
use proptest::prelude::*;
use serde_json::{Value as Json, json};
use sha2::Digest;

const NOW: &str = "2026-11-23T00:00:00Z";

const APPROVALS: &str = r#"apiVersion: dealrules/v1
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
    - { id: non-standard-contract, when: "get(deal, \"paper\", \"ours\") == \"theirs\"", by: 2 }
---
apiVersion: dealrules/v1
kind: ApprovalPolicy
metadata: { name: highest-wins }
spec:
  levels: [none, team-lead, manager, director]
  hit: max
  chain: single
  rules:
    - { id: big,        when: "deal.amount > 100000", level: manager }
    - { id: discounted, when: "deal.discount_pct > 15 && deal.amount >= 10000", level: team-lead }
    - { id: strategic,  when: "deal.strategic", level: director }
    - { id: default,    level: none }
  escalate:
    - { id: late, when: "deal.close_date < \"2026-12-01\"", by: 1 }
"#;

fn decide(s: &Snapshot, policy: &str, input: &Json) -> Json {
    let d = s
        .decide(policy, &Value::from_json(input), NOW)
        .unwrap_or_else(|e| panic!("{policy} over {input}: {e}"));
    serde_json::to_value(&d).unwrap()
}

/// The input with `path` (`deal.amount`) set to `value`, numbers as numbers.
fn with_change(input: &Json, path: &str, value: &Json) -> Json {
    let mut out = input.clone();
    let mut at = &mut out;
    for key in path.split('.') {
        at = at.as_object_mut().unwrap().entry(key).or_insert(json!({}));
    }
    *at = match value.as_str().and_then(|t| t.parse::<serde_json::Number>().ok()) {
        Some(n) => Json::Number(n),
        None => value.clone(),
    };
    out
}

fn deal() -> impl Strategy<Value = Json> {
    (
        0u32..40_000_000,
        0u32..500,
        prop::sample::select(vec!["NA", "EMEA", "APAC"]),
        0u32..120,
        prop::sample::select(vec![None, Some("ours"), Some("theirs")]),
        any::<bool>(),
        prop::sample::select(vec!["2026-11-01", "2026-12-01", "2027-02-01"]),
    )
        .prop_map(|(cents, tenths, region, terms, paper, strategic, close)| {
            let mut d = json!({
                "amount": format!("{}.{:02}", cents / 100, cents % 100).parse::<serde_json::Number>().unwrap(),
                "discount_pct": format!("{}.{}", tenths / 10, tenths % 10).parse::<serde_json::Number>().unwrap(),
                "region": region,
                "payment_terms_days": terms,
                "strategic": strategic,
                "close_date": close,
            });
            if let Some(p) = paper {
                d["paper"] = json!(p);
            }
            json!({ "deal": d })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Every change `to_reach` lists, made to the input, gives that level
    /// by that rule; every lower level is listed, in order.
    #[test]
    fn every_change_to_reach_lists_gives_its_level(input in deal()) {
        let s = Snapshot::load(PackSource::from_texts([("approvals.yaml", APPROVALS)])).unwrap();
        for policy in ["discount-approvals", "highest-wins"] {
            let mut asked = input.clone();
            asked["why_not"] = json!(true);
            let d = decide(&s, policy, &asked);
            let plain = decide(&s, policy, &input);
            prop_assert_eq!(&d["level"], &plain["level"], "asking why not changes no answer");
            let levels: Vec<Json> = s.summary(dealrules_model::Kind::ApprovalPolicy, policy).unwrap()["levels"].as_array().unwrap().clone();
            let decided = levels.iter().position(|l| *l == d["level"]).unwrap();
            let to_reach = d["to_reach"].as_array().unwrap();
            prop_assert_eq!(to_reach.len(), decided, "{}", d);
            for (i, reach) in to_reach.iter().enumerate() {
                prop_assert_eq!(&reach["level"], &levels[i]);
                let Some(change) = reach["change"].as_object() else {
                    prop_assert_eq!(&reach["cannot_say"], &json!(true), "{}", reach);
                    continue;
                };
                let mut changed = input.clone();
                for (path, v) in change {
                    changed = with_change(&changed, path, v);
                }
                let again = decide(&s, policy, &changed);
                prop_assert_eq!((&again["level"], &again["rule"]), (&reach["level"], &reach["rule"]), "{} changed by {} gives {}", input, reach, again);
            }
            // Every unmatched trace entry says why; matched ones do not.
            for step in d["trace"].as_array().unwrap() {
                prop_assert_eq!(step["matched"] == json!(false), step["why_not"].is_array(), "{}", step);
            }
        }
    }
}

/// A plugin that always answers the same.
struct Fixed(Json);

impl PluginRuntime for Fixed {
    fn call(
        &self,
        _plugin: &str,
        _function: &str,
        _facts: &Json,
    ) -> Result<PluginCall, dealrules_core::PluginCallError> {
        Ok(PluginCall {
            value: self.0.clone(),
            fuel_used: 1,
            micros: 1,
            log: Vec::new(),
        })
    }
}

#[test]
fn a_condition_on_a_plugin_answer_cannot_say() {
    let wasm = b"\0asm\x01\0\0\0";
    let sha = hex::encode(sha2::Sha256::digest(wasm));
    let manifest = format!(
        "apiVersion: dealrules/v1\nkind: Plugin\nmetadata: {{ name: credit-check }}\nspec:\n  wasm: credit.wasm\n  sha256: {sha}\n  exports: [score]\n"
    );
    let policy = r#"apiVersion: dealrules/v1
kind: ApprovalPolicy
metadata: { name: credit-terms }
spec:
  levels: [auto, finance]
  plugins:
    - { as: credit, plugin: credit-check, function: score }
  rules:
    - { id: within-limit, when: 'deal.amount <= plugins.credit.limit && deal.terms <= 30', level: auto }
    - { id: good-band, when: 'plugins.credit.band == "A"', level: auto }
    - { id: rest, level: finance }
"#;
    let files = PackSource {
        files: [
            ("plugins/credit.yaml".to_string(), manifest.into_bytes()),
            ("plugins/credit.wasm".to_string(), wasm.to_vec()),
            ("approvals.yaml".to_string(), policy.as_bytes().to_vec()),
        ]
        .into_iter()
        .collect(),
    };
    let mut s = Snapshot::load(files).unwrap();
    s.attach_plugins(Arc::new(Fixed(json!({ "limit": 10000, "band": "C" }))));
    let d = decide(
        &s,
        "credit-terms",
        &json!({ "deal": { "amount": 50000, "terms": 45 }, "why_not": true }),
    );
    assert_eq!(d["level"], "finance", "{d}");
    let within = &d["trace"][0]["why_not"];
    // The plugin's limit may change with the input: no nearest amount is given.
    assert_eq!(within[0]["expr"], "deal.amount <= plugins.credit.limit", "{d}");
    assert_eq!(within[0]["cannot_say"], true, "{d}");
    assert!(
        within[0]["reason"]
            .as_str()
            .unwrap()
            .contains("`plugins.credit.limit` is a plugin's answer"),
        "{d}"
    );
    assert_eq!(
        within[0]["values"],
        json!({ "deal.amount": "50000", "plugins.credit.limit": "10000" }),
        "{d}"
    );
    // The part on the input alone still says what would pass.
    assert_eq!(within[1]["would_pass"], json!({ "deal.terms": "30" }), "{d}");
    let band = &d["trace"][1]["why_not"][0];
    assert_eq!(
        (band["cannot_say"].clone(), band["values"].clone()),
        (json!(true), json!({ "plugins.credit.band": "C" })),
        "{d}"
    );
    // So no change reaches `auto`, and the result says so.
    assert_eq!(d["to_reach"][0]["level"], "auto");
    assert_eq!(d["to_reach"][0]["cannot_say"], true, "{d}");
}

#[test]
fn why_not_is_asked_per_request_and_must_be_a_boolean() {
    let s = Snapshot::load(PackSource::from_texts([("approvals.yaml", APPROVALS)])).unwrap();
    let input = r#"{"deal": {"amount": 120000, "discount_pct": 22.5, "region": "NA", "payment_terms_days": 30}}"#;
    let plain = serde_json::to_value(s.decide_json("discount-approvals", input, NOW).unwrap()).unwrap();
    assert!(
        plain.get("to_reach").is_none() && plain["trace"][0].get("why_not").is_none(),
        "{plain}"
    );
    let asked = input.replacen('{', r#"{"why_not": true, "#, 1);
    let d = serde_json::to_value(s.decide_json("discount-approvals", &asked, NOW).unwrap()).unwrap();
    assert_eq!(
        d["trace"][0]["why_not"][0]["would_pass"],
        json!({ "deal.discount_pct": "10" }),
        "{d}"
    );
    let off = input.replacen('{', r#"{"why_not": false, "#, 1);
    assert_eq!(
        serde_json::to_value(s.decide_json("discount-approvals", &off, NOW).unwrap()).unwrap(),
        plain
    );
    let bad = input.replacen('{', r#"{"why_not": 1, "#, 1);
    let err = s.decide_json("discount-approvals", &bad, NOW).unwrap_err().to_string();
    assert_eq!(err, "bad input: `why_not` must be true or false, got a number");
}
