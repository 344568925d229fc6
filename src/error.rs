//! What can go wrong in a command, and the exit status each failure gives.
//!
//! A command returns `Ok(code)` when it ran and has an answer (a pack that
//! is invalid, tests that fail: the report is the answer, printed by the
//! command), and `Err(CliError)` when it could not do its job; `main`
//! prints the error on stderr and exits with [`CliError::exit_code`].
//! The statuses follow the spec: 2 when the command could not run (usage,
//! unreadable files, a pack `eval` cannot load), 1 when it ran and the work
//! failed (a decision error, bad input JSON, a plugin that does not build).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A flag's value is not usable.
    #[error("--{flag}: {message}")]
    Flag { flag: &'static str, message: String },
    /// An input file the command was pointed at.
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot read stdin: {0}")]
    Stdin(std::io::Error),
    /// Output could not be written (`main` ends quietly on a closed pipe).
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),
    /// A file the command reads or writes as part of its work.
    #[error("{}: {source}", path.display())]
    File { path: PathBuf, source: std::io::Error },
    /// The async runtime (serve, token) did not start.
    #[error("cannot start: {0}")]
    Runtime(std::io::Error),
    #[error("cannot read pack {}: {source}", dir.display())]
    PackUnreadable { dir: PathBuf, source: std::io::Error },
    /// A pack that does not load: one `DIR/file:line:col: message` per line.
    #[error("{}", lines.join("\n"))]
    PackInvalid { lines: Vec<String> },
    /// A backtest's cases file does not parse.
    #[error("{}: {message}", path.display())]
    Cases { path: PathBuf, message: String },
    #[error("input is not valid JSON: {0}")]
    InputJson(String),
    #[error("{0}")]
    Decision(#[from] dealrules_core::DecideError),
    /// A statement could not be rendered as html, md or csv.
    #[error("{0}")]
    Render(String),
    #[error("cannot print the result: {0}")]
    Print(serde_json::Error),
    #[error("cannot open the store: {0}")]
    StoreOpen(String),
    #[error("{0}")]
    Store(String),
    #[error("no live token `{0}`")]
    NoSuchToken(String),
    /// No randomness for a new token.
    #[error("{0}")]
    Token(String),
    /// `serve` stopped with an error (the store, the listener, the pack).
    #[error("{0}")]
    Serve(String),
    /// `init` writes into a new or empty folder only.
    #[error("{} is not empty; `dealrules init` writes a new pack into a new or empty folder", .0.display())]
    NotEmpty(PathBuf),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::InputJson(_)
            | CliError::Decision(_)
            | CliError::Render(_)
            | CliError::Print(_)
            | CliError::StoreOpen(_)
            | CliError::Store(_)
            | CliError::NoSuchToken(_)
            | CliError::Token(_) => 1,
            CliError::Flag { .. }
            | CliError::Read { .. }
            | CliError::Stdin(_)
            | CliError::Stdout(_)
            | CliError::File { .. }
            | CliError::Runtime(_)
            | CliError::PackUnreadable { .. }
            | CliError::PackInvalid { .. }
            | CliError::Cases { .. }
            | CliError::Serve(_)
            | CliError::NotEmpty(_) => 2,
        }
    }
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;
