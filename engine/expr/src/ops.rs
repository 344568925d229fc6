//! The arithmetic and comparisons of values, the same for compiled
//! expressions (`ir`) and for Rhai (`rhai_env`): numeric text next to a
//! number is that number, every operation on money is checked, rounding
//! follows an explicit mode.

use rust_decimal::Decimal;
use smol_str::SmolStr;

use crate::error::EvalError;
use crate::funcs::{self, RoundMode};
use crate::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// Whether an ordering satisfies this comparison.
    pub fn holds(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => o == Equal,
            CmpOp::Ne => o != Equal,
            CmpOp::Lt => o == Less,
            CmpOp::Le => o != Greater,
            CmpOp::Gt => o == Greater,
            CmpOp::Ge => o != Less,
        }
    }

    /// The same comparison with its operands swapped (`1 < x` is `x > 1`).
    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

pub(crate) fn type_err(msg: String) -> EvalError {
    EvalError::Type(msg)
}

/// A number, or text that reads as one (inputs carry money as text).
pub(crate) fn num(v: &Value, what: &str) -> Result<Decimal, EvalError> {
    match v {
        Value::Num(d) => Ok(*d),
        s @ Value::Str(_) => numeric_text(s)?.ok_or_else(|| type_err(format!("{what} needs a number, got text `{s}`"))),
        other => Err(type_err(format!("{what} needs a number, got {}", other.type_name()))),
    }
}

/// `-x`, for numbers and numeric text alike.
pub fn negate(v: &Value) -> Result<Value, EvalError> {
    Ok(Value::Num(-num(v, "unary `-`")?))
}

pub(crate) fn text<'v>(v: &'v Value, what: &str) -> Result<&'v str, EvalError> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(type_err(format!("{what} needs text, got {}", other.type_name()))),
    }
}

/// Text that reads as a number, next to a number, is that number: inputs
/// may carry `"10.5"` where a policy compares with `10`. Text written as a
/// number that no exact decimal holds is an error, never a rounded copy
/// and never plain text.
pub(crate) fn numeric_text(v: &Value) -> Result<Option<Decimal>, EvalError> {
    match v {
        Value::Str(s) => match crate::value::read_decimal(s.trim()) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.is_number_shaped() => Err(EvalError::Arithmetic(e.to_string())),
            Err(_) => Ok(None),
        },
        _ => Ok(None),
    }
}

/// `==` between different types is false; ordering them is an error.
/// A number and numeric text compare as numbers.
pub fn compare(op: CmpOp, a: &Value, b: &Value) -> Result<bool, EvalError> {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (a, b) {
        (Value::Num(x), Value::Num(y)) => Some(x.cmp(y)),
        (Value::Num(x), s @ Value::Str(_)) => numeric_text(s)?.map(|y| x.cmp(&y)),
        (s @ Value::Str(_), Value::Num(y)) => numeric_text(s)?.map(|x| x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Some(x.as_str().cmp(y.as_str())),
        (Value::Bool(x), Value::Bool(y)) if matches!(op, CmpOp::Eq | CmpOp::Ne) => Some(x.cmp(y)),
        _ => None,
    };
    match (op, ord) {
        (_, Some(o)) => Ok(op.holds(o)),
        (CmpOp::Eq, None) => Ok(a == b),
        (CmpOp::Ne, None) => Ok(a != b),
        (_, None) => Err(type_err(match (a, b) {
            (Value::Str(t), Value::Num(_)) | (Value::Num(_), Value::Str(t)) => {
                format!("cannot order text `{t}` against a number")
            }
            _ => format!("cannot order {} against {}", a.type_name(), b.type_name()),
        })),
    }
}

/// Arithmetic on numbers; numeric text next to a number counts as a number.
/// `+` joins text as Rhai does (`"total: " + 5` is `"total: 5"`) unless the
/// text is itself a number (`"10" + 5` is 15).
pub fn arith(op: ArithOp, a: &Value, b: &Value) -> Result<Value, EvalError> {
    if op == ArithOp::Add {
        match (a, b) {
            (Value::Str(x), Value::Num(_)) if numeric_text(a)?.is_none() => {
                return Ok(Value::Str(SmolStr::new(format!("{x}{b}"))));
            }
            (Value::Num(_), Value::Str(y)) if numeric_text(b)?.is_none() => {
                return Ok(Value::Str(SmolStr::new(format!("{a}{y}"))));
            }
            _ => {}
        }
    }
    let operands = match (a, b) {
        (Value::Num(x), Value::Num(y)) => Some((*x, *y)),
        (Value::Num(x), Value::Str(_)) => Some((*x, numeric_text(b)?.ok_or_else(|| not_a_number(b))?)),
        (Value::Str(_), Value::Num(y)) => Some((numeric_text(a)?.ok_or_else(|| not_a_number(a))?, *y)),
        (Value::Str(_), Value::Str(_)) if op != ArithOp::Add => Some((
            numeric_text(a)?.ok_or_else(|| not_a_number(a))?,
            numeric_text(b)?.ok_or_else(|| not_a_number(b))?,
        )),
        _ => None,
    };
    if let Some((x, y)) = operands {
        return arith_num(op, x, y).map(Value::Num);
    }
    match (op, a, b) {
        (ArithOp::Add, Value::Str(x), Value::Str(y)) => Ok(Value::Str(SmolStr::new(format!("{x}{y}")))),
        (ArithOp::Add, Value::List(x), Value::List(y)) => Ok(Value::list(x.iter().chain(y.iter()).cloned().collect())),
        _ => Err(type_err(format!(
            "cannot apply {op:?} to {} and {}",
            a.type_name(),
            b.type_name()
        ))),
    }
}

/// Arithmetic on two numbers, checked: division by zero and overflow are
/// errors.
#[inline]
pub fn arith_num(op: ArithOp, x: Decimal, y: Decimal) -> Result<Decimal, EvalError> {
    let r = match op {
        ArithOp::Add => x.checked_add(y),
        ArithOp::Sub => x.checked_sub(y),
        ArithOp::Mul => x.checked_mul(y),
        ArithOp::Div => return funcs::div(x, y),
        ArithOp::Rem => {
            if y.is_zero() {
                return Err(EvalError::Arithmetic("division by zero".into()));
            }
            x.checked_rem(y)
        }
    };
    r.ok_or_else(|| EvalError::Arithmetic(format!("{x} {op:?} {y} overflows")))
}

pub(crate) fn not_a_number(v: &Value) -> EvalError {
    type_err(format!("text `{v}` is not a number"))
}

/// `round(x, places)` and its kin (see [`RoundMode`]); no places is 0.
/// Numeric text counts as a number, as everywhere else.
pub fn rounded(mode: RoundMode, x: &Value, places: Option<&Value>) -> Result<Value, EvalError> {
    let what = match mode {
        RoundMode::HalfAwayFromZero => "round()",
        RoundMode::HalfEven => "round_even()",
        RoundMode::Floor => "floor()",
        RoundMode::Ceil => "ceil()",
    };
    let x = num(x, what)?;
    let places = match places {
        Some(p) => num(p, what)?,
        None => Decimal::ZERO,
    };
    funcs::round(x, places, mode).map(Value::Num)
}

/// `min(a, b)` or `max(a, b)` of two numbers; on a tie, the first.
pub fn extreme(max: bool, a: &Value, b: &Value) -> Result<Value, EvalError> {
    let what = if max { "max()" } else { "min()" };
    Ok(Value::Num(extreme_num(max, num(a, what)?, num(b, what)?)))
}

/// `min` or `max` of two numbers; on a tie, the first.
#[inline]
pub fn extreme_num(max: bool, x: Decimal, y: Decimal) -> Decimal {
    let first = if max { x >= y } else { x <= y };
    if first { x } else { y }
}

/// `abs(x)`.
pub fn absolute(x: &Value) -> Result<Value, EvalError> {
    Ok(Value::Num(num(x, "abs()")?.abs()))
}
