//! Change requests in the console: the list and a new draft, a draft's
//! files in editors with line numbers and its errors at their lines, the
//! tests and the diff, the impact of the change with a per-rep payout
//! chart, and the moves (submit, approve, schedule, reject, cancel, roll
//! back). Each calls the function its API route calls (`crate::changes`),
//! whose role and four-eyes checks decide; a refusal is shown in words.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use dealrules_store::{ChangeState, ImpactState};
use dealrules_workflow::impact::ImpactRequest;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::percent_encode as enc;
use super::render;
use super::session::Session;
use super::work::refusal;
use crate::auth::{Role, require};
use crate::changes::{
    ApproveRequest, ChangeView, EditChange, FileStatus, ImpactJobView, MoveRequest, NewChange, RollbackChange,
};
use crate::error::ApiError;
use crate::state::AppState;

/// Rows of a per-rep table shown at most (the largest deltas first).
const REP_ROWS: usize = 200;
/// Bars in the per-rep chart at most.
const CHART_BARS: usize = 30;
/// Changed decisions listed at most.
const EXAMPLES: usize = 20;

/// A refusal in the page's words: the label of its kind, then its detail.
fn words(session: &Session, e: &ApiError) -> (StatusCode, String) {
    let (status, r) = refusal(e);
    let label = session.lang.labels()[r.key];
    (status, format!("{label}: {}", r.detail))
}

// ---- the list ----

#[derive(Serialize)]
struct ListRow {
    id: String,
    kind: String,
    title: String,
    state: String,
    author: String,
    base_version: String,
    files: usize,
    valid: bool,
    updated_at: String,
}

#[derive(Default, Deserialize)]
pub struct ListQuery {
    state: Option<String>,
}

/// Change requests, newest first, a form to open one and a rollback form:
/// `GET /v1/changes`.
pub async fn list(State(state): State<Arc<AppState>>, session: Session, Query(q): Query<ListQuery>) -> Response {
    list_page(&state, &session, q, None).await
}

/// What a refused form on the list page keeps: which form, as typed, and why.
#[derive(Default, Serialize)]
struct ListForms {
    title: String,
    new_error: Option<String>,
    version: String,
    comment: String,
    rollback_error: Option<String>,
}

async fn list_page(
    state: &AppState,
    session: &Session,
    q: ListQuery,
    forms: Option<(StatusCode, ListForms)>,
) -> Response {
    let mut cx = session.context();
    cx.insert("page", "changes");
    cx.insert("back", "/admin/changes");
    let wanted = q.state.filter(|s| !s.trim().is_empty());
    cx.insert("filter_state", &wanted);
    cx.insert(
        "states",
        &[
            "draft",
            "submitted",
            "approved",
            "scheduled",
            "active",
            "rejected",
            "cancelled",
        ],
    );
    cx.insert("active_version", &*state.snapshot.load().version);
    cx.insert("may_change", &require(&session.who, Role::Admin).is_ok());
    let (status, forms) = forms.unwrap_or((StatusCode::OK, ListForms::default()));
    cx.insert("forms", &forms);
    match crate::changes::change_list(state, &session.who, wanted).await {
        Ok(l) => {
            let rows: Vec<ListRow> = l
                .changes
                .into_iter()
                .map(|c| ListRow {
                    id: c.id,
                    kind: c.kind.as_str().to_string(),
                    title: c.title,
                    state: c.state.as_str().to_string(),
                    author: c.author,
                    base_version: short(&c.base_version),
                    files: c.files.len(),
                    valid: c.valid,
                    updated_at: c.updated_at,
                })
                .collect();
            cx.insert("changes", &rows);
            render(status, "changes.html", session.lang, cx)
        }
        Err(e) => {
            cx.insert("changes", &Vec::<ListRow>::new());
            let (status, r) = refusal(&e);
            cx.insert("refusal", &r);
            render(status, "changes.html", session.lang, cx)
        }
    }
}

fn short(version: &str) -> String {
    version.chars().take(19).collect()
}

#[derive(Deserialize)]
pub struct NewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    title: String,
}

/// Opens a draft against the active version: `POST /v1/changes`.
pub async fn create(State(state): State<Arc<AppState>>, session: Session, Form(form): Form<NewForm>) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return session.csrf_refused();
    }
    let req = NewChange {
        title: form.title.clone(),
        files: BTreeMap::new(),
    };
    match crate::changes::open_change(&state, &session.who, req).await {
        Ok(c) => Redirect::to(&format!("/admin/changes/{}", enc(&c.id))).into_response(),
        Err(e) => {
            let (status, words) = words(&session, &e);
            let forms = ListForms {
                title: form.title,
                new_error: Some(words),
                ..Default::default()
            };
            list_page(&state, &session, ListQuery::default(), Some((status, forms))).await
        }
    }
}

#[derive(Deserialize)]
pub struct RollbackForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    emergency: Option<String>,
}

/// Opens a rollback to a stored version as a change (an emergency one
/// activates at once): `POST /v1/changes/rollback`.
pub async fn rollback(
    State(state): State<Arc<AppState>>,
    session: Session,
    Form(form): Form<RollbackForm>,
) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return session.csrf_refused();
    }
    let req = RollbackChange {
        version: form.version.trim().to_string(),
        title: None,
        comment: Some(form.comment.clone()),
        emergency: form.emergency.as_deref().is_some_and(|v| !v.is_empty()),
    };
    match crate::changes::roll_back(&state, &session.who, req).await {
        Ok(c) => Redirect::to(&format!("/admin/changes/{}", enc(&c.id))).into_response(),
        Err(e) => {
            let (status, words) = words(&session, &e);
            let forms = ListForms {
                version: form.version,
                comment: form.comment,
                rollback_error: Some(words),
                ..Default::default()
            };
            list_page(&state, &session, ListQuery::default(), Some((status, forms))).await
        }
    }
}

// ---- one change ----

/// `file:line:col: message` (or `file:line: message`, as a failed test
/// says) read back into its parts; anything else stays whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct PackError {
    file: Option<String>,
    line: Option<usize>,
    col: Option<usize>,
    message: String,
}

fn pack_error(text: &str) -> PackError {
    let whole = || PackError {
        file: None,
        line: None,
        col: None,
        message: text.to_string(),
    };
    let Some((file, rest)) = text.split_once(':') else {
        return whole();
    };
    let Some((line, rest)) = rest.split_once(':') else {
        return whole();
    };
    let Ok(line) = line.trim().parse::<usize>() else {
        return whole();
    };
    let (col, message) = match rest.split_once(':') {
        Some((col, message)) if col.trim().parse::<usize>().is_ok() => (col.trim().parse().ok(), message),
        _ => (None, rest),
    };
    PackError {
        file: Some(file.trim().to_string()),
        line: Some(line),
        col,
        message: message.trim().to_string(),
    }
}

/// One line of an editor's gutter and of the notes beside it.
#[derive(Serialize)]
struct GutterLine {
    n: usize,
    /// The errors at this line, in words.
    notes: Vec<String>,
}

/// A file of the draft in an editor.
#[derive(Serialize)]
struct Editor {
    /// An index, for element ids.
    i: usize,
    path: String,
    /// added | modified | deleted | opened (a base file not yet changed).
    status: String,
    text: Option<String>,
    diff: String,
    rows: usize,
    gutter: Vec<GutterLine>,
    errors: Vec<PackError>,
}

fn editor(i: usize, path: &str, status: &str, text: Option<String>, diff: String, errors: &[PackError]) -> Editor {
    let mine: Vec<PackError> = errors
        .iter()
        .filter(|e| e.file.as_deref() == Some(path))
        .cloned()
        .collect();
    let lines = text.as_deref().map(|t| t.lines().count()).unwrap_or(0);
    let last_error = mine.iter().filter_map(|e| e.line).max().unwrap_or(0);
    // Room to type below the text, and every error's line shown.
    let rows = lines.max(last_error) + 2;
    let gutter = (1..=rows)
        .map(|n| GutterLine {
            n,
            notes: mine
                .iter()
                .filter(|e| e.line == Some(n))
                .map(|e| match e.col {
                    Some(c) => format!("{c}: {}", e.message),
                    None => e.message.clone(),
                })
                .collect(),
        })
        .collect();
    Editor {
        i,
        path: path.to_string(),
        status: status.to_string(),
        text,
        diff,
        rows,
        gutter,
        errors: mine,
    }
}

#[derive(Default, Deserialize)]
pub struct ChangeQuery {
    /// A file of the base opened for editing.
    open: Option<String>,
    /// The impact job to show.
    impact: Option<String>,
}

/// What a refused form on the change page keeps: the form's name, the
/// refusal in words, and the texts as typed.
#[derive(Default)]
struct Refused {
    form: &'static str,
    words: String,
    status: Option<StatusCode>,
    texts: BTreeMap<String, String>,
}

/// One change: `GET /v1/changes/{id}`, with an impact job's progress or
/// result (`GET /v1/changes/{id}/impact/{job}`) when asked.
pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    session: Session,
    Query(q): Query<ChangeQuery>,
) -> Response {
    change_page(&state, &session, &id, q, Refused::default()).await
}

async fn change_page(state: &AppState, session: &Session, id: &str, q: ChangeQuery, refused: Refused) -> Response {
    let mut cx = session.context();
    cx.insert("page", "changes");
    cx.insert("id", id);
    cx.insert("back", &format!("/admin/changes/{id}"));
    let c = match crate::changes::change_view(state, &session.who, id).await {
        Ok(c) => c,
        Err(e) => {
            let (status, r) = refusal(&e);
            cx.insert("refusal", &r);
            return render(status, "change.html", session.lang, cx);
        }
    };
    let errors: Vec<PackError> = c.validation.errors.iter().map(|e| pack_error(e)).collect();
    let mut editors: Vec<Editor> = c
        .diff
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let status = match f.status {
                FileStatus::Added => "added",
                FileStatus::Modified => "modified",
                FileStatus::Deleted => "deleted",
            };
            let text = refused.texts.get(&f.path).cloned().or_else(|| f.text.clone());
            editor(i, &f.path, status, text, f.diff.clone(), &errors)
        })
        .collect();
    let snapshot = state.snapshot.load();
    let base_files: Vec<String> = if c.base_version == *snapshot.version {
        snapshot.pack.source.files.keys().cloned().collect()
    } else {
        // The base is an older version: its files are the stored pack's.
        match state.store.packs().pack(&c.base_version).await {
            Ok(Some(p)) => p.files.keys().cloned().collect(),
            _ => Vec::new(),
        }
    };
    if let Some(path) = q.open.as_deref().filter(|p| !p.is_empty())
        && !editors.iter().any(|e| e.path == path)
    {
        let text = if c.base_version == *snapshot.version {
            snapshot.pack.source.files.get(path).cloned()
        } else {
            state
                .store
                .packs()
                .pack(&c.base_version)
                .await
                .ok()
                .flatten()
                .and_then(|p| p.files.get(path).cloned())
        };
        match text.map(String::from_utf8) {
            Some(Ok(text)) => {
                let text = refused.texts.get(path).cloned().unwrap_or(text);
                editors.push(editor(
                    editors.len(),
                    path,
                    "opened",
                    Some(text),
                    String::new(),
                    &errors,
                ));
            }
            _ => cx.insert("open_error", &format!("{}: {path}", session.lang.labels()["not_found"])),
        }
    }
    // Errors in files no editor shows (or in no file at all), said on top.
    let elsewhere: Vec<&PackError> = errors
        .iter()
        .filter(|e| !editors.iter().any(|ed| Some(ed.path.as_str()) == e.file.as_deref()))
        .collect();
    let is_author = c.author == session.who.subject;
    let may_admin = require(&session.who, Role::Admin).is_ok();
    let draft = c.state == ChangeState::Draft;
    cx.insert("c", &c);
    cx.insert("state", c.state.as_str());
    cx.insert("kind", c.kind.as_str());
    cx.insert("base_short", &short(&c.base_version));
    cx.insert("active_short", &short(&c.active_version));
    cx.insert("candidate_short", &short(&c.validation.version));
    cx.insert("editors", &editors);
    cx.insert("elsewhere", &elsewhere);
    cx.insert("base_files", &base_files);
    cx.insert("editable", &(draft && is_author && may_admin));
    cx.insert("is_author", &is_author);
    cx.insert("may_admin", &may_admin);
    cx.insert("four_eyes", &state.four_eyes);
    cx.insert("may_submit", &(draft && c.validation.valid && c.conflicts.is_empty()));
    let actions: Vec<&str> = match c.state {
        ChangeState::Draft => vec!["submit", "cancel"],
        ChangeState::Submitted => vec!["approve", "reject", "cancel"],
        ChangeState::Scheduled => vec!["reject", "cancel"],
        _ => vec![],
    };
    cx.insert("actions", &actions);
    cx.insert("may_roll_back", &(c.state == ChangeState::Active && may_admin));
    cx.insert("refused_form", refused.form);
    cx.insert("refused_words", &refused.words);
    if let Some(job) = q.impact.as_deref().filter(|j| !j.is_empty()) {
        match crate::changes::impact_view(state, &session.who, id, job).await {
            Ok(j) => {
                let running = j.state == ImpactState::Running;
                cx.insert("impact", &impact_shown(&j));
                cx.insert("impact_running", &running);
            }
            Err(e) => cx.insert("impact_error", &words(session, &e).1),
        }
    }
    render(
        refused.status.unwrap_or(StatusCode::OK),
        "change.html",
        session.lang,
        cx,
    )
}

// ---- the impact, as a page ----

/// A bar of the per-rep chart, laid out on the server.
#[derive(Serialize)]
struct Bar {
    rep: String,
    delta: String,
    positive: bool,
    /// Where the bar starts and how wide it is, and its row's y.
    x: i64,
    width: i64,
    y: i64,
    /// Where the value's text goes, and which way it leans.
    text_x: i64,
    anchor: &'static str,
}

#[derive(Serialize)]
struct Chart {
    width: i64,
    height: i64,
    zero_x: i64,
    bars: Vec<Bar>,
    shown: usize,
    of: usize,
}

#[derive(Serialize)]
struct RepRow {
    rep: String,
    before: String,
    after: String,
    delta: String,
    sign: &'static str,
}

#[derive(Serialize)]
struct PlanShown {
    plan: String,
    period: String,
    currency: String,
    reps: u64,
    reps_changed: u64,
    total_before: String,
    total_after: String,
    delta: String,
    sign: &'static str,
    rows: Vec<RepRow>,
    rows_of: usize,
    chart: Chart,
}

#[derive(Serialize)]
struct ImpactShown {
    id: String,
    state: String,
    requested_by: String,
    started_at: String,
    finished_at: Option<String>,
    error: Option<String>,
    request: Value,
    progress: Value,
    active_version: String,
    candidate_version: String,
    decisions: Value,
    examples: Vec<Value>,
    plans: Vec<PlanShown>,
    funnels: Value,
    done: bool,
}

fn decimal(v: &Value) -> Decimal {
    match v {
        Value::String(s) => Decimal::from_str(s).unwrap_or_default(),
        Value::Number(n) => Decimal::from_str(&n.to_string()).unwrap_or_default(),
        _ => Decimal::ZERO,
    }
}

fn sign(d: Decimal) -> &'static str {
    if d > Decimal::ZERO {
        "up"
    } else if d < Decimal::ZERO {
        "down"
    } else {
        "same"
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The chart's geometry: one row per rep (largest change first), bars
/// right of the zero line for a raise and left of it for a cut, scaled to
/// the largest change.
fn chart(by_rep: &[(String, Decimal)]) -> Chart {
    const WIDTH: i64 = 720;
    const LABEL: i64 = 140;
    const ROW: i64 = 22;
    const VALUE_ROOM: i64 = 90;
    let mut changed: Vec<&(String, Decimal)> = by_rep.iter().filter(|(_, d)| !d.is_zero()).collect();
    changed.sort_by(|a, b| b.1.abs().cmp(&a.1.abs()).then_with(|| a.0.cmp(&b.0)));
    let of = changed.len();
    changed.truncate(CHART_BARS);
    let any_down = changed.iter().any(|(_, d)| d.is_sign_negative());
    let any_up = changed.iter().any(|(_, d)| d.is_sign_positive());
    let plot = WIDTH - LABEL - 2 * VALUE_ROOM;
    // The zero line: centred when there are both raises and cuts.
    let (zero_x, half) = match (any_up, any_down) {
        (true, true) => (LABEL + VALUE_ROOM + plot / 2, plot / 2),
        (false, true) => (LABEL + VALUE_ROOM + plot, plot),
        _ => (LABEL + VALUE_ROOM, plot),
    };
    let largest = changed.first().map(|(_, d)| d.abs()).unwrap_or(Decimal::ONE);
    let bars = changed
        .iter()
        .enumerate()
        .map(|(i, (rep, d))| {
            let scaled = (d.abs() * Decimal::from(half) / largest).round();
            let len = scaled.to_i64().unwrap_or(half).max(1);
            let positive = d.is_sign_positive();
            let x = if positive { zero_x } else { zero_x - len };
            Bar {
                rep: rep.clone(),
                delta: d.to_string(),
                positive,
                x,
                width: len,
                y: 10 + i as i64 * ROW,
                text_x: if positive { zero_x + len + 4 } else { zero_x - len - 4 },
                anchor: if positive { "start" } else { "end" },
            }
        })
        .collect::<Vec<_>>();
    Chart {
        width: WIDTH,
        height: 20 + bars.len().max(1) as i64 * ROW,
        zero_x,
        shown: bars.len(),
        of,
        bars,
    }
}

fn plan_shown(p: &Value) -> PlanShown {
    let by_rep: Vec<(String, Decimal, Decimal, Decimal)> = p["by_rep"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    (
                        text(&r["rep"]),
                        decimal(&r["before"]),
                        decimal(&r["after"]),
                        decimal(&r["delta"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut sorted: Vec<&(String, Decimal, Decimal, Decimal)> = by_rep.iter().collect();
    sorted.sort_by(|a, b| b.3.abs().cmp(&a.3.abs()).then_with(|| a.0.cmp(&b.0)));
    let rows = sorted
        .iter()
        .take(REP_ROWS)
        .map(|(rep, before, after, delta)| RepRow {
            rep: rep.clone(),
            before: before.to_string(),
            after: after.to_string(),
            delta: delta.to_string(),
            sign: sign(*delta),
        })
        .collect();
    let deltas: Vec<(String, Decimal)> = by_rep.iter().map(|r| (r.0.clone(), r.3)).collect();
    let delta = decimal(&p["delta"]);
    PlanShown {
        plan: text(&p["plan"]),
        period: text(&p["period"]),
        currency: text(&p["currency"]),
        reps: p["reps"].as_u64().unwrap_or(0),
        reps_changed: p["reps_changed"].as_u64().unwrap_or(0),
        total_before: text(&p["total_before"]),
        total_after: text(&p["total_after"]),
        delta: delta.to_string(),
        sign: sign(delta),
        rows,
        rows_of: by_rep.len(),
        chart: chart(&deltas),
    }
}

fn impact_shown(j: &ImpactJobView) -> ImpactShown {
    let result = j.result.clone().unwrap_or(Value::Null);
    let examples = result["decisions"]["examples"]
        .as_array()
        .map(|e| {
            e.iter()
                .take(EXAMPLES)
                .map(|x| {
                    serde_json::json!({
                        "id": x["id"],
                        "policy": x["policy"],
                        "decided_at": x["decided_at"],
                        "fields": x["fields"],
                        "before": serde_json::to_string(&x["before"]).unwrap_or_default(),
                        "after": serde_json::to_string(&x["after"]).unwrap_or_default(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    ImpactShown {
        id: j.id.clone(),
        state: j.state.as_str().to_string(),
        requested_by: j.requested_by.clone(),
        started_at: j.started_at.clone(),
        finished_at: j.finished_at.clone(),
        error: j.error.clone(),
        request: j.request.clone(),
        progress: j.progress.clone(),
        active_version: short(result["active_version"].as_str().unwrap_or_default()),
        candidate_version: short(result["candidate_version"].as_str().unwrap_or_default()),
        decisions: result["decisions"].clone(),
        examples,
        plans: result["incentives"]
            .as_array()
            .map(|ps| ps.iter().map(plan_shown).collect())
            .unwrap_or_default(),
        funnels: result["funnels"].clone(),
        done: j.state == ImpactState::Done,
    }
}

// ---- saving, the moves, the impact ----

/// Saves the draft's editors: `PUT /v1/changes/{id}`. The form's fields:
/// `csrf`, `title`, `file:<path>` (a file's whole text), `delete` (a
/// path to drop), `new_path` and `new_text` (a file to add).
pub async fn save(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    session: Session,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if !session.csrf_ok(field("csrf").unwrap_or_default()) {
        return session.csrf_refused();
    }
    let mut files: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut texts = BTreeMap::new();
    for (k, v) in &fields {
        if let Some(path) = k.strip_prefix("file:") {
            // Browsers send a textarea's line breaks as CRLF.
            let text = v.replace("\r\n", "\n");
            texts.insert(path.to_string(), text.clone());
            files.insert(path.to_string(), Some(text));
        }
    }
    if let (Some(path), Some(text)) = (field("new_path"), field("new_text"))
        && !path.trim().is_empty()
    {
        let text = text.replace("\r\n", "\n");
        texts.insert(path.trim().to_string(), text.clone());
        files.insert(path.trim().to_string(), Some(text));
    }
    if let Some(path) = field("delete").filter(|p| !p.is_empty()) {
        texts.remove(path);
        files.insert(path.to_string(), None);
    }
    let req = EditChange {
        title: field("title").filter(|t| !t.trim().is_empty()).map(str::to_string),
        files,
        rebase: field("rebase").is_some_and(|v| !v.is_empty()),
    };
    match crate::changes::save_change(&state, &session.who, &id, req).await {
        Ok(_) => Redirect::to(&format!("/admin/changes/{}#files", enc(&id))).into_response(),
        Err(e) => {
            let (status, words) = words(&session, &e);
            let refused = Refused {
                form: "save",
                words,
                status: Some(status),
                texts,
            };
            change_page(&state, &session, &id, ChangeQuery::default(), refused).await
        }
    }
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    activate_at: String,
}

/// `2026-12-01T09:00` (a browser's date and time, read as UTC) or an
/// RFC 3339 time, as RFC 3339.
fn activation_time(t: &str) -> Option<String> {
    let t = t.trim();
    if t.is_empty() {
        return None;
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(t, format) {
            return Some(naive.and_utc().to_rfc3339());
        }
    }
    // Anything else goes to the API as typed, which says what is wrong.
    Some(t.to_string())
}

/// Submits, approves (at once or at a time), rejects or cancels:
/// `POST /v1/changes/{id}/submit|approve|reject|cancel`.
pub async fn advance(
    State(state): State<Arc<AppState>>,
    Path((id, action)): Path<(String, String)>,
    session: Session,
    Form(form): Form<MoveForm>,
) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return session.csrf_refused();
    }
    let comment = Some(form.comment.clone()).filter(|c| !c.trim().is_empty());
    let answer = match action.as_str() {
        "submit" => crate::changes::submit_change(&state, &session.who, &id, MoveRequest { comment }).await,
        "approve" => {
            let req = ApproveRequest {
                comment,
                activate_at: activation_time(&form.activate_at),
            };
            crate::changes::approve_change(&state, &session.who, &id, req).await
        }
        "reject" => {
            crate::changes::end_change(
                &state,
                &session.who,
                &id,
                MoveRequest { comment },
                ChangeState::Rejected,
            )
            .await
        }
        "cancel" => {
            crate::changes::end_change(
                &state,
                &session.who,
                &id,
                MoveRequest { comment },
                ChangeState::Cancelled,
            )
            .await
        }
        _ => Err(ApiError::NotFound(format!(
            "no change action `{action}`: submit, approve, reject or cancel"
        ))),
    };
    moved(&state, &session, &id, "moves", answer).await
}

async fn moved(
    state: &AppState,
    session: &Session,
    id: &str,
    form: &'static str,
    answer: Result<ChangeView, ApiError>,
) -> Response {
    match answer {
        Ok(_) => Redirect::to(&format!("/admin/changes/{}#history", enc(id))).into_response(),
        Err(e) => {
            let (status, words) = words(session, &e);
            let refused = Refused {
                form,
                words,
                status: Some(status),
                texts: BTreeMap::new(),
            };
            change_page(state, session, id, ChangeQuery::default(), refused).await
        }
    }
}

#[derive(Deserialize)]
pub struct ImpactForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decisions_since: String,
    #[serde(default)]
    incentive_periods: String,
}

/// Starts an impact job, then shows its progress and result:
/// `POST /v1/changes/{id}/impact`.
pub async fn impact(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    session: Session,
    Form(form): Form<ImpactForm>,
) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return session.csrf_refused();
    }
    let req = ImpactRequest {
        decisions_since: Some(form.decisions_since.trim().to_string()).filter(|s| !s.is_empty()),
        decisions_until: None,
        incentive_periods: form
            .incentive_periods
            .split([',', ' ', ';'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        examples: None,
    };
    match crate::changes::begin_impact(&state, &session.who, &id, req).await {
        Ok(job) => Redirect::to(&format!("/admin/changes/{}?impact={}#impact", enc(&id), enc(&job.id))).into_response(),
        Err(e) => moved(&state, &session, &id, "impact", Err(e)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_error_is_read_back_into_file_line_column_and_message() {
        assert_eq!(
            pack_error("incentives.yaml:28:30: expected a number: `x`"),
            PackError {
                file: Some("incentives.yaml".into()),
                line: Some(28),
                col: Some(30),
                message: "expected a number: `x`".into(),
            }
        );
        assert_eq!(
            pack_error("tests/incentives.yaml:3: policy test `a` failed: total 1 != 2"),
            PackError {
                file: Some("tests/incentives.yaml".into()),
                line: Some(3),
                col: None,
                message: "policy test `a` failed: total 1 != 2".into(),
            }
        );
        assert_eq!(pack_error("not validated").file, None);
    }

    #[test]
    fn the_chart_puts_raises_right_and_cuts_left_of_zero_scaled_to_the_largest() {
        let c = chart(&[
            ("ana".into(), Decimal::new(420000, 2)),
            ("ben".into(), Decimal::new(-210000, 2)),
            ("cy".into(), Decimal::ZERO),
        ]);
        assert_eq!(c.of, 2, "an unchanged rep has no bar");
        let (ana, ben) = (&c.bars[0], &c.bars[1]);
        assert!(ana.positive && ana.x == c.zero_x);
        assert!(!ben.positive && ben.x + ben.width == c.zero_x);
        assert_eq!(ana.width, 2 * ben.width);
    }
}
