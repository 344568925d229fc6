//! The workflow's one error type. It names what went wrong in the sales
//! domain; the server decides which HTTP answer each gets.

use dealrules_core::DecideError;
use dealrules_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The request itself is malformed (an empty id, a bad grouping).
    #[error("{0}")]
    Invalid(String),
    #[error("no deal `{0}`")]
    NoDeal(String),
    #[error("no approval `{0}`")]
    NoApproval(String),
    #[error("no incentive run `{0}`")]
    NoRun(String),
    #[error("deal `{0}` exists")]
    DealExists(String),
    /// The request conflicts with the current state (not pending, a
    /// deal's facts that no longer decide).
    #[error("{0}")]
    Conflict(String),
    /// The funnel refused the move; `reasons` lists every reason.
    #[error("deal `{deal}` cannot move: {summary}")]
    MoveRefused {
        deal: String,
        summary: String,
        reasons: Vec<serde_json::Value>,
    },
    /// Well-formed, but the active pack cannot serve it (no such Funnel),
    /// or an idempotency key reused for another request.
    #[error("{0}")]
    Unprocessable(String),
    /// The actor may not do this (not the approver, segregation of duties).
    #[error("{0}")]
    Forbidden(String),
    /// The pool for long work (plugin calls) is full; try again shortly.
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Decide(#[from] DecideError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A broken invariant (a stored deal whose fields are not an object).
    #[error("{0}")]
    Internal(String),
}

pub(crate) fn internal(e: impl std::fmt::Display) -> WorkflowError {
    WorkflowError::Internal(e.to_string())
}
