//! What handlers take from a request besides the path: who is asking
//! ([`Caller`], with the role the route needs) and the JSON body
//! ([`JsonBody`]), both refused in problem+json.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::auth::{Principal, Role, require};
use crate::error::{ApiError, read_json};
use crate::state::AppState;

/// The token's principal, refused unless it has the `needed` role; the
/// subject is recorded on the request's span.
pub(crate) async fn who(state: &AppState, headers: &HeaderMap, needed: Role) -> Result<Principal, ApiError> {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let p = state.tokens.authenticate(&state.store.tokens(), auth).await?;
    tracing::Span::current().record("subject", p.subject.as_str());
    require(&p, needed)?;
    Ok(p)
}

/// The caller, authenticated, with at least role `R` (`Caller<Admin>`):
/// refused with 401 or 403 problem+json before the handler runs.
pub struct Caller<R: Needs>(pub Principal, pub PhantomData<R>);

/// A role a route needs.
pub trait Needs: Send + Sync {
    const ROLE: Role;
}

macro_rules! role {
    ($($name:ident),+) => {$(
        #[doc = concat!("Routes for the ", stringify!($name), " role and above.")]
        pub struct $name;
        impl Needs for $name {
            const ROLE: Role = Role::$name;
        }
    )+};
}
role!(Viewer, Service, Approver, Admin);

impl<R: Needs> FromRequestParts<Arc<AppState>> for Caller<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        Ok(Caller(who(state, &parts.headers, R::ROLE).await?, PhantomData))
    }
}

/// What a JSON request body must look like, said when it does not.
pub trait Expected {
    const EXPECTED: &'static str;
}

/// A JSON request body, checked whole (`crate::error::read_json`: UTF-8,
/// depth, width, no repeated key) and decoded; refused with 400
/// problem+json saying what was expected. `text` is the body as sent.
pub struct JsonBody<T> {
    pub value: T,
    pub text: Bytes,
}

impl<T: DeserializeOwned + Expected, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let text = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match read_json(&text) {
            Ok(value) => Ok(JsonBody { value, text }),
            Err(e) => Err(ApiError::BadRequest(format!("{}: {e}", T::EXPECTED)).into_response()),
        }
    }
}
