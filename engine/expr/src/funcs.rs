//! Policy helpers shared by the compiled path and the Rhai path, so both
//! give the same answer.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::error::EvalError;

pub fn div(a: Decimal, b: Decimal) -> Result<Decimal, EvalError> {
    if b.is_zero() {
        return Err(EvalError::Arithmetic("division by zero".into()));
    }
    a.checked_div(b)
        .ok_or_else(|| EvalError::Arithmetic(format!("{a} / {b} overflows")))
}

/// The date part of an ISO-8601 date or date-time (`2026-03-31`, `2026-03-31T09:00:00Z`).
pub fn parse_date(s: &str) -> Result<NaiveDate, EvalError> {
    let day = s.get(..10).unwrap_or(s);
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| EvalError::Arithmetic(format!("`{s}` is not an ISO-8601 date such as 2026-03-31")))
}

/// Checks and normalizes a date: `date("2026-03-31T10:00:00Z")` is `"2026-03-31"`.
pub fn date(s: &str) -> Result<String, EvalError> {
    Ok(parse_date(s)?.format("%Y-%m-%d").to_string())
}

/// Whole days from `a` to `b` (negative when `b` is earlier).
pub fn days_between(a: &str, b: &str) -> Result<Decimal, EvalError> {
    let (a, b) = (parse_date(a)?, parse_date(b)?);
    Ok(Decimal::from((b - a).num_days()))
}

pub fn add_days(s: &str, n: Decimal) -> Result<String, EvalError> {
    let d = parse_date(s)?;
    let n: i64 = n
        .trunc()
        .try_into()
        .map_err(|_| EvalError::Arithmetic(format!("{n} days is out of range")))?;
    d.checked_add_signed(chrono::Duration::days(n))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .ok_or_else(|| EvalError::Arithmetic(format!("{s} + {n} days is out of range")))
}
