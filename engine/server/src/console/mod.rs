//! The admin console: server-rendered pages over the same code as the API.
//!
//! Sign-in takes an API token and opens a session: a random id in an
//! HttpOnly, SameSite=Strict cookie (Secure behind TLS), stored only as its
//! SHA-256, expiring after [`SESSION_HOURS`], revoked on sign-out. A session
//! stands for its token: every page asks the token book for the token's
//! principal, so a revoked token ends the session, and the API's role
//! checks ([`crate::auth::require`]) decide what a page may do. Every form
//! carries the session's CSRF token; a POST without it is refused with 403.
//! Templates, stylesheet and labels are embedded in the binary.

mod changes;
pub mod i18n;
mod measured;
mod pages;
mod session;
mod work;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};

use crate::state::AppState;
use i18n::Lang;

pub use session::SESSION_HOURS;

/// The console's routes, merged into the app beside the API's.
pub fn router() -> Router<Arc<AppState>> {
    routes()
        .into_iter()
        .fold(Router::new(), |router, (path, route)| router.route(path, route))
}

/// Every console path and what answers it: the router is built from this
/// table, and the tests walk it (every path that takes a POST must refuse
/// one without the session's CSRF token).
pub fn paths() -> Vec<&'static str> {
    routes().into_iter().map(|(path, _)| path).collect()
}

fn routes() -> Vec<(&'static str, MethodRouter<Arc<AppState>>)> {
    vec![
        ("/", get(|| async { Redirect::to("/admin") })),
        ("/admin", get(pages::overview)),
        ("/admin/signin", get(session::signin_page).post(session::signin)),
        ("/admin/signout", post(session::signout)),
        ("/admin/lang", post(session::set_lang)),
        ("/admin/policies", get(pages::policies)),
        (
            "/admin/policies/{kind}/{name}",
            get(pages::policy).post(pages::try_policy),
        ),
        ("/admin/approvals", get(work::inbox)),
        ("/admin/approvals/{id}", post(work::decide)),
        ("/admin/deals", get(work::deals)),
        ("/admin/deals/{id}", get(work::deal)),
        ("/admin/runs", get(work::runs).post(work::start_run)),
        ("/admin/runs/{id}", get(work::run)),
        ("/admin/runs/{id}/export", get(work::export)),
        ("/admin/runs/{id}/{action}", post(work::advance_run)),
        ("/admin/statements", get(work::statements)),
        ("/admin/decisions", get(work::decisions)),
        ("/admin/decisions/{id}", get(work::decision)),
        ("/admin/decisions/{id}/replay", post(work::replay)),
        ("/admin/targets", get(measured::targets)),
        ("/admin/funnel", get(measured::funnel)),
        ("/admin/changes", get(changes::list).post(changes::create)),
        ("/admin/changes/rollback", post(changes::rollback)),
        ("/admin/changes/{id}", get(changes::show).post(changes::save)),
        ("/admin/changes/{id}/impact", post(changes::impact)),
        ("/admin/changes/{id}/{action}", post(changes::advance)),
        ("/admin/console.css", get(stylesheet)),
    ]
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../../../templates/admin/base.html")),
    ("signin.html", include_str!("../../../../templates/admin/signin.html")),
    (
        "overview.html",
        include_str!("../../../../templates/admin/overview.html"),
    ),
    (
        "policies.html",
        include_str!("../../../../templates/admin/policies.html"),
    ),
    ("policy.html", include_str!("../../../../templates/admin/policy.html")),
    ("error.html", include_str!("../../../../templates/admin/error.html")),
    (
        "approvals.html",
        include_str!("../../../../templates/admin/approvals.html"),
    ),
    ("deals.html", include_str!("../../../../templates/admin/deals.html")),
    ("deal.html", include_str!("../../../../templates/admin/deal.html")),
    ("runs.html", include_str!("../../../../templates/admin/runs.html")),
    ("run.html", include_str!("../../../../templates/admin/run.html")),
    (
        "statements.html",
        include_str!("../../../../templates/admin/statements.html"),
    ),
    (
        "decisions.html",
        include_str!("../../../../templates/admin/decisions.html"),
    ),
    (
        "decision.html",
        include_str!("../../../../templates/admin/decision.html"),
    ),
    ("targets.html", include_str!("../../../../templates/admin/targets.html")),
    ("funnel.html", include_str!("../../../../templates/admin/funnel.html")),
    ("changes.html", include_str!("../../../../templates/admin/changes.html")),
    ("change.html", include_str!("../../../../templates/admin/change.html")),
];

const STYLESHEET: &str = include_str!("../../../../templates/admin/console.css");

fn templates() -> &'static tera::Tera {
    static TERA: OnceLock<tera::Tera> = OnceLock::new();
    TERA.get_or_init(|| {
        let mut t = tera::Tera::default();
        // The templates are part of the binary: a broken one is a build
        // defect, caught by the console's tests.
        t.register_filter("label", label);
        // Tera's own `urlencode` is behind a feature this build leaves out.
        t.register_filter(
            "urlencode",
            |v: &tera::Value, _: &std::collections::HashMap<String, tera::Value>| {
                Ok(tera::Value::String(percent_encode(v.as_str().unwrap_or_default())))
            },
        );
        if let Err(e) = t.add_raw_templates(TEMPLATES.iter().copied()) {
            tracing::error!(error = %e, "console templates do not parse");
        }
        t
    })
}

/// A query value, percent-encoded (unreserved characters kept).
pub(crate) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `{{ state | label(t=t, prefix="state_") }}`: a stored value (a state,
/// a timer's kind) in the page's language when the console has a label for
/// it, else as stored.
fn label(value: &tera::Value, args: &std::collections::HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let text = match value {
        tera::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let prefix = args.get("prefix").and_then(|p| p.as_str()).unwrap_or("");
    Ok(args
        .get("t")
        .and_then(|t| t.get(format!("{prefix}{text}")))
        .cloned()
        .unwrap_or(tera::Value::String(text)))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Renders a page; the language's labels are `t`, the language `lang`.
fn render(status: StatusCode, name: &str, lang: Lang, mut cx: tera::Context) -> Response {
    cx.insert("t", &lang.labels());
    cx.insert("lang", lang.code());
    match templates().render(name, &cx) {
        Ok(html) => (
            status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
                ),
                (header::X_FRAME_OPTIONS, "DENY"),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(template = name, error = ?e, "cannot render a console page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<!doctype html><title>dealrules</title><p>This page cannot be shown; the server log says why.</p>",
            )
                .into_response()
        }
    }
}

/// An error page: `title` and `message` are label keys or plain text.
fn error_page(status: StatusCode, lang: Lang, title_key: &str, detail: &str) -> Response {
    let mut cx = tera::Context::new();
    cx.insert("title_key", title_key);
    cx.insert("detail", detail);
    render(status, "error.html", lang, cx)
}
