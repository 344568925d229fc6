//! A server with a day's work in it, for the console's tests: a deal in
//! proposal waiting for its manager's approval, a published incentive run
//! for two reps who are peers, a few logged decisions, and an admin's
//! draft change to the rules.

use std::sync::Arc;

use axum::http::StatusCode;
use dealrules_server::auth::hash_token;
use dealrules_server::state::AppState;

use super::{add_people, call, call_with, json, state, wait_until};

/// Reps `ana` and `ben` (peers under `frank`), account executives in NA.
const PEOPLE_CSV: &str = "id,name,role,manager,region,team,effective_from\n\
frank,Frank,manager,,NA,west,\n\
ana,Ana,ae,frank,NA,west,\n\
ben,Ben,ae,frank,NA,west,\n";

/// Won in 2026-Q1.
const DEALS_CSV: &str = "id,owner,stage,amount,closed_at,new_logo\n\
w-1,ana,won,120000,2026-01-20,true\n\
w-2,ana,won,90000,2026-03-02,false\n\
w-3,ben,won,40000,2026-02-10,false\n";

/// The deal waiting in u-17's inbox, and its approval's id.
pub const DEAL: &str = "d-1001";

/// Tokens: `t-ana` and `t-ben` (viewers, the reps), `t-controller` (a
/// second admin, who approves runs), plus [`add_people`]'s approvers
/// (`t-u17` is the deal's rep's manager).
pub async fn world() -> (Arc<AppState>, String) {
    let s = state().await;
    add_people(&s).await;
    for (t, role, subject) in [
        ("t-ana", "viewer", "ana"),
        ("t-ben", "viewer", "ben"),
        ("t-controller", "admin", "controller"),
    ] {
        s.store
            .tokens()
            .add_token(&hex::encode(hash_token(t)), role, subject, &[], "test")
            .await
            .unwrap();
    }
    s.tokens.refresh(&s.store.tokens()).await.unwrap();
    let approval = deal_waiting_for_approval(&s).await;
    published_run(&s).await;
    let decide = r#"{"deal": {"amount": 120000, "discount_pct": 15, "region": "NA", "payment_terms_days": 30}}"#;
    let (code, _, text) = call(&s, "POST", "/v1/decide/discount-approvals", Some("t-service"), decide).await;
    assert_eq!(code, StatusCode::OK, "{text}");
    draft_change(&s).await;
    (s, approval)
}

/// `t-admin`'s draft: the AE plan's description reworded.
async fn draft_change(s: &Arc<AppState>) {
    let plan = std::fs::read_to_string(super::rules().join("incentives.yaml")).unwrap();
    let reworded = plan.replace(
        "description: Account executive commission, FY2026",
        "description: Account executive commission for FY2026",
    );
    assert_ne!(plan, reworded, "the plan's description is where the world expects it");
    let body = serde_json::json!({"title": "Reword the AE plan", "files": {"incentives.yaml": reworded}});
    let (code, _, text) = call(s, "POST", "/v1/changes", Some("t-admin"), &body.to_string()).await;
    assert_eq!(code, StatusCode::CREATED, "{text}");
}

async fn deal_waiting_for_approval(s: &Arc<AppState>) -> String {
    let deal = format!(
        r#"{{"id": "{DEAL}", "funnel": "b2b", "owner": "r1",
            "fields": {{"name": "Acme renewal", "amount": 120000}},
            "context": {{"rep": {{"manager": "u-17"}}}}}}"#
    );
    let (code, _, text) = call(s, "POST", "/v1/deals", Some("t-service"), &deal).await;
    assert_eq!(code, StatusCode::CREATED, "{text}");
    let path = format!("/v1/deals/{DEAL}/events");
    for body in [
        r#"{"type": "update", "fields": {"close_date": "2026-12-15", "contact_email": "cfo@acme.example", "discount_pct": 15, "payment_terms_days": 30}}"#,
        r#"{"type": "move", "to": "qualified"}"#,
        r#"{"type": "move", "to": "proposal"}"#,
    ] {
        let (code, text) = call_with(s, "POST", &path, "t-service", &[], body).await;
        assert_eq!(code, StatusCode::OK, "{text}");
    }
    let d = json(
        &call(s, "GET", &format!("/v1/deals/{DEAL}"), Some("t-viewer"), "")
            .await
            .2,
    );
    let a = &d["approvals"][0];
    assert_eq!(a["steps"][0]["approver"], "u-17", "{d}");
    assert_eq!(a["state"], "pending", "{d}");
    a["id"].as_str().unwrap().to_string()
}

async fn published_run(s: &Arc<AppState>) {
    let (code, _, text) = call(s, "POST", "/v1/people:import", Some("t-admin"), PEOPLE_CSV).await;
    assert_eq!(code, StatusCode::OK, "{text}");
    let (code, _, text) = call(s, "POST", "/v1/deals:import", Some("t-admin"), DEALS_CSV).await;
    assert_eq!(code, StatusCode::OK, "{text}");
    let (code, _, text) = call(
        s,
        "POST",
        "/v1/incentives/ae-commission/runs",
        Some("t-admin"),
        r#"{"period": "2026-Q1"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{text}");
    let id = json(&text)["id"].as_str().unwrap().to_string();
    let run = format!("/v1/incentives/runs/{id}");
    wait_until(|| async { json(&call(s, "GET", &run, Some("t-admin"), "").await.2)["state"] != "running" }).await;
    let view = json(&call(s, "GET", &run, Some("t-admin"), "").await.2);
    assert_eq!(view["state"], "draft", "{view}");
    let (code, _, text) = call(s, "POST", &format!("{run}/approve"), Some("t-controller"), "").await;
    assert_eq!(code, StatusCode::OK, "{text}");
    let (code, _, text) = call(s, "POST", &format!("{run}/publish"), Some("t-admin"), "").await;
    assert_eq!(code, StatusCode::OK, "{text}");
}
