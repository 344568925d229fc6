//! Ahead-of-time compilation of common expressions.
//!
//! Rhai parses every expression (so syntax and precedence are Rhai's); when
//! the AST uses only field access, literals, comparisons, boolean logic,
//! arithmetic, `in` and the policy helpers, it is lowered into this small
//! tree, which runs without Rhai's scope, `Dynamic` boxing or function
//! lookup. Anything else stays a Rhai AST. `tests/differential.rs` checks
//! both paths agree.

use std::sync::Arc;

use rhai::{ASTFlags, Expr};
use rust_decimal::Decimal;
use smol_str::SmolStr;

use crate::error::EvalError;
use crate::funcs::{self, RoundMode};
use crate::interest::Interest;
pub use crate::ops::{ArithOp, CmpOp, absolute, arith, arith_num, compare, extreme, extreme_num, negate, rounded};
use crate::ops::{num, text, type_err};
use crate::rhai_env::from_dynamic;
use crate::value::Value;

/// What an expression reads and computes, resolved at compile time.
#[derive(Debug, Clone)]
pub enum Node {
    Const(Value),
    /// A name declared by the evaluation context (`vars`, `now`, table inputs).
    Local(usize, SmolStr),
    /// A top-level input fact (`deal`, `customer`, ...).
    Fact(SmolStr),
    /// A numbered input path, filled before evaluation (see `slots`).
    Slot(usize, Arc<str>),
    /// `base.key`; `path` names it in errors (`deal.region`).
    Get(Box<Node>, SmolStr, Arc<str>),
    Index(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Neg(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Coalesce(Vec<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    Arith(ArithOp, Box<Node>, Box<Node>),
    /// `item in container`
    In(Box<Node>, Box<Node>),
    Array(Vec<Node>),
    Call(Builtin, Vec<Node>),
    /// `if cond { then } else { otherwise }`; only the branch taken is
    /// evaluated (a missing `else` is null, as in Rhai).
    If(Box<Node>, Box<Node>, Box<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Has,
    Get,
    DaysBetween,
    Date,
    AddDays,
    /// `round`, `round_even`, `floor`, `ceil`: one argument (0 places) or two.
    Round(RoundMode),
    Min,
    Max,
    Abs,
}

impl Builtin {
    /// The function's name in an expression.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Has => "has",
            Builtin::Get => "get",
            Builtin::DaysBetween => "days_between",
            Builtin::Date => "date",
            Builtin::AddDays => "add_days",
            Builtin::Round(mode) => mode.name(),
            Builtin::Min => "min",
            Builtin::Max => "max",
            Builtin::Abs => "abs",
        }
    }
}

/// Lowers a Rhai expression; `None` when it needs Rhai itself.
pub fn lower(e: &Expr, locals: &[SmolStr]) -> Option<Node> {
    Some(match e {
        Expr::DynamicConstant(d, _) => Node::Const(from_dynamic(d).ok()?),
        Expr::BoolConstant(b, _) => Node::Const(Value::Bool(*b)),
        Expr::IntegerConstant(i, _) => Node::Const(Value::Num(Decimal::from(*i))),
        Expr::CharConstant(c, _) => Node::Const(Value::Str(SmolStr::new(c.to_string()))),
        Expr::StringConstant(s, _) => Node::Const(Value::Str(SmolStr::new(s.as_str()))),
        Expr::Unit(_) => Node::Const(Value::Null),
        Expr::Array(items, _) => Node::Array(items.iter().map(|i| lower(i, locals)).collect::<Option<_>>()?),
        Expr::Variable(v, _, _) => {
            let name = v.1.as_str();
            match locals.iter().position(|l| l == name) {
                Some(i) => Node::Local(i, SmolStr::new(name)),
                None => Node::Fact(SmolStr::new(name)),
            }
        }
        Expr::Dot(bin, flags, _) => {
            if flags.intersects(ASTFlags::NEGATED) {
                return None;
            }
            let base = lower(&bin.lhs, locals)?;
            lower_chain(base, &bin.rhs, locals)?
        }
        Expr::Index(bin, flags, _) => {
            if flags.intersects(ASTFlags::NEGATED) {
                return None;
            }
            Node::Index(Box::new(lower(&bin.lhs, locals)?), Box::new(lower(&bin.rhs, locals)?))
        }
        Expr::And(v, _) => Node::And(v.iter().map(|i| lower(i, locals)).collect::<Option<_>>()?),
        Expr::Or(v, _) => Node::Or(v.iter().map(|i| lower(i, locals)).collect::<Option<_>>()?),
        Expr::Coalesce(v, _) => Node::Coalesce(v.iter().map(|i| lower(i, locals)).collect::<Option<_>>()?),
        Expr::FnCall(call, _) => lower_call(call, locals)?,
        Expr::Stmt(block) => lower_statements(block.statements(), locals)?,
        _ => return None,
    })
}

/// Lowers a block that is one expression (`if` branches, a whole
/// expression's statements); `None` for anything with real statements.
pub fn lower_statements(stmts: &[rhai::Stmt], locals: &[SmolStr]) -> Option<Node> {
    use rhai::Stmt;
    match stmts {
        [] | [Stmt::Noop(_)] => Some(Node::Const(Value::Null)),
        [Stmt::Expr(e)] => lower(e, locals),
        [Stmt::FnCall(call, _)] => lower_call(call, locals),
        [Stmt::Block(block)] => lower_statements(block.statements(), locals),
        [Stmt::If(flow, _)] => Some(Node::If(
            Box::new(lower(&flow.expr, locals)?),
            Box::new(lower_statements(flow.body.statements(), locals)?),
            Box::new(lower_statements(flow.branch.statements(), locals)?),
        )),
        _ => None,
    }
}

/// Lowers an operator or helper call; `None` for anything else.
pub fn lower_call(call: &rhai::FnCallExpr, locals: &[SmolStr]) -> Option<Node> {
    let mut args: Vec<Node> = call.args.iter().map(|a| lower(a, locals)).collect::<Option<_>>()?;
    let is_op = call.op_token.is_some();
    let name = call.name.as_str();
    let binary = |op: fn(Box<Node>, Box<Node>) -> Node, mut args: Vec<Node>| {
        let b = Box::new(args.pop()?);
        let a = Box::new(args.pop()?);
        Some(op(a, b))
    };
    match (name, args.len(), is_op) {
        ("==", 2, true) => binary(|a, b| Node::Cmp(CmpOp::Eq, a, b), args),
        ("!=", 2, true) => binary(|a, b| Node::Cmp(CmpOp::Ne, a, b), args),
        ("<", 2, true) => binary(|a, b| Node::Cmp(CmpOp::Lt, a, b), args),
        ("<=", 2, true) => binary(|a, b| Node::Cmp(CmpOp::Le, a, b), args),
        (">", 2, true) => binary(|a, b| Node::Cmp(CmpOp::Gt, a, b), args),
        (">=", 2, true) => binary(|a, b| Node::Cmp(CmpOp::Ge, a, b), args),
        ("+", 2, true) => binary(|a, b| Node::Arith(ArithOp::Add, a, b), args),
        ("-", 2, true) => binary(|a, b| Node::Arith(ArithOp::Sub, a, b), args),
        ("*", 2, true) => binary(|a, b| Node::Arith(ArithOp::Mul, a, b), args),
        ("/", 2, true) => binary(|a, b| Node::Arith(ArithOp::Div, a, b), args),
        ("%", 2, true) => binary(|a, b| Node::Arith(ArithOp::Rem, a, b), args),
        // `item in container` is parsed as `contains(container, item)`
        ("contains", 2, _) => binary(|container, item| Node::In(item, container), args),
        ("-", 1, true) => Some(Node::Neg(Box::new(args.pop()?))),
        ("!", 1, true) => Some(Node::Not(Box::new(args.pop()?))),
        ("has", 2, false) => Some(Node::Call(Builtin::Has, args)),
        ("get", 3, false) => Some(Node::Call(Builtin::Get, args)),
        ("days_between", 2, false) => Some(Node::Call(Builtin::DaysBetween, args)),
        ("date", 1, false) => Some(Node::Call(Builtin::Date, args)),
        ("add_days", 2, false) => Some(Node::Call(Builtin::AddDays, args)),
        ("round", 1 | 2, false) => Some(Node::Call(Builtin::Round(RoundMode::HalfAwayFromZero), args)),
        ("round_even", 1 | 2, false) => Some(Node::Call(Builtin::Round(RoundMode::HalfEven), args)),
        ("floor", 1 | 2, false) => Some(Node::Call(Builtin::Round(RoundMode::Floor), args)),
        ("ceil", 1 | 2, false) => Some(Node::Call(Builtin::Round(RoundMode::Ceil), args)),
        ("min", 2, false) => Some(Node::Call(Builtin::Min, args)),
        ("max", 2, false) => Some(Node::Call(Builtin::Max, args)),
        ("abs", 1, false) => Some(Node::Call(Builtin::Abs, args)),
        _ => {
            args.clear();
            None
        }
    }
}

fn path_of(n: &Node) -> String {
    match n {
        Node::Fact(name) | Node::Local(_, name) => name.to_string(),
        Node::Slot(_, path) => path.to_string(),
        Node::Get(_, _, path) => path.to_string(),
        _ => "value".into(),
    }
}

fn lower_chain(base: Node, rhs: &Expr, locals: &[SmolStr]) -> Option<Node> {
    match rhs {
        Expr::Property(p, _) => {
            let key = SmolStr::new(p.2.as_str());
            let path: Arc<str> = format!("{}.{key}", path_of(&base)).into();
            Some(Node::Get(Box::new(base), key, path))
        }
        Expr::Dot(bin, flags, _) if !flags.intersects(ASTFlags::NEGATED) => {
            let mid = lower_chain(base, &bin.lhs, locals)?;
            lower_chain(mid, &bin.rhs, locals)
        }
        Expr::Index(bin, flags, _) if !flags.intersects(ASTFlags::NEGATED) => {
            let mid = lower_chain(base, &bin.lhs, locals)?;
            Some(Node::Index(Box::new(mid), Box::new(lower(&bin.rhs, locals)?)))
        }
        _ => None,
    }
}

/// What an evaluation reads: the input facts, the declared locals, and the
/// slots of expressions bound to a [`crate::slot::SlotPlan`].
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub facts: &'a crate::value::Map,
    pub locals: &'a [Value],
    pub slots: &'a [crate::slot::Slot],
}

static NO_FACTS: std::sync::LazyLock<crate::value::Map> = std::sync::LazyLock::new(crate::value::Map::new);

impl<'a> Env<'a> {
    pub fn new(facts: &'a crate::value::Map, locals: &'a [Value]) -> Self {
        Env {
            facts,
            locals,
            slots: &[],
        }
    }

    /// For expressions bound to slots: the input is in `slots`.
    pub fn with_slots(locals: &'a [Value], slots: &'a [crate::slot::Slot]) -> Self {
        Env {
            facts: &NO_FACTS,
            locals,
            slots,
        }
    }
}

impl Node {
    /// `deal.customer.tier` as `[deal, customer, tier]` when this node is a
    /// plain field path from an input fact.
    pub fn fact_path(&self) -> Option<Vec<&SmolStr>> {
        match self {
            Node::Fact(name) => Some(vec![name]),
            Node::Get(base, key, _) => {
                let mut p = base.fact_path()?;
                p.push(key);
                Some(p)
            }
            _ => None,
        }
    }

    /// The direct sub-expressions.
    pub fn children(&self) -> Box<dyn Iterator<Item = &Node> + '_> {
        match self {
            Node::Const(_) | Node::Local(..) | Node::Fact(_) | Node::Slot(..) => Box::new(std::iter::empty()),
            Node::Get(b, ..) | Node::Not(b) | Node::Neg(b) => Box::new(std::iter::once(&**b)),
            Node::Index(a, b) | Node::Cmp(_, a, b) | Node::Arith(_, a, b) | Node::In(a, b) => {
                Box::new([&**a, &**b].into_iter())
            }
            Node::And(v) | Node::Or(v) | Node::Coalesce(v) | Node::Array(v) | Node::Call(_, v) => Box::new(v.iter()),
            Node::If(c, a, b) => Box::new([&**c, &**a, &**b].into_iter()),
        }
    }

    /// A copy with every direct sub-expression rewritten by `f`.
    pub fn map_children(&self, mut f: impl FnMut(&Node) -> Node) -> Node {
        let mut b = |n: &Node| Box::new(f(n));
        match self {
            Node::Const(_) | Node::Local(..) | Node::Fact(_) | Node::Slot(..) => self.clone(),
            Node::Get(x, k, p) => Node::Get(b(x), k.clone(), p.clone()),
            Node::Not(x) => Node::Not(b(x)),
            Node::Neg(x) => Node::Neg(b(x)),
            Node::Index(x, y) => Node::Index(b(x), b(y)),
            Node::Cmp(op, x, y) => Node::Cmp(*op, b(x), b(y)),
            Node::Arith(op, x, y) => Node::Arith(*op, b(x), b(y)),
            Node::In(x, y) => Node::In(b(x), b(y)),
            Node::And(v) => Node::And(v.iter().map(|n| *b(n)).collect()),
            Node::Or(v) => Node::Or(v.iter().map(|n| *b(n)).collect()),
            Node::Coalesce(v) => Node::Coalesce(v.iter().map(|n| *b(n)).collect()),
            Node::Array(v) => Node::Array(v.iter().map(|n| *b(n)).collect()),
            Node::Call(c, v) => Node::Call(*c, v.iter().map(|n| *b(n)).collect()),
            Node::If(c, x, y) => Node::If(b(c), b(x), b(y)),
        }
    }
}

fn boolean(v: &Value, what: &str) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(type_err(format!(
            "{what} needs true or false, got {}",
            other.type_name()
        ))),
    }
}

impl Node {
    /// Reads a value without copying it, when it already exists in the env.
    fn eval_ref<'e>(&'e self, env: &Env<'e>) -> Result<std::borrow::Cow<'e, Value>, EvalError> {
        use std::borrow::Cow;
        match self {
            Node::Const(v) => Ok(Cow::Borrowed(v)),
            Node::Local(i, _) => Ok(Cow::Borrowed(&env.locals[*i])),
            Node::Fact(name) => env
                .facts
                .get(name)
                .map(Cow::Borrowed)
                .ok_or_else(|| EvalError::Missing { path: name.to_string() }),
            Node::Slot(i, path) => match &env.slots[*i] {
                crate::slot::Slot::Present(v) => Ok(Cow::Borrowed(v)),
                crate::slot::Slot::Missing => Err(EvalError::Missing { path: path.to_string() }),
                crate::slot::Slot::Blocked(b) => Err(type_err(format!(
                    "cannot read `{}` of {}: it is {}, not a mapping",
                    b.key, b.parent, b.found
                ))),
            },
            Node::Get(base, key, path) => match base.eval_ref(env)? {
                Cow::Borrowed(b) => get_field(b, key, path).map(Cow::Borrowed),
                Cow::Owned(b) => get_field(&b, key, path).cloned().map(Cow::Owned),
            },
            Node::If(c, a, b) => {
                if c.if_condition(env)? {
                    a.eval_ref(env)
                } else {
                    b.eval_ref(env)
                }
            }
            other => other.eval(env).map(Cow::Owned),
        }
    }

    pub fn eval(&self, env: &Env<'_>) -> Result<Value, EvalError> {
        match self {
            Node::Const(v) => Ok(v.clone()),
            Node::Local(..) | Node::Fact(_) | Node::Slot(..) | Node::Get(..) | Node::If(..) => {
                self.eval_ref(env).map(|c| c.into_owned())
            }
            Node::Index(base, idx) => {
                let b = base.eval_ref(env)?;
                let i = idx.eval_ref(env)?;
                index(&b, &i)
            }
            Node::Not(x) => Ok(Value::Bool(!boolean(&*x.eval_ref(env)?, "`!`")?)),
            Node::Neg(x) => negate(&*x.eval_ref(env)?),
            Node::And(items) => {
                for i in items {
                    if !boolean(&*i.eval_ref(env)?, "`&&`")? {
                        return Ok(Value::Bool(false));
                    }
                }
                Ok(Value::Bool(true))
            }
            Node::Or(items) => {
                for i in items {
                    if boolean(&*i.eval_ref(env)?, "`||`")? {
                        return Ok(Value::Bool(true));
                    }
                }
                Ok(Value::Bool(false))
            }
            Node::Coalesce(items) => {
                for i in items {
                    let v = i.eval_ref(env)?;
                    if !matches!(*v, Value::Null) {
                        return Ok(v.into_owned());
                    }
                }
                Ok(Value::Null)
            }
            Node::Cmp(op, a, b) => compare(*op, &*a.eval_ref(env)?, &*b.eval_ref(env)?).map(Value::Bool),
            Node::Arith(op, a, b) => match self.number(env) {
                Some(n) => Ok(Value::Num(n)),
                None => arith(*op, &*a.eval_ref(env)?, &*b.eval_ref(env)?),
            },
            Node::In(item, container) => contains(&*container.eval_ref(env)?, &*item.eval_ref(env)?).map(Value::Bool),
            Node::Array(items) => Ok(Value::list(
                items.iter().map(|i| i.eval(env)).collect::<Result<_, _>>()?,
            )),
            Node::Call(Builtin::Round(_) | Builtin::Min | Builtin::Max, _) if let Some(n) = self.number(env) => {
                Ok(Value::Num(n))
            }
            Node::Call(f, args) => call(*f, args, env),
        }
    }

    /// The value of a constant, a local or a filled slot, borrowed; `None`
    /// for anything to compute (or a slot that is missing or blocked).
    #[inline]
    fn peek<'e>(&'e self, env: &Env<'e>) -> Option<&'e Value> {
        match self {
            Node::Const(v) => Some(v),
            Node::Local(i, _) => env.locals.get(*i),
            Node::Slot(i, _) => match env.slots.get(*i) {
                Some(crate::slot::Slot::Present(v)) => Some(v),
                _ => None,
            },
            _ => None,
        }
    }

    /// Money arithmetic without the general machinery: the number this
    /// node gives when it and everything it reads are plain numbers
    /// (arithmetic, `round` and its kin with constant places, `min`,
    /// `max`). `None` means "take the general path", which then gives the
    /// same number or says what is wrong (text, a missing field, division
    /// by zero, overflow): nothing here reports an error of its own.
    fn number(&self, env: &Env<'_>) -> Option<rust_decimal::Decimal> {
        match self {
            Node::Const(Value::Num(d)) => Some(*d),
            Node::Local(i, _) => match env.locals.get(*i) {
                Some(Value::Num(d)) => Some(*d),
                _ => None,
            },
            Node::Slot(i, _) => match env.slots.get(*i) {
                Some(crate::slot::Slot::Present(Value::Num(d))) => Some(*d),
                _ => None,
            },
            Node::Arith(op, a, b) => arith_num(*op, a.number(env)?, b.number(env)?).ok(),
            Node::Call(Builtin::Round(mode), args) => {
                let x = args[0].number(env)?;
                let places = match args.get(1) {
                    Some(p) => p.number(env)?,
                    None => rust_decimal::Decimal::ZERO,
                };
                funcs::round(x, places, *mode).ok()
            }
            Node::If(c, a, b) => match c.if_condition(env).ok()? {
                true => a.number(env),
                false => b.number(env),
            },
            Node::Call(f @ (Builtin::Min | Builtin::Max), args) => Some(extreme_num(
                *f == Builtin::Max,
                args[0].number(env)?,
                args[1].number(env)?,
            )),
            _ => None,
        }
    }

    /// The condition of an `if`: it must give true or false.
    fn if_condition(&self, env: &Env<'_>) -> Result<bool, EvalError> {
        match self {
            Node::Cmp(..) | Node::And(_) | Node::Or(_) => self.eval_bool(env),
            other => boolean(&*other.eval_ref(env)?, "`if`"),
        }
    }

    /// Evaluates a condition: it must give true or false.
    pub fn eval_bool(&self, env: &Env<'_>) -> Result<bool, EvalError> {
        match self {
            Node::Cmp(op, a, b) => {
                // The common cases, fields, locals and constants compared, without
                // the general machinery; anything else takes the general path.
                if let (Some(x), Some(y)) = (a.peek(env), b.peek(env)) {
                    return match (x, y) {
                        (Value::Num(x), Value::Num(y)) => Ok(op.holds(x.cmp(y))),
                        // Text against text is equal or not; no ordering needed.
                        (Value::Str(x), Value::Str(y)) if matches!(op, CmpOp::Eq | CmpOp::Ne) => {
                            Ok((x == y) == (*op == CmpOp::Eq))
                        }
                        _ => compare(*op, x, y),
                    };
                }
                compare(*op, &*a.eval_ref(env)?, &*b.eval_ref(env)?)
            }
            Node::If(c, a, b) => {
                if c.if_condition(env)? {
                    a.eval_bool(env)
                } else {
                    b.eval_bool(env)
                }
            }
            Node::And(items) => {
                for i in items {
                    if !i.eval_bool(env)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Node::Or(items) => {
                for i in items {
                    if i.eval_bool(env)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            other => boolean(&*other.eval_ref(env)?, "a condition"),
        }
    }
}

fn get_field<'v>(base: &'v Value, key: &str, path: &str) -> Result<&'v Value, EvalError> {
    match base {
        Value::Map(m) => m.get(key).ok_or_else(|| EvalError::Missing { path: path.to_string() }),
        other => {
            let parent = path.rsplit_once('.').map(|(p, _)| p).unwrap_or(path);
            Err(type_err(format!(
                "cannot read `{key}` of {parent}: it is {}, not a mapping",
                other.type_name()
            )))
        }
    }
}

fn index(base: &Value, idx: &Value) -> Result<Value, EvalError> {
    match (base, idx) {
        (Value::List(items), Value::Num(n)) => {
            let len = items.len() as i64;
            let i: i64 = n
                .trunc()
                .try_into()
                .map_err(|_| type_err(format!("index {n} is out of range")))?;
            let at = if i < 0 { len + i } else { i };
            if at < 0 || at >= len {
                return Err(type_err(format!("index {i} is out of bounds for a list of {len}")));
            }
            Ok(items[at as usize].clone())
        }
        (Value::Map(m), Value::Str(k)) => m.get(k).cloned().ok_or_else(|| EvalError::Missing {
            path: format!("[\"{k}\"]"),
        }),
        (b, i) => Err(type_err(format!(
            "cannot index {} with {}",
            b.type_name(),
            i.type_name()
        ))),
    }
}

fn contains(container: &Value, item: &Value) -> Result<bool, EvalError> {
    match container {
        Value::List(items) => Ok(items.iter().any(|i| compare(CmpOp::Eq, i, item).unwrap_or(false))),
        Value::Str(s) => Ok(s.contains(text(item, "`in` on text")?)),
        Value::Map(m) => Ok(m.contains_key(text(item, "`in` on a mapping")?)),
        other => Err(type_err(format!(
            "`in` needs a list, text or mapping, got {}",
            other.type_name()
        ))),
    }
}

fn call(f: Builtin, args: &[Node], env: &Env<'_>) -> Result<Value, EvalError> {
    match f {
        Builtin::Has => {
            let m = args[0].eval_ref(env)?;
            let k = args[1].eval_ref(env)?;
            let key = text(&k, "has()")?;
            match &*m {
                Value::Map(m) => Ok(Value::Bool(m.contains_key(key))),
                Value::Null => Ok(Value::Bool(false)),
                other => Err(type_err(format!("has() needs a mapping, got {}", other.type_name()))),
            }
        }
        Builtin::Get => {
            let m = args[0].eval_ref(env)?;
            let k = args[1].eval_ref(env)?;
            let key = text(&k, "get()")?;
            match &*m {
                Value::Map(m) => match m.get(key) {
                    Some(v) if !matches!(v, Value::Null) => Ok(v.clone()),
                    _ => args[2].eval(env),
                },
                other => Err(type_err(format!("get() needs a mapping, got {}", other.type_name()))),
            }
        }
        Builtin::DaysBetween => {
            let a = args[0].eval_ref(env)?;
            let b = args[1].eval_ref(env)?;
            funcs::days_between(text(&a, "days_between()")?, text(&b, "days_between()")?).map(Value::Num)
        }
        Builtin::Date => {
            let a = args[0].eval_ref(env)?;
            funcs::date(text(&a, "date()")?).map(|s| Value::Str(SmolStr::new(s)))
        }
        Builtin::AddDays => {
            let a = args[0].eval_ref(env)?;
            let n = args[1].eval_ref(env)?;
            funcs::add_days(text(&a, "add_days()")?, num(&n, "add_days()")?).map(|s| Value::Str(SmolStr::new(s)))
        }
        Builtin::Round(mode) => {
            let x = args[0].eval_ref(env)?;
            match args.get(1) {
                Some(p) => rounded(mode, &x, Some(&*p.eval_ref(env)?)),
                None => rounded(mode, &x, None),
            }
        }
        Builtin::Min | Builtin::Max => {
            let a = args[0].eval_ref(env)?;
            let b = args[1].eval_ref(env)?;
            extreme(f == Builtin::Max, &a, &b)
        }
        Builtin::Abs => absolute(&*args[0].eval_ref(env)?),
    }
}

/// Adds what `node` reads to `acc` (see `interest`).
pub fn collect_interest(node: &Node, acc: &mut Interest) {
    if let Some(path) = node.fact_path() {
        acc.add_path(&path.iter().map(|k| k.as_str()).collect::<Vec<_>>());
        return;
    }
    match node {
        Node::Const(_) | Node::Local(..) | Node::Slot(..) => {}
        Node::Fact(_) => unreachable_fact(acc),
        Node::Get(base, ..) | Node::Not(base) | Node::Neg(base) => collect_interest(base, acc),
        Node::Index(a, b) | Node::Cmp(_, a, b) | Node::Arith(_, a, b) | Node::In(a, b) => {
            collect_interest(a, acc);
            collect_interest(b, acc);
        }
        Node::And(items) | Node::Or(items) | Node::Coalesce(items) | Node::Array(items) | Node::Call(_, items) => {
            items.iter().for_each(|i| collect_interest(i, acc));
        }
        Node::If(c, a, b) => [c, a, b].into_iter().for_each(|i| collect_interest(i, acc)),
    }
}

// A bare fact always has a path; kept total so the walk cannot miss one.
fn unreachable_fact(acc: &mut Interest) {
    *acc = Interest::All;
}
