//! Regression tests for the hardening findings, each named after what went
//! wrong: the framework's own rejections in problem+json, limits on the
//! whole body, duplicate keys, segregation of duties, an unavailable store,
//! and long decisions kept off the async workers. Through the API
//! (`oneshot`) on a real SQLite file.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{add_people, call, call_with, json, rules_as_json, state};
use dealrules_server::auth::hash_token;
use dealrules_server::state::AppState;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const PROBLEM: &str = "application/problem+json";

/// Any request, bytes as given; (status, content type, headers, body).
async fn raw(
    s: &Arc<AppState>,
    method: &str,
    uri: &str,
    body: Vec<u8>,
) -> (StatusCode, String, axum::http::HeaderMap, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", "Bearer t-admin")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let res = dealrules_server::routes::app(s.clone()).oneshot(req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let ctype = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, ctype, headers, String::from_utf8_lossy(&bytes).into_owned())
}

fn assert_problem(what: &str, status: StatusCode, ctype: &str, body: &str) {
    assert_eq!(ctype, PROBLEM, "{what}: {status} {body}");
    let p = json(body);
    assert_eq!(p["status"], status.as_u16(), "{what}: {p}");
    assert!(p["detail"].as_str().is_some_and(|d| !d.is_empty()), "{what}: {p}");
}

#[tokio::test]
async fn framework_rejections_are_problem_json_not_text_plain() {
    let s = state().await;
    let over = vec![b' '; dealrules_server::routes::MAX_BODY_BYTES + 10];
    let cases: Vec<(&str, &str, &str, Vec<u8>, StatusCode)> = vec![
        (
            "body over 1 MiB on decide",
            "POST",
            "/v1/decide/discount-approvals",
            over.clone(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "body over 1 MiB on deals",
            "POST",
            "/v1/deals",
            over.clone(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "upload over 16 MiB",
            "PUT",
            "/v1/packs/active",
            vec![b' '; dealrules_server::upload::MAX_UPLOAD_BYTES + 10],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "non-UTF-8 body on decide",
            "POST",
            "/v1/decide/discount-approvals",
            vec![0xff, 0xfe, b'{', b'}'],
            StatusCode::BAD_REQUEST,
        ),
        (
            "non-UTF-8 body on deals",
            "POST",
            "/v1/deals",
            vec![0xff, 0xfe],
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad query",
            "GET",
            "/v1/decisions?limit=-1",
            vec![],
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad path segment",
            "GET",
            "/v1/policies/Funnel/%ff%fe",
            vec![],
            StatusCode::BAD_REQUEST,
        ),
        (
            "method not allowed",
            "DELETE",
            "/v1/decide/discount-approvals",
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "no such route",
            "GET",
            "/v1/nothing-here",
            vec![],
            StatusCode::NOT_FOUND,
        ),
    ];
    for (what, method, uri, body, want) in cases {
        let (status, ctype, _, text) = raw(&s, method, uri, body).await;
        assert_eq!(status, want, "{what}: {text}");
        assert_problem(what, status, &ctype, &text);
    }
    // 405 keeps its Allow header.
    let (_, _, headers, _) = raw(&s, "DELETE", "/v1/decide/discount-approvals", vec![]).await;
    assert!(headers.get("allow").is_some());
}

/// Every route of the published document, called with a malformed body, a
/// malformed query and a malformed path segment: whatever the status, an
/// error is problem+json.
#[tokio::test]
async fn every_documented_route_answers_malformed_requests_in_problem_json() {
    let s = state().await;
    let doc = json(&call(&s, "GET", "/openapi.json", None, "").await.2);
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path
                .replace("{policy}", "discount-approvals")
                .replace("{kind}", "ApprovalPolicy")
                .replace("{name}", "discount-approvals");
            let broken_path = regex_free_replace(path, "%ff%fe");
            let attempts: Vec<(String, Vec<u8>)> = vec![
                (regex_free_replace(&concrete, "x-1"), b"{\"a\": ".to_vec()),
                (regex_free_replace(&concrete, "x-1"), vec![0xff, 0xfe, 0xfd]),
                (
                    format!(
                        "{}?limit=-1&since=not-a-date&state=%ff&format=nope",
                        regex_free_replace(&concrete, "x-1")
                    ),
                    b"[]".to_vec(),
                ),
                (broken_path, b"{}".to_vec()),
            ];
            for (uri, body) in attempts {
                let (status, ctype, _, text) = raw(&s, &method.to_uppercase(), &uri, body).await;
                assert!(status.as_u16() < 500, "{method} {uri}: {status} {text}");
                if status.is_client_error() {
                    assert_problem(&format!("{method} {uri}"), status, &ctype, &text);
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 80, "only {checked} requests");
}

/// `{param}` segments replaced by `with`.
fn regex_free_replace(path: &str, with: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                with
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Regression: a decide body with `pad` nested 100,000 deep was accepted
/// and written to the decision log whole.
#[tokio::test]
async fn deeply_nested_decide_body_is_refused_before_it_is_logged() {
    let s = state().await;
    let deep = format!(
        r#"{{"deal": {{"amount": 1000, "discount_pct": 5, "region": "NA"}}, "pad": {}1{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (code, ctype, text) = call(&s, "POST", "/v1/decide/discount-approvals", Some("t-service"), &deep).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");
    assert_problem("deep pad", code, &ctype, &text);
    assert!(text.contains("nested deeper than 128 levels"), "{text}");
    let deep_rep = format!(
        r#"{{"deal": {{"amount": 1}}, "rep": {}1{}}}"#,
        r#"{"r": "#.repeat(100_000),
        "}".repeat(100_000)
    );
    assert_eq!(
        call(
            &s,
            "POST",
            "/v1/decide/discount-approvals",
            Some("t-service"),
            &deep_rep
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    // The deals route too.
    let deep_deal = format!(
        r#"{{"id": "d-deep", "funnel": "b2b", "owner": "r1", "fields": {{"x": {}1{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_eq!(
        call(&s, "POST", "/v1/deals", Some("t-service"), &deep_deal).await.0,
        StatusCode::BAD_REQUEST
    );
    s.log.flush().await;
    let logged = json(&call(&s, "GET", "/v1/decisions", Some("t-viewer"), "").await.2);
    assert_eq!(
        logged["decisions"].as_array().unwrap().len(),
        0,
        "nothing refused is logged: {logged}"
    );
}

/// Regression: `"discount_pct": 5, "discount_pct": 35` silently decided on 35.
#[tokio::test]
async fn duplicate_keys_in_json_input_are_refused_naming_the_key() {
    let s = state().await;
    let dup = r#"{"deal": {"amount": 40000, "discount_pct": 5, "discount_pct": 35, "region": "NA", "payment_terms_days": 30}}"#;
    let (code, ctype, text) = call(&s, "POST", "/v1/decide/discount-approvals", Some("t-service"), dup).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");
    assert_problem("duplicate key", code, &ctype, &text);
    assert!(
        json(&text)["detail"]
            .as_str()
            .unwrap()
            .contains("`deal.discount_pct` appears twice"),
        "{text}"
    );
    let dup_deal = r#"{"id": "d-dup", "funnel": "b2b", "owner": "r1", "owner": "r2", "fields": {}}"#;
    let (code, _, text) = call(&s, "POST", "/v1/deals", Some("t-service"), dup_deal).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("`owner` appears twice"), "{text}");
    // A pack upload with a file named twice.
    let (code, _, text) = call(
        &s,
        "POST",
        "/v1/packs/validate",
        Some("t-admin"),
        r#"{"a.yaml": "x: 1", "a.yaml": "x: 2"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");
}

/// A deal owned by `owner`, moved to proposal by `mover` (its request's
/// submitter): 25% on 120,000 needs the manager (u-17) then a director.
async fn deal_at_proposal(s: &Arc<AppState>, id: &str, owner: &str, mover: &str) -> String {
    let body = format!(
        r#"{{"id": "{id}", "funnel": "b2b", "owner": "{owner}", "fields": {{"name": "Acme", "amount": 120000, "close_date": "2026-12-15", "contact_email": "cfo@acme.example", "discount_pct": 25, "payment_terms_days": 30}}, "context": {{"rep": {{"manager": "u-17"}}}}}}"#
    );
    let (code, _, text) = call(s, "POST", "/v1/deals", Some("t-service"), &body).await;
    assert_eq!(code, StatusCode::CREATED, "{text}");
    for to in ["qualified", "proposal"] {
        let (code, text) = call_with(
            s,
            "POST",
            &format!("/v1/deals/{id}/events"),
            mover,
            &[],
            &format!(r#"{{"type": "move", "to": "{to}"}}"#),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{text}");
    }
    let d = json(&call(s, "GET", &format!("/v1/deals/{id}"), Some("t-viewer"), "").await.2);
    d["approvals"][0]["id"].as_str().unwrap().to_string()
}

async fn decide(s: &Arc<AppState>, token: &str, approval: &str) -> (StatusCode, Value) {
    let (code, text) = call_with(
        s,
        "POST",
        &format!("/v1/approvals/{approval}/decision"),
        token,
        &[],
        r#"{"decision": "approve", "comment": "ok"}"#,
    )
    .await;
    (code, json(&text))
}

/// Regression: an approver could approve a step of a request for their own
/// deal, through their group membership or as the named approver.
#[tokio::test]
async fn nobody_approves_their_own_deal_or_their_own_request() {
    let s = state().await;
    add_people(&s).await;
    // u-17 (the manager step's approver) owns this deal.
    let own = deal_at_proposal(&s, "d-own", "u-17", "t-service").await;
    let (code, p) = decide(&s, "t-u17", &own).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("segregation of duties: u-17 owns the deal"),
        "{p}"
    );
    let a = json(
        &call(&s, "GET", "/v1/approvals?deal=d-own", Some("t-viewer"), "")
            .await
            .2,
    );
    assert_eq!(
        a["approvals"][0]["steps"][0]["state"], "pending",
        "the step stays pending: {a}"
    );
    // An admin who is not a party decides it instead (an override).
    let (code, p) = decide(&s, "t-admin", &own).await;
    assert_eq!(code, StatusCode::OK, "{p}");
    assert_eq!(p["steps"][0]["overridden"], true);

    // The submitter of the move: a service token whose subject is u-18,
    // then u-18 in the directors' group tries the director step.
    s.store
        .tokens()
        .add_token(
            &hex::encode(hash_token("t-u18-service")),
            "admin",
            "u-18",
            &["role:sales-director".to_string()],
            "test",
        )
        .await
        .unwrap();
    s.tokens.refresh(&s.store.tokens()).await.unwrap();
    let submitted = deal_at_proposal(&s, "d-submitted", "r1", "t-u18-service").await;
    assert_eq!(
        decide(&s, "t-u17", &submitted).await.0,
        StatusCode::OK,
        "the manager is no party"
    );
    let (code, p) = decide(&s, "t-u18-service", &submitted).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("u-18 submitted the request"),
        "{p}"
    );
    // Another member of the group decides it.
    assert_eq!(decide(&s, "t-director", &submitted).await.0, StatusCode::OK);

    // An admin's override of their own deal is refused too.
    let admins = deal_at_proposal(&s, "d-admins", "t-admin", "t-service").await;
    let (code, p) = decide(&s, "t-admin", &admins).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{p}");
}

#[tokio::test]
async fn a_policy_may_allow_self_approval() {
    let s = state().await;
    add_people(&s).await;
    let allow = rules_as_json(|path, text| {
        if path == "approvals.yaml" {
            text.replacen("spec:\n", "spec:\n  allow_self_approval: true\n", 1)
        } else {
            text
        }
    });
    let (code, _, text) = call(&s, "PUT", "/v1/packs/active", Some("t-admin"), &allow).await;
    assert_eq!(code, StatusCode::OK, "{text}");
    let own = deal_at_proposal(&s, "d-own-ok", "u-17", "t-service").await;
    let (code, p) = decide(&s, "t-u17", &own).await;
    assert_eq!(code, StatusCode::OK, "{p}");
}

/// Regression: with the store down, deal routes answered 500 "internal
/// error" after a 5 s pool timeout.
#[tokio::test]
async fn an_unavailable_store_is_a_quick_503_with_retry_after() {
    let s = state().await;
    s.store.close().await;
    let started = std::time::Instant::now();
    let (status, ctype, headers, text) = raw(
        &s,
        "POST",
        "/v1/deals",
        br#"{"id": "d-x", "funnel": "b2b", "owner": "r1", "fields": {}}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert_problem("store down", status, &ctype, &text);
    assert!(headers.get("retry-after").is_some());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let (status, _, headers, _) = raw(&s, "GET", "/v1/deals/d-1", vec![]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.get("retry-after").is_some());
}

/// The long-work pool answers 503 at once when its queue is full, and
/// runs the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_long_work_pool_answers_503_without_waiting() {
    let pool = Arc::new(dealrules_server::long_work::LongWork::new(1, 1));
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    let mut running = Vec::new();
    for _ in 0..2 {
        let (pool, rx) = (pool.clone(), rx.clone());
        running.push(tokio::spawn(async move {
            pool.run(move || rx.lock().unwrap().recv().is_ok()).await
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let third = pool.run(|| true).await;
    assert!(
        matches!(third, Err(dealrules_server::error::ApiError::Busy(_))),
        "{third:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(50));
    tx.send(()).unwrap();
    tx.send(()).unwrap();
    for r in running {
        assert!(r.await.unwrap().unwrap());
    }
    assert!(pool.run(|| true).await.unwrap());
}
