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
    /// A plugin the policy calls failed; `at` names the fact or component.
    #[error("{policy}: {at}: {error}")]
    Plugin {
        policy: String,
        at: String,
        error: PluginCallError,
    },
    #[error("{kind} `{policy}` cannot be evaluated by this version of dealrules")]
    Unsupported { kind: String, policy: String },
}

/// Why a plugin call failed, in a word: for metrics, tests and the
/// workflow's history. The plugin host maps its own causes onto these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginFailure {
    /// No plugin of that name is loaded (or no host is attached).
    NotLoaded,
    /// The module is not what the manifest pins, does not compile, or does
    /// not follow the ABI.
    Load,
    OutOfFuel,
    Timeout,
    MemoryLimit,
    StackOverflow,
    Trap,
    OutputTooLarge,
    CapabilityDenied,
    /// The plugin answered an error, or an answer that is not the ABI's.
    Plugin,
}

/// A failed plugin call: its cause and the host's message (which names the
/// plugin and function).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PluginCallError {
    pub kind: PluginFailure,
    pub message: String,
}
