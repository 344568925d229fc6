//! Targets and the funnel, measured, as pages: progress against each
//! Targets document with its pace, and the funnel's analytics beside the
//! forecast. Each page calls what its API route calls
//! (`GET /v1/targets/{name}/progress`, `GET /v1/analytics/funnel` and
//! `/forecast`, in [`crate::measured_routes`]) after the same role check.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use chrono::Datelike;
use dealrules_core::measure::funnel::StageRow;
use dealrules_core::measure::progress::ProgressBy;
use dealrules_model::Kind;
use dealrules_workflow::measured::{FunnelBy, bound};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::percent_encode as enc;
use super::session::Session;
use super::work::page;
use crate::auth::{Role, require};
use crate::error::ApiError;
use crate::state::AppState;

/// The bar's width for 100% of the period's target; a bar stops at 150%.
const BAR_FULL: u32 = 120;
const BAR_MAX: u32 = BAR_FULL * 3 / 2;

/// `d` to `places` decimals, half away from zero (the project's one rule).
fn round(d: Decimal, places: u32) -> Decimal {
    d.round_dp_with_strategy(places, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

/// A ratio as a percentage with one decimal: `0.4512` -> `45.1%`.
fn pct(r: Option<Decimal>) -> String {
    match r.and_then(|r| r.checked_mul(Decimal::ONE_HUNDRED)) {
        Some(p) => format!("{}%", round(p, 1).normalize()),
        None => String::new(),
    }
}

/// Money as the API gives it, two places.
fn money(d: Decimal) -> String {
    round(d, 2).to_string()
}

/// How many pixels a share takes on the bar (1 = `BAR_FULL`), at most `BAR_MAX`.
fn px(share: Decimal) -> u32 {
    use rust_decimal::prelude::ToPrimitive;
    let w = share
        .checked_mul(Decimal::from(BAR_FULL))
        .unwrap_or(Decimal::from(BAR_MAX));
    let w = round(w, 0).max(Decimal::ZERO);
    w.to_u32().map_or(BAR_MAX, |w| w.min(BAR_MAX))
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn names_of(state: &AppState, kind: Kind) -> Vec<String> {
    state
        .snapshot
        .load()
        .pack
        .documents
        .iter()
        .filter(|d| d.kind == kind)
        .map(|d| d.metadata.name.to_string())
        .collect()
}

// ---- targets and pace ----

#[derive(Default, Deserialize)]
pub struct TargetsQuery {
    name: Option<String>,
    period: Option<String>,
    by: Option<String>,
}

#[derive(Serialize)]
struct ShownRow {
    key: String,
    target: String,
    actual: String,
    attainment: String,
    pace: String,
    alert: bool,
    manager: Option<String>,
    /// The bar: attainment's width in pixels.
    bar: u32,
}

#[derive(Serialize)]
struct ShownFigure {
    from: String,
    to: String,
    total: String,
    reason: Option<String>,
}

/// The period a page opens on: the quarter of the server's today when it
/// falls in the targets' year, else the year's first or last quarter.
fn default_period(year: i32, today: chrono::NaiveDate) -> String {
    let q = match today.year().cmp(&year) {
        std::cmp::Ordering::Equal => (today.month() - 1) / 3 + 1,
        std::cmp::Ordering::Less => 1,
        std::cmp::Ordering::Greater => 4,
    };
    format!("{year}-Q{q}")
}

/// Each Targets document, and progress against one over a period with
/// its pace and alerts: `GET /v1/targets/{name}/progress?period=&by=`.
pub async fn targets(State(state): State<Arc<AppState>>, session: Session, Query(q): Query<TargetsQuery>) -> Response {
    let mut cx = session.context();
    let names = names_of(&state, Kind::Targets);
    let name = nonempty(q.name).or_else(|| names.first().cloned());
    let by = nonempty(q.by).unwrap_or_else(|| "rep".into());
    let snapshot = state.snapshot.load_full();
    let year = name
        .as_deref()
        .and_then(|n| snapshot.targets(Some(n)))
        .map(|t| t.year());
    let period = nonempty(q.period).or_else(|| year.map(|y| default_period(y, state.clock.now().date_naive())));
    cx.insert("names", &names);
    cx.insert("name", &name);
    cx.insert("period", &period);
    cx.insert("by", &by);
    cx.insert("bys", &ProgressBy::ALL);
    cx.insert(
        "back",
        &format!(
            "/admin/targets?name={}&period={}&by={}",
            enc(name.as_deref().unwrap_or("")),
            enc(period.as_deref().unwrap_or("")),
            enc(&by)
        ),
    );
    cx.insert("bar_full", &BAR_FULL);
    cx.insert("bar_max", &BAR_MAX);
    if let Err(e) = require(&session.who, Role::Viewer) {
        return page(&session, "targets.html", "targets", cx, Some(&e));
    }
    let (Some(name), Some(period)) = (name, period) else {
        return page(&session, "targets.html", "targets", cx, None);
    };
    let by_parsed: ProgressBy = match by.parse() {
        Ok(b) => b,
        Err(e) => return page(&session, "targets.html", "targets", cx, Some(&ApiError::BadRequest(e))),
    };
    let progress = match state
        .workflow
        .target_progress(&snapshot, &name, &period, by_parsed)
        .await
    {
        Ok(p) => p,
        Err(e) => return page(&session, "targets.html", "targets", cx, Some(&ApiError::from(e))),
    };
    let rows: Vec<ShownRow> = progress
        .rows
        .iter()
        .map(|r| ShownRow {
            key: r.key.clone(),
            target: money(r.target),
            actual: money(r.actual),
            attainment: pct(r.attainment),
            pace: r.pace.map(|p| round(p, 2).normalize().to_string()).unwrap_or_default(),
            alert: r.alert,
            manager: r.manager.clone(),
            bar: px(r.attainment.unwrap_or_default()),
        })
        .collect();
    let figures: Vec<ShownFigure> = progress
        .figures
        .iter()
        .map(|f| ShownFigure {
            from: f.from.to_string(),
            to: f.to.to_string(),
            total: money(f.total),
            reason: f.reason.clone(),
        })
        .collect();
    cx.insert("measure", &progress.measure);
    cx.insert("today", &progress.today.to_string());
    cx.insert("elapsed", &pct(Some(progress.elapsed_share)));
    cx.insert("elapsed_px", &px(progress.elapsed_share));
    cx.insert("below", &progress.below.map(|b| b.normalize().to_string()));
    cx.insert("adjusted", &(figures.len() > 1));
    cx.insert("figures", &figures);
    cx.insert("alerts", &rows.iter().filter(|r| r.alert).count());
    cx.insert("rows", &rows);
    cx.insert("unplaced", &progress.unplaced);
    page(&session, "targets.html", "targets", cx, None)
}

// ---- the funnel and the forecast ----

#[derive(Default, Deserialize)]
pub struct FunnelPageQuery {
    funnel: Option<String>,
    since: Option<String>,
    until: Option<String>,
    by: Option<String>,
}

#[derive(Serialize)]
struct ShownStage {
    stage: String,
    in_current_pack: bool,
    terminal: bool,
    probability: String,
    entered: u64,
    advanced: u64,
    lost: u64,
    moved_back: u64,
    conversion_to_next: String,
    conversion_to_won: String,
    days_median: String,
    days_p90: String,
    open: u64,
    weighted: String,
    stalled: u64,
    sla_days: String,
}

fn days(d: Option<Decimal>) -> String {
    d.map(|d| round(d, 1).normalize().to_string()).unwrap_or_default()
}

fn shown(rows: &[StageRow]) -> Vec<ShownStage> {
    rows.iter()
        .map(|r| ShownStage {
            stage: r.stage.clone(),
            in_current_pack: r.in_current_pack,
            terminal: r.terminal,
            probability: pct(r.probability),
            entered: r.entered,
            advanced: r.advanced,
            lost: r.lost,
            moved_back: r.moved_back,
            conversion_to_next: pct(r.conversion_to_next),
            conversion_to_won: pct(r.conversion_to_won),
            days_median: days(r.days_median),
            days_p90: days(r.days_p90),
            open: r.open,
            weighted: money(r.weighted),
            stalled: r.stalled,
            sla_days: days(r.sla_days),
        })
        .collect()
}

#[derive(Serialize)]
struct ShownGroup {
    key: String,
    stages: Vec<ShownStage>,
}

#[derive(Serialize)]
struct ShownPeriod {
    period: String,
    open: u64,
    amount: String,
    configured: String,
    measured: String,
    /// The bars: each weighted amount's width against the period's largest.
    configured_px: u32,
    measured_px: u32,
}

#[derive(Serialize)]
struct ShownProbability {
    stage: String,
    configured: String,
    measured: String,
    resolved: u64,
    /// The measured rate differs from the configured by ten points or more.
    off: bool,
}

type FunnelWindow = (
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
    Option<FunnelBy>,
);

/// The query's window and grouping, read as the API reads them.
fn funnel_window(since: Option<&str>, until: Option<&str>, by: Option<&str>) -> Result<FunnelWindow, ApiError> {
    Ok((
        since.map(|s| bound(s, "since")).transpose()?,
        until.map(|s| bound(s, "until")).transpose()?,
        by.map(FunnelBy::parse).transpose()?,
    ))
}

/// Funnel analytics per stage (and per owner or region), and the forecast:
/// the weighted pipeline by period beside the one weighed by measured win
/// rates: `GET /v1/analytics/funnel` and `GET /v1/analytics/forecast`.
pub async fn funnel(
    State(state): State<Arc<AppState>>,
    session: Session,
    Query(q): Query<FunnelPageQuery>,
) -> Response {
    let mut cx = session.context();
    let names = names_of(&state, Kind::Funnel);
    let name = nonempty(q.funnel).or_else(|| names.first().cloned());
    let since = nonempty(q.since);
    let until = nonempty(q.until);
    let by = nonempty(q.by);
    cx.insert("names", &names);
    cx.insert("name", &name);
    cx.insert("since", &since);
    cx.insert("until", &until);
    cx.insert("by", &by);
    cx.insert("bys", &FunnelBy::ALL);
    cx.insert(
        "back",
        &format!(
            "/admin/funnel?funnel={}&since={}&until={}&by={}",
            enc(name.as_deref().unwrap_or("")),
            enc(since.as_deref().unwrap_or("")),
            enc(until.as_deref().unwrap_or("")),
            enc(by.as_deref().unwrap_or(""))
        ),
    );
    if let Err(e) = require(&session.who, Role::Viewer) {
        return page(&session, "funnel.html", "funnel", cx, Some(&e));
    }
    let Some(name) = name else {
        return page(&session, "funnel.html", "funnel", cx, None);
    };
    let (since, until, by) = match funnel_window(since.as_deref(), until.as_deref(), by.as_deref()) {
        Ok(w) => w,
        Err(e) => {
            cx.insert("filter_error", &e.to_string());
            return page(&session, "funnel.html", "funnel", cx, Some(&e));
        }
    };
    let snapshot = state.snapshot.load_full();
    let (report, forecast) = match state
        .workflow
        .funnel_analytics(&snapshot, &name, since, until, by)
        .await
    {
        Ok(r) => r,
        Err(e) => return page(&session, "funnel.html", "funnel", cx, Some(&ApiError::from(e))),
    };
    // The totals first, then a table per owner or region.
    let sections: Vec<ShownGroup> = std::iter::once(ShownGroup {
        key: String::new(),
        stages: shown(&report.stages),
    })
    .chain(report.groups.iter().map(|g| ShownGroup {
        key: g.key.clone(),
        stages: shown(&g.stages),
    }))
    .collect();
    let largest = forecast
        .periods
        .iter()
        .flat_map(|p| [p.weighted_configured, p.weighted_measured])
        .max()
        .unwrap_or_default();
    let width = |x: Decimal| {
        if largest.is_zero() {
            0
        } else {
            px(x.checked_div(largest).unwrap_or_default())
        }
    };
    let periods: Vec<ShownPeriod> = forecast
        .periods
        .iter()
        .map(|p| ShownPeriod {
            period: p.period.clone(),
            open: p.open,
            amount: money(p.amount),
            configured: money(p.weighted_configured),
            measured: money(p.weighted_measured),
            configured_px: width(p.weighted_configured),
            measured_px: width(p.weighted_measured),
        })
        .collect();
    let ten_points = Decimal::new(1, 1);
    let probabilities: Vec<ShownProbability> = forecast
        .stages
        .iter()
        .map(|s| ShownProbability {
            stage: s.stage.clone(),
            configured: pct(s.configured),
            measured: pct(s.measured),
            resolved: s.resolved,
            off: matches!((s.configured, s.measured), (Some(c), Some(m)) if (c - m).abs() >= ten_points),
        })
        .collect();
    cx.insert("now", &dealrules_store::timestamp(report.now));
    cx.insert("deals", &report.deals);
    cx.insert("sections", &sections);
    cx.insert("rates_off", &probabilities.iter().any(|p| p.off));
    cx.insert("periods", &periods);
    cx.insert("probabilities", &probabilities);
    cx.insert("bar_full", &BAR_FULL);
    page(&session, "funnel.html", "funnel", cx, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_show_as_percentages_and_bars_stop_at_one_and_a_half_targets() {
        assert_eq!(pct(Some(Decimal::new(4512, 4))), "45.1%");
        assert_eq!(pct(Some(Decimal::ONE)), "100%");
        assert_eq!(pct(None), "");
        assert_eq!(pct(Some(Decimal::new(1225, 4))), "12.3%", "half away from zero");
        assert_eq!(px(Decimal::new(5, 1)), BAR_FULL / 2);
        assert_eq!(px(Decimal::new(9, 0)), BAR_MAX);
        assert_eq!(px(Decimal::ZERO), 0);
        assert_eq!(px(Decimal::new(-1, 0)), 0);
    }

    #[test]
    fn a_page_opens_on_the_current_quarter_of_the_targets_year() {
        let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(default_period(2026, day(2026, 11, 30)), "2026-Q4");
        assert_eq!(default_period(2026, day(2026, 4, 1)), "2026-Q2");
        assert_eq!(default_period(2026, day(2025, 12, 31)), "2026-Q1");
        assert_eq!(default_period(2026, day(2027, 1, 2)), "2026-Q4");
    }
}
