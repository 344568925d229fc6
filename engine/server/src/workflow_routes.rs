//! The workflow's HTTP API: deals and their events, approval requests,
//! delegations, the pipeline and the outbox.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Role;
use crate::error::ApiError;
use crate::routes::who;
use crate::state::AppState;
use crate::workflow::{self, ApprovalDecisionRequest, DealView, NewDeal, Pipeline};

/// Creates a deal in its funnel's initial stage.
#[utoipa::path(post, path = "/v1/deals", tag = "deals", request_body = NewDeal,
    responses((status = 201, description = "The deal", body = DealView), (status = 400, description = "Not a deal"), (status = 409, description = "A deal with this id exists"), (status = 422, description = "No such funnel in the active pack")),
    extensions(("x-required-role" = json!("service"))))]
pub async fn create_deal(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<DealView>), ApiError> {
    let who = who(&state, &headers, Role::Service).await?;
    let req: NewDeal = crate::error::read_json(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "expected {{\"id\", \"funnel\", \"owner\", \"fields\", \"context\"}}: {e}"
        ))
    })?;
    Ok((
        StatusCode::CREATED,
        Json(workflow::create_deal(&state, &who, req).await?),
    ))
}

/// A deal: stage, fields, approvals, scheduled timers and its whole history.
#[utoipa::path(get, path = "/v1/deals/{id}", tag = "deals", params(("id" = String, Path)),
    responses((status = 200, description = "The deal", body = DealView), (status = 404, description = "No such deal")),
    extensions(("x-required-role" = json!("viewer"))))]
pub async fn deal(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<DealView>, ApiError> {
    who(&state, &headers, Role::Viewer).await?;
    Ok(Json(workflow::view(&state.store, &id).await?))
}

/// An event on a deal: field changes or a move request. With an
/// `Idempotency-Key` header, a retry returns the first answer and changes
/// nothing.
#[utoipa::path(post, path = "/v1/deals/{id}/events", tag = "deals", request_body = workflow::Event,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "The client's key for this event")),
    responses(
        (status = 200, description = "The deal after the event", body = DealView),
        (status = 400, description = "Not an event"),
        (status = 404, description = "No such deal"),
        (status = 409, description = "The move is refused; `reasons` lists every reason"),
        (status = 422, description = "The key was used for a different request"),
    ),
    extensions(("x-required-role" = json!("service"))))]
pub async fn event(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = who(&state, &headers, Role::Service).await?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (status, body) = workflow::apply_event(&state, &who, &id, key.as_deref(), &body).await?;
    let ctype = if status == 200 {
        "application/json"
    } else {
        "application/problem+json"
    };
    Ok((
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, ctype)],
        body,
    )
        .into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalsQuery {
    /// pending | approved | rejected | recalled
    state: Option<String>,
    /// Only this deal's.
    deal: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApprovalList {
    pub approvals: Vec<dealrules_store::Approval>,
}

/// Approval requests, by state and deal.
#[utoipa::path(get, path = "/v1/approvals", tag = "approvals", params(ApprovalsQuery),
    responses((status = 200, description = "The requests, oldest first", body = ApprovalList), (status = 400, description = "Not a state")),
    extensions(("x-required-role" = json!("viewer"))))]
pub async fn approvals(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ApprovalsQuery>,
) -> Result<Json<ApprovalList>, ApiError> {
    who(&state, &headers, Role::Viewer).await?;
    if let Some(s) = &q.state
        && !["pending", "approved", "rejected", "recalled"].contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "`{s}` is not a state: pending, approved, rejected or recalled"
        )));
    }
    Ok(Json(ApprovalList {
        approvals: state.store.approvals(q.state.as_deref(), q.deal.as_deref()).await?,
    }))
}

/// Approves or rejects the pending step, as its approver, a member of its
/// role, a delegate, or an admin (recorded as an override).
#[utoipa::path(post, path = "/v1/approvals/{id}/decision", tag = "approvals", params(("id" = String, Path)), request_body = ApprovalDecisionRequest,
    responses(
        (status = 200, description = "The approval", body = dealrules_store::Approval),
        (status = 400, description = "Not a decision"),
        (status = 404, description = "No such approval"),
        (status = 409, description = "Not pending"),
    ),
    extensions(("x-required-role" = json!("approver"))))]
pub async fn decide_approval(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<dealrules_store::Approval>, ApiError> {
    let who = who(&state, &headers, Role::Approver).await?;
    let req: ApprovalDecisionRequest = crate::error::read_json(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "expected {{\"decision\": \"approve\" | \"reject\", \"comment\"}}: {e}"
        ))
    })?;
    Ok(Json(workflow::decide_approval(&state, &who, &id, req).await?))
}

/// The submitter takes a pending request back.
#[utoipa::path(post, path = "/v1/approvals/{id}/recall", tag = "approvals", params(("id" = String, Path)),
    responses((status = 200, description = "The approval", body = dealrules_store::Approval), (status = 404, description = "No such approval"), (status = 409, description = "Not pending")),
    extensions(("x-required-role" = json!("service"))))]
pub async fn recall(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<dealrules_store::Approval>, ApiError> {
    let who = who(&state, &headers, Role::Service).await?;
    Ok(Json(workflow::recall_approval(&state, &who, &id).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct NewDelegation {
    /// The approver whose requests are delegated (the token's subject unless an admin asks).
    pub from: Option<String>,
    pub to: String,
    /// First day, YYYY-MM-DD.
    pub starts: String,
    /// Last day, YYYY-MM-DD.
    pub ends: String,
}

/// Delegates an approver's requests to another user for a date range.
#[utoipa::path(post, path = "/v1/delegations", tag = "approvals", request_body = NewDelegation,
    responses((status = 201, description = "The delegation", body = dealrules_store::Delegation), (status = 400, description = "Not a date"), (status = 422, description = "Ends before it starts, or delegates to oneself")),
    extensions(("x-required-role" = json!("approver"))))]
pub async fn delegate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<dealrules_store::Delegation>), ApiError> {
    let who = who(&state, &headers, Role::Approver).await?;
    let req: NewDelegation = crate::error::read_json(&body)
        .map_err(|e| ApiError::BadRequest(format!("expected {{\"to\", \"starts\", \"ends\"}}: {e}")))?;
    for (field, value) in [("from", req.from.as_deref()), ("to", Some(req.to.as_str()))] {
        if let Some(v) = value {
            crate::error::user_id(field, v)?;
        }
    }
    let from = req.from.clone().unwrap_or_else(|| who.subject.clone());
    if from != who.subject && who.role != Role::Admin {
        return Err(ApiError::Forbidden(format!(
            "only {from} or an admin may delegate {from}'s approvals"
        )));
    }
    let day = |s: &str| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| ApiError::BadRequest(format!("`{s}` is not a date (YYYY-MM-DD)")))
    };
    let (starts, ends) = (day(&req.starts)?, day(&req.ends)?);
    if ends < starts || req.to.trim().is_empty() || req.to == from {
        // Well-formed but contradictory: what no schema can say is a 422.
        return Err(ApiError::Unprocessable(
            "a delegation needs another user and a range that ends on or after it starts".into(),
        ));
    }
    let d = state
        .store
        .add_delegation(&from, &req.to, &starts.to_string(), &ends.to_string(), &who.subject)
        .await?;
    Ok((StatusCode::CREATED, Json(d)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PipelineQuery {
    /// stage (default), owner or period (the quarter of `close_date`).
    by: Option<String>,
}

/// The weighted pipeline of open deals: amount x stage probability.
#[utoipa::path(get, path = "/v1/pipeline", tag = "deals", params(PipelineQuery),
    responses((status = 200, description = "Totals and groups", body = Pipeline), (status = 400, description = "Not a grouping")),
    extensions(("x-required-role" = json!("viewer"))))]
pub async fn pipeline(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<PipelineQuery>,
) -> Result<Json<Pipeline>, ApiError> {
    who(&state, &headers, Role::Viewer).await?;
    Ok(Json(
        workflow::pipeline(&state, q.by.as_deref().unwrap_or("stage")).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    deal: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OutboxList {
    #[schema(value_type = Vec<Object>)]
    pub notifications: Vec<dealrules_store::OutboxRow>,
}

/// Rendered notifications and their delivery state.
#[utoipa::path(get, path = "/v1/outbox", tag = "deals", params(OutboxQuery),
    responses((status = 200, description = "Notifications, oldest first", body = OutboxList)),
    extensions(("x-required-role" = json!("viewer"))))]
pub async fn outbox(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<OutboxQuery>,
) -> Result<Json<OutboxList>, ApiError> {
    who(&state, &headers, Role::Viewer).await?;
    Ok(Json(OutboxList {
        notifications: state.store.outbox(q.deal.as_deref()).await?,
    }))
}
