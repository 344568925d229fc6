//! The dealrules expression layer: Rhai expressions and scripts over exact
//! decimal facts, compiled once, run under limits.
//!
//! ```
//! use dealrules_expr::{ExprEngine, Value, Env};
//! let engine = ExprEngine::default();
//! let cond = engine.compile("deal.discount_pct <= 10 && deal.amount <= 50000", &[]).unwrap();
//! assert!(cond.is_compiled()); // lowered ahead of time, no Rhai at run time
//! let facts = Value::from_json_str(r#"{"deal": {"discount_pct": 10, "amount": 40000}}"#).unwrap();
//! let env = Env::new(facts.as_map().unwrap(), &[]);
//! assert_eq!(cond.eval_bool(&env), Ok(true));
//! ```
//!
//! Core concepts:
//! - [`Value`]: JSON-compatible facts; every number an exact `Decimal`.
//! - [`ExprEngine`]: one sandboxed Rhai engine with [`Limits`].
//! - [`Expr`]: a compiled expression: lowered to a closure tree when it uses
//!   only the common forms, otherwise a Rhai AST. Same semantics either way.
//! - [`Script`]: a pack script defining `fn evaluate(input)`.
//! - [`Env`]: what an evaluation reads: the input facts and declared locals.
//! - [`WhyNot`]: for a condition that did not hold, the parts that failed,
//!   the values they read and the nearest values that would pass.
#![forbid(unsafe_code)]

pub mod error;
pub mod funcs;
pub mod input_shape;
pub mod interest;
pub mod ir;
pub mod json;
pub mod ops;
pub mod rhai_env;
pub mod slot;
pub mod slots;
pub mod value;
pub mod whynot;

use std::sync::Arc;

use rhai::{AST, Dynamic, Engine, Scope};
use smol_str::SmolStr;

pub use error::{CompileError, EvalError};
pub use interest::Interest;
pub use ir::{CmpOp, Env, Node};
pub use rhai_env::Limits;
pub use rust_decimal::Decimal;
pub use slots::{Slot, SlotPlan, Slots};
pub use value::{Map, Value};
pub use whynot::WhyNot;

/// One sandboxed Rhai engine and its limits, shared by every expression of a pack.
pub struct ExprEngine {
    rhai: Arc<Engine>,
    limits: Limits,
    lowering: bool,
}

impl Default for ExprEngine {
    fn default() -> Self {
        ExprEngine::new(Limits::default())
    }
}

impl std::fmt::Debug for ExprEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExprEngine").field("limits", &self.limits).finish()
    }
}

fn compile_error(e: &rhai::ParseError) -> CompileError {
    CompileError {
        message: e.0.to_string(),
        line: e.1.line().unwrap_or(1),
        col: e.1.position().unwrap_or(1),
    }
}

impl ExprEngine {
    pub fn new(limits: Limits) -> Self {
        ExprEngine {
            rhai: Arc::new(rhai_env::sandboxed_engine(limits)),
            limits,
            lowering: true,
        }
    }

    /// An engine that never lowers expressions: everything runs on Rhai.
    /// For measuring what the ahead-of-time path saves, and for tests.
    pub fn rhai_only(limits: Limits) -> Self {
        ExprEngine {
            lowering: false,
            ..ExprEngine::new(limits)
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Compiles an expression. `locals` are the names the evaluation context
    /// declares (given to [`Env::locals`] in the same order); every other
    /// name is a top-level input fact.
    pub fn compile(&self, source: &str, locals: &[&str]) -> Result<Expr, CompileError> {
        let ast = self.rhai.compile_expression(source).map_err(|e| compile_error(&e))?;
        let locals: Arc<[SmolStr]> = locals.iter().map(SmolStr::new).collect();
        let lowered = match self.lowering {
            true => ir::lower_statements(ast.statements(), &locals),
            false => None,
        };
        let body = match lowered {
            Some(node) => Body::Compiled(node),
            None => Body::Rhai(Arc::new(ast), self.rhai.clone()),
        };
        Ok(Expr {
            source: source.into(),
            body,
            locals,
        })
    }

    /// Compiles an expression that must not be lowered: it always runs on
    /// Rhai. For differential tests and benchmarks.
    pub fn compile_rhai_only(&self, source: &str, locals: &[&str]) -> Result<Expr, CompileError> {
        let ast = self.rhai.compile_expression(source).map_err(|e| compile_error(&e))?;
        let locals: Arc<[SmolStr]> = locals.iter().map(SmolStr::new).collect();
        Ok(Expr {
            source: source.into(),
            body: Body::Rhai(Arc::new(ast), self.rhai.clone()),
            locals,
        })
    }

    /// Compiles a script file; it must define `fn evaluate(input)`.
    pub fn compile_script(&self, source: &str) -> Result<Script, CompileError> {
        let ast = self.rhai.compile(source).map_err(|e| compile_error(&e))?;
        if !ast
            .iter_functions()
            .any(|f| f.name == "evaluate" && f.params.len() == 1)
        {
            return Err(CompileError {
                message: "the script must define `fn evaluate(input)`".into(),
                line: 1,
                col: 1,
            });
        }
        Ok(Script {
            ast: Arc::new(ast),
            rhai: self.rhai.clone(),
        })
    }
}

#[derive(Clone)]
enum Body {
    Compiled(Node),
    Rhai(Arc<AST>, Arc<Engine>),
}

/// A compiled expression.
#[derive(Clone)]
pub struct Expr {
    source: Arc<str>,
    body: Body,
    locals: Arc<[SmolStr]>,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr({:?}, compiled: {})", self.source, self.is_compiled())
    }
}

/// One `input OP constant` test of a conjunction, for indexing table rows.
#[derive(Debug, Clone)]
pub struct Atom {
    /// Index of the local the atom tests.
    pub local: usize,
    pub op: AtomOp,
}

#[derive(Debug, Clone)]
pub enum AtomOp {
    Cmp(CmpOp, Value),
    In(Vec<Value>),
}

impl Expr {
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The compiled tree, when the expression does not run on Rhai.
    pub fn node(&self) -> Option<&Node> {
        match &self.body {
            Body::Compiled(n) => Some(n),
            Body::Rhai(..) => None,
        }
    }

    /// The same expression with another compiled tree (see `slots`).
    pub fn with_node(&self, node: Node) -> Expr {
        Expr {
            source: self.source.clone(),
            body: Body::Compiled(node),
            locals: self.locals.clone(),
        }
    }

    /// True when the expression runs on the ahead-of-time tree, not on Rhai.
    pub fn is_compiled(&self) -> bool {
        matches!(self.body, Body::Compiled(_))
    }

    pub fn eval(&self, env: &Env<'_>) -> Result<Value, EvalError> {
        match &self.body {
            Body::Compiled(node) => node.eval(env),
            Body::Rhai(ast, engine) => {
                let mut scope = self.rhai_scope(env);
                let out = engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast).map_err(|e| {
                    match (rhai_env::map_rhai_error(&e), dotted_path_at(&self.source, e.position())) {
                        // Rhai names only the last key; the source has the whole path.
                        (EvalError::Missing { .. }, Some(path)) => EvalError::Missing { path },
                        (other, _) => other,
                    }
                })?;
                rhai_env::from_dynamic(&out)
            }
        }
    }

    /// Evaluates a condition; anything but true or false is an error.
    pub fn eval_bool(&self, env: &Env<'_>) -> Result<bool, EvalError> {
        match &self.body {
            Body::Compiled(node) => node.eval_bool(env),
            Body::Rhai(..) => match self.eval(env)? {
                Value::Bool(b) => Ok(b),
                other => Err(EvalError::Type(format!(
                    "a condition needs true or false, got {}",
                    other.type_name()
                ))),
            },
        }
    }

    /// Why this condition does not give `want` (it gave the other answer
    /// over `env`): the parts that failed, the values they read and the
    /// nearest values that would pass. Only for explaining a decision
    /// already made; see [`whynot`].
    pub fn why_not(&self, env: &Env<'_>, want: bool) -> Vec<WhyNot> {
        match &self.body {
            Body::Compiled(node) => whynot::explain(node, env, want),
            Body::Rhai(..) => vec![WhyNot::cannot(
                self.source.to_string(),
                Vec::new(),
                "this condition runs on Rhai (it uses more than fields, comparisons and the policy helpers); dealrules cannot say which values would make it pass",
            )],
        }
    }

    fn rhai_scope(&self, env: &Env<'_>) -> Scope<'static> {
        let mut scope = Scope::new();
        for (k, v) in env.facts.iter() {
            if !self.locals.contains(k) {
                scope.push_constant_dynamic(k.as_str(), rhai_env::to_dynamic(v));
            }
        }
        for (name, v) in self.locals.iter().zip(env.locals) {
            scope.push_constant_dynamic(name.as_str(), rhai_env::to_dynamic(v));
        }
        scope
    }

    /// Adds the input fields this expression can read to `acc`; an
    /// expression run by Rhai may read anything.
    pub fn collect_interest(&self, acc: &mut Interest) {
        match &self.body {
            Body::Compiled(node) => ir::collect_interest(node, acc),
            Body::Rhai(..) => *acc = Interest::All,
        }
    }

    /// When the expression is a conjunction of `local OP constant` tests
    /// (`revenue >= 1000000 && tier == "A"`, `region in ["NA", "EMEA"]`),
    /// those tests; `None` otherwise. The whole expression is exactly their
    /// conjunction, so an index may decide it without evaluating it.
    pub fn conjunction_atoms(&self) -> Option<Vec<Atom>> {
        let Body::Compiled(node) = &self.body else { return None };
        let mut out = Vec::new();
        collect_atoms(node, &mut out).then_some(out)
    }
}

/// The dotted path (`deal.amount`) that ends at `pos` in `source`.
fn dotted_path_at(source: &str, pos: rhai::Position) -> Option<String> {
    let line = source.lines().nth(pos.line()?.checked_sub(1)?)?;
    let col = pos.position()?.checked_sub(1)?;
    let is_path = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let chars: Vec<char> = line.chars().collect();
    let end = (col..chars.len()).find(|&i| !is_path(chars[i])).unwrap_or(chars.len());
    let start = (0..col.min(chars.len()))
        .rev()
        .take_while(|&i| is_path(chars[i]))
        .last()
        .unwrap_or(col);
    let path: String = chars.get(start..end)?.iter().collect();
    let path = path.trim_matches('.');
    (path.contains('.')).then(|| path.to_string())
}

fn collect_atoms(node: &Node, out: &mut Vec<Atom>) -> bool {
    match node {
        Node::And(items) => items.iter().all(|i| collect_atoms(i, out)),
        Node::Const(Value::Bool(true)) => true,
        Node::Cmp(op, a, b) => match (&**a, &**b) {
            (Node::Local(i, _), Node::Const(c)) => {
                out.push(Atom {
                    local: *i,
                    op: AtomOp::Cmp(*op, c.clone()),
                });
                true
            }
            (Node::Const(c), Node::Local(i, _)) => {
                out.push(Atom {
                    local: *i,
                    op: AtomOp::Cmp(op.flipped(), c.clone()),
                });
                true
            }
            _ => false,
        },
        Node::In(item, container) => match (&**item, &**container) {
            (Node::Local(i, _), Node::Const(Value::List(items))) => {
                out.push(Atom {
                    local: *i,
                    op: AtomOp::In(items.to_vec()),
                });
                true
            }
            (Node::Local(i, _), Node::Array(items)) => {
                let mut consts = Vec::new();
                for it in items {
                    match it {
                        Node::Const(c) => consts.push(c.clone()),
                        _ => return false,
                    }
                }
                out.push(Atom {
                    local: *i,
                    op: AtomOp::In(consts),
                });
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// A pack script: `fn evaluate(input) { ... }`.
#[derive(Clone)]
pub struct Script {
    ast: Arc<AST>,
    rhai: Arc<Engine>,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Script")
    }
}

impl Script {
    /// Calls `evaluate(input)` under the engine's limits.
    pub fn run(&self, input: &Value) -> Result<Value, EvalError> {
        let mut scope = Scope::new();
        let out = self
            .rhai
            .call_fn::<Dynamic>(&mut scope, &self.ast, "evaluate", (rhai_env::to_dynamic(input),))
            .map_err(|e| rhai_env::map_rhai_error(&e))?;
        rhai_env::from_dynamic(&out)
    }
}
