//! The HTTP API: health, readiness, metrics, decide, policies, status, packs
//! (validate, activate by upload, list, rollback) and tokens; the routers
//! of the other modules (the decision log, people, incentives, ...) merged.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use dealrules_model::Kind;
use dealrules_store::ActivationSource;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json_, json};
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::activation::Activations;
use crate::activation::Outcome;
use crate::auth::{Role, generate_token, hash_token};
use crate::error::ApiError;
use crate::extract::{Admin, Caller, Expected, JsonBody, Service, Viewer};
use crate::openapi;
use crate::reload;
use crate::state::{Active, AppState, PackStore, StoreHandle, TokenStore};
use crate::upload;

/// Largest request body accepted (pack uploads: [`upload::MAX_UPLOAD_BYTES`]).
pub const MAX_BODY_BYTES: usize = 1 << 20;

pub fn app(state: Arc<AppState>) -> Router {
    let (router, doc) = api();
    let doc = Arc::new(openapi::finish(doc).to_string());
    router
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], (*doc).clone()) }),
        )
        .merge(crate::console::router())
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Last on the way out: the framework's own rejections (413, a
        // non-UTF-8 body, a bad query or path, 405) become problem+json too.
        .layer(axum::middleware::map_response(crate::error::problem_json_everywhere))
        .layer(axum::middleware::from_fn(request_span))
        .with_state(state)
}

/// One span per request: an id (also answered as `x-request-id`), the
/// method and path, and once known the subject, policy and pack version.
/// Never a token: those travel in a header that is not recorded.
async fn request_span(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument;
    let id = ulid::Ulid::new().to_string();
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %req.method(),
        path = %req.uri().path(),
        subject = tracing::field::Empty,
        policy = tracing::field::Empty,
        version = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = res.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "answered"
        )
    });
    if let Ok(v) = header::HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// The routes and their OpenAPI document, from one list.
pub fn api() -> (Router<Arc<AppState>>, utoipa::openapi::OpenApi) {
    // Pack uploads may be larger than other bodies.
    let uploads = OpenApiRouter::new()
        .routes(routes!(validate_pack))
        .routes(routes!(activate_pack))
        .layer(DefaultBodyLimit::max(upload::MAX_UPLOAD_BYTES));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(crate::decision_routes::router())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(decide))
        .routes(routes!(decide_several))
        .routes(routes!(policies))
        .routes(routes!(policy))
        .routes(routes!(status))
        .routes(routes!(packs))
        .routes(routes!(rollback))
        .routes(routes!(pack_files))
        .routes(routes!(tokens, create_token))
        .routes(routes!(revoke_token))
        .merge(uploads)
        .merge(crate::workflow::router())
        .merge(crate::people_routes::router())
        .merge(crate::incentive_routes::router())
        .merge(crate::measured_routes::router())
        .merge(crate::changes::router())
        .split_for_parts()
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "The process is up", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: None,
    })
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    /// The active pack version (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Readiness: a pack is loaded (always, once started) and the store answers.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, description = "Ready", body = Health), (status = 503, description = "The store is not answering")))]
async fn readyz(State(active): State<Active>, State(store): State<StoreHandle>) -> Result<Json<Health>, ApiError> {
    store
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(format!("the store is not answering: {e}")))?;
    Ok(Json(Health {
        status: "ready".into(),
        version: Some(active.load().version.to_string()),
    }))
}

/// Prometheus metrics: decisions by policy and outcome, decision latency, reloads, the decision log.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String)))]
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// One decision, as `dealrules eval`: the same JSON for the same pack and input.
#[utoipa::path(post, path = "/v1/decide/{policy}", tag = "decide",
    params(("policy" = String, Path, description = "A policy name, or Kind/name when names repeat across kinds")),
    request_body(content = Object, content_type = "application/json", description = "The facts: {\"deal\": {...}, \"rep\": {...}, ...}"),
    responses(
        (status = 200, description = "The decision, with the pack version and the trace", body = Object),
        (status = 400, description = "The body is not a JSON object"),
        (status = 404, description = "No such policy"),
        (status = 413, description = "The body is larger than 1 MiB"),
        (status = 422, description = "Well-formed but cannot be decided (a missing field, a plugin that failed)"),
    ),
    extensions(("x-required-role" = json!("service"))))]
async fn decide(
    State(state): State<Arc<AppState>>,
    Path(policy): Path<String>,
    Caller(who, _): Caller<Service>,
    body: String,
) -> Result<Response, ApiError> {
    let text = crate::decide::decide_for(&state, &who, policy, body).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

/// Several policies over one input, each as its own decide.
#[utoipa::path(post, path = "/v1/decide", tag = "decide",
    request_body(content = crate::schemas::DecideSeveral, content_type = "application/json"),
    responses(
        (status = 200, description = "Each policy's decision by name, in the order asked; a policy that could not decide is `{\"error\": {\"status\", \"detail\"}}` (404 unknown, 400 bad input, 422 cannot be decided) and the others still decide", body = Object),
        (status = 400, description = "The body is not `{\"policies\": [...], \"input\": {...}}`: no policies, more than 64, one named twice, an input that is not an object"),
        (status = 413, description = "The body is larger than 1 MiB"),
    ),
    extensions(("x-required-role" = json!("service"))))]
async fn decide_several(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Service>,
    body: String,
) -> Result<Response, ApiError> {
    let text = crate::decide::decide_several(&state, &who, body).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

/// The active pack's policies with kind, name and version.
#[utoipa::path(get, path = "/v1/policies", tag = "policies", responses((status = 200, description = "The policies", body = PolicyList)), extensions(("x-required-role" = json!("viewer"))))]
async fn policies(State(active): State<Active>, _: Caller<Viewer>) -> Result<Json<PolicyList>, ApiError> {
    let s = active.load();
    let policies = s
        .policies()
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(PolicyList {
        version: s.version.to_string(),
        policies,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct PolicyList {
    pub version: String,
    /// `{kind, name, version, description, file, decidable}` for each.
    #[schema(value_type = Vec<Object>)]
    pub policies: Vec<Json_>,
}

/// One policy: its source, its parsed spec and the compiled summary.
#[utoipa::path(get, path = "/v1/policies/{kind}/{name}", tag = "policies",
    params(("kind" = String, Path, description = "Funnel, ApprovalPolicy, DecisionTable, IncentivePlan, Targets, ..."), ("name" = String, Path)),
    responses((status = 200, description = "The policy", body = Object), (status = 404, description = "No such kind or policy")),
    extensions(("x-required-role" = json!("viewer"))))]
async fn policy(
    State(active): State<Active>,
    Path((kind, name)): Path<(String, String)>,
    _: Caller<Viewer>,
) -> Result<Json<Json_>, ApiError> {
    let kind = Kind::parse(&kind).ok_or_else(|| ApiError::NotFound(format!("no kind `{kind}`")))?;
    let s = active.load();
    let doc = s
        .pack
        .find(kind, &name)
        .ok_or_else(|| ApiError::NotFound(format!("no {kind} named `{name}`")))?;
    let source = s
        .pack
        .source
        .files
        .get(&doc.file)
        .map(|b| String::from_utf8_lossy(b).into_owned());
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

/// The active pack version, who activated it and when, the last reload and its errors.
#[utoipa::path(get, path = "/v1/status", tag = "policies", responses((status = 200, description = "The status", body = crate::activation::ReloadStatus)), extensions(("x-required-role" = json!("viewer"))))]
async fn status(
    State(state): State<Arc<AppState>>,
    _: Caller<Viewer>,
) -> Result<Json<crate::activation::ReloadStatus>, ApiError> {
    let mut status = state.status.read().unwrap_or_else(|p| p.into_inner()).clone();
    status.workers = state.workers.status();
    Ok(Json(status))
}

// ---- packs ----

/// Validates a pack and runs its tests without activating it.
#[utoipa::path(post, path = "/v1/packs/validate", tag = "packs", request_body(description = "A pack: a tar.gz archive of the rules folder, or a JSON map of path -> text", content(
        (Object = "application/json", example = json!({"approvals.yaml": "apiVersion: dealrules/v1\nkind: ApprovalPolicy\n..."})),
        (Vec<u8> = "application/gzip"),
    )),
    responses((status = 200, description = "What validation found; `valid` says whether it could be activated", body = reload::Validation), (status = 400, description = "Not a pack (a path outside the pack, a link, not tar.gz nor JSON)"), (status = 413, description = "Larger than 16 MiB")),
    extensions(("x-required-role" = json!("admin"))))]
async fn validate_pack(_: Caller<Admin>, body: Bytes) -> Result<Json<reload::Validation>, ApiError> {
    let source = upload::read_pack(&body).map_err(ApiError::BadRequest)?;
    let (_, validation) = tokio::task::spawn_blocking(move || reload::validate(source))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(validation))
}

#[derive(Deserialize)]
struct ActivateQuery {
    comment: Option<String>,
}

/// Uploads and activates a pack: validated and tested first, stored, then swapped in.
#[utoipa::path(put, path = "/v1/packs/active", tag = "packs", request_body(description = "A pack: a tar.gz archive of the rules folder, or a JSON map of path -> text", content(
        (Object = "application/json", example = json!({"approvals.yaml": "apiVersion: dealrules/v1\nkind: ApprovalPolicy\n..."})),
        (Vec<u8> = "application/gzip"),
    )),
    params(("comment" = Option<String>, Query, description = "Why, kept with the activation")),
    responses(
        (status = 200, description = "Activated, or already active", body = ActivationAnswer),
        (status = 400, description = "Not a pack"),
        (status = 413, description = "Larger than 16 MiB"),
        (status = 422, description = "The pack has errors or failing tests; `errors` lists them; the active pack keeps serving"),
    ),
    extensions(("x-required-role" = json!("admin"))))]
async fn activate_pack(
    State(activations): State<Activations>,
    Query(q): Query<ActivateQuery>,
    Caller(who, _): Caller<Admin>,
    body: Bytes,
) -> Result<Json<ActivationAnswer>, ApiError> {
    let source = upload::read_pack(&body).map_err(ApiError::BadRequest)?;
    activation_answer(
        activations
            .activate(source, &who.subject, ActivationSource::Upload, q.comment.as_deref())
            .await,
    )
}

impl Expected for RollbackRequest {
    const EXPECTED: &'static str = r#"expected {"version": "sha256:..."}"#;
}

#[derive(Deserialize, ToSchema)]
pub struct RollbackRequest {
    version: String,
    comment: Option<String>,
}

/// Activates an earlier stored version by its hash (or a prefix of 6+ hex digits).
#[utoipa::path(post, path = "/v1/packs/rollback", tag = "packs", request_body = RollbackRequest,
    responses(
        (status = 200, description = "Activated, or already active", body = ActivationAnswer),
        (status = 400, description = "Not a version"),
        (status = 404, description = "No such stored version"),
        (status = 422, description = "That version no longer passes (its tests fail today)"),
    ),
    extensions(("x-required-role" = json!("admin"))))]
async fn rollback(
    State(activations): State<Activations>,
    State(packs): State<PackStore>,
    Caller(who, _): Caller<Admin>,
    JsonBody { value: req, .. }: JsonBody<RollbackRequest>,
) -> Result<Json<ActivationAnswer>, ApiError> {
    let version = packs
        .resolve_version(&req.version)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no stored pack version `{}`", req.version)))?;
    let source = packs
        .pack(&version)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no stored pack version `{version}`")))?;
    activation_answer(
        activations
            .activate(source, &who.subject, ActivationSource::Rollback, req.comment.as_deref())
            .await,
    )
}

#[derive(Serialize, ToSchema)]
pub struct ActivationAnswer {
    /// False when the version was already active.
    pub activated: bool,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::schemas::Activation>)]
    pub activation: Option<dealrules_store::Activation>,
}

fn activation_answer(outcome: Outcome) -> Result<Json<ActivationAnswer>, ApiError> {
    match outcome {
        Outcome::Activated(a) => Ok(Json(ActivationAnswer {
            activated: true,
            version: a.version.clone(),
            activation: Some(a),
        })),
        Outcome::Unchanged(version) => Ok(Json(ActivationAnswer {
            activated: false,
            version,
            activation: None,
        })),
        Outcome::Refused(v) => {
            let mut extra = serde_json::Map::new();
            extra.insert("errors".into(), json!(v.errors));
            extra.insert("version".into(), json!(v.version));
            Err(ApiError::UnprocessableWith {
                detail: format!(
                    "pack {} was not activated: {} problem(s); the active pack keeps serving",
                    v.version,
                    v.errors.len()
                ),
                extra,
            })
        }
    }
}

/// The active pack, every activation (who, when, from where) and every stored version.
#[utoipa::path(get, path = "/v1/packs", tag = "packs", responses((status = 200, description = "Versions and activations, newest first", body = PackList)), extensions(("x-required-role" = json!("viewer"))))]
async fn packs(State(state): State<Arc<AppState>>, _: Caller<Viewer>) -> Result<Json<PackList>, ApiError> {
    let activations = state.store.packs().activations(200).await?;
    let versions = state.store.packs().packs().await?;
    let s = state.status.read().unwrap_or_else(|p| p.into_inner()).clone();
    let active = ActivePack {
        version: s.version,
        activated_at: s.activated_at,
        activated_by: s.activated_by,
        source: s.source,
    };
    Ok(Json(PackList {
        active,
        activations,
        versions,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ActivePack {
    pub version: String,
    pub activated_at: String,
    pub activated_by: String,
    #[schema(value_type = crate::schemas::ActivationSource)]
    pub source: dealrules_store::ActivationSource,
}

#[derive(Serialize, ToSchema)]
pub struct PackList {
    pub active: ActivePack,
    /// The latest 200.
    #[schema(value_type = Vec<crate::schemas::Activation>)]
    pub activations: Vec<dealrules_store::Activation>,
    #[schema(value_type = Vec<crate::schemas::PackInfo>)]
    pub versions: Vec<dealrules_store::PackInfo>,
}

/// A stored version's files: text files as text, others as base64.
#[utoipa::path(get, path = "/v1/packs/{version}", tag = "packs", params(("version" = String, Path, description = "sha256:<hex> or a prefix of 6+ hex digits")),
    responses((status = 200, description = "The files", body = PackFiles), (status = 400, description = "Not a version"), (status = 404, description = "No such stored version")),
    extensions(("x-required-role" = json!("viewer"))))]
async fn pack_files(
    State(packs): State<PackStore>,
    Path(version): Path<String>,
    _: Caller<Viewer>,
) -> Result<Json<PackFiles>, ApiError> {
    let version = packs
        .resolve_version(&version)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no stored pack version `{version}`")))?;
    let source = packs
        .pack(&version)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no stored pack version `{version}`")))?;
    let files: serde_json::Value =
        serde_json::from_str(&dealrules_store::pack_to_json(&source)).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(PackFiles {
        version,
        files: files["files"].clone(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct PackFiles {
    pub version: String,
    /// path -> `{"text": ...}` or `{"base64": ...}`.
    #[schema(value_type = Object)]
    pub files: Json_,
}

// ---- tokens ----

impl Expected for NewToken {
    const EXPECTED: &'static str = r#"expected {"role", "subject", "groups"}"#;
}

#[derive(Deserialize, ToSchema)]
pub struct NewToken {
    /// viewer, service, approver or admin.
    role: String,
    subject: String,
    #[serde(default)]
    groups: Vec<String>,
}

/// Live tokens (never the tokens nor their hashes).
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", responses((status = 200, description = "The tokens", body = TokenList)), extensions(("x-required-role" = json!("admin"))))]
async fn tokens(State(tokens): State<TokenStore>, _: Caller<Admin>) -> Result<Json<TokenList>, ApiError> {
    Ok(Json(TokenList {
        tokens: tokens.tokens().await?,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    #[schema(value_type = Vec<crate::schemas::TokenRecord>)]
    pub tokens: Vec<dealrules_store::TokenRecord>,
}

/// The document's schema is [`crate::schemas::CreatedToken`].
#[derive(Serialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub record: dealrules_store::TokenRecord,
    /// The token itself, shown this once.
    pub token: String,
}

/// Creates a token; the answer is the only time the token is shown.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, description = "The token", body = crate::schemas::CreatedToken), (status = 400, description = "Not a role, or no subject")),
    extensions(("x-required-role" = json!("admin"))))]
async fn create_token(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    JsonBody { value: req, .. }: JsonBody<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`{}` is not a role: viewer, service, approver or admin",
            req.role
        ))
    })?;
    crate::error::user_id("subject", &req.subject)?;
    let token = generate_token().map_err(ApiError::Internal)?;
    let record = state
        .store
        .tokens()
        .add_token(
            &hex::encode(hash_token(&token)),
            role.as_str(),
            req.subject.trim(),
            &req.groups,
            &who.subject,
        )
        .await?;
    state.tokens.refresh(&state.store.tokens()).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { record, token })))
}

/// Revokes a token.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such live token")),
    extensions(("x-required-role" = json!("admin"))))]
async fn revoke_token(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    _: Caller<Admin>,
) -> Result<StatusCode, ApiError> {
    if !state.store.tokens().revoke_token(&id).await? {
        return Err(ApiError::NotFound(format!("no live token `{id}`")));
    }
    state.tokens.refresh(&state.store.tokens()).await?;
    Ok(StatusCode::NO_CONTENT)
}
