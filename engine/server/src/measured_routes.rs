//! Targets and the funnel, measured, over HTTP: progress against a Targets
//! document, funnel analytics and the forecast. The runtime reads and the
//! pure core computes ([`dealrules_workflow::measured`]); this module reads
//! the query, checks the role and answers.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query};
use dealrules_core::measure::funnel::{Forecast, FunnelReport};
use dealrules_core::measure::progress::{Progress, ProgressBy};
use dealrules_workflow::measured::{FunnelBy, bound};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{Caller, Viewer};
use crate::state::{Active, AppState, WorkflowHandle};
use axum::extract::State;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(progress))
        .routes(routes!(funnel))
        .routes(routes!(forecast))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProgressQuery {
    /// `2026-Q1`, `2026-03` or `2026`, in the targets' year.
    period: String,
    /// rep (default), region, team, product, channel or month.
    by: Option<String>,
}

/// Progress against a Targets document over a period at the server's
/// clock: each row's target (the decomposition over the roster), actual
/// (won credit closed in the period, by the rules of the plans whose quota
/// comes from these targets), attainment, pace and alert.
#[utoipa::path(get, path = "/v1/targets/{name}/progress", tag = "targets", params(("name" = String, Path), ProgressQuery),
    responses((status = 200, description = "Rows of progress", body = ProgressSchema), (status = 400, description = "Not a period, or not a grouping"),
        (status = 404, description = "No Targets of that name"), (status = 422, description = "A period outside the targets' year")),
    extensions(("x-required-role" = json!("viewer"))))]
async fn progress(
    State(active): State<Active>,
    State(workflow): State<WorkflowHandle>,
    Path(name): Path<String>,
    Query(q): Query<ProgressQuery>,
    _: Caller<Viewer>,
) -> Result<Json<Progress>, ApiError> {
    let by: ProgressBy = q.by.as_deref().unwrap_or("rep").parse().map_err(ApiError::BadRequest)?;
    let snapshot = active.load_full();
    Ok(Json(workflow.target_progress(&snapshot, &name, &q.period, by).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FunnelQuery {
    /// The Funnel's name.
    funnel: String,
    /// Count the stage visits that began at or after this time (a date: its midnight UTC).
    since: Option<String>,
    /// ...and before this one.
    until: Option<String>,
    /// owner or region: per-group rows beside the totals.
    by: Option<String>,
}

struct Window {
    since: Option<chrono::DateTime<chrono::Utc>>,
    until: Option<chrono::DateTime<chrono::Utc>>,
    by: Option<FunnelBy>,
}

fn window(q: &FunnelQuery) -> Result<Window, ApiError> {
    let since = q.since.as_deref().map(|s| bound(s, "since")).transpose()?;
    let until = q.until.as_deref().map(|s| bound(s, "until")).transpose()?;
    let by = q.by.as_deref().map(FunnelBy::parse).transpose()?;
    Ok(Window { since, until, by })
}

/// Funnel analytics from the deals' history: per stage, visits entered in
/// the window, advanced, lost and moved back (each move judged by the
/// stage order of the pack version it was made under), conversion to the
/// next stage and to won, median and p90 days in stage, and the deals in
/// the stage now: count, weighted amount, stalled beyond the stage's SLA.
#[utoipa::path(get, path = "/v1/analytics/funnel", tag = "analytics", params(FunnelQuery),
    responses((status = 200, description = "Per stage, and per group with `by`", body = FunnelReportSchema), (status = 400, description = "Not a time, or not a grouping"),
        (status = 404, description = "No Funnel of that name")),
    extensions(("x-required-role" = json!("viewer"))))]
async fn funnel(
    State(active): State<Active>,
    State(workflow): State<WorkflowHandle>,
    Query(q): Query<FunnelQuery>,
    _: Caller<Viewer>,
) -> Result<Json<FunnelReport>, ApiError> {
    let w = window(&q)?;
    let snapshot = active.load_full();
    let (report, _) = workflow
        .funnel_analytics(&snapshot, &q.funnel, w.since, w.until, w.by)
        .await?;
    Ok(Json(report))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForecastQuery {
    /// The Funnel's name.
    funnel: String,
    /// Measure win rates over the stage visits that began at or after this time.
    since: Option<String>,
    /// ...and before this one.
    until: Option<String>,
}

/// The weighted pipeline of open deals by period (the quarter of
/// `close_date`), weighed by each stage's configured probability and by its
/// win rate measured from history, with both rates per stage.
#[utoipa::path(get, path = "/v1/analytics/forecast", tag = "analytics", params(ForecastQuery),
    responses((status = 200, description = "By period, and per stage the two rates", body = ForecastSchema), (status = 400, description = "Not a time"),
        (status = 404, description = "No Funnel of that name")),
    extensions(("x-required-role" = json!("viewer"))))]
async fn forecast(
    State(active): State<Active>,
    State(workflow): State<WorkflowHandle>,
    Query(q): Query<ForecastQuery>,
    _: Caller<Viewer>,
) -> Result<Json<Forecast>, ApiError> {
    let w = window(&FunnelQuery {
        funnel: q.funnel.clone(),
        since: q.since,
        until: q.until,
        by: None,
    })?;
    let snapshot = active.load_full();
    let (_, forecast) = workflow
        .funnel_analytics(&snapshot, &q.funnel, w.since, w.until, None)
        .await?;
    Ok(Json(forecast))
}

// ---- the answers' schemas (the types live in the pure core, without utoipa) ----

/// Progress against a Targets document. Money and ratios are decimal strings.
#[derive(ToSchema)]
#[schema(as = Progress)]
#[allow(dead_code)]
pub struct ProgressSchema {
    targets: String,
    measure: String,
    period: String,
    #[schema(inline)]
    by: ProgressByName,
    /// YYYY-MM-DD: the server clock's day.
    today: String,
    /// Share of the period elapsed, 0 to 1.
    elapsed_share: String,
    below: Option<String>,
    /// The totals in force: one, or one per part of the period an adjustment cut.
    figures: Vec<TargetFigureSchema>,
    rows: Vec<ProgressRowSchema>,
    unplaced: Option<Vec<String>>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum ProgressByName {
    Rep,
    Region,
    Team,
    Product,
    Channel,
    Month,
}

#[derive(ToSchema)]
#[schema(as = TargetFigure)]
#[allow(dead_code)]
pub struct TargetFigureSchema {
    from: String,
    to: String,
    total: String,
    reason: Option<String>,
}

#[derive(ToSchema)]
#[schema(as = ProgressRow)]
#[allow(dead_code)]
pub struct ProgressRowSchema {
    key: String,
    target: String,
    actual: String,
    attainment: Option<String>,
    pace: Option<String>,
    alert: bool,
    manager: Option<String>,
}

/// Funnel analytics.
#[derive(ToSchema)]
#[schema(as = FunnelReport)]
#[allow(dead_code)]
pub struct FunnelReportSchema {
    funnel: String,
    since: Option<String>,
    until: Option<String>,
    now: String,
    by: Option<String>,
    deals: u64,
    stages: Vec<StageRowSchema>,
    groups: Option<Vec<FunnelGroupSchema>>,
}

#[derive(ToSchema)]
#[schema(as = FunnelGroup)]
#[allow(dead_code)]
pub struct FunnelGroupSchema {
    key: String,
    stages: Vec<StageRowSchema>,
}

#[derive(ToSchema)]
#[schema(as = StageRow)]
#[allow(dead_code)]
pub struct StageRowSchema {
    stage: String,
    in_current_pack: bool,
    terminal: bool,
    probability: Option<String>,
    entered: u64,
    advanced: u64,
    lost: u64,
    moved_back: u64,
    conversion_to_next: Option<String>,
    conversion_to_won: Option<String>,
    win_rate_measured: Option<String>,
    resolved: u64,
    days_median: Option<String>,
    days_p90: Option<String>,
    open: u64,
    open_amount: String,
    weighted: String,
    stalled: u64,
    sla_days: Option<String>,
}

/// The forecast: configured probabilities beside measured win rates.
#[derive(ToSchema)]
#[schema(as = Forecast)]
#[allow(dead_code)]
pub struct ForecastSchema {
    funnel: String,
    since: Option<String>,
    until: Option<String>,
    periods: Vec<ForecastPeriodSchema>,
    stages: Vec<StageProbabilitySchema>,
}

#[derive(ToSchema)]
#[schema(as = ForecastPeriod)]
#[allow(dead_code)]
pub struct ForecastPeriodSchema {
    period: String,
    open: u64,
    amount: String,
    weighted_configured: String,
    weighted_measured: String,
}

#[derive(ToSchema)]
#[schema(as = StageProbability)]
#[allow(dead_code)]
pub struct StageProbabilitySchema {
    stage: String,
    configured: Option<String>,
    measured: Option<String>,
    resolved: u64,
}
