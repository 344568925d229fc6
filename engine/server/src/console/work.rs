//! The daily-work pages: the approver's inbox, deals, incentive runs,
//! statements and the decision log. Each calls the function its API route
//! calls (`crate::workflow`, `crate::incentive_routes`, `crate::decision_routes`),
//! whose role check decides what the page may show or do; a refusal is
//! shown in words, in the page's language, next to what was refused.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use dealrules_model::{Kind, Spec};
use dealrules_store::{Approval, RunState, StepState};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::i18n::Lang;
use super::render;
use super::session::Session;
use crate::error::ApiError;
use crate::state::{AppState, DealStore, OutboxStore};

/// How many rows a list page shows.
const PAGE: u32 = 50;

/// An API error as words: the refusal's kind (a label key) and its detail.
#[derive(Serialize)]
pub(super) struct Refusal {
    pub(super) key: &'static str,
    pub(super) detail: String,
}

pub(super) fn refusal(e: &ApiError) -> (StatusCode, Refusal) {
    let (status, key) = match e {
        ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        ApiError::Unauthorized => (StatusCode::FORBIDDEN, "forbidden"),
        ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "error"),
        ApiError::Conflict(_) | ApiError::ConflictWith { .. } => (StatusCode::CONFLICT, "refused"),
        ApiError::Unprocessable(_) | ApiError::UnprocessableWith { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "refused")
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "error"),
    };
    let detail = match e {
        // An internal error's detail is for the log, not the page.
        ApiError::Internal(_) => {
            tracing::error!(error = %e, "a console page failed");
            "the server log says why".to_string()
        }
        _ => e.to_string(),
    };
    (status, Refusal { key, detail })
}

/// Renders `name` with `cx`; with a refusal, its words and status next
/// to the form.
pub(super) fn page(
    session: &Session,
    name: &str,
    nav: &str,
    mut cx: tera::Context,
    refused: Option<&ApiError>,
) -> Response {
    cx.insert("page", nav);
    let status = match refused {
        Some(e) => {
            let (status, r) = refusal(e);
            cx.insert("refusal", &r);
            status
        }
        None => StatusCode::OK,
    };
    render(status, name, session.lang, cx)
}

/// `{"deal": {"amount": 1}}` as rows `deal.amount = 1`, for facts and statements.
#[derive(Serialize)]
struct Row {
    key: String,
    value: String,
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<Row>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::String(s) => out.push(Row {
            key: prefix.to_string(),
            value: s.clone(),
        }),
        Value::Null => {}
        other => out.push(Row {
            key: prefix.to_string(),
            value: other.to_string(),
        }),
    }
}

fn rows(v: &Value) -> Vec<Row> {
    let mut out = Vec::new();
    flatten("", v, &mut out);
    out
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

// ---- the approvals inbox ----

#[derive(Serialize)]
struct InboxItem {
    approval: Approval,
    /// The pending step's level and approver.
    step_level: String,
    step_approver: String,
    /// The deal's fields, as rows.
    deal_stage: String,
    deal_owner: String,
    deal_fields: Vec<Row>,
    /// The policy's rule that asked for approval, and its condition.
    rule: String,
    rule_when: Option<String>,
    rule_description: Option<String>,
    /// The values the policy's rules tested: the decision's trace.
    tested: Vec<Row>,
    /// A refused decision's words and the comment as typed, for the form.
    error: Option<String>,
    comment: String,
}

/// The policy's rule `id`: its condition and description, if the active
/// pack still has it.
fn rule_of(state: &AppState, policy: &str, id: &str) -> (Option<String>, Option<String>) {
    let s = state.snapshot.load();
    let Some(doc) = s.pack.find(Kind::ApprovalPolicy, policy) else {
        return (None, None);
    };
    let Spec::ApprovalPolicy(spec) = &doc.spec else {
        return (None, None);
    };
    match spec.rules.iter().find(|r| r.id == id) {
        Some(r) => {
            let when = serde_json::to_value(&r.when)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string));
            (when, r.description.clone())
        }
        None => (None, None),
    }
}

#[derive(Default, Deserialize)]
pub struct InboxQuery {
    /// The approval just decided, and how (a notice on the page).
    done: Option<String>,
    verdict: Option<String>,
}

/// The signed-in approver's pending steps: `GET /v1/approvals?mine=true`.
pub async fn inbox(State(state): State<Arc<AppState>>, session: Session, Query(q): Query<InboxQuery>) -> Response {
    inbox_page(&state, &session, q, BTreeMap::new(), None).await
}

async fn inbox_page(
    state: &AppState,
    session: &Session,
    q: InboxQuery,
    errors: BTreeMap<String, (String, String)>,
    failed: Option<StatusCode>,
) -> Response {
    let mut cx = session.context();
    cx.insert("back", "/admin/approvals");
    let deals = state.store.deals();
    let list = crate::workflow::approval_list(
        &deals,
        &state.clock,
        &session.who,
        crate::workflow::ApprovalsQuery {
            mine: Some(true),
            ..Default::default()
        },
    )
    .await;
    let approvals = match list {
        Ok(l) => l.approvals,
        Err(e) => return page(session, "approvals.html", "approvals", cx, Some(&e)),
    };
    let approvals: Vec<Approval> = approvals.into_iter().take(PAGE as usize).collect();
    // Every request's deal in one query (the list's role check covers them).
    let ids: Vec<&str> = approvals.iter().map(|a| a.deal.as_str()).collect();
    let deals = match deals.deals_with_ids(&ids).await {
        Ok(d) => d,
        Err(e) => {
            return page(session, "approvals.html", "approvals", cx, Some(&ApiError::from(e)));
        }
    };
    let mut items = Vec::new();
    for a in approvals {
        let deal = deals.get(&a.deal);
        let step = a.steps.iter().find(|s| s.state == StepState::Pending);
        let rule = a.basis["rule"].as_str().unwrap_or_default().to_string();
        let (rule_when, rule_description) = rule_of(state, &a.policy, &rule);
        items.push(InboxItem {
            step_level: step.map(|s| s.level.clone()).unwrap_or_default(),
            step_approver: step.map(|s| s.approver.clone()).unwrap_or_default(),
            deal_stage: deal.map(|d| d.stage.clone()).unwrap_or_default(),
            deal_owner: deal.map(|d| d.owner.clone()).unwrap_or_default(),
            deal_fields: deal.map(|d| rows(&d.fields)).unwrap_or_default(),
            rule,
            rule_when,
            rule_description,
            tested: rows(&a.basis["tested"]),
            error: errors.get(&a.id).map(|e| e.1.clone()),
            comment: errors.get(&a.id).map(|e| e.0.clone()).unwrap_or_default(),
            approval: a,
        });
    }
    // A refusal for a request no longer (or never) in this inbox: said on top.
    let stray: Vec<&String> = errors
        .iter()
        .filter(|(id, _)| !items.iter().any(|i| &i.approval.id == *id))
        .map(|(_, e)| &e.1)
        .collect();
    cx.insert("stray_errors", &stray);
    cx.insert("items", &items);
    cx.insert("done", &q.done);
    let notice = match q.verdict.as_deref() {
        Some("approve") if q.done.is_some() => Some("notice_approved"),
        Some("reject") if q.done.is_some() => Some("notice_rejected"),
        _ => None,
    };
    cx.insert("notice_key", &notice);
    cx.insert("page", "approvals");
    render(failed.unwrap_or(StatusCode::OK), "approvals.html", session.lang, cx)
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    comment: String,
}

/// Approves or rejects from the inbox: `POST /v1/approvals/{id}/decision`.
pub async fn decide(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    session: Session,
    Form(form): Form<DecisionForm>,
) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return session.csrf_refused();
    }
    let comment = form.comment.trim();
    let req = crate::workflow::ApprovalDecisionRequest {
        decision: form.decision.clone(),
        comment: (!comment.is_empty()).then(|| comment.to_string()),
    };
    match crate::workflow::approval_decision(&state, &session.who, &id, req).await {
        Ok(_) => Redirect::to(&format!(
            "/admin/approvals?done={}&verdict={}",
            enc(&id),
            enc(&form.decision)
        ))
        .into_response(),
        Err(e) => {
            let (status, r) = refusal(&e);
            let words = format!("{}: {}", session.lang.labels()[r.key], r.detail);
            let errors = BTreeMap::from([(id, (form.comment, words))]);
            inbox_page(&state, &session, InboxQuery::default(), errors, Some(status)).await
        }
    }
}

use super::percent_encode as enc;

// ---- deals ----

#[derive(Serialize)]
struct DealRow {
    id: String,
    funnel: String,
    owner: String,
    stage: String,
    amount: String,
    updated_at: String,
}

/// Deals by id, a page at a time: `GET /v1/deals`.
pub async fn deals(
    State(deals): State<DealStore>,
    session: Session,
    Query(q): Query<crate::workflow::DealsQuery>,
) -> Response {
    let mut cx = session.context();
    cx.insert("back", "/admin/deals");
    let q = crate::workflow::DealsQuery {
        after: q.after.filter(|a| !a.is_empty()),
        limit: Some(q.limit.unwrap_or(PAGE).min(PAGE)),
    };
    cx.insert("after", &q.after);
    match crate::workflow::deal_page(&deals, &session.who, q).await {
        Ok(p) => {
            let list: Vec<DealRow> = p
                .deals
                .iter()
                .map(|d| DealRow {
                    id: d.id.clone(),
                    funnel: d.funnel.clone(),
                    owner: d.owner.clone(),
                    stage: d.stage.clone(),
                    amount: match &d.fields["amount"] {
                        Value::Null => String::new(),
                        Value::String(s) => s.clone(),
                        v => v.to_string(),
                    },
                    updated_at: d.updated_at.clone(),
                })
                .collect();
            cx.insert("deals", &list);
            cx.insert("next_after", &p.next_after);
            page(&session, "deals.html", "deals", cx, None)
        }
        Err(e) => {
            cx.insert("deals", &Vec::<DealRow>::new());
            page(&session, "deals.html", "deals", cx, Some(&e))
        }
    }
}

/// One deal: fields, approvals, history, timers and notifications
/// (`GET /v1/deals/{id}`, `GET /v1/outbox?deal=`).
pub async fn deal(
    State(deals): State<DealStore>,
    State(outbox): State<OutboxStore>,
    Path(id): Path<String>,
    session: Session,
) -> Response {
    let mut cx = session.context();
    cx.insert("back", &format!("/admin/deals/{id}"));
    cx.insert("id", &id);
    let view = match crate::workflow::deal_view(&deals, &session.who, &id).await {
        Ok(v) => v,
        Err(e) => return page(&session, "deal.html", "deals", cx, Some(&e)),
    };
    let outbox = match crate::workflow::outbox_list(&outbox, &session.who, Some(&id)).await {
        Ok(o) => o.notifications,
        Err(e) => return page(&session, "deal.html", "deals", cx, Some(&e)),
    };
    #[derive(Serialize)]
    struct Event {
        at: String,
        kind: String,
        actor: String,
        version: String,
        detail: String,
    }
    let history: Vec<Event> = view
        .history
        .iter()
        .map(|h| Event {
            at: h.at.clone(),
            kind: h.kind.clone(),
            actor: h.actor.clone(),
            version: h.version.chars().take(19).collect(),
            detail: serde_json::to_string(&h.detail).unwrap_or_default(),
        })
        .collect();
    cx.insert("deal", &view.deal);
    cx.insert("fields", &rows(&view.deal.fields));
    cx.insert("context_rows", &rows(&view.deal.context));
    cx.insert("approvals", &view.approvals);
    cx.insert("history", &history);
    cx.insert("timers", &view.timers);
    cx.insert("outbox", &outbox);
    page(&session, "deal.html", "deals", cx, None)
}

// ---- incentive runs ----

#[derive(Default, Deserialize)]
pub struct RunsFilter {
    plan: Option<String>,
    period: Option<String>,
    state: Option<String>,
}

fn plans(state: &AppState) -> Vec<String> {
    let s = state.snapshot.load();
    s.pack
        .documents
        .iter()
        .filter(|d| d.kind == Kind::IncentivePlan)
        .map(|d| d.metadata.name.clone())
        .collect()
}

/// Runs, newest first, and a form to start one: `GET /v1/incentives/runs`.
pub async fn runs(State(state): State<Arc<AppState>>, session: Session, Query(q): Query<RunsFilter>) -> Response {
    runs_page(&state, &session, q, None, None).await
}

async fn runs_page(
    state: &AppState,
    session: &Session,
    q: RunsFilter,
    start_error: Option<(String, String, String)>,
    failed: Option<StatusCode>,
) -> Response {
    let mut cx = session.context();
    cx.insert("back", "/admin/runs");
    cx.insert("plans", &plans(state));
    let nonempty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let filter = crate::incentive_routes::RunsQuery {
        plan: nonempty(q.plan),
        period: nonempty(q.period),
        state: nonempty(q.state),
    };
    cx.insert("filter_plan", &filter.plan);
    cx.insert("filter_period", &filter.period);
    cx.insert("filter_state", &filter.state);
    cx.insert(
        "states",
        &[
            "running",
            "draft",
            "approved",
            "published",
            "locked",
            "failed",
            "replaced",
        ],
    );
    if let Some((plan, period, error)) = &start_error {
        cx.insert("start_plan", plan);
        cx.insert("start_period", period);
        cx.insert("start_error", error);
    }
    match crate::incentive_routes::run_list(&state.store.runs(), &session.who, filter).await {
        Ok(l) => {
            let list: Vec<_> = l.runs.into_iter().take(PAGE as usize).collect();
            cx.insert("runs", &list);
            cx.insert("page", "runs");
            render(failed.unwrap_or(StatusCode::OK), "runs.html", session.lang, cx)
        }
        Err(e) => {
            cx.insert("runs", &Vec::<()>::new());
            page(session, "runs.html", "runs", cx, Some(&e))
        }
    }
}

#[derive(Deserialize)]
pub struct StartForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    period: String,
}

/// Starts a run: `POST /v1/incentives/{plan}/runs`.
pub async fn start_run(State(state): State<Arc<AppState>>, session: Session, Form(form): Form<StartForm>) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return session.csrf_refused();
    }
    match crate::incentive_routes::begin_run(&state, &session.who, &form.plan, form.period.trim()).await {
        Ok(run) => Redirect::to(&format!("/admin/runs/{}", enc(&run.id))).into_response(),
        Err(e) => {
            let (status, r) = refusal(&e);
            let words = format!("{}: {}", session.lang.labels()[r.key], r.detail);
            runs_page(
                &state,
                &session,
                RunsFilter::default(),
                Some((form.plan, form.period, words)),
                Some(status),
            )
            .await
        }
    }
}

/// One run: its state (and progress while it computes), totals, what each
/// rep is paid, the next step and the export: `GET /v1/incentives/runs/{id}`.
pub async fn run(State(state): State<Arc<AppState>>, Path(id): Path<String>, session: Session) -> Response {
    run_page(&state, &session, &id, None).await
}

async fn run_page(
    state: &AppState,
    session: &Session,
    id: &str,
    action_error: Option<(StatusCode, String)>,
) -> Response {
    let mut cx = session.context();
    cx.insert("back", &format!("/admin/runs/{id}"));
    cx.insert("id", id);
    match crate::incentive_routes::run_view(state, &session.who, id).await {
        Ok(v) => {
            let next = match v.run.state {
                RunState::Draft => Some(("approve", "run_approve", "run_approve_help")),
                RunState::Approved => Some(("publish", "run_publish", "run_publish_help")),
                RunState::Published => Some(("lock", "run_lock", "run_lock_help")),
                _ => None,
            };
            cx.insert("run", &v.run);
            cx.insert("state", v.run.state.as_str());
            cx.insert("statements", &v.statements);
            cx.insert("next_action", &next.map(|n| n.0));
            cx.insert("next_label", &next.map(|n| n.1));
            cx.insert("next_help", &next.map(|n| n.2));
            cx.insert("running", &(v.run.state == RunState::Running));
            let status = match action_error {
                Some((status, words)) => {
                    cx.insert("action_error", &words);
                    status
                }
                None => StatusCode::OK,
            };
            cx.insert("page", "runs");
            render(status, "run.html", session.lang, cx)
        }
        Err(e) => page(session, "run.html", "runs", cx, Some(&e)),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Approves, publishes or locks a run: the API's `approve`, `publish`, `lock`.
pub async fn advance_run(
    State(state): State<Arc<AppState>>,
    Path((id, action)): Path<(String, String)>,
    session: Session,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return session.csrf_refused();
    }
    let to = match action.as_str() {
        "approve" => RunState::Approved,
        "publish" => RunState::Published,
        "lock" => RunState::Locked,
        _ => {
            let e = ApiError::NotFound(format!("no run action `{action}`: approve, publish or lock"));
            return run_page(&state, &session, &id, Some((StatusCode::NOT_FOUND, e.to_string()))).await;
        }
    };
    match crate::incentive_routes::advance_run(&state, &session.who, &id, to).await {
        Ok(_) => Redirect::to(&format!("/admin/runs/{}", enc(&id))).into_response(),
        Err(e) => {
            let (status, r) = refusal(&e);
            let words = format!("{}: {}", session.lang.labels()[r.key], r.detail);
            run_page(&state, &session, &id, Some((status, words))).await
        }
    }
}

#[derive(Deserialize)]
pub struct ExportQuery {
    format: Option<String>,
}

/// The payroll file: `GET /v1/incentives/runs/{id}/export`, with the session.
pub async fn export(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    session: Session,
    Query(q): Query<ExportQuery>,
) -> Response {
    match crate::incentive_routes::payroll_export(&state, &session.who, &id, q.format.as_deref()).await {
        Ok(res) => res,
        Err(e) => run_page(&state, &session, &id, Some((refusal(&e).0, e.to_string()))).await,
    }
}

// ---- statements ----

#[derive(Default, Deserialize)]
pub struct StatementQuery {
    rep: Option<String>,
    period: Option<String>,
}

#[derive(Serialize)]
struct ShownStatement {
    plan: String,
    run: String,
    state: String,
    pack_version: String,
    summary: Vec<Row>,
    lines: Vec<Vec<Row>>,
}

/// A statement's top-level values, labelled in the page's language where
/// the console knows the field.
fn statement_rows(lang: Lang, st: &Value) -> (Vec<Row>, Vec<Vec<Row>>) {
    let labels = lang.labels();
    // `by_deal.w-1`: the field's label, then the key inside it.
    let label = |k: &str| {
        if let Some(l) = labels.get(format!("st_{k}").as_str()) {
            return l.to_string();
        }
        match k.split_once('.') {
            Some((head, rest)) => match labels.get(format!("st_{head}").as_str()) {
                Some(l) => format!("{l} · {rest}"),
                None => k.to_string(),
            },
            None => k.to_string(),
        }
    };
    let mut summary = Vec::new();
    let mut lines = Vec::new();
    if let Value::Object(m) = st {
        for (k, v) in m {
            match v {
                Value::Array(items) if k == "lines" => {
                    for item in items {
                        lines.push(
                            rows(item)
                                .into_iter()
                                .map(|r| Row {
                                    key: label(&r.key),
                                    value: r.value,
                                })
                                .collect(),
                        );
                    }
                }
                Value::Object(_) | Value::Array(_) => {
                    for r in rows(&serde_json::json!({ k: v })) {
                        summary.push(Row {
                            key: label(&r.key),
                            value: r.value,
                        })
                    }
                }
                Value::Null => {}
                Value::String(s) => summary.push(Row {
                    key: label(k),
                    value: s.clone(),
                }),
                other => summary.push(Row {
                    key: label(k),
                    value: other.to_string(),
                }),
            }
        }
    }
    (summary, lines)
}

/// A rep's published statements for a period: `GET /v1/statements/{rep}/{period}`.
/// The rep reads their own, a manager their reports', an admin any; the
/// API refuses anyone else and the page says so.
pub async fn statements(
    State(state): State<Arc<AppState>>,
    session: Session,
    Query(q): Query<StatementQuery>,
) -> Response {
    let mut cx = session.context();
    let rep = q
        .rep
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| session.who.subject.clone());
    let period = q.period.filter(|p| !p.trim().is_empty());
    cx.insert("rep", &rep);
    cx.insert("period", &period);
    cx.insert(
        "back",
        &format!(
            "/admin/statements?rep={}&period={}",
            enc(&rep),
            enc(period.as_deref().unwrap_or(""))
        ),
    );
    let Some(period) = period else {
        cx.insert("statements", &Vec::<ShownStatement>::new());
        return page(&session, "statements.html", "statements", cx, None);
    };
    match crate::incentive_routes::rep_statements(&state, &session.who, &rep, &period, None).await {
        Ok(found) => {
            let shown: Vec<ShownStatement> = found
                .iter()
                .map(|s| {
                    // The engine's explanations in the page's language, as
                    // the API's `?locale=zh-CN` gives them.
                    let mut statement = s.statement.clone();
                    if session.lang == Lang::ZhCn {
                        dealrules_workflow::statement_docs::localize(
                            &mut statement,
                            dealrules_workflow::statement_docs::DocLocale::ZhCn,
                        );
                    }
                    let (summary, lines) = statement_rows(session.lang, &statement);
                    ShownStatement {
                        plan: s.plan.clone(),
                        run: s.run.clone(),
                        state: s.state.as_str().to_string(),
                        pack_version: s.pack_version.clone(),
                        summary,
                        lines,
                    }
                })
                .collect();
            cx.insert("statements", &shown);
            page(&session, "statements.html", "statements", cx, None)
        }
        Err(e) => {
            cx.insert("statements", &Vec::<ShownStatement>::new());
            page(&session, "statements.html", "statements", cx, Some(&e))
        }
    }
}

// ---- the decision log ----

#[derive(Default, Deserialize)]
pub struct LogFilter {
    policy: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<String>,
}

#[derive(Serialize)]
struct LogRow {
    id: String,
    decided_at: String,
    policy: String,
    version: String,
    outcome: String,
    subject: String,
}

/// The decision log, filtered by policy and time, a page at a time:
/// `GET /v1/decisions`.
pub async fn decisions(State(state): State<Arc<AppState>>, session: Session, Query(q): Query<LogFilter>) -> Response {
    let mut cx = session.context();
    cx.insert("back", "/admin/decisions");
    let nonempty = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let q = crate::decision_routes::DecisionsQuery {
        policy: nonempty(q.policy),
        since: nonempty(q.since),
        until: nonempty(q.until),
        after: nonempty(q.after),
        limit: Some(PAGE),
    };
    cx.insert("policy", &q.policy);
    cx.insert("since", &q.since);
    cx.insert("until", &q.until);
    let names: Vec<String> = state
        .snapshot
        .load()
        .policies()
        .iter()
        .filter(|p| p.decidable)
        .map(|p| p.name.clone())
        .collect();
    cx.insert("names", &names);
    let query = format!(
        "policy={}&since={}&until={}",
        enc(q.policy.as_deref().unwrap_or("")),
        enc(q.since.as_deref().unwrap_or("")),
        enc(q.until.as_deref().unwrap_or(""))
    );
    cx.insert("query", &query);
    match crate::decision_routes::decision_page(&state.store.decisions(), &session.who, q).await {
        Ok(p) => {
            let list: Vec<LogRow> = p
                .decisions
                .into_iter()
                .map(|d| LogRow {
                    id: d.id,
                    decided_at: d.decided_at,
                    policy: d.policy,
                    version: d.version.chars().take(19).collect(),
                    outcome: d.outcome,
                    subject: d.subject,
                })
                .collect();
            cx.insert("decisions", &list);
            cx.insert("next_after", &p.next_after);
            page(&session, "decisions.html", "decisions", cx, None)
        }
        Err(e) => {
            cx.insert("decisions", &Vec::<LogRow>::new());
            // A bad time is the filter's fault: said next to the fields.
            cx.insert("filter_error", &e.to_string());
            page(&session, "decisions.html", "decisions", cx, Some(&e))
        }
    }
}

/// One logged decision: `GET /v1/decisions/{id}`; with a replay's answer
/// when the replay form was sent.
pub async fn decision(State(state): State<Arc<AppState>>, Path(id): Path<String>, session: Session) -> Response {
    decision_page(&state, &session, &id, None).await
}

async fn decision_page(
    state: &AppState,
    session: &Session,
    id: &str,
    replayed: Option<Result<crate::decision_routes::Replay, ApiError>>,
) -> Response {
    let mut cx = session.context();
    cx.insert("back", &format!("/admin/decisions/{id}"));
    cx.insert("id", id);
    let d = match crate::decision_routes::logged_decision(&state.store.decisions(), &session.who, id).await {
        Ok(d) => d,
        Err(e) => return page(session, "decision.html", "decisions", cx, Some(&e)),
    };
    cx.insert("d", &d);
    cx.insert("input", &pretty(&d.input));
    cx.insert("result", &pretty(&d.result));
    let mut status = StatusCode::OK;
    match replayed {
        Some(Ok(r)) => {
            cx.insert("replay_same", &r.same);
            cx.insert("replayed", &pretty(&r.replayed));
        }
        Some(Err(e)) => {
            let (s, r) = refusal(&e);
            status = s;
            cx.insert(
                "replay_error",
                &format!("{}: {}", session.lang.labels()[r.key], r.detail),
            );
        }
        None => {}
    }
    cx.insert("page", "decisions");
    render(status, "decision.html", session.lang, cx)
}

/// Replays a logged decision on the version that made it:
/// `POST /v1/decisions/{id}/replay`.
pub async fn replay(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    session: Session,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return session.csrf_refused();
    }
    let answer = crate::decision_routes::replay_decision(
        &state.store.decisions(),
        &state.store.packs(),
        &state.snapshot,
        &session.who,
        &id,
    )
    .await;
    decision_page(&state, &session, &id, Some(answer)).await
}
