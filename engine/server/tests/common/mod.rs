//! What the API tests share: a server state on a real SQLite file with one
//! token per role, a oneshot caller, the rules folder as an upload.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use dealrules_server::auth::{Role, TokenBook, hash_token};
use dealrules_server::state::{AppState, Setup};
use dealrules_store::Store;
use http_body_util::BodyExt;
use tower::ServiceExt;

pub mod world;

pub fn rules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

/// A server state on a real SQLite file, with one token per role.
pub async fn state() -> Arc<AppState> {
    let dir = tempfile::tempdir().unwrap().keep();
    let store = Arc::new(
        Store::open(&format!("sqlite://{}", dir.join("dealrules.db").display()))
            .await
            .unwrap(),
    );
    for (t, role) in [
        ("t-viewer", Role::Viewer),
        ("t-service", Role::Service),
        ("t-approver", Role::Approver),
        ("t-admin", Role::Admin),
    ] {
        store
            .tokens()
            .add_token(&hex::encode(hash_token(t)), role.as_str(), t, &[], "test")
            .await
            .unwrap();
    }
    let (snapshot, activation, errors) = dealrules_server::reload::startup(&store, &rules()).await.unwrap();
    assert!(errors.is_none());
    AppState::start(Setup {
        snapshot,
        activation,
        rules_dir: rules(),
        store,
        fixed_tokens: TokenBook::default(),
        decision_log: true,
        clock: Default::default(),
        four_eyes: true,
    })
    .await
    .unwrap()
}

pub async fn call(
    state: &Arc<AppState>,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, String, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = dealrules_server::routes::app(state.clone())
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let ctype = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, ctype, String::from_utf8_lossy(&bytes).into_owned())
}

/// The rules folder as a JSON upload (path -> text).
pub fn rules_as_json(edit: impl Fn(&str, String) -> String) -> String {
    let source = dealrules_model::PackSource::from_dir(&rules()).unwrap();
    let map: serde_json::Map<String, serde_json::Value> = source
        .files
        .iter()
        .map(|(p, b)| {
            (
                p.clone(),
                serde_json::Value::String(edit(p, String::from_utf8(b.clone()).unwrap())),
            )
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// As [`call`], with extra headers.
pub async fn call_with(
    state: &Arc<AppState>,
    method: &str,
    uri: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = dealrules_server::routes::app(state.clone())
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Approver tokens for the default pack's people: `t-u17` is rep managers'
/// u-17, `t-director` is in role:sales-director, `t-u18` is u-18.
pub async fn add_people(s: &Arc<AppState>) {
    for (t, subject, groups) in [
        ("t-u17", "u-17", vec![]),
        ("t-director", "u-99", vec!["role:sales-director".to_string()]),
        ("t-u18", "u-18", vec![]),
    ] {
        s.store
            .tokens()
            .add_token(&hex::encode(hash_token(t)), "approver", subject, &groups, "test")
            .await
            .unwrap();
    }
    s.tokens.refresh(&s.store.tokens()).await.unwrap();
}

/// Waits (up to 5 s) for an async condition.
pub async fn wait_until<F, Fut>(mut ok: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(5) {
        if ok().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("not seen within 5 s");
}
