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
    digits_day(day)
        .or_else(|| NaiveDate::parse_from_str(day, "%Y-%m-%d").ok())
        .ok_or_else(|| EvalError::Arithmetic(format!("`{s}` is not an ISO-8601 date such as 2026-03-31")))
}

/// `YYYY-MM-DD` of ten ASCII digits and dashes, read without a format
/// parser (a period's deals parse several days each): the date chrono's
/// `%Y-%m-%d` reads from it, or `None` for it to decide.
fn digits_day(day: &str) -> Option<NaiveDate> {
    let b = day.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let number = |r: std::ops::Range<usize>| {
        b[r].iter()
            .try_fold(0u32, |n, c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    NaiveDate::from_ymd_opt(i32::try_from(number(0..4)?).ok()?, number(5..7)?, number(8..10)?)
}

/// A date as `YYYY-MM-DD`, as chrono's `%Y-%m-%d` writes it, without a
/// format parser for the years 0 to 9999.
pub fn day_text(d: NaiveDate) -> String {
    use chrono::Datelike;
    let (year, month, day) = (d.year(), d.month(), d.day());
    if !(0..=9999).contains(&year) {
        return d.format("%Y-%m-%d").to_string();
    }
    let mut s = String::with_capacity(10);
    for (n, width) in [(year as u32, 4), (month, 2), (day, 2)] {
        if !s.is_empty() {
            s.push('-');
        }
        for place in (0..width).rev() {
            s.push(char::from(b'0' + (n / 10u32.pow(place) % 10) as u8));
        }
    }
    s
}

/// Checks and normalizes a date: `date("2026-03-31T10:00:00Z")` is `"2026-03-31"`.
pub fn date(s: &str) -> Result<String, EvalError> {
    Ok(day_text(parse_date(s)?))
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
    // `Duration::days` panics past about 2.5e13 days; `try_days` refuses.
    chrono::Duration::try_days(n)
        .and_then(|days| d.checked_add_signed(days))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .ok_or_else(|| EvalError::Arithmetic(format!("{s} + {n} days is out of range")))
}

/// How `round`, `round_even`, `floor` and `ceil` treat the digits they drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundMode {
    /// `round`: half away from zero, like plans' `half_up` (50.025 -> 50.03, -1.005 -> -1.01).
    HalfAwayFromZero,
    /// `round_even`: half to the even digit, banker's rounding (50.025 -> 50.02).
    HalfEven,
    /// `floor`: toward minus infinity.
    Floor,
    /// `ceil`: toward plus infinity.
    Ceil,
}

impl RoundMode {
    /// The expression function that rounds this way.
    pub fn name(self) -> &'static str {
        match self {
            RoundMode::HalfAwayFromZero => "round",
            RoundMode::HalfEven => "round_even",
            RoundMode::Floor => "floor",
            RoundMode::Ceil => "ceil",
        }
    }
}

/// The most decimal places a value may be rounded to (an exact decimal holds 28).
pub const MAX_PLACES: u32 = 28;

/// `x` rounded to `places` decimal places in `mode`, shown with exactly
/// that many places (`round(5, 2)` is `5.00`), as plans show money.
/// `places` must be a whole number from 0 to 28.
pub fn round(x: Decimal, places: Decimal, mode: RoundMode) -> Result<Decimal, EvalError> {
    let p: u32 = Some(places)
        .filter(|p| p.fract().is_zero())
        .and_then(|p| u32::try_from(p).ok())
        .filter(|p| *p <= MAX_PLACES)
        .ok_or_else(|| {
            EvalError::Arithmetic(format!(
                "{}() needs places as a whole number from 0 to {MAX_PLACES}, got {places}",
                mode.name()
            ))
        })?;
    let strategy = match mode {
        RoundMode::HalfAwayFromZero => rust_decimal::RoundingStrategy::MidpointAwayFromZero,
        RoundMode::HalfEven => rust_decimal::RoundingStrategy::MidpointNearestEven,
        RoundMode::Floor => rust_decimal::RoundingStrategy::ToNegativeInfinity,
        RoundMode::Ceil => rust_decimal::RoundingStrategy::ToPositiveInfinity,
    };
    let mut r = x.round_dp_with_strategy(p, strategy);
    if r.scale() < p {
        r.rescale(p);
    }
    if r.is_zero() {
        // -0.001 rounded to 2 places is 0.00, not -0.00.
        r.set_sign_positive(true);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_read_and_written_as_chrono_does() {
        for s in [
            "2026-03-31",
            "2024-02-29",
            "0001-01-01",
            "9999-12-31",
            "2026-02-30",
            "2025-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-01-00",
            "2026-3-5",
            "2026-03-5x",
            "20260331",
            "+2026-03-31",
            "２０２６-03-31",
            "2026-03-31T09:00:00Z",
            "",
            "2026/03/31",
        ] {
            let day = s.get(..10).unwrap_or(s);
            let chrono = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok();
            assert_eq!(parse_date(s).ok(), chrono, "{s}");
        }
        for (y, m, d) in [
            (2026, 3, 31),
            (1, 1, 1),
            (999, 12, 31),
            (9999, 2, 28),
            (0, 1, 1),
            (10_000, 1, 1),
            (-5, 6, 7),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(day_text(date), date.format("%Y-%m-%d").to_string(), "{date:?}");
        }
    }
}
