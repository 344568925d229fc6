//! The facts a deal's policies read.

use dealrules_core::Snapshot;
use dealrules_store::{Approval, ApprovalState, Deal};
use serde_json::{Value as Json, json};

/// The facts a deal's policies read: its context (`rep`, `customer`, ...)
/// and `deal` (its fields with id, owner, stage, funnel and the latest
/// approval per policy).
pub(crate) fn facts(deal: &Deal, approvals: &[Approval]) -> Json {
    let mut d = deal.fields.as_object().cloned().unwrap_or_default();
    d.insert("id".into(), json!(deal.id));
    d.insert("owner".into(), json!(deal.owner));
    d.insert("stage".into(), json!(deal.stage));
    d.insert("funnel".into(), json!(deal.funnel));
    d.insert(
        "approvals".into(),
        Json::Array(
            latest_approvals(approvals)
                .iter()
                .map(|a| json!({ "id": a.id, "policy": a.policy, "state": a.state }))
                .collect(),
        ),
    );
    let mut facts = deal.context.as_object().cloned().unwrap_or_default();
    let rep = facts.entry("rep").or_insert_with(|| json!({}));
    if let Some(r) = rep.as_object_mut() {
        r.entry("id").or_insert_with(|| json!(deal.owner));
    }
    facts.insert("deal".into(), Json::Object(d));
    Json::Object(facts)
}

/// The latest request per policy, leaving out recalled ones: an older
/// rejection does not block a deal that was resubmitted.
fn latest_approvals(approvals: &[Approval]) -> Vec<&Approval> {
    let mut latest: Vec<&Approval> = Vec::new();
    for a in approvals.iter().filter(|a| a.state != ApprovalState::Recalled) {
        match latest.iter_mut().find(|l| l.policy == a.policy) {
            Some(l) => *l = a,
            None => latest.push(a),
        }
    }
    latest
}

/// The values a policy's rules read, from the facts: what smart
/// re-approval compares.
pub(crate) fn tested_values(snapshot: &Snapshot, policy: &str, facts: &Json) -> Json {
    match snapshot.approval_policy(policy) {
        Some(p) => {
            let interest = p.interest();
            dealrules_expr::json::parse_projected(&facts.to_string(), &interest)
                .map(|v| strip_now(v.to_json()))
                .unwrap_or(Json::Null)
        }
        None => Json::Null,
    }
}

fn strip_now(mut v: Json) -> Json {
    if let Some(m) = v.as_object_mut() {
        m.remove("now");
    }
    v
}
