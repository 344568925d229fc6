//! The HTTP layer's one error type: every error is `application/problem+json`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dealrules_core::DecideError;
use dealrules_workflow::WorkflowError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a bearer token is needed")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// 409 with extension members, e.g. `reasons` for a refused move.
    #[error("{detail}")]
    ConflictWith {
        detail: String,
        extra: serde_json::Map<String, serde_json::Value>,
    },
    #[error("{0}")]
    Unprocessable(String),
    /// 422 with the reasons as an extension member, e.g. `errors` for a
    /// pack that did not validate.
    #[error("{detail}")]
    UnprocessableWith {
        detail: String,
        extra: serde_json::Map<String, serde_json::Value>,
    },
    /// 503: a part the request needs (the store) is not answering.
    #[error("{0}")]
    Unavailable(String),
    /// 503: the server is saturated with long work (plugin calls); retry.
    #[error("{0}")]
    Busy(String),
    /// Logged, never shown: the client gets a plain 500.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::ConflictWith { .. } => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) | ApiError::UnprocessableWith { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<DecideError> for ApiError {
    fn from(e: DecideError) -> Self {
        match e {
            DecideError::UnknownPolicy { .. } => ApiError::NotFound(e.to_string()),
            DecideError::BadInput(_) | DecideError::AmbiguousPolicy { .. } => ApiError::BadRequest(e.to_string()),
            _ => ApiError::Unprocessable(e.to_string()),
        }
    }
}

/// The one mapping of the workflow runtime's errors to answers.
impl From<WorkflowError> for ApiError {
    fn from(e: WorkflowError) -> Self {
        match e {
            WorkflowError::Invalid(m) => ApiError::BadRequest(m),
            WorkflowError::NoDeal(_) | WorkflowError::NoApproval(_) | WorkflowError::NoRun(_) => {
                ApiError::NotFound(e.to_string())
            }
            WorkflowError::DealExists(_) => ApiError::Conflict(e.to_string()),
            WorkflowError::Conflict(m) => ApiError::Conflict(m),
            WorkflowError::MoveRefused { ref reasons, .. } => {
                let mut extra = serde_json::Map::new();
                extra.insert("reasons".into(), serde_json::Value::Array(reasons.clone()));
                ApiError::ConflictWith {
                    detail: e.to_string(),
                    extra,
                }
            }
            WorkflowError::Unprocessable(m) => ApiError::Unprocessable(m),
            WorkflowError::Forbidden(m) => ApiError::Forbidden(m),
            WorkflowError::Busy(m) => ApiError::Busy(m),
            WorkflowError::Decide(d) => ApiError::from(d),
            WorkflowError::Store(s) => ApiError::from(s),
            WorkflowError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl From<dealrules_store::StoreError> for ApiError {
    fn from(e: dealrules_store::StoreError) -> Self {
        match e {
            dealrules_store::StoreError::BadArgument(m) => ApiError::BadRequest(m),
            other if other.is_unavailable() => ApiError::store_unavailable(&other),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// A JSON request body, refused when it is not UTF-8, is nested too
/// deep, is too wide or repeats a key (see `dealrules_expr::input_shape`),
/// then decoded. The text says what is wrong; callers add what was expected.
pub fn read_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("the body is not UTF-8: {e}"))?;
    dealrules_expr::input_shape::check(text).map_err(|e| e.to_string())?;
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// A user id (a token's subject, a delegate): 1 to 200 characters, not
/// only spaces; the OpenAPI document says the same.
pub fn user_id<'a>(field: &str, value: &'a str) -> Result<&'a str, ApiError> {
    if value.trim().is_empty() || value.chars().count() > 200 {
        return Err(ApiError::BadRequest(format!(
            "`{field}` must be a user id of 1 to 200 characters"
        )));
    }
    Ok(value)
}

impl ApiError {
    /// 503 with Retry-After: the store is down or out of connections.
    pub fn store_unavailable(e: &dyn std::fmt::Display) -> ApiError {
        tracing::warn!(error = %e, "the store is not answering");
        ApiError::Unavailable("the store is not answering; try again shortly".into())
    }

    /// Any answer of the framework's own (a body over the limit, a bad
    /// query string or path segment, a method not allowed) in the same
    /// problem+json shape as every other error.
    pub fn from_status(status: StatusCode, detail: &str) -> Response {
        let detail = detail.trim();
        let detail = if detail.is_empty() {
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            detail.chars().take(500).collect()
        };
        problem(
            status,
            serde_json::json!({
                "type": "about:blank",
                "title": status.canonical_reason().unwrap_or("error"),
                "status": status.as_u16(),
                "detail": detail,
            }),
        )
    }
}

fn problem(status: StatusCode, body: serde_json::Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/problem+json"),
    );
    match status {
        StatusCode::UNAUTHORIZED => {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
        }
        _ => {}
    }
    res
}

/// Rewrites every error answer that is not problem+json yet (the
/// framework's rejections) into problem+json, keeping its status and
/// headers such as `Allow`.
pub async fn problem_json_everywhere(res: Response) -> Response {
    let status = res.status();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    // The console answers its errors as pages.
    let is_page = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem || is_page {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut out = ApiError::from_status(status, &text);
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH && !out.headers().contains_key(name) {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

impl ApiError {
    /// The problem details document of this error.
    pub fn problem(&self) -> serde_json::Value {
        let status = self.status();
        let mut body = serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("error"),
            "status": status.as_u16(),
            "detail": self.to_string(),
        });
        if let (ApiError::UnprocessableWith { extra, .. } | ApiError::ConflictWith { extra, .. }, Some(obj)) =
            (self, body.as_object_mut())
        {
            for (k, v) in extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        problem(self.status(), self.problem())
    }
}

/// Why a server could not start or stopped serving (`dealrules serve`
/// prints it and exits 2).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the store: {0}")]
    OpenStore(#[source] dealrules_store::StoreError),
    #[error(transparent)]
    Store(#[from] dealrules_store::StoreError),
    /// Neither the rules folder nor a stored activation can serve.
    #[error("the pack in {dir} cannot serve:\n{}", errors.join("\n"))]
    NoPack { dir: String, errors: Vec<String> },
    /// Building the pack's snapshot did not finish (a panic in the build).
    #[error(transparent)]
    Build(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// Loading the tokens.
    #[error(transparent)]
    Tokens(#[from] ApiError),
    /// Making the first admin token.
    #[error("{0}")]
    Token(String),
    #[error("cannot watch {dir}: {source}")]
    Watch { dir: String, source: notify::Error },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
