//! Sign-in, sessions, sign-out, the language switch and the CSRF check.

use std::sync::Arc;

use axum::extract::{Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use dealrules_store::SessionRecord;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::i18n::Lang;
use super::{error_page, render};
use crate::auth::{Principal, hash_token};
use crate::state::AppState;

/// How long a session lives.
pub const SESSION_HOURS: i64 = 8;

const SESSION_COOKIE: &str = "dealrules_session";
const SIGNIN_COOKIE: &str = "dealrules_signin";
const LANG_COOKIE: &str = "dealrules_lang";

/// A cookie's value from the request.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// The page's language: the switch's cookie, else `Accept-Language`.
pub(super) fn lang(headers: &HeaderMap) -> Lang {
    Lang::pick(
        cookie(headers, LANG_COOKIE),
        headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()),
    )
}

/// Cookies are Secure when the console is reached over TLS (a proxy in
/// front says so with `X-Forwarded-Proto: https`).
fn secure(headers: &HeaderMap) -> &'static str {
    let tls = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    if tls { "; Secure" } else { "" }
}

/// 32 random bytes from the OS, hex; `None` (logged) when the OS has none.
fn random_hex() -> Option<String> {
    let mut bytes = [0u8; 32];
    match getrandom::fill(&mut bytes) {
        Ok(()) => Some(hex::encode(bytes)),
        Err(e) => {
            tracing::error!(error = %e, "no randomness from the OS");
            None
        }
    }
}

fn no_randomness(lang: Lang) -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        lang,
        "error",
        "no randomness from the OS",
    )
}

fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes())) && !a.is_empty()
}

/// The signed-in user of a page: the session's token's principal as the
/// token book knows it now, the session's CSRF token and the language.
/// Without a live session a page redirects to the sign-in page.
pub struct Session {
    pub who: Principal,
    pub csrf: String,
    pub lang: Lang,
    id_hash: String,
}

impl Session {
    /// Whether a form's CSRF token is this session's.
    pub fn csrf_ok(&self, presented: &str) -> bool {
        same(presented, &self.csrf)
    }

    /// The 403 page for a form without this session's CSRF token.
    pub fn csrf_refused(&self) -> Response {
        csrf_refused(self.lang)
    }

    /// What every page shows of the session.
    pub fn context(&self) -> tera::Context {
        let mut cx = tera::Context::new();
        cx.insert("subject", &self.who.subject);
        cx.insert("role", self.who.role.as_str());
        cx.insert("csrf", &self.csrf);
        let may: Vec<&str> = [
            (crate::auth::Role::Viewer, "may_viewer"),
            (crate::auth::Role::Service, "may_service"),
            (crate::auth::Role::Approver, "may_approver"),
            (crate::auth::Role::Admin, "may_admin"),
        ]
        .into_iter()
        .filter(|(r, _)| crate::auth::require(&self.who, *r).is_ok())
        .map(|(_, key)| key)
        .collect();
        cx.insert("may", &may);
        cx
    }
}

fn csrf_refused(lang: Lang) -> Response {
    error_page(StatusCode::FORBIDDEN, lang, "forbidden", lang.labels()["csrf_refused"])
}

impl FromRequestParts<Arc<AppState>> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Response> {
        let lang = lang(&parts.headers);
        let to_signin = || Redirect::to("/admin/signin").into_response();
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_signin());
        };
        let id_hash = hex::encode(hash_token(id));
        let record = match state.store.sessions().session(&id_hash).await {
            Ok(Some(r)) => r,
            Ok(None) => return Err(to_signin()),
            Err(e) => {
                tracing::error!(error = %e, "reading a console session");
                return Err(error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    lang,
                    "error",
                    &e.to_string(),
                ));
            }
        };
        let mut token_hash = [0u8; 32];
        if hex::decode_to_slice(&record.token_hash, &mut token_hash).is_err() {
            return Err(to_signin());
        }
        // The token may have been revoked since: the session ends with it.
        let Some(who) = state.tokens.by_hash(&token_hash) else {
            return Err(to_signin());
        };
        tracing::Span::current().record("subject", who.subject.as_str());
        Ok(Session {
            who,
            csrf: record.csrf,
            lang,
            id_hash,
        })
    }
}

/// The sign-in form, with a CSRF token bound to a short-lived cookie.
pub async fn signin_page(headers: HeaderMap) -> Response {
    signin_form(&headers, StatusCode::OK, None)
}

fn signin_form(headers: &HeaderMap, status: StatusCode, error_key: Option<&str>) -> Response {
    let lang = lang(headers);
    let Some(csrf) = random_hex() else {
        return no_randomness(lang);
    };
    let mut cx = tera::Context::new();
    cx.insert("csrf", &csrf);
    cx.insert("error_key", &error_key);
    let mut res = render(status, "signin.html", lang, cx);
    let cookie = format!(
        "{SIGNIN_COOKIE}={csrf}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=1800{}",
        secure(headers)
    );
    if let Ok(v) = header::HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

/// Opens a session for a known token.
pub async fn signin(State(state): State<Arc<AppState>>, headers: HeaderMap, Form(form): Form<SignIn>) -> Response {
    let lang = lang(&headers);
    if !cookie(&headers, SIGNIN_COOKIE).is_some_and(|c| same(&form.csrf, c)) {
        return csrf_refused(lang);
    }
    let token = form.token.trim();
    let bearer = format!("Bearer {token}");
    let who = match state.tokens.authenticate(&state.store.tokens(), Some(&bearer)).await {
        Ok(who) if !token.is_empty() => who,
        _ => return signin_form(&headers, StatusCode::UNAUTHORIZED, Some("bad_token")),
    };
    let (Some(id), Some(csrf)) = (random_hex(), random_hex()) else {
        return no_randomness(lang);
    };
    let now = chrono::Utc::now();
    let record = SessionRecord {
        id_hash: hex::encode(hash_token(&id)),
        token_hash: hex::encode(hash_token(token)),
        subject: who.subject.clone(),
        csrf,
        created_at: dealrules_store::timestamp(now),
        expires_at: dealrules_store::timestamp(now + chrono::Duration::hours(SESSION_HOURS)),
    };
    if let Err(e) = state.store.sessions().add_session(&record).await {
        tracing::error!(error = %e, "storing a console session");
        return error_page(StatusCode::SERVICE_UNAVAILABLE, lang, "error", &e.to_string());
    }
    tracing::info!(subject = %who.subject, role = who.role.as_str(), "console sign-in");
    let mut res = Redirect::to("/admin").into_response();
    let cookies = [
        format!(
            "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            SESSION_HOURS * 3600,
            secure(&headers)
        ),
        format!("{SIGNIN_COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0"),
    ];
    for c in cookies {
        if let Ok(v) = header::HeaderValue::from_str(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// Revokes the session and clears its cookie.
pub async fn signout(State(state): State<Arc<AppState>>, session: Session, Form(form): Form<CsrfOnly>) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return session.csrf_refused();
    }
    if let Err(e) = state.store.sessions().revoke_session(&session.id_hash).await {
        return error_page(StatusCode::SERVICE_UNAVAILABLE, session.lang, "error", &e.to_string());
    }
    let mut res = Redirect::to("/admin/signin").into_response();
    if let Ok(v) = header::HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    )) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

#[derive(Deserialize)]
pub struct LangSwitch {
    #[serde(default)]
    lang: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    back: String,
}

/// The language switch: a cookie that overrides `Accept-Language`. Its
/// form carries the session's CSRF token, or the sign-in page's.
pub async fn set_lang(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<LangSwitch>,
) -> Response {
    let page_lang = lang(&headers);
    let signin_ok = cookie(&headers, SIGNIN_COOKIE).is_some_and(|c| same(&form.csrf, c));
    let session_ok = if signin_ok {
        true
    } else {
        let mut parts = axum::http::Request::new(()).into_parts().0;
        parts.headers = headers.clone();
        match Session::from_request_parts(&mut parts, &state).await {
            Ok(s) => s.csrf_ok(&form.csrf),
            Err(_) => false,
        }
    };
    if !session_ok {
        return csrf_refused(page_lang);
    }
    let Some(chosen) = Lang::parse(&form.lang) else {
        return error_page(StatusCode::BAD_REQUEST, page_lang, "error", "unknown language");
    };
    // Only back to a console page, never elsewhere.
    let back = if form.back.starts_with("/admin") && !form.back.contains("//") && !form.back.contains('\\') {
        form.back.as_str()
    } else {
        "/admin"
    };
    let mut res = Redirect::to(back).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={}; Path=/; SameSite=Strict; Max-Age=31536000{}",
        chosen.code(),
        secure(&headers)
    )) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}
