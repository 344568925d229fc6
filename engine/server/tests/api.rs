//! The API through `app(state)` with `oneshot`: roles per route, problem+json
//! errors, and decide giving what the core gives.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use dealrules_server::auth::{Principal, Role, TokenBook};
use dealrules_server::state::AppState;
use http_body_util::BodyExt;
use tower::ServiceExt;

fn rules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

fn state() -> Arc<AppState> {
    let mut tokens = TokenBook::default();
    for (t, role) in [("t-viewer", Role::Viewer), ("t-service", Role::Service), ("t-approver", Role::Approver), ("t-admin", Role::Admin)] {
        tokens.add(t, Principal { subject: t.into(), role, groups: vec![] });
    }
    AppState::new(dealrules_server::reload::build(&rules()).unwrap(), rules(), tokens)
}

async fn call(state: &Arc<AppState>, method: &str, uri: &str, token: Option<&str>, body: &str) -> (StatusCode, String, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = dealrules_server::routes::app(state.clone()).oneshot(req.body(Body::from(body.to_string())).unwrap()).await.unwrap();
    let status = res.status();
    let ctype = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, ctype, String::from_utf8_lossy(&bytes).into_owned())
}

const DEAL: &str = r#"{"deal": {"amount": 120000, "discount_pct": 15, "region": "NA", "payment_terms_days": 30}}"#;

#[tokio::test]
async fn role_table() {
    let s = state();
    // (method, path, weakest role allowed)
    let routes = [
        ("POST", "/v1/decide/discount-approvals", Role::Service),
        ("GET", "/v1/policies", Role::Viewer),
        ("GET", "/v1/policies/ApprovalPolicy/discount-approvals", Role::Viewer),
        ("GET", "/v1/status", Role::Viewer),
    ];
    let tokens = [("t-viewer", Role::Viewer), ("t-service", Role::Service), ("t-approver", Role::Approver), ("t-admin", Role::Admin)];
    for (method, path, needed) in routes {
        let (code, ctype, _) = call(&s, method, path, None, DEAL).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {path} without a token");
        assert_eq!(ctype, "application/problem+json");
        let (code, _, _) = call(&s, method, path, Some("wrong"), DEAL).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {path} with a wrong token");
        for (token, role) in tokens {
            let (code, _, body) = call(&s, method, path, Some(token), DEAL).await;
            let want = if role >= needed { StatusCode::OK } else { StatusCode::FORBIDDEN };
            assert_eq!(code, want, "{method} {path} as {role:?}: {body}");
        }
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(call(&s, "GET", path, None, "").await.0, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn decide_gives_what_the_core_gives() {
    let s = state();
    let (code, ctype, body) = call(&s, "POST", "/v1/decide/discount-approvals", Some("t-service"), DEAL).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(ctype, "application/json");
    let snapshot = dealrules_server::reload::build(&rules()).unwrap();
    let core = snapshot.decide_json("discount-approvals", DEAL, "2026-01-01T00:00:00Z").unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap(), serde_json::to_value(&core).unwrap());
}

#[tokio::test]
async fn errors_are_problem_json() {
    let s = state();
    let cases = [
        ("/v1/decide/discount-approvals", "{not json", StatusCode::BAD_REQUEST),
        ("/v1/decide/discount-approvals", "[1, 2]", StatusCode::BAD_REQUEST),
        ("/v1/decide/no-such-policy", "{}", StatusCode::NOT_FOUND),
        ("/v1/decide/discount-approvals", r#"{"deal": {"amount": 1}}"#, StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (path, body, want) in cases {
        let (code, ctype, text) = call(&s, "POST", path, Some("t-service"), body).await;
        assert_eq!(code, want, "{path} {body}: {text}");
        assert_eq!(ctype, "application/problem+json");
        let p: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(p["status"], want.as_u16());
        assert!(p["title"].is_string() && p["detail"].is_string() && p["type"].is_string(), "{p}");
    }
    let (code, ctype, _) = call(&s, "GET", "/v1/nothing-here", Some("t-admin"), "").await;
    assert_eq!((code, ctype.as_str()), (StatusCode::NOT_FOUND, "application/problem+json"));
}

#[tokio::test]
async fn bodies_are_capped() {
    let s = state();
    let big = format!(r#"{{"deal": {{"pad": "{}"}}}}"#, "x".repeat(dealrules_server::routes::MAX_BODY_BYTES + 10));
    let (code, _, _) = call(&s, "POST", "/v1/decide/discount-approvals", Some("t-service"), &big).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn policies_and_status() {
    let s = state();
    let (_, _, body) = call(&s, "GET", "/v1/policies", Some("t-viewer"), "").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["policies"].as_array().unwrap().len(), 7);
    let (code, _, body) = call(&s, "GET", "/v1/policies/Funnel/b2b", Some("t-viewer"), "").await;
    assert_eq!(code, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["source"].as_str().unwrap().contains("kind: Funnel"));
    assert_eq!(v["summary"]["initial"], "lead");
    let (_, _, body) = call(&s, "GET", "/v1/policies/ApprovalPolicy/discount-approvals", Some("t-viewer"), "").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["summary"]["reads_input_through_slots"], true);
    assert_eq!(v["summary"]["rules"][0]["compiled"], true);
    let (code, _, _) = call(&s, "GET", "/v1/policies/Funnel/nope", Some("t-viewer"), "").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (_, _, body) = call(&s, "GET", "/v1/status", Some("t-viewer"), "").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["version"].as_str().unwrap().starts_with("sha256:"));
    assert!(v["last_reload_errors"].is_null());
}

#[tokio::test]
async fn metrics_count_decisions_by_policy_and_outcome() {
    let s = state();
    call(&s, "POST", "/v1/decide/discount-approvals", Some("t-service"), DEAL).await;
    call(&s, "POST", "/v1/decide/discount-approvals", Some("t-service"), r#"{"deal": {}}"#).await;
    call(&s, "POST", "/v1/decide/made-up-1", Some("t-service"), "{}").await;
    call(&s, "POST", "/v1/decide/made-up-2", Some("t-service"), "{}").await;
    let (code, _, text) = call(&s, "GET", "/metrics", None, "").await;
    assert_eq!(code, StatusCode::OK);
    assert!(text.contains(r#"dealrules_decisions_total{policy="discount-approvals",outcome="ok"} 1"#), "{text}");
    assert!(text.contains(r#"dealrules_decisions_total{policy="discount-approvals",outcome="rejected"} 1"#), "{text}");
    // unknown names share one series, so a client cannot grow the metrics
    assert!(text.contains(r#"dealrules_decisions_total{policy="(unknown)",outcome="rejected"} 2"#), "{text}");
    assert!(text.contains("dealrules_decision_seconds_bucket"), "{text}");
    assert!(!text.contains("made-up"), "{text}");
}
