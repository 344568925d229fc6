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

pub mod i18n;
mod pages;
mod session;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::state::AppState;
use i18n::Lang;

pub use session::SESSION_HOURS;

/// The console's routes, merged into [`crate::routes::app`].
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/admin") }))
        .route("/admin", get(pages::overview))
        .route("/admin/signin", get(session::signin_page).post(session::signin))
        .route("/admin/signout", post(session::signout))
        .route("/admin/lang", post(session::set_lang))
        .route("/admin/policies", get(pages::policies))
        .route(
            "/admin/policies/{kind}/{name}",
            get(pages::policy).post(pages::try_policy),
        )
        .route("/admin/console.css", get(stylesheet))
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
];

const STYLESHEET: &str = include_str!("../../../../templates/admin/console.css");

fn templates() -> &'static tera::Tera {
    static TERA: OnceLock<tera::Tera> = OnceLock::new();
    TERA.get_or_init(|| {
        let mut t = tera::Tera::default();
        // The templates are part of the binary: a broken one is a build
        // defect, caught by the console's tests.
        if let Err(e) = t.add_raw_templates(TEMPLATES.iter().copied()) {
            tracing::error!(error = %e, "console templates do not parse");
        }
        t
    })
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
