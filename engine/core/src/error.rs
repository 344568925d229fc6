//! Errors of a decision.

use dealrules_expr::EvalError;

/// Why a decision could not be made. The HTTP layer maps `UnknownPolicy` to
/// 404, `BadInput` to 400 and the rest to 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    #[error("no policy named `{name}`{hint}")]
    UnknownPolicy { name: String, hint: String },
    #[error("`{name}` names more than one policy ({kinds}); write `Kind/{name}`")]
    AmbiguousPolicy { name: String, kinds: String },
    #[error("bad input: {0}")]
    BadInput(String),
    /// An expression failed; `at` says which rule or input.
    #[error("{policy}: {at}: {error}")]
    Eval {
        policy: String,
        at: String,
        error: EvalError,
    },
    /// The policy itself gives no answer for this input.
    #[error("{policy}: {message}")]
    Policy { policy: String, message: String },
    /// Money or a quantity went beyond what an exact decimal holds; `at`
    /// names the line, component or total.
    #[error("{policy}: {at}: amount out of range (beyond about 7.9e28, the largest exact decimal)")]
    Overflow { policy: String, at: String },
    #[error("{kind} `{policy}` cannot be evaluated by this version of dealrules")]
    Unsupported { kind: String, policy: String },
}
