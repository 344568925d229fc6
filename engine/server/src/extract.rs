//! What handlers take from a request besides the path: who is asking.

use axum::http::{HeaderMap, header};

use crate::auth::{Principal, Role, require};
use crate::error::ApiError;
use crate::state::AppState;

/// The token's principal, refused unless it has the `needed` role; the
/// subject is recorded on the request's span.
pub(crate) async fn who(state: &AppState, headers: &HeaderMap, needed: Role) -> Result<Principal, ApiError> {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let p = state.tokens.authenticate(&state.store, auth).await?;
    tracing::Span::current().record("subject", p.subject.as_str());
    require(&p, needed)?;
    Ok(p)
}
