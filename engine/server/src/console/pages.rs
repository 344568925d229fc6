//! The console's pages. Each asks the API's role check for what it shows
//! and calls what the API's handlers call.

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use dealrules_model::Kind;
use serde::{Deserialize, Serialize};

use super::session::Session;
use super::{error_page, render};
use crate::auth::{Role, require};
use crate::error::ApiError;
use crate::state::AppState;

/// An API error as a page, in the page's language.
fn failed(session: &Session, e: ApiError) -> Response {
    let status = match &e {
        ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let key = match status {
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        _ => "error",
    };
    error_page(status, session.lang, key, &e.to_string())
}

/// Active version, who activated it and when, reload errors, workers and
/// today's decisions: `GET /v1/status` and the decision log.
pub async fn overview(State(state): State<Arc<AppState>>, session: Session) -> Response {
    if let Err(e) = require(&session.who, Role::Viewer) {
        return failed(&session, e);
    }
    let mut status = state.status.read().unwrap_or_else(|p| p.into_inner()).clone();
    status.workers = state.workers.status();
    let today = if status.decision_log {
        let query = dealrules_store::DecisionQuery {
            since: Some(chrono::Utc::now().format("%Y-%m-%d").to_string()),
            limit: dealrules_store::MAX_PAGE,
            ..Default::default()
        };
        match state.store.decisions().decisions(&query).await {
            Ok(found) if found.len() as u32 >= dealrules_store::MAX_PAGE => Some(format!("{}+", found.len())),
            Ok(found) => Some(found.len().to_string()),
            Err(e) => return failed(&session, ApiError::Internal(e.to_string())),
        }
    } else {
        None
    };
    let mut cx = session.context();
    cx.insert("page", "overview");
    cx.insert("back", "/admin");
    cx.insert("status", &status);
    cx.insert("decisions_today", &today);
    render(StatusCode::OK, "overview.html", session.lang, cx)
}

/// The active pack's policies: `GET /v1/policies`.
pub async fn policies(State(state): State<Arc<AppState>>, session: Session) -> Response {
    if let Err(e) = require(&session.who, Role::Viewer) {
        return failed(&session, e);
    }
    let s = state.snapshot.load();
    let mut cx = session.context();
    cx.insert("page", "policies");
    cx.insert("back", "/admin/policies");
    cx.insert("version", &*s.version);
    cx.insert("policies", &s.policies());
    render(StatusCode::OK, "policies.html", session.lang, cx)
}

#[derive(Serialize)]
struct Line<'a> {
    n: usize,
    text: &'a str,
}

/// What the try-it form answered.
#[derive(Default, Serialize)]
struct Tried {
    input: String,
    result: Option<String>,
    error: Option<String>,
}

/// One policy: `GET /v1/policies/{kind}/{name}`, and a try-it form.
pub async fn policy(
    State(state): State<Arc<AppState>>,
    Path((kind, name)): Path<(String, String)>,
    session: Session,
) -> Response {
    policy_page(&state, &session, &kind, &name, Tried::default(), StatusCode::OK)
}

fn policy_page(
    state: &AppState,
    session: &Session,
    kind: &str,
    name: &str,
    tried: Tried,
    status: StatusCode,
) -> Response {
    if let Err(e) = require(&session.who, Role::Viewer) {
        return failed(session, e);
    }
    let Some(kind) = Kind::parse(kind) else {
        return failed(session, ApiError::NotFound(format!("no kind `{kind}`")));
    };
    let s = state.snapshot.load();
    let Some(doc) = s.pack.find(kind, name) else {
        return failed(session, ApiError::NotFound(format!("no {kind} named `{name}`")));
    };
    let source = s
        .pack
        .source
        .files
        .get(&doc.file)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let lines: Vec<Line> = source
        .lines()
        .enumerate()
        .map(|(i, text)| Line { n: i + 1, text })
        .collect();
    let summary = s
        .summary(kind, name)
        .and_then(|v| serde_json::to_string_pretty(&v).ok());
    let decidable = s
        .policies()
        .iter()
        .any(|p| p.kind == kind && p.name == name && p.decidable);
    let mut cx = session.context();
    cx.insert("page", "policies");
    cx.insert("back", &format!("/admin/policies/{kind}/{name}"));
    cx.insert("kind", &kind.to_string());
    cx.insert("name", name);
    cx.insert("description", &doc.metadata.description);
    cx.insert("file", &doc.file);
    cx.insert("version", &*s.version);
    cx.insert("lines", &lines);
    cx.insert("summary", &summary);
    cx.insert("decidable", &decidable);
    cx.insert("may_decide", &require(&session.who, Role::Service).is_ok());
    cx.insert("tried", &tried);
    render(status, "policy.html", session.lang, cx)
}

#[derive(Deserialize)]
pub struct TryForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    input: String,
}

/// Decides the form's input as `POST /v1/decide/{policy}` does (the same
/// function, role and decision log), and shows the answer and its trace.
pub async fn try_policy(
    State(state): State<Arc<AppState>>,
    Path((kind, name)): Path<(String, String)>,
    session: Session,
    Form(form): Form<TryForm>,
) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return session.csrf_refused();
    }
    let mut tried = Tried {
        input: form.input.clone(),
        ..Default::default()
    };
    let status = match require(&session.who, Role::Service) {
        Err(e) => {
            tried.error = Some(e.to_string());
            StatusCode::FORBIDDEN
        }
        Ok(()) => match crate::decide::decide_for(&state, &session.who, name.clone(), form.input).await {
            Ok(text) => {
                tried.result = Some(
                    serde_json::from_str::<serde_json::Value>(&text)
                        .and_then(|v| serde_json::to_string_pretty(&v))
                        .unwrap_or(text),
                );
                StatusCode::OK
            }
            Err(e) => {
                tried.error = Some(e.to_string());
                StatusCode::UNPROCESSABLE_ENTITY
            }
        },
    };
    policy_page(&state, &session, &kind, &name, tried, status)
}
