//! The HTTP API (the part that needs no store yet): health, readiness,
//! metrics, decide, policies, status.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dealrules_core::DecideError;
use dealrules_model::Kind;
use serde_json::{json, Value as Json_};

use crate::auth::{require, Principal, Role};
use crate::error::ApiError;
use crate::state::AppState;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1 << 20;

pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/decide/{policy}", post(decide))
        .route("/v1/policies", get(policies))
        .route("/v1/policies/{kind}/{name}", get(policy))
        .route("/v1/status", get(status))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn who(state: &AppState, headers: &HeaderMap, needed: Role) -> Result<Principal, ApiError> {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let p = state.tokens.authenticate(auth)?;
    require(&p, needed)?;
    Ok(p)
}

async fn healthz() -> Json<Json_> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<Arc<AppState>>) -> Json<Json_> {
    Json(json!({ "status": "ready", "version": &*state.snapshot.load().version }))
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render()).into_response()
}

async fn decide(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(policy): Path<String>, body: String) -> Result<Response, ApiError> {
    who(&state, &headers, Role::Service)?;
    // The request finishes on the snapshot it started with, whatever a
    // reload swaps in meanwhile.
    let snapshot = state.snapshot.load_full();
    let started = std::time::Instant::now();
    let now = crate::state::now();
    let result = snapshot.decide_json(&policy, &body, &now).map(|d| serde_json::to_vec(&d));
    // Only known policies get a series of their own.
    let label = match &result {
        Err(DecideError::UnknownPolicy { .. }) => "(unknown)",
        _ => policy.as_str(),
    };
    state.metrics.decision(label, matches!(result, Ok(Ok(_))), started.elapsed().as_secs_f64());
    match result {
        Ok(Ok(body)) => Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response()),
        Ok(Err(e)) => Err(ApiError::Internal(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

async fn policies(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Json<Json_>, ApiError> {
    who(&state, &headers, Role::Viewer)?;
    let s = state.snapshot.load();
    Ok(Json(json!({ "version": &*s.version, "policies": s.policies() })))
}

async fn policy(State(state): State<Arc<AppState>>, headers: HeaderMap, Path((kind, name)): Path<(String, String)>) -> Result<Json<Json_>, ApiError> {
    who(&state, &headers, Role::Viewer)?;
    let kind = Kind::parse(&kind).ok_or_else(|| ApiError::NotFound(format!("no kind `{kind}`")))?;
    let s = state.snapshot.load();
    let doc = s.pack.find(kind, &name).ok_or_else(|| ApiError::NotFound(format!("no {kind} named `{name}`")))?;
    let source = s.pack.source.files.get(&doc.file).map(|b| String::from_utf8_lossy(b).into_owned());
    Ok(Json(json!({
        "kind": kind,
        "name": doc.metadata.name,
        "description": doc.metadata.description,
        "version": &*s.version,
        "file": doc.file,
        "source": source,
        "spec": doc.raw,
        "summary": s.summary(kind, &name),
    })))
}

async fn status(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Json<Json_>, ApiError> {
    who(&state, &headers, Role::Viewer)?;
    let status = state.status.read().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(Json(serde_json::to_value(status).map_err(|e| ApiError::Internal(e.to_string()))?))
}
