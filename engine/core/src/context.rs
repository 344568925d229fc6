//! What every compiled policy shares: its vars, the names expressions see,
//! and how a decision's input becomes an evaluation environment.

use dealrules_expr::{CompileError, Env, Expr, ExprEngine, Map, Value};
use dealrules_model::{Diagnostic, Document, Vars};

use crate::error::DecideError;

/// Locals every expression sees, in this order: `vars`, `now`.
pub const BASE_LOCALS: [&str; 2] = ["vars", "now"];

/// Compiles expressions of one document, gathering diagnostics.
pub struct DocCompiler<'a> {
    pub doc: &'a Document,
    pub engine: &'a ExprEngine,
    pub diags: &'a mut Vec<Diagnostic>,
}

impl DocCompiler<'_> {
    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        self.diags.push(self.doc.error_at(path, message));
    }

    /// Compiles the expression at `path`; on error records it with the
    /// position inside the expression and returns `None`.
    pub fn expr(&mut self, path: &str, source: &str, locals: &[&str]) -> Option<Expr> {
        match self.engine.compile(source, locals) {
            Ok(e) => Some(e),
            Err(CompileError { message, line, col }) => {
                self.diags.push(self.doc.error_in(path, line, col, format!("bad expression: {message}")));
                None
            }
        }
    }
}

/// The locals a policy's expressions see, before any of its own.
pub fn base_locals(vars: &Vars) -> Vec<Value> {
    let vars = Value::map(vars.iter().map(|(k, v)| (k.as_str().into(), Value::from_json(v))).collect::<Map>());
    vec![vars, Value::Null]
}

/// The input's top-level facts, and `now` (the input's own, or the caller's).
pub fn facts_of<'v>(input: &'v Value, now: &str, locals: &mut [Value]) -> Result<&'v Map, DecideError> {
    let facts = input.as_map().ok_or_else(|| DecideError::BadInput(format!("the input must be a JSON object, got {}", input.type_name())))?;
    locals[1] = match facts.get("now") {
        Some(Value::Str(s)) => Value::Str(s.clone()),
        Some(other) => return Err(DecideError::BadInput(format!("`now` must be an ISO-8601 text, got {}", other.type_name()))),
        None => Value::str(now),
    };
    Ok(facts)
}

pub fn env<'a>(facts: &'a Map, locals: &'a [Value]) -> Env<'a> {
    Env { facts, locals }
}
