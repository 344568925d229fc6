//! The workflow runtime through the API (`oneshot`, a real SQLite file):
//! a deal from lead to won through a two-step approval, refused moves with
//! every reason, idempotent retries, recall, delegation, smart re-approval,
//! timers on an advanced clock, and a pack change cancelling a timer.

mod common;

use axum::http::StatusCode;
use common::{add_people, call, call_with, json, state};
use serde_json::Value;

const NEW_DEAL: &str = r#"{"id": "d-1001", "funnel": "b2b", "owner": "r1",
  "fields": {"name": "Acme renewal", "amount": 120000},
  "context": {"rep": {"manager": "u-17"}}}"#;

async fn event(s: &std::sync::Arc<dealrules_server::state::AppState>, deal: &str, body: &str) -> (StatusCode, Value) {
    let (code, text) = call_with(s, "POST", &format!("/v1/deals/{deal}/events"), "t-service", &[], body).await;
    (code, json(&text))
}

fn kinds(deal: &Value) -> Vec<String> {
    deal["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_deal_goes_from_lead_to_won_through_a_two_step_approval() {
    let s = state().await;
    add_people(&s).await;
    let (code, _, text) = call(&s, "POST", "/v1/deals", Some("t-service"), NEW_DEAL).await;
    assert_eq!(code, StatusCode::CREATED, "{text}");
    let d = json(&text);
    assert_eq!(d["stage"], "lead");
    assert_eq!(
        call(&s, "POST", "/v1/deals", Some("t-service"), NEW_DEAL).await.0,
        StatusCode::CONFLICT
    );

    // Qualified needs close_date and contact_email: every reason at once.
    let (code, p) = event(&s, "d-1001", r#"{"type": "move", "to": "qualified"}"#).await;
    assert_eq!(code, StatusCode::CONFLICT, "{p}");
    let fields: Vec<&str> = p["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["field"].as_str())
        .collect();
    assert_eq!(fields, ["close_date", "contact_email"], "{p}");
    assert_eq!(event(&s, "d-1001", r#"{"type": "update", "fields": {"close_date": "2026-12-15", "contact_email": "cfo@acme.example", "discount_pct": 25, "payment_terms_days": 30}}"#).await.0, StatusCode::OK);
    let (code, d) = event(&s, "d-1001", r#"{"type": "move", "to": "qualified"}"#).await;
    assert_eq!(code, StatusCode::OK, "{d}");
    assert_eq!(
        d["timers"][0]["name"], "stale",
        "the stale timer runs in qualified: {d}"
    );

    // Proposal opens the approval: 25% on 120,000 is director level, so
    // manager then director; the owner is told the proposal went out.
    let (code, d) = event(&s, "d-1001", r#"{"type": "move", "to": "proposal"}"#).await;
    assert_eq!(code, StatusCode::OK, "{d}");
    let a = &d["approvals"][0];
    assert_eq!(
        (a["level"].as_str(), a["state"].as_str()),
        (Some("director"), Some("pending"))
    );
    let steps: Vec<(&str, &str, &str)> = a["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["level"].as_str().unwrap(),
                s["approver"].as_str().unwrap(),
                s["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("manager", "u-17", "pending"),
            ("director", "role:sales-director", "waiting")
        ]
    );
    let approval = a["id"].as_str().unwrap().to_string();
    let outbox = json(&call(&s, "GET", "/v1/outbox?deal=d-1001", Some("t-viewer"), "").await.2);
    let sent: Vec<(&str, &str)> = outbox["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["template"].as_str().unwrap(), n["recipient"].as_str().unwrap()))
        .collect();
    assert_eq!(sent, [("approval-requested", "u-17"), ("proposal-sent", "r1")]);
    assert!(
        outbox["notifications"][1]["body"]
            .as_str()
            .unwrap()
            .contains("Acme renewal")
    );

    // The move that requires the approval waits for it.
    let (code, p) = event(&s, "d-1001", r#"{"type": "move", "to": "negotiation"}"#).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(p["reasons"][0]["code"], "approval_pending", "{p}");

    // Not the approver's step: 403; the manager approves; the director's
    // step opens; a member of role:sales-director approves.
    let decide = |token: &'static str, body: &'static str| {
        let s = s.clone();
        let approval = approval.clone();
        async move {
            call_with(
                &s,
                "POST",
                &format!("/v1/approvals/{approval}/decision"),
                token,
                &[],
                body,
            )
            .await
        }
    };
    assert_eq!(
        decide("t-director", r#"{"decision": "approve"}"#).await.0,
        StatusCode::FORBIDDEN,
        "the director's turn has not come"
    );
    assert_eq!(
        decide("t-u18", r#"{"decision": "approve"}"#).await.0,
        StatusCode::FORBIDDEN
    );
    let (code, text) = decide(
        "t-u17",
        r#"{"decision": "approve", "comment": "fine for a 3-year deal"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{text}");
    assert_eq!(json(&text)["steps"][1]["state"], "pending");
    let (code, text) = decide("t-director", r#"{"decision": "approve"}"#).await;
    assert_eq!(code, StatusCode::OK, "{text}");
    let a = json(&text);
    assert_eq!(
        (a["state"].as_str(), a["steps"][1]["decided_by"].as_str()),
        (Some("approved"), Some("u-99"))
    );
    assert_eq!(
        decide("t-u17", r#"{"decision": "approve"}"#).await.0,
        StatusCode::CONFLICT,
        "not pending any more"
    );

    assert_eq!(
        event(&s, "d-1001", r#"{"type": "move", "to": "negotiation"}"#).await.0,
        StatusCode::OK
    );
    let (code, p) = event(&s, "d-1001", r#"{"type": "move", "to": "won"}"#).await;
    assert_eq!(
        (code, p["reasons"][0]["field"].as_str()),
        (StatusCode::CONFLICT, Some("signed_contract_url")),
        "{p}"
    );
    event(
        &s,
        "d-1001",
        r#"{"type": "update", "fields": {"signed_contract_url": "https://docs.example/acme.pdf"}}"#,
    )
    .await;
    let (code, d) = event(&s, "d-1001", r#"{"type": "move", "to": "won"}"#).await;
    assert_eq!(code, StatusCode::OK, "{d}");
    assert_eq!(d["stage"], "won");
    assert!(d["fields"]["booked_on"].is_string(), "set: booked_on: {d}");
    let booking = d["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["detail"]["action"] == "script")
        .unwrap();
    assert_eq!(
        booking["detail"]["result"]["net_amount"],
        serde_json::json!(90000),
        "{booking}"
    );
    // Every step is on the history, each with the pack version in force.
    let k = kinds(&d);
    for want in ["created", "update", "refused", "move", "approval", "action"] {
        assert!(k.contains(&want.to_string()), "{want} missing from {k:?}");
    }
    assert!(
        d["history"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["version"] == serde_json::json!(&*s.snapshot.load().version))
    );
    // The follow-up timer of `won` is scheduled; the stale one was cancelled on the way.
    let timers: Vec<&str> = d["timers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(timers, ["follow-up"]);
}

#[tokio::test]
async fn a_retried_event_with_the_same_key_takes_effect_once() {
    let s = state().await;
    call(&s, "POST", "/v1/deals", Some("t-service"), NEW_DEAL).await;
    let update = r#"{"type": "update", "fields": {"close_date": "2026-12-15", "contact_email": "a@b.example"}}"#;
    call_with(&s, "POST", "/v1/deals/d-1001/events", "t-service", &[], update).await;
    let mv = r#"{"type": "move", "to": "qualified"}"#;
    let first = call_with(
        &s,
        "POST",
        "/v1/deals/d-1001/events",
        "t-service",
        &[("idempotency-key", "k-1")],
        mv,
    )
    .await;
    let again = call_with(
        &s,
        "POST",
        "/v1/deals/d-1001/events",
        "t-service",
        &[("idempotency-key", "k-1")],
        mv,
    )
    .await;
    assert_eq!(first.0, StatusCode::OK, "{}", first.1);
    assert_eq!(first, again, "the same answer, byte for byte");
    let d = json(&call(&s, "GET", "/v1/deals/d-1001", Some("t-viewer"), "").await.2);
    assert_eq!(kinds(&d).iter().filter(|k| *k == "move").count(), 1);
    // Without the key the same request is a new move, refused.
    assert_eq!(
        call_with(&s, "POST", "/v1/deals/d-1001/events", "t-service", &[], mv)
            .await
            .0,
        StatusCode::CONFLICT
    );
    // The key with another request is an error, not a silent replay.
    let other = call_with(
        &s,
        "POST",
        "/v1/deals/d-1001/events",
        "t-service",
        &[("idempotency-key", "k-1")],
        r#"{"type": "move", "to": "lost"}"#,
    )
    .await;
    assert_eq!(other.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", other.1);
    // A refused move under a key is remembered too.
    let refused = call_with(
        &s,
        "POST",
        "/v1/deals/d-1001/events",
        "t-service",
        &[("idempotency-key", "k-2")],
        r#"{"type": "move", "to": "won"}"#,
    )
    .await;
    assert_eq!(refused.0, StatusCode::CONFLICT);
    assert_eq!(
        call_with(
            &s,
            "POST",
            "/v1/deals/d-1001/events",
            "t-service",
            &[("idempotency-key", "k-2")],
            r#"{"type": "move", "to": "won"}"#
        )
        .await,
        refused
    );
}

/// A deal in proposal with a pending manager approval (20% on 120,000).
async fn deal_in_proposal(s: &std::sync::Arc<dealrules_server::state::AppState>, id: &str, discount: u32) -> String {
    let body = NEW_DEAL.replace("d-1001", id);
    assert_eq!(
        call(s, "POST", "/v1/deals", Some("t-service"), &body).await.0,
        StatusCode::CREATED
    );
    let update = format!(
        r#"{{"type": "update", "fields": {{"close_date": "2026-12-15", "contact_email": "a@b.example", "discount_pct": {discount}, "payment_terms_days": 30}}}}"#
    );
    event(s, id, &update).await;
    assert_eq!(
        event(s, id, r#"{"type": "move", "to": "qualified"}"#).await.0,
        StatusCode::OK
    );
    let (code, d) = event(s, id, r#"{"type": "move", "to": "proposal"}"#).await;
    assert_eq!(code, StatusCode::OK, "{d}");
    d["approvals"].as_array().unwrap().last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn recall_delegation_override_and_smart_reapproval() {
    let s = state().await;
    add_people(&s).await;
    // Recall: only the submitter (or an admin).
    let a = deal_in_proposal(&s, "d-1", 15).await;
    assert_eq!(
        call(&s, "POST", &format!("/v1/approvals/{a}/recall"), Some("t-admin"), "")
            .await
            .0,
        StatusCode::OK
    );
    let pending = json(
        &call(&s, "GET", "/v1/approvals?state=recalled&deal=d-1", Some("t-viewer"), "")
            .await
            .2,
    );
    assert_eq!(pending["approvals"].as_array().unwrap().len(), 1);
    assert_eq!(
        call(&s, "POST", &format!("/v1/approvals/{a}/recall"), Some("t-service"), "")
            .await
            .0,
        StatusCode::CONFLICT
    );

    // Delegation: u-17 is away; u-18 decides u-17's step for those days.
    let b = deal_in_proposal(&s, "d-2", 15).await;
    let today = chrono::Utc::now().date_naive();
    let body = format!(
        r#"{{"to": "u-18", "starts": "{}", "ends": "{}"}}"#,
        today.pred_opt().unwrap(),
        today.succ_opt().unwrap()
    );
    assert_eq!(
        call_with(
            &s,
            "POST",
            "/v1/delegations",
            "t-u18",
            &[],
            &body.replace("\"to\": \"u-18\"", "\"from\": \"u-17\", \"to\": \"u-18\"")
        )
        .await
        .0,
        StatusCode::FORBIDDEN,
        "only u-17 delegates u-17"
    );
    assert_eq!(
        call_with(&s, "POST", "/v1/delegations", "t-u17", &[], &body).await.0,
        StatusCode::CREATED
    );
    let (code, text) = call_with(
        &s,
        "POST",
        &format!("/v1/approvals/{b}/decision"),
        "t-u18",
        &[],
        r#"{"decision": "approve"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{text}");
    let approved = json(&text);
    assert_eq!(
        (approved["state"].as_str(), approved["steps"][0]["delegate_of"].as_str()),
        (Some("approved"), Some("u-17"))
    );

    // Smart re-approval: back to negotiation and proposal with the same
    // tested values: no new approval needed. Change the discount: needed.
    assert_eq!(
        event(&s, "d-2", r#"{"type": "move", "to": "negotiation"}"#).await.0,
        StatusCode::OK
    );
    assert_eq!(
        event(&s, "d-2", r#"{"type": "move", "to": "proposal"}"#).await.0,
        StatusCode::OK
    );
    let d = json(&call(&s, "GET", "/v1/deals/d-2", Some("t-viewer"), "").await.2);
    let last = d["approvals"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["state"], "approved", "re-approval skipped: {last}");
    assert!(
        d["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["detail"]["event"] == "re-approval skipped")
    );
    event(&s, "d-2", r#"{"type": "move", "to": "negotiation"}"#).await;
    event(&s, "d-2", r#"{"type": "update", "fields": {"discount_pct": 18}}"#).await;
    event(&s, "d-2", r#"{"type": "move", "to": "proposal"}"#).await;
    let d = json(&call(&s, "GET", "/v1/deals/d-2", Some("t-viewer"), "").await.2);
    assert_eq!(
        d["approvals"].as_array().unwrap().last().unwrap()["state"],
        "pending",
        "{}",
        d["approvals"]
    );

    // An admin may decide any step: recorded as an override. Then a rejection blocks.
    let c = deal_in_proposal(&s, "d-3", 15).await;
    let (code, text) = call_with(
        &s,
        "POST",
        &format!("/v1/approvals/{c}/decision"),
        "t-admin",
        &[],
        r#"{"decision": "reject", "comment": "margin"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{text}");
    assert_eq!(
        (
            json(&text)["state"].as_str(),
            json(&text)["steps"][0]["overridden"].as_bool()
        ),
        (Some("rejected"), Some(true))
    );
    let (code, p) = event(&s, "d-3", r#"{"type": "move", "to": "negotiation"}"#).await;
    assert_eq!(
        (code, p["reasons"][0]["code"].as_str()),
        (StatusCode::CONFLICT, Some("approval_rejected"))
    );
}

#[tokio::test]
async fn timers_fire_once_when_due_and_a_pack_change_cancels_what_no_longer_applies() {
    let s = state().await;
    add_people(&s).await;
    let a = deal_in_proposal(&s, "d-1", 15).await;
    let _ = a;
    // Nothing is due yet.
    assert_eq!(dealrules_server::workflow::fire_due_timers(&s, 100).await.unwrap(), 0);
    // Two days on: the approver is reminded. Five: escalated. Fourteen: stale.
    s.clock
        .advance(chrono::Duration::days(2) + chrono::Duration::minutes(1));
    assert_eq!(dealrules_server::workflow::fire_due_timers(&s, 100).await.unwrap(), 1);
    s.clock.advance(chrono::Duration::days(3));
    assert_eq!(dealrules_server::workflow::fire_due_timers(&s, 100).await.unwrap(), 1);
    s.clock.advance(chrono::Duration::days(10));
    assert_eq!(dealrules_server::workflow::fire_due_timers(&s, 100).await.unwrap(), 1);
    assert_eq!(
        dealrules_server::workflow::fire_due_timers(&s, 100).await.unwrap(),
        0,
        "each fires once"
    );
    let outbox = json(&call(&s, "GET", "/v1/outbox?deal=d-1", Some("t-viewer"), "").await.2);
    let sent: Vec<(&str, &str)> = outbox["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["template"].as_str().unwrap(), n["recipient"].as_str().unwrap()))
        .collect();
    assert_eq!(
        &sent[2..],
        [
            ("approval-reminder", "u-17"),
            ("approval-escalated", "role:admin"),
            ("stale-deal", "r1")
        ]
    );

    // A pack without the stale timer in `negotiation`: a deal waiting there
    // has its timer cancelled, and its history says why.
    let (code, text) = call_with(
        &s,
        "POST",
        &format!("/v1/approvals/{a}/decision"),
        "t-u17",
        &[],
        r#"{"decision": "approve"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{text}");
    assert_eq!(
        event(&s, "d-1", r#"{"type": "move", "to": "negotiation"}"#).await.0,
        StatusCode::OK
    );
    let pack = common::rules_as_json(|p, t| {
        if p == "funnel.yaml" {
            t.replace("in: [qualified, proposal, negotiation]", "in: [qualified, proposal]")
        } else {
            t
        }
    });
    assert_eq!(
        call(&s, "PUT", "/v1/packs/active", Some("t-admin"), &pack).await.0,
        StatusCode::OK
    );
    common::wait_until(|| async {
        json(&call(&s, "GET", "/v1/deals/d-1", Some("t-viewer"), "").await.2)["timers"]
            .as_array()
            .unwrap()
            .is_empty()
    })
    .await;
    let d = json(&call(&s, "GET", "/v1/deals/d-1", Some("t-viewer"), "").await.2);
    let note = d["history"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|h| h["type"] == "cancelled")
        .unwrap()
        .clone();
    assert!(
        note["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("no longer runs in `negotiation`"),
        "{note}"
    );
}

#[tokio::test]
async fn the_pipeline_weights_open_deals_by_stage_probability() {
    let s = state().await;
    deal_in_proposal(&s, "d-1", 15).await; // proposal, 0.5 x 120,000
    call(
        &s,
        "POST",
        "/v1/deals",
        Some("t-service"),
        &NEW_DEAL.replace("d-1001", "d-2").replace("120000", "10000"),
    )
    .await; // lead, 0.05
    let p = json(&call(&s, "GET", "/v1/pipeline?by=stage", Some("t-viewer"), "").await.2);
    assert_eq!(
        (p["total"].as_str(), p["weighted"].as_str()),
        (Some("130000.00"), Some("60500.00")),
        "{p}"
    );
    assert_eq!(p["groups"][1]["key"], "proposal");
    let p = json(&call(&s, "GET", "/v1/pipeline?by=period", Some("t-viewer"), "").await.2);
    assert_eq!(p["groups"][0]["key"], "(no close date)");
    assert_eq!(p["groups"][1]["key"], "2026-Q4");
    assert_eq!(
        call(&s, "GET", "/v1/pipeline?by=colour", Some("t-viewer"), "").await.0,
        StatusCode::BAD_REQUEST
    );
}
