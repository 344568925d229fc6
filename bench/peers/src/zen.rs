//! The same decision as a JDM graph for zen-engine, the way its editor
//! would lay it out: a decision table for the approval level, an
//! expression node for the net amount, a rate table by product, an
//! accelerator table by net amount, and an expression node that adds the
//! payment-terms escalation and rounds and caps the commission.

use serde_json::{Value, json};
use zen_engine::Decision;
use zen_engine::model::GraphContent;

fn table(id: &str, inputs: Value, outputs: Value, rules: Value) -> Value {
    json!({ "id": id, "name": id, "type": "decisionTableNode", "content": {
        "hitPolicy": "first", "inputs": inputs, "outputs": outputs, "rules": rules, "passThrough": true
    } })
}

fn expressions(id: &str, pass_through: bool, items: &[(&str, &str)]) -> Value {
    let exprs: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, (key, value))| json!({ "id": format!("{id}-{i}"), "key": key, "value": value }))
        .collect();
    json!({ "id": id, "name": id, "type": "expressionNode", "content": {
        "expressions": exprs, "passThrough": pass_through
    } })
}

/// The graph, compiled (`Decision::compile`) once before any evaluation.
pub fn decision() -> Decision {
    let approval = table(
        "approval",
        json!([
            { "id": "d", "name": "Discount %", "field": "deal.discount_pct" },
            { "id": "a", "name": "Amount", "field": "deal.amount" },
            { "id": "r", "name": "Region", "field": "deal.region" }
        ]),
        json!([ { "id": "l", "name": "Base level", "field": "approval.base" } ]),
        json!([
            { "_id": "small", "d": "<= 10", "a": "<= 50000", "r": "", "l": "0" },
            { "_id": "mid", "d": "<= 20", "a": "<= 250000", "r": "", "l": "1" },
            { "_id": "large", "d": "<= 30", "a": "", "r": "", "l": "2" },
            { "_id": "large-apac", "d": "<= 35", "a": "", "r": "\"APAC\"", "l": "2" },
            { "_id": "rest", "d": "", "a": "", "r": "", "l": "3" }
        ]),
    );
    let net = expressions("net", true, &[("net", "deal.amount * (1 - deal.discount_pct / 100)")]);
    let rate = table(
        "rate",
        json!([ { "id": "p", "name": "Product", "field": "deal.product" } ]),
        json!([ { "id": "o", "name": "Rate", "field": "rate" } ]),
        json!([
            { "_id": "core", "p": "\"core\"", "o": "0.08" },
            { "_id": "addon", "p": "\"addon\"", "o": "0.05" },
            { "_id": "services", "p": "\"services\"", "o": "0.03" },
            { "_id": "other", "p": "", "o": "0.025" }
        ]),
    );
    let band = table(
        "accelerator",
        json!([ { "id": "n", "name": "Net", "field": "net" } ]),
        json!([ { "id": "o", "name": "Accelerator", "field": "accelerator" } ]),
        json!([
            { "_id": "top", "n": ">= 250000", "o": "1.5" },
            { "_id": "over", "n": ">= 100000", "o": "1.25" },
            { "_id": "base", "n": "", "o": "1" }
        ]),
    );
    let result = expressions(
        "result",
        false,
        &[
            (
                "level",
                "min([approval.base + (deal.payment_terms_days > 60 ? 1 : 0), 3])",
            ),
            ("commission", "min([round(net * rate * accelerator, 2), 20000])"),
        ],
    );
    let graph = json!({
        "nodes": [
            { "id": "in", "name": "request", "type": "inputNode", "content": {} },
            approval, net, rate, band, result,
            { "id": "out", "name": "response", "type": "outputNode", "content": {} }
        ],
        "edges": [
            { "id": "e1", "sourceId": "in", "targetId": "approval" },
            { "id": "e2", "sourceId": "approval", "targetId": "net" },
            { "id": "e3", "sourceId": "net", "targetId": "rate" },
            { "id": "e4", "sourceId": "rate", "targetId": "accelerator" },
            { "id": "e5", "sourceId": "accelerator", "targetId": "result" },
            { "id": "e6", "sourceId": "result", "targetId": "out" }
        ]
    });
    let graph: GraphContent = serde_json::from_value(graph).expect("the JDM graph is valid");
    let mut decision = Decision::from(graph);
    decision.compile();
    decision
}
