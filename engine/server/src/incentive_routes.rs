//! Incentive operations on stored data over HTTP: runs of a plan for a
//! period (computed off the request path), their lifecycle, statements in
//! every format for those who may read them, and the payroll export.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dealrules_store::{Run, RunQuery, RunState, Runs};
use dealrules_workflow::incentive_runs::{self, StoredStatement};
use dealrules_workflow::statement_docs::{DocFormat, DocLocale};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role, require};
use crate::error::ApiError;
use crate::extract::{Admin, Caller, Expected, JsonBody, Viewer};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(start_run))
        .routes(routes!(runs, start_plans_run))
        .routes(routes!(run))
        .routes(routes!(approve))
        .routes(routes!(publish))
        .routes(routes!(lock))
        .routes(routes!(export))
        .routes(routes!(statement))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// `2026-Q1`, `2026-03` or `2026`, as the plan pays.
    pub period: String,
}

impl Expected for RunRequest {
    const EXPECTED: &'static str = r#"expected {"period": "2026-Q1"}"#;
}

/// Starts a run of the plan for a period on the active pack: 202 with the
/// run (`running`); it becomes `draft` (or `failed`, saying why) when its
/// statements are computed. Replaces the period's runs that are not locked.
#[utoipa::path(post, path = "/v1/incentives/{plan}/runs", tag = "incentives", params(("plan" = String, Path)), request_body = RunRequest,
    responses((status = 202, description = "The run, computing", body = crate::schemas::Run), (status = 400, description = "Not a period"), (status = 404, description = "No such plan"),
        (status = 409, description = "The period is locked"), (status = 422, description = "Not an IncentivePlan")),
    extensions(("x-required-role" = json!("admin"))))]
async fn start_run(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    Path(plan): Path<String>,
    JsonBody { value: req, .. }: JsonBody<RunRequest>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(begin_run(&state, &who, &plan, &req.period).await?),
    ))
}

/// Starts a run, for `POST /v1/incentives/{plan}/runs` and the console.
pub(crate) async fn begin_run(state: &AppState, who: &Principal, plan: &str, period: &str) -> Result<Run, ApiError> {
    require(who, Role::Admin)?;
    let snapshot = state.snapshot.load_full();
    Ok(state.workflow.start_run(snapshot, &who.into(), plan, period).await?)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlansRunRequest {
    /// `2026-Q1`, `2026-03` or `2026`, as the plans pay.
    pub period: String,
    /// The IncentivePlans to run together (1 to 50, each once): each rep
    /// gets one statement with each plan's lines.
    pub plans: Vec<String>,
}

impl Expected for PlansRunRequest {
    const EXPECTED: &'static str = r#"expected {"period": "2026-Q1", "plans": ["ae-2026", ...]}"#;
}

/// Starts a run of several plans for one period on the active pack: 202
/// with the run (`running`, its `plan` the plans joined by `+`); each rep
/// gets one statement with each plan's lines, each line naming its plan.
#[utoipa::path(post, path = "/v1/incentives/runs", tag = "incentives", request_body = PlansRunRequest,
    responses((status = 202, description = "The run, computing", body = crate::schemas::Run), (status = 400, description = "Not a period, or no plans, or a plan named twice"),
        (status = 404, description = "No such plan"), (status = 409, description = "The period is locked"), (status = 422, description = "Not an IncentivePlan")),
    extensions(("x-required-role" = json!("admin"))))]
async fn start_plans_run(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    JsonBody { value: req, .. }: JsonBody<PlansRunRequest>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    let snapshot = state.snapshot.load_full();
    let run = state
        .workflow
        .start_plans_run(snapshot, &(&who).into(), &req.plans, &req.period)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    pub period: Option<String>,
    pub plan: Option<String>,
    /// running | draft | approved | published | locked | failed | replaced
    pub state: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RunList {
    #[schema(value_type = Vec<crate::schemas::Run>)]
    pub runs: Vec<Run>,
}

/// Runs, newest first.
#[utoipa::path(get, path = "/v1/incentives/runs", tag = "incentives", params(RunsQuery),
    responses((status = 200, description = "The runs", body = RunList), (status = 400, description = "Not a state")),
    extensions(("x-required-role" = json!("admin"))))]
async fn runs(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<RunList>, ApiError> {
    Ok(Json(run_list(&state.store.runs(), &who, q).await?))
}

/// Runs, for `GET /v1/incentives/runs` and the console.
pub(crate) async fn run_list(runs: &Runs, who: &Principal, q: RunsQuery) -> Result<RunList, ApiError> {
    require(who, Role::Admin)?;
    let run_state = q
        .state
        .map(|s| s.parse::<RunState>())
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let runs = runs
        .runs(&RunQuery {
            plan: q.plan,
            period: q.period,
            state: run_state,
        })
        .await?;
    Ok(RunList { runs })
}

/// A run with its totals and what each rep's statement pays.
#[utoipa::path(get, path = "/v1/incentives/runs/{id}", tag = "incentives", params(("id" = String, Path)),
    responses((status = 200, description = "The run and its per-rep totals", body = Object), (status = 404, description = "No such run")),
    extensions(("x-required-role" = json!("admin"))))]
async fn run(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    Path(id): Path<String>,
) -> Result<Json<incentive_runs::RunView>, ApiError> {
    Ok(Json(run_view(&state, &who, &id).await?))
}

/// A run and its per-rep totals, for `GET /v1/incentives/runs/{id}` and the console.
pub(crate) async fn run_view(state: &AppState, who: &Principal, id: &str) -> Result<incentive_runs::RunView, ApiError> {
    require(who, Role::Admin)?;
    Ok(state.workflow.run_view(id).await?)
}

/// Approves, publishes or locks a run, for the API's three routes and the console.
pub(crate) async fn advance_run(state: &AppState, who: &Principal, id: &str, to: RunState) -> Result<Run, ApiError> {
    require(who, Role::Admin)?;
    Ok(state.workflow.advance_run(&who.into(), id, to).await?)
}

/// Approves a draft run: an admin other than who started it.
#[utoipa::path(post, path = "/v1/incentives/runs/{id}/approve", tag = "incentives", params(("id" = String, Path)),
    responses((status = 200, description = "The run, approved", body = crate::schemas::Run), (status = 403, description = "The admin who started the run"), (status = 404, description = "No such run"), (status = 409, description = "Not a draft")),
    extensions(("x-required-role" = json!("admin"))))]
async fn approve(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    Ok(Json(advance_run(&state, &who, &id, RunState::Approved).await?))
}

/// Publishes an approved run: its statements become readable.
#[utoipa::path(post, path = "/v1/incentives/runs/{id}/publish", tag = "incentives", params(("id" = String, Path)),
    responses((status = 200, description = "The run, published", body = crate::schemas::Run), (status = 404, description = "No such run"), (status = 409, description = "Not approved")),
    extensions(("x-required-role" = json!("admin"))))]
async fn publish(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    Ok(Json(advance_run(&state, &who, &id, RunState::Published).await?))
}

/// Locks a published run: its statements never change; the period cannot
/// be run again.
#[utoipa::path(post, path = "/v1/incentives/runs/{id}/lock", tag = "incentives", params(("id" = String, Path)),
    responses((status = 200, description = "The run, locked", body = crate::schemas::Run), (status = 404, description = "No such run"), (status = 409, description = "Not published")),
    extensions(("x-required-role" = json!("admin"))))]
async fn lock(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    Ok(Json(advance_run(&state, &who, &id, RunState::Locked).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// csv (the default) or xlsx
    format: Option<String>,
}

/// The run's payroll lines: rep, period, currency, earned, draw,
/// adjustments, paid, and a totals line.
#[utoipa::path(get, path = "/v1/incentives/runs/{id}/export", tag = "incentives", params(("id" = String, Path), ExportQuery),
    responses((status = 200, description = "CSV or XLSX", content_type = "text/csv", body = String), (status = 400, description = "Not a format"), (status = 404, description = "No such run")),
    extensions(("x-required-role" = json!("admin"))))]
async fn export(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    payroll_export(&state, &who, &id, q.format.as_deref()).await
}

/// The payroll file, for `GET /v1/incentives/runs/{id}/export` and the console.
pub(crate) async fn payroll_export(
    state: &AppState,
    who: &Principal,
    id: &str,
    format: Option<&str>,
) -> Result<Response, ApiError> {
    require(who, Role::Admin)?;
    let format = format.unwrap_or("csv");
    let (run, lines) = state.workflow.payroll(id).await?;
    let name = format!("payroll-{}-{}", run.plan, run.period);
    match format {
        "csv" => {
            let text = incentive_runs::payroll_csv(&lines)?;
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}.csv\""),
                    ),
                ],
                text,
            )
                .into_response())
        }
        "xlsx" => {
            let bytes = incentive_runs::payroll_xlsx(&lines)?;
            Ok((
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}.xlsx\""),
                    ),
                ],
                bytes,
            )
                .into_response())
        }
        other => Err(ApiError::BadRequest(format!(
            "`{other}` is not an export format: csv or xlsx"
        ))),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// json | html | md | csv | xlsx; else from Accept
    format: Option<String>,
    /// en | zh-CN; else from Accept-Language
    locale: Option<String>,
    /// Only this plan's statement.
    plan: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RepStatements {
    pub rep: String,
    pub period: String,
    /// One per plan: the plan, its run, the run's state and pack version, the statement.
    #[schema(value_type = Vec<Object>)]
    pub statements: Vec<StoredStatement>,
}

fn doc_format(q: Option<&str>, headers: &HeaderMap) -> Result<DocFormat, ApiError> {
    if let Some(f) = q {
        return DocFormat::parse(f)
            .ok_or_else(|| ApiError::BadRequest(format!("`{f}` is not a format: json, html, md, csv or xlsx")));
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    Ok(if accept.contains("text/html") {
        DocFormat::Html
    } else if accept.contains("text/csv") {
        DocFormat::Csv
    } else if accept.contains("text/markdown") {
        DocFormat::Md
    } else if accept.contains(dealrules_workflow::imports::XLSX_CONTENT_TYPE) {
        DocFormat::Xlsx
    } else {
        DocFormat::Json
    })
}

fn doc_locale(q: Option<&str>, headers: &HeaderMap) -> Result<DocLocale, ApiError> {
    if let Some(l) = q {
        return DocLocale::parse(l).ok_or_else(|| ApiError::BadRequest(format!("`{l}` is not a locale: en or zh-CN")));
    }
    let lang = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Ok(if lang.starts_with("zh") {
        DocLocale::ZhCn
    } else {
        DocLocale::En
    })
}

/// `rep`'s published statements for `period` (one plan's, if named) when
/// `who` may read them, for `GET /v1/statements/{rep}/{period}` and the console.
pub(crate) async fn rep_statements(
    state: &AppState,
    who: &Principal,
    rep: &str,
    period: &str,
    plan: Option<&str>,
) -> Result<Vec<StoredStatement>, ApiError> {
    require(who, Role::Viewer)?;
    let mut statements = state.workflow.statements_for(&who.into(), rep, period).await?;
    if let Some(plan) = plan {
        statements.retain(|s| s.plan == plan);
    }
    if statements.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no published statement of {rep} for {period}"
        )));
    }
    Ok(statements)
}

/// A rep's published statements for a period, one per plan: JSON, or
/// HTML, CSV, Markdown (Accept or `?format=`), in English or Chinese
/// (`?locale=zh-CN`). The rep, their managers and admins may read them.
#[utoipa::path(get, path = "/v1/statements/{rep}/{period}", tag = "incentives", params(("rep" = String, Path), ("period" = String, Path), StatementQuery),
    responses((status = 200, description = "The statements (JSON, or the document `format` or Accept names)", content(
        (RepStatements = "application/json"),
        (String = "text/html"),
        (String = "text/csv"),
        (String = "text/markdown"),
        (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    )), (status = 400, description = "Not a period, format or locale"), (status = 403, description = "Neither the rep, nor above them, nor an admin"), (status = 404, description = "Nothing published for this rep and period")),
    extensions(("x-required-role" = json!("viewer"))))]
async fn statement(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Viewer>,
    headers: HeaderMap,
    Path((rep, period)): Path<(String, String)>,
    Query(q): Query<StatementQuery>,
) -> Result<Response, ApiError> {
    let format = doc_format(q.format.as_deref(), &headers)?;
    let locale = doc_locale(q.locale.as_deref(), &headers)?;
    let mut statements = rep_statements(&state, &who, &rep, &period, q.plan.as_deref()).await?;
    if format == DocFormat::Json {
        // Documents are localized as they render; JSON here.
        for s in &mut statements {
            dealrules_workflow::statement_docs::localize(&mut s.statement, locale);
        }
        return Ok(Json(RepStatements {
            rep,
            period,
            statements,
        })
        .into_response());
    }
    let mut plans: Vec<&str> = statements.iter().map(|s| s.plan.as_str()).collect();
    plans.dedup();
    let mut versions: Vec<&str> = statements.iter().map(|s| s.pack_version.as_str()).collect();
    versions.dedup();
    let decision = json!({
        "policy": plans.join(", "),
        "kind": "IncentivePlan",
        "version": versions.join(", "),
        "period": period,
        "statements": statements.iter().map(|s| s.statement.clone()).collect::<Vec<Value>>(),
    });
    let body =
        dealrules_workflow::statement_docs::render_bytes(&decision, format, locale).map_err(ApiError::Internal)?;
    if format == DocFormat::Xlsx {
        let name = format!("statement-{rep}-{period}.xlsx")
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '.', "_");
        return Ok((
            [
                (header::CONTENT_TYPE, format.content_type().to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            ],
            body,
        )
            .into_response());
    }
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}
