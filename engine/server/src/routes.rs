//! The HTTP API: health, readiness, metrics, decide, policies, status, packs
//! (validate, activate by upload, list, rollback), tokens, and the decision
//! log with replay.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use dealrules_core::DecideError;
use dealrules_model::Kind;
use dealrules_store::{DecisionQuery, DecisionRecord};
use serde::Deserialize;
use serde_json::{json, Value as Json_};

use crate::auth::{generate_token, hash_token, require, Principal, Role};
use crate::error::ApiError;
use crate::reload::{self, Outcome};
use crate::state::AppState;
use crate::upload;

/// Largest request body accepted (pack uploads: [`upload::MAX_UPLOAD_BYTES`]).
pub const MAX_BODY_BYTES: usize = 1 << 20;

pub fn app(state: Arc<AppState>) -> Router {
    let pack_body = DefaultBodyLimit::max(upload::MAX_UPLOAD_BYTES);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/decide/{policy}", post(decide))
        .route("/v1/policies", get(policies))
        .route("/v1/policies/{kind}/{name}", get(policy))
        .route("/v1/status", get(status))
        .route("/v1/packs", get(packs))
        .route("/v1/packs/validate", post(validate_pack).layer(pack_body))
        .route("/v1/packs/active", put(activate_pack).layer(pack_body))
        .route("/v1/packs/rollback", post(rollback))
        .route("/v1/packs/{version}", get(pack_files))
        .route("/v1/decisions", get(decisions))
        .route("/v1/decisions/{id}", get(decision))
        .route("/v1/decisions/{id}/replay", post(replay))
        .route("/v1/tokens", get(tokens).post(create_token))
        .route("/v1/tokens/{id}", delete(revoke_token))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

pub(crate) async fn who(state: &AppState, headers: &HeaderMap, needed: Role) -> Result<Principal, ApiError> {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let p = state.tokens.authenticate(&state.store, auth).await?;
    require(&p, needed)?;
    Ok(p)
}

async fn healthz() -> Json<Json_> {
    Json(json!({ "status": "ok" }))
}

/// Ready when a pack is loaded (always, once started) and the store answers.
async fn readyz(State(state): State<Arc<AppState>>) -> Result<Json<Json_>, ApiError> {
    state.store.ping().await.map_err(|e| ApiError::Unavailable(format!("the store is not answering: {e}")))?;
    Ok(Json(json!({ "status": "ready", "version": &*state.snapshot.load().version })))
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render()).into_response()
}

async fn decide(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(policy): Path<String>, body: String) -> Result<Response, ApiError> {
    let who = who(&state, &headers, Role::Service).await?;
    // The request finishes on the snapshot it started with, whatever a
    // reload swaps in meanwhile.
    let snapshot = state.snapshot.load_full();
    let started = std::time::Instant::now();
    let now = crate::state::now();
    let result = snapshot.decide_json(&policy, &body, &now).map(|d| serde_json::to_string(&d));
    // Only known policies get a series of their own.
    let label = match &result {
        Err(DecideError::UnknownPolicy { .. }) => "(unknown)",
        _ => policy.as_str(),
    };
    state.metrics.decision(label, matches!(result, Ok(Ok(_))), started.elapsed().as_secs_f64());
    let answer = match result {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => Err(ApiError::Internal(e.to_string())),
        Err(e) => Err(ApiError::from(e)),
    };
    if state.log.is_on() {
        let (outcome, logged) = match &answer {
            Ok(text) => ("ok", text.clone()),
            Err(e) => ("error", json!({ "error": e.to_string() }).to_string()),
        };
        state.log.record(DecisionRecord::new(&state.store, &now, &policy, &snapshot.version, outcome, &who.subject, &body, &logged)).await;
    }
    answer.map(|text| ([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

async fn policies(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Json<Json_>, ApiError> {
    who(&state, &headers, Role::Viewer).await?;
    let s = state.snapshot.load();
    Ok(Json(json!({ "version": &*s.version, "policies": s.policies() })))
}

async fn policy(State(state): State<Arc<AppState>>, headers: HeaderMap, Path((kind, name)): Path<(String, String)>) -> Result<Json<Json_>, ApiError> {
    who(&state, &headers, Role::Viewer).await?;
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
    who(&state, &headers, Role::Viewer).await?;
    let status = state.status.read().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(Json(serde_json::to_value(status).map_err(|e| ApiError::Internal(e.to_string()))?))
}

// ---- packs ----

async fn validate_pack(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Json<reload::Validation>, ApiError> {
    who(&state, &headers, Role::Admin).await?;
    let source = upload::read_pack(&body).map_err(ApiError::BadRequest)?;
    let (_, validation) = tokio::task::spawn_blocking(move || reload::validate(source)).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(validation))
}

#[derive(Deserialize)]
struct ActivateQuery {
    comment: Option<String>,
}

async fn activate_pack(State(state): State<Arc<AppState>>, headers: HeaderMap, Query(q): Query<ActivateQuery>, body: Bytes) -> Result<Json<Json_>, ApiError> {
    let who = who(&state, &headers, Role::Admin).await?;
    let source = upload::read_pack(&body).map_err(ApiError::BadRequest)?;
    activation_answer(reload::activate(&state, source, &who.subject, "upload", q.comment.as_deref()).await)
}

#[derive(Deserialize)]
struct RollbackRequest {
    version: String,
    comment: Option<String>,
}

async fn rollback(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Json<Json_>, ApiError> {
    let who = who(&state, &headers, Role::Admin).await?;
    let req: RollbackRequest = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("expected {{\"version\": \"sha256:...\"}}: {e}")))?;
    let version = state.store.resolve_version(&req.version).await?.ok_or_else(|| ApiError::NotFound(format!("no stored pack version `{}`", req.version)))?;
    let source = state.store.pack(&version).await?.ok_or_else(|| ApiError::NotFound(format!("no stored pack version `{version}`")))?;
    activation_answer(reload::activate(&state, source, &who.subject, "rollback", req.comment.as_deref()).await)
}

fn activation_answer(outcome: Outcome) -> Result<Json<Json_>, ApiError> {
    match outcome {
        Outcome::Activated(a) => Ok(Json(json!({ "activated": true, "activation": a }))),
        Outcome::Unchanged(version) => Ok(Json(json!({ "activated": false, "version": version, "detail": "this version is already active" }))),
        Outcome::Refused(v) => {
            let mut extra = serde_json::Map::new();
            extra.insert("errors".into(), json!(v.errors));
            extra.insert("version".into(), json!(v.version));
            Err(ApiError::UnprocessableWith { detail: format!("pack {} was not activated: {} problem(s); the active pack keeps serving", v.version, v.errors.len()), extra })
        }
    }
}

async fn packs(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Json<Json_>, ApiError> {
    who(&state, &headers, Role::Viewer).await?;
    let activations = state.store.activations(200).await?;
    let versions = state.store.packs().await?;
    let status = state.status.read().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(Json(json!({
        "active": { "version": status.version, "activated_at": status.activated_at, "activated_by": status.activated_by, "source": status.source },
        "activations": activations,
        "versions": versions,
    })))
}

async fn pack_files(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(version): Path<String>) -> Result<Json<Json_>, ApiError> {
    who(&state, &headers, Role::Viewer).await?;
    let version = state.store.resolve_version(&version).await?.ok_or_else(|| ApiError::NotFound(format!("no stored pack version `{version}`")))?;
    let source = state.store.pack(&version).await?.ok_or_else(|| ApiError::NotFound(format!("no stored pack version `{version}`")))?;
    let files: serde_json::Value = serde_json::from_str(&dealrules_store::pack_to_json(&source)).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json!({ "version": version, "files": files["files"] })))
}

// ---- the decision log ----

#[derive(Deserialize)]
struct DecisionsQuery {
    policy: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
}

/// A stored body as JSON when it is JSON (numbers exact), else as text.
fn as_json(text: &str) -> Json_ {
    serde_json::from_str(text).unwrap_or_else(|_| Json_::String(text.to_string()))
}

fn record_json(r: &DecisionRecord) -> Json_ {
    json!({
        "id": r.id, "decided_at": r.decided_at, "policy": r.policy, "version": r.version,
        "outcome": r.outcome, "subject": r.subject, "input": as_json(&r.input), "result": as_json(&r.result),
    })
}

async fn decisions(State(state): State<Arc<AppState>>, headers: HeaderMap, Query(q): Query<DecisionsQuery>) -> Result<Json<Json_>, ApiError> {
    who(&state, &headers, Role::Viewer).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, dealrules_store::MAX_PAGE);
    let found = state.store.decisions(&DecisionQuery { policy: q.policy, since: q.since, until: q.until, after: q.after, limit }).await?;
    let next = (found.len() == limit as usize).then(|| found.last().map(|r| r.id.clone())).flatten();
    Ok(Json(json!({ "decisions": found.iter().map(record_json).collect::<Vec<_>>(), "next_after": next })))
}

async fn decision(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<Json_>, ApiError> {
    who(&state, &headers, Role::Viewer).await?;
    let r = state.store.decision(&id).await?.ok_or_else(|| ApiError::NotFound(format!("no decision `{id}` in the log")))?;
    Ok(Json(record_json(&r)))
}

/// Decides a logged decision again on the pack version that made it, with
/// the same input and the same `now`; says whether the answer is the same.
async fn replay(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<Json_>, ApiError> {
    who(&state, &headers, Role::Viewer).await?;
    let r = state.store.decision(&id).await?.ok_or_else(|| ApiError::NotFound(format!("no decision `{id}` in the log")))?;
    let active = state.snapshot.load_full();
    let snapshot = if *active.version == r.version {
        active
    } else {
        let source = state.store.pack(&r.version).await?.ok_or_else(|| ApiError::Unprocessable(format!("pack {} is not stored, so {id} cannot be replayed", r.version)))?;
        let built = tokio::task::spawn_blocking(move || reload::build_source(source)).await.map_err(|e| ApiError::Internal(e.to_string()))?;
        Arc::new(built.map_err(|errors| ApiError::Unprocessable(format!("pack {} no longer builds: {}", r.version, errors.join("; "))))?)
    };
    let (policy, input, decided_at) = (r.policy.clone(), r.input.clone(), r.decided_at.clone());
    let replayed = tokio::task::spawn_blocking(move || match snapshot.decide_json(&policy, &input, &decided_at) {
        Ok(d) => serde_json::to_string(&d).map_err(|e| e.to_string()),
        Err(e) => Ok(json!({ "error": ApiError::from(e).to_string() }).to_string()),
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(ApiError::Internal)?;
    let (original, again) = (as_json(&r.result), as_json(&replayed));
    Ok(Json(json!({
        "id": r.id, "policy": r.policy, "version": r.version, "decided_at": r.decided_at,
        "same": original == again, "original": original, "replayed": again,
    })))
}

// ---- tokens ----

#[derive(Deserialize)]
struct NewToken {
    role: String,
    subject: String,
    #[serde(default)]
    groups: Vec<String>,
}

async fn tokens(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Json<Json_>, ApiError> {
    who(&state, &headers, Role::Admin).await?;
    Ok(Json(json!({ "tokens": state.store.tokens().await? })))
}

async fn create_token(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<(StatusCode, Json<Json_>), ApiError> {
    let who = who(&state, &headers, Role::Admin).await?;
    let req: NewToken = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("expected {{\"role\", \"subject\", \"groups\"}}: {e}")))?;
    let role = Role::parse(&req.role).ok_or_else(|| ApiError::BadRequest(format!("`{}` is not a role: viewer, service, approver or admin", req.role)))?;
    if req.subject.trim().is_empty() {
        return Err(ApiError::BadRequest("a token needs a subject (a user id)".into()));
    }
    let token = generate_token().map_err(ApiError::Internal)?;
    let record = state.store.add_token(&hex::encode(hash_token(&token)), role.as_str(), req.subject.trim(), &req.groups, &who.subject).await?;
    state.tokens.refresh(&state.store).await?;
    let mut body = serde_json::to_value(&record).map_err(|e| ApiError::Internal(e.to_string()))?;
    body["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(body)))
}

async fn revoke_token(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    who(&state, &headers, Role::Admin).await?;
    if !state.store.revoke_token(&id).await? {
        return Err(ApiError::NotFound(format!("no live token `{id}`")));
    }
    state.tokens.refresh(&state.store).await?;
    Ok(StatusCode::NO_CONTENT)
}
