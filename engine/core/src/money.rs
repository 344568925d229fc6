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
        Rounding { places, mode: RoundingMode::HalfUp }
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

/// Splits `total` (already rounded) by `weights` into parts at `places`
/// that add up to exactly `total`: each part is rounded toward zero, and
/// the cents left over go one by one to the largest remainders (earlier
/// parties first on ties). 8.00 in three equal parts is 2.67, 2.67, 2.66.
pub fn allocate(total: Decimal, weights: &[Decimal], rounding: Rounding) -> Vec<Decimal> {
    let sum: Decimal = weights.iter().copied().sum();
    if weights.is_empty() {
        return Vec::new();
    }
    if sum.is_zero() {
        let mut out = vec![Decimal::ZERO; weights.len()];
        out[0] = total;
        return out;
    }
    let negative = total.is_sign_negative();
    let whole = total.abs();
    let unit = rounding.unit();
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let exact = whole * *w / sum;
        let mut floor = exact.round_dp_with_strategy(rounding.places, RoundingStrategy::ToZero);
        floor.rescale(rounding.places);
        remainders.push((exact - floor, i));
        parts.push(floor);
    }
    let given: Decimal = parts.iter().copied().sum();
    let mut left = ((whole - given) / unit).round().mantissa().max(0) as usize;
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders.iter().cycle() {
        if left == 0 {
            break;
        }
        parts[*i] += unit;
        left -= 1;
    }
    if negative {
        parts.iter_mut().for_each(|p| *p = -*p);
    }
    parts
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
        let parts = allocate(d("8.00"), &[Decimal::ONE, Decimal::ONE, Decimal::ONE], r);
        assert_eq!(parts, vec![d("2.67"), d("2.67"), d("2.66")]);
    }

    #[test]
    fn half_up_and_friends() {
        let up = Rounding { places: 2, mode: RoundingMode::HalfUp };
        assert_eq!(up.round(d("1.005")).to_string(), "1.01");
        assert_eq!(up.round(d("-1.005")).to_string(), "-1.01");
        assert_eq!(up.round(d("14500")).to_string(), "14500.00");
        let even = Rounding { places: 2, mode: RoundingMode::HalfEven };
        assert_eq!(even.round(d("1.005")).to_string(), "1.00");
        assert_eq!(even.round(d("1.015")).to_string(), "1.02");
        let down = Rounding { places: 2, mode: RoundingMode::Down };
        assert_eq!(down.round(d("1.009")).to_string(), "1.00");
        assert_eq!(Rounding::for_currency("JPY").round(d("100.5")).to_string(), "101");
    }

    #[test]
    fn negative_totals_split_the_same_way() {
        let r = Rounding::for_currency("USD");
        assert_eq!(allocate(d("-8.00"), &[Decimal::ONE; 3], r), vec![d("-2.67"), d("-2.67"), d("-2.66")]);
    }
}
