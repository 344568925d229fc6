//! Errors of the expression layer.

/// Why an expression or a script did not give a value.
///
/// A script's own `throw` ([`EvalError::Thrown`]) is the policy author's
/// message; every other variant is the engine refusing something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// A field the expression reads is not in the input.
    #[error("{path} is missing")]
    Missing { path: String },
    /// A value of the wrong type for the operation.
    #[error("{0}")]
    Type(String),
    /// Overflow, division by zero, a bad date.
    #[error("{0}")]
    Arithmetic(String),
    /// The operation, depth, size or call limit was hit.
    #[error("stopped: {0}")]
    Limit(String),
    /// The script threw this value.
    #[error("script error: {0}")]
    Thrown(String),
    /// Any other failure inside Rhai.
    #[error("{0}")]
    Script(String),
}

/// An expression or script that does not compile, with its position inside
/// the expression text (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CompileError {
    pub message: String,
    pub line: usize,
    pub col: usize,
}
