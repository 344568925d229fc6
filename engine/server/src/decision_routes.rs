//! The decision log over HTTP: a page, one decision, a replay on the pack
//! version that made it. The functions behind the routes serve the
//! console's pages too.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Json;
use axum::extract::{Path, Query, State};
use dealrules_core::Snapshot;
use dealrules_store::{DecisionQuery, DecisionRecord, Decisions, Packs};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json_, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role, require};
use crate::error::ApiError;
use crate::extract::{Caller, Viewer};
use crate::reload;
use crate::state::{Active, AppState, DecisionStore, PackStore};

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(decisions))
        .routes(routes!(decision))
        .routes(routes!(replay))
}

#[derive(Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DecisionsQuery {
    /// Only this policy.
    pub policy: Option<String>,
    /// From this time, inclusive (RFC 3339 or YYYY-MM-DD).
    pub since: Option<String>,
    /// Before this time (RFC 3339 or YYYY-MM-DD).
    pub until: Option<String>,
    /// The `next_after` of the previous page.
    pub after: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// A stored body as JSON when it is JSON (numbers exact), else as text.
fn as_json(text: &str) -> Json_ {
    serde_json::from_str(text).unwrap_or_else(|_| Json_::String(text.to_string()))
}

/// One logged decision.
#[derive(Serialize, ToSchema)]
pub struct LoggedDecision {
    pub id: String,
    /// The `now` it was decided with.
    pub decided_at: String,
    pub policy: String,
    /// The pack version that decided.
    pub version: String,
    /// `ok` or `error`.
    pub outcome: String,
    /// Who asked.
    pub subject: String,
    /// The request body as sent.
    #[schema(value_type = Value)]
    pub input: Json_,
    /// The answer: the decision, or `{"error": ...}`.
    #[schema(value_type = Value)]
    pub result: Json_,
}

fn record_json(r: &DecisionRecord) -> LoggedDecision {
    LoggedDecision {
        id: r.id.clone(),
        decided_at: r.decided_at.clone(),
        policy: r.policy.clone(),
        version: r.version.clone(),
        outcome: r.outcome.clone(),
        subject: r.subject.clone(),
        input: as_json(&r.input),
        result: as_json(&r.result),
    }
}

#[derive(Serialize, ToSchema)]
pub struct DecisionPage {
    /// Oldest first.
    pub decisions: Vec<LoggedDecision>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<String>,
}

/// The decision log, oldest first, filtered by policy and time.
#[utoipa::path(get, path = "/v1/decisions", tag = "decision-log", params(DecisionsQuery),
    responses((status = 200, description = "A page of the log", body = DecisionPage), (status = 400, description = "A time that is not a time")),
    extensions(("x-required-role" = json!("viewer"))))]
async fn decisions(
    State(log): State<DecisionStore>,
    Query(q): Query<DecisionsQuery>,
    Caller(who, _): Caller<Viewer>,
) -> Result<Json<DecisionPage>, ApiError> {
    Ok(Json(decision_page(&log, &who, q).await?))
}

/// A page of the decision log, for `GET /v1/decisions` and the console.
pub(crate) async fn decision_page(
    log: &Decisions,
    who: &Principal,
    q: DecisionsQuery,
) -> Result<DecisionPage, ApiError> {
    require(who, Role::Viewer)?;
    let limit = q.limit.unwrap_or(100).clamp(1, dealrules_store::MAX_PAGE);
    let found = log
        .decisions(&DecisionQuery {
            policy: q.policy,
            since: q.since,
            until: q.until,
            after: q.after,
            limit,
        })
        .await?;
    let next = (found.len() == limit as usize)
        .then(|| found.last().map(|r| r.id.clone()))
        .flatten();
    Ok(DecisionPage {
        decisions: found.iter().map(record_json).collect(),
        next_after: next,
    })
}

/// One logged decision.
#[utoipa::path(get, path = "/v1/decisions/{id}", tag = "decision-log", params(("id" = String, Path)),
    responses((status = 200, description = "The decision", body = LoggedDecision), (status = 404, description = "Not in the log")),
    extensions(("x-required-role" = json!("viewer"))))]
async fn decision(
    State(log): State<DecisionStore>,
    Path(id): Path<String>,
    Caller(who, _): Caller<Viewer>,
) -> Result<Json<LoggedDecision>, ApiError> {
    Ok(Json(logged_decision(&log, &who, &id).await?))
}

/// One logged decision, for `GET /v1/decisions/{id}` and the console.
pub(crate) async fn logged_decision(log: &Decisions, who: &Principal, id: &str) -> Result<LoggedDecision, ApiError> {
    require(who, Role::Viewer)?;
    let r = log
        .decision(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no decision `{id}` in the log")))?;
    Ok(record_json(&r))
}

/// Replays a logged decision on the pack version that made it.
///
/// Decides a logged decision again on the pack version that made it, with
/// the same input and the same `now`; says whether the answer is the same.
#[utoipa::path(post, path = "/v1/decisions/{id}/replay", tag = "decision-log", params(("id" = String, Path)),
    responses((status = 200, description = "The original and the replayed answer", body = Replay), (status = 404, description = "Not in the log"), (status = 422, description = "Its pack version is not stored or no longer builds")),
    extensions(("x-required-role" = json!("viewer"))))]
async fn replay(
    State(log): State<DecisionStore>,
    State(packs): State<PackStore>,
    State(active): State<Active>,
    Path(id): Path<String>,
    Caller(who, _): Caller<Viewer>,
) -> Result<Json<Replay>, ApiError> {
    Ok(Json(replay_decision(&log, &packs, &active, &who, &id).await?))
}

/// Replays a logged decision, for `POST /v1/decisions/{id}/replay` and the console.
pub(crate) async fn replay_decision(
    log: &Decisions,
    packs: &Packs,
    active: &ArcSwap<Snapshot>,
    who: &Principal,
    id: &str,
) -> Result<Replay, ApiError> {
    require(who, Role::Viewer)?;
    let r = log
        .decision(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no decision `{id}` in the log")))?;
    let active = active.load_full();
    let snapshot = if *active.version == r.version {
        active
    } else {
        let source = packs.pack(&r.version).await?.ok_or_else(|| {
            ApiError::Unprocessable(format!("pack {} is not stored, so {id} cannot be replayed", r.version))
        })?;
        let built = tokio::task::spawn_blocking(move || reload::build_source(source))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Arc::new(built.map_err(|errors| {
            ApiError::Unprocessable(format!("pack {} no longer builds: {}", r.version, errors.join("; ")))
        })?)
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
    Ok(Replay {
        id: r.id,
        policy: r.policy,
        version: r.version,
        decided_at: r.decided_at,
        same: original == again,
        original,
        replayed: again,
    })
}

#[derive(Serialize, ToSchema)]
pub struct Replay {
    pub id: String,
    pub policy: String,
    pub version: String,
    pub decided_at: String,
    /// Whether the replayed answer equals the logged one.
    pub same: bool,
    #[schema(value_type = Value)]
    pub original: Json_,
    #[schema(value_type = Value)]
    pub replayed: Json_,
}
