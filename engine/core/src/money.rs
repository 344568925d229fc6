//! Money: rounding by the plan's rule, and splitting an amount among
//! several parties without losing or inventing a cent.

use dealrules_model::RoundingMode;
use rust_decimal::{Decimal, RoundingStrategy};

/// A plan's rounding rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rounding {
    pub places: u32,
    pub mode: RoundingMode,
}

impl Rounding {
    /// The currency's minor units, half up: what a plan without `rounding` gets.
    pub fn for_currency(code: &str) -> Rounding {
        // ISO 4217 currencies without minor units, and with three.
        let places = match code {
            "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" | "XOF" | "XAF" | "PYG" => 0,
            "BHD" | "KWD" | "OMR" | "JOD" | "TND" | "LYD" | "IQD" => 3,
            _ => 2,
        };
        Rounding {
            places,
            mode: RoundingMode::HalfUp,
        }
    }

    pub fn round(&self, d: Decimal) -> Decimal {
        let strategy = match self.mode {
            RoundingMode::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            RoundingMode::HalfEven => RoundingStrategy::MidpointNearestEven,
            RoundingMode::Down => RoundingStrategy::ToZero,
        };
        let mut r = d.round_dp_with_strategy(self.places, strategy);
        r.rescale(self.places);
        r
    }

    /// The smallest amount at this rounding (0.01 for two places).
    pub fn unit(&self) -> Decimal {
        Decimal::new(1, self.places)
    }
}

/// An amount beyond what the decimal type holds (about 7.9e28). Money
/// arithmetic refuses it rather than panicking or wrapping around.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("amount out of range (beyond about 7.9e28, the largest exact decimal)")]
pub struct Overflow;

/// Adds amounts up, refusing a total out of range.
pub fn checked_sum(items: impl IntoIterator<Item = Decimal>) -> Result<Decimal, Overflow> {
    items
        .into_iter()
        .try_fold(Decimal::ZERO, |a, b| a.checked_add(b).ok_or(Overflow))
}

/// Splits `total` (already rounded) by `weights` into parts at `places`
/// that add up to exactly `total`: each part is rounded toward zero, and
/// the cents left over go one by one to the largest remainders (earlier
/// parties first on ties). 8.00 in three equal parts is 2.67, 2.67, 2.66.
/// Each part is within one minor unit of its exact share. An amount too
/// large to divide exactly is an error, never a part off by a unit.
pub fn allocate(total: Decimal, weights: &[Decimal], rounding: Rounding) -> Result<Vec<Decimal>, Overflow> {
    if weights.len() <= 1 {
        return Ok(weights.iter().map(|_| total).collect());
    }
    let sum = checked_sum(weights.iter().copied())?;
    if sum.is_zero() {
        let mut out = vec![Decimal::ZERO; weights.len()];
        out[0] = total;
        return Ok(out);
    }
    let negative = total.is_sign_negative();
    let whole = total.abs();
    let unit = rounding.unit();
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        // `whole * w` may not fit where the share itself does (credits as
        // weights): then the weight's fraction of the sum comes first.
        let exact = whole
            .checked_mul(*w)
            .and_then(|x| x.checked_div(sum))
            .or_else(|| w.checked_div(sum)?.checked_mul(whole))
            .ok_or(Overflow)?;
        let mut floor = exact.round_dp_with_strategy(rounding.places, RoundingStrategy::ToZero);
        floor.rescale(rounding.places);
        remainders.push((exact - floor, i));
        parts.push(floor);
    }
    let given = checked_sum(parts.iter().copied())?;
    let left = whole
        .checked_sub(given)
        .and_then(|x| x.checked_div(unit))
        .ok_or(Overflow)?
        .round();
    let mut left = i64::try_from(left).map_err(|_| Overflow)?;
    // Units left over go to the largest remainders. With weights of both
    // signs (a refund among the deals) the truncated parts can also add up
    // to more than the whole: then units come off the smallest remainders.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let step = if left < 0 { -unit } else { unit };
    let mut order: Vec<usize> = remainders.iter().map(|(_, i)| *i).collect();
    if left < 0 {
        order.reverse();
    }
    for i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        parts[*i] = parts[*i].checked_add(step).ok_or(Overflow)?;
        left -= left.signum();
    }
    // Near the decimal's limits a product is rounded to 28 digits and a
    // floor can land above the exact share; refuse rather than invent.
    if checked_sum(parts.iter().copied())? != whole {
        return Err(Overflow);
    }
    if negative {
        parts.iter_mut().for_each(|p| *p = -*p);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn eight_in_three() {
        let r = Rounding::for_currency("USD");
        let parts = allocate(d("8.00"), &[Decimal::ONE, Decimal::ONE, Decimal::ONE], r).unwrap();
        assert_eq!(parts, vec![d("2.67"), d("2.67"), d("2.66")]);
    }

    #[test]
    fn half_up_and_friends() {
        let up = Rounding {
            places: 2,
            mode: RoundingMode::HalfUp,
        };
        assert_eq!(up.round(d("1.005")).to_string(), "1.01");
        assert_eq!(up.round(d("-1.005")).to_string(), "-1.01");
        assert_eq!(up.round(d("14500")).to_string(), "14500.00");
        let even = Rounding {
            places: 2,
            mode: RoundingMode::HalfEven,
        };
        assert_eq!(even.round(d("1.005")).to_string(), "1.00");
        assert_eq!(even.round(d("1.015")).to_string(), "1.02");
        let down = Rounding {
            places: 2,
            mode: RoundingMode::Down,
        };
        assert_eq!(down.round(d("1.009")).to_string(), "1.00");
        assert_eq!(Rounding::for_currency("JPY").round(d("100.5")).to_string(), "101");
    }

    #[test]
    fn weights_of_both_signs_still_add_up() {
        // Refunds among a rep's deals: exact shares 0.052, -0.006, -0.006
        // truncate to 0.05, 0.00, 0.00, more than the whole 0.04, so a
        // unit comes off the smallest remainder.
        let r = Rounding::for_currency("USD");
        let parts = allocate(d("0.04"), &[d("52"), d("-6"), d("-6")], r).unwrap();
        assert_eq!(parts, vec![d("0.05"), d("0.00"), d("-0.01")]);
    }

    #[test]
    fn amounts_beyond_the_decimal_range_are_refused_not_invented() {
        let r = Rounding::for_currency("USD");
        // Halves of the largest decimal cannot both be held exactly.
        assert_eq!(allocate(Decimal::MAX, &[Decimal::ONE, Decimal::ONE], r), Err(Overflow));
        // Credits as weights may be large where their shares are not.
        let big = d("30000000000000000000000000000");
        assert_eq!(allocate(d("20"), &[big, big], r).unwrap(), vec![d("10.00"), d("10.00")]);
        assert_eq!(checked_sum([Decimal::MAX, Decimal::ONE]), Err(Overflow));
    }

    #[test]
    fn negative_totals_split_the_same_way() {
        let r = Rounding::for_currency("USD");
        assert_eq!(
            allocate(d("-8.00"), &[Decimal::ONE; 3], r).unwrap(),
            vec![d("-2.67"), d("-2.67"), d("-2.66")]
        );
    }
}
