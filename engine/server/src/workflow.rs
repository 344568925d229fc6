//! The workflow's HTTP face: deals and their events, approval requests,
//! delegations, the pipeline and the outbox. The runtime itself is
//! [`dealrules_workflow`]; this module reads requests, checks roles and
//! answers, with errors mapped once (`From<WorkflowError> for ApiError`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dealrules_store::{Deals, Outbox};
use dealrules_workflow::{Actor, Clock, DealView, Event, Idempotency, NewDeal, Pipeline, Verdict};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role, require};
use crate::error::ApiError;
use crate::extract::{Approver, Caller, Expected, JsonBody, Service, Viewer};
use crate::state::{Active, AppState, ClockHandle, DealStore, OutboxStore, WorkflowHandle};

/// The workflow's routes and their OpenAPI document.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(create_deal_route, deals))
        .routes(routes!(deal))
        .routes(routes!(event))
        .routes(routes!(approvals))
        .routes(routes!(decide_approval))
        .routes(routes!(recall))
        .routes(routes!(delegate))
        .routes(routes!(pipeline))
        .routes(routes!(outbox))
}

impl From<&Principal> for Actor {
    fn from(p: &Principal) -> Actor {
        Actor {
            subject: p.subject.clone(),
            admin: p.role == Role::Admin,
            groups: p.groups.clone(),
        }
    }
}

// ---- the runtime, called as the server does (also for tests and benches) ----

/// Creates a deal on the active pack.
pub async fn create_deal(state: &Arc<AppState>, who: &Principal, req: NewDeal) -> Result<DealView, ApiError> {
    let snapshot = state.snapshot.load_full();
    Ok(state.workflow.create_deal(&snapshot, &who.into(), req).await?)
}

/// Applies an event given as the request's body; with an idempotency key,
/// a retry returns the first answer and changes nothing. `Ok((status,
/// body))`, a refused move included (409 with its reasons).
pub async fn apply_event(
    state: &Arc<AppState>,
    who: &Principal,
    deal_id: &str,
    key: Option<&str>,
    body: &[u8],
) -> Result<(u16, String), ApiError> {
    let event = crate::error::read_json::<Event>(body)
        .map_err(|e| ApiError::BadRequest(format!("{}: {e}", Event::EXPECTED)))?;
    match event_answer(state, who, deal_id, key, event, body).await {
        Ok(text) => Ok((200, text)),
        Err(e @ ApiError::ConflictWith { .. }) => Ok((409, e.problem().to_string())),
        Err(e) => Err(e),
    }
}

async fn event_answer(
    state: &Arc<AppState>,
    who: &Principal,
    deal_id: &str,
    key: Option<&str>,
    event: Event,
    body: &[u8],
) -> Result<String, ApiError> {
    let key = match key {
        Some(k) if k.is_empty() || k.chars().count() > 200 => {
            return Err(ApiError::BadRequest(
                "Idempotency-Key must have 1 to 200 characters".into(),
            ));
        }
        Some(k) => Some(Idempotency {
            key: k.to_string(),
            request_hash: hex::encode(crate::auth::hash_token(&String::from_utf8_lossy(body))),
        }),
        None => None,
    };
    let snapshot = state.snapshot.load_full();
    Ok(state
        .workflow
        .apply_event(&snapshot, &who.into(), deal_id, event, key.as_ref())
        .await?)
}

/// Fires due timers on the active pack; how many fired.
pub async fn fire_due_timers(state: &Arc<AppState>, limit: i64) -> Result<usize, ApiError> {
    let snapshot = state.snapshot.load_full();
    Ok(state.workflow.fire_due_timers(&snapshot, limit).await?)
}

impl Expected for NewDeal {
    const EXPECTED: &'static str = r#"expected {"id", "funnel", "owner", "fields", "context"}"#;
}

impl Expected for Event {
    const EXPECTED: &'static str = r#"expected {"type": "update", "fields": {...}} or {"type": "move", "to": "stage"}"#;
}

// ---- routes ----

/// Creates a deal in its funnel's initial stage.
#[utoipa::path(post, path = "/v1/deals", tag = "deals", request_body = crate::schemas::NewDeal,
    responses((status = 201, description = "The deal", body = crate::schemas::DealView), (status = 400, description = "Not a deal"), (status = 409, description = "A deal with this id exists"), (status = 422, description = "No such funnel in the active pack")),
    extensions(("x-required-role" = json!("service"))))]
async fn create_deal_route(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Service>,
    JsonBody { value: req, .. }: JsonBody<NewDeal>,
) -> Result<(StatusCode, Json<DealView>), ApiError> {
    Ok((StatusCode::CREATED, Json(create_deal(&state, &who, req).await?)))
}

/// A deal: stage, fields, approvals, scheduled timers and its whole history.
#[utoipa::path(get, path = "/v1/deals/{id}", tag = "deals", params(("id" = String, Path)),
    responses((status = 200, description = "The deal", body = crate::schemas::DealView), (status = 404, description = "No such deal")),
    extensions(("x-required-role" = json!("viewer"))))]
async fn deal(
    State(deals): State<DealStore>,
    Path(id): Path<String>,
    Caller(who, _): Caller<Viewer>,
) -> Result<Json<DealView>, ApiError> {
    Ok(Json(deal_view(&deals, &who, &id).await?))
}

/// A deal, for `GET /v1/deals/{id}` and the console.
pub(crate) async fn deal_view(deals: &Deals, who: &Principal, id: &str) -> Result<DealView, ApiError> {
    require(who, Role::Viewer)?;
    Ok(dealrules_workflow::deal_view(deals, id).await?)
}

#[derive(Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DealsQuery {
    /// The `next_after` of the previous page.
    pub after: Option<String>,
    /// At most this many (default 50, at most 1000).
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct DealPage {
    /// Deals by id: id, funnel, owner, stage, fields, timestamps.
    #[schema(value_type = Vec<Object>)]
    pub deals: Vec<dealrules_store::Deal>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<String>,
}

/// Deals by id, a page at a time, with their stage and fields.
#[utoipa::path(get, path = "/v1/deals", tag = "deals", params(DealsQuery),
    responses((status = 200, description = "A page of deals", body = DealPage)),
    extensions(("x-required-role" = json!("viewer"))))]
async fn deals(
    State(deals): State<DealStore>,
    Query(q): Query<DealsQuery>,
    Caller(who, _): Caller<Viewer>,
) -> Result<Json<DealPage>, ApiError> {
    Ok(Json(deal_page(&deals, &who, q).await?))
}

/// A page of deals, for `GET /v1/deals` and the console.
pub(crate) async fn deal_page(deals: &Deals, who: &Principal, q: DealsQuery) -> Result<DealPage, ApiError> {
    require(who, Role::Viewer)?;
    let limit = q.limit.unwrap_or(50).clamp(1, dealrules_store::MAX_PAGE);
    let deals = deals
        .deals_page(q.after.as_deref().unwrap_or(""), i64::from(limit))
        .await?;
    let next_after = (deals.len() == limit as usize)
        .then(|| deals.last().map(|d| d.id.clone()))
        .flatten();
    Ok(DealPage { deals, next_after })
}

/// An event on a deal: field changes or a move request. With an
/// `Idempotency-Key` header, a retry returns the first answer and changes
/// nothing.
#[utoipa::path(post, path = "/v1/deals/{id}/events", tag = "deals", request_body = crate::schemas::Event,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "The client's key for this event")),
    responses(
        (status = 200, description = "The deal after the event", body = crate::schemas::DealView),
        (status = 400, description = "Not an event"),
        (status = 404, description = "No such deal"),
        (status = 409, description = "The move is refused; `reasons` lists every reason"),
        (status = 422, description = "The key was used for a different request"),
    ),
    extensions(("x-required-role" = json!("service"))))]
async fn event(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Caller(who, _): Caller<Service>,
    JsonBody { value: event, text }: JsonBody<Event>,
) -> Result<Response, ApiError> {
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let text = event_answer(&state, &who, &id, key, event, &text).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

#[derive(Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalsQuery {
    /// pending | approved | rejected | recalled
    pub state: Option<String>,
    /// Only this deal's.
    pub deal: Option<String>,
    /// `true`: only the pending requests whose pending step the caller may
    /// decide today (the approver's inbox); `state` and `deal` are ignored.
    pub mine: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct ApprovalList {
    #[schema(value_type = Vec<crate::schemas::Approval>)]
    pub approvals: Vec<dealrules_store::Approval>,
}

/// Approval requests, by state and deal.
#[utoipa::path(get, path = "/v1/approvals", tag = "approvals", params(ApprovalsQuery),
    responses((status = 200, description = "The requests, oldest first", body = ApprovalList), (status = 400, description = "Not a state")),
    extensions(("x-required-role" = json!("viewer"))))]
async fn approvals(
    State(deals): State<DealStore>,
    State(clock): State<ClockHandle>,
    Query(q): Query<ApprovalsQuery>,
    Caller(who, _): Caller<Viewer>,
) -> Result<Json<ApprovalList>, ApiError> {
    Ok(Json(approval_list(&deals, &clock, &who, q).await?))
}

/// Approval requests, or the caller's inbox (as of `clock`'s today), for
/// `GET /v1/approvals` and the console.
pub(crate) async fn approval_list(
    deals: &Deals,
    clock: &Clock,
    who: &Principal,
    q: ApprovalsQuery,
) -> Result<ApprovalList, ApiError> {
    require(who, Role::Viewer)?;
    if let Some(s) = q.state.as_deref()
        && s.parse::<dealrules_store::ApprovalState>().is_err()
    {
        return Err(ApiError::BadRequest(format!(
            "`{s}` is not a state: pending, approved, rejected or recalled"
        )));
    }
    let approvals = if q.mine == Some(true) {
        dealrules_workflow::inbox(deals, clock, &who.into()).await?
    } else {
        dealrules_workflow::approval_requests(deals, q.state.as_deref(), q.deal.as_deref()).await?
    };
    Ok(ApprovalList { approvals })
}

impl Expected for ApprovalDecisionRequest {
    const EXPECTED: &'static str = r#"expected {"decision": "approve" | "reject", "comment"}"#;
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ApprovalDecisionRequest {
    /// approve | reject
    pub decision: String,
    #[serde(default)]
    pub comment: Option<String>,
}

/// Approves or rejects the pending step, as its approver, a member of its
/// role, a delegate, or an admin (recorded as an override).
#[utoipa::path(post, path = "/v1/approvals/{id}/decision", tag = "approvals", params(("id" = String, Path)), request_body = ApprovalDecisionRequest,
    responses(
        (status = 200, description = "The approval", body = crate::schemas::Approval),
        (status = 400, description = "Not a decision"),
        (status = 404, description = "No such approval"),
        (status = 409, description = "Not pending"),
    ),
    extensions(("x-required-role" = json!("approver"))))]
async fn decide_approval(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Caller(who, _): Caller<Approver>,
    JsonBody { value: req, .. }: JsonBody<ApprovalDecisionRequest>,
) -> Result<Json<dealrules_store::Approval>, ApiError> {
    Ok(Json(approval_decision(&state, &who, &id, req).await?))
}

/// Approves or rejects a pending step, for `POST /v1/approvals/{id}/decision` and the console.
pub(crate) async fn approval_decision(
    state: &AppState,
    who: &Principal,
    id: &str,
    req: ApprovalDecisionRequest,
) -> Result<dealrules_store::Approval, ApiError> {
    require(who, Role::Approver)?;
    let verdict: Verdict = req.decision.parse()?;
    let snapshot = state.snapshot.load_full();
    Ok(state
        .workflow
        .decide_approval(&snapshot, &who.into(), id, verdict, req.comment)
        .await?)
}

/// The submitter takes a pending request back.
#[utoipa::path(post, path = "/v1/approvals/{id}/recall", tag = "approvals", params(("id" = String, Path)),
    responses((status = 200, description = "The approval", body = crate::schemas::Approval), (status = 404, description = "No such approval"), (status = 409, description = "Not pending")),
    extensions(("x-required-role" = json!("service"))))]
async fn recall(
    State(active): State<Active>,
    State(workflow): State<WorkflowHandle>,
    Path(id): Path<String>,
    Caller(who, _): Caller<Service>,
) -> Result<Json<dealrules_store::Approval>, ApiError> {
    let snapshot = active.load_full();
    Ok(Json(workflow.recall_approval(&snapshot, &(&who).into(), &id).await?))
}

impl Expected for NewDelegation {
    const EXPECTED: &'static str = r#"expected {"to", "starts", "ends"}"#;
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
    responses((status = 201, description = "The delegation", body = crate::schemas::Delegation), (status = 400, description = "Not a date"), (status = 422, description = "Ends before it starts, or delegates to oneself")),
    extensions(("x-required-role" = json!("approver"))))]
async fn delegate(
    State(deals): State<DealStore>,
    Caller(who, _): Caller<Approver>,
    JsonBody { value: req, .. }: JsonBody<NewDelegation>,
) -> Result<(StatusCode, Json<dealrules_store::Delegation>), ApiError> {
    for (field, value) in [("from", req.from.as_deref()), ("to", Some(req.to.as_str()))] {
        if let Some(v) = value {
            crate::error::user_id(field, v)?;
        }
    }
    let d = dealrules_workflow::delegate(
        &deals,
        &(&who).into(),
        req.from.as_deref(),
        &req.to,
        &req.starts,
        &req.ends,
    )
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
    responses((status = 200, description = "Totals and groups", body = crate::schemas::Pipeline), (status = 400, description = "Not a grouping")),
    extensions(("x-required-role" = json!("viewer"))))]
async fn pipeline(
    State(active): State<Active>,
    State(deals): State<DealStore>,
    Query(q): Query<PipelineQuery>,
    _: Caller<Viewer>,
) -> Result<Json<Pipeline>, ApiError> {
    let snapshot = active.load_full();
    Ok(Json(
        dealrules_workflow::pipeline(&deals, &snapshot, q.by.as_deref().unwrap_or("stage")).await?,
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
async fn outbox(
    State(outbox): State<OutboxStore>,
    Query(q): Query<OutboxQuery>,
    Caller(who, _): Caller<Viewer>,
) -> Result<Json<OutboxList>, ApiError> {
    Ok(Json(outbox_list(&outbox, &who, q.deal.as_deref()).await?))
}

/// Notifications, for `GET /v1/outbox` and the console.
pub(crate) async fn outbox_list(outbox: &Outbox, who: &Principal, deal: Option<&str>) -> Result<OutboxList, ApiError> {
    require(who, Role::Viewer)?;
    Ok(OutboxList {
        notifications: outbox.outbox(deal).await?,
    })
}
