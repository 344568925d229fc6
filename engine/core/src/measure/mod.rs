//! Targets and the funnel, measured on the deals a server holds: progress
//! against targets ([`progress`]), funnel analytics and the forecast
//! ([`funnel`]).
//!
//! Pure: the store reads the rows (deals, their history, the roster) and
//! the workflow layer hands them here; nothing in this module does IO or
//! reads a clock (`now` is an argument).

pub mod funnel;
pub mod progress;

use rust_decimal::Decimal;

/// Share of `period` elapsed on `today`: the days done, today included,
/// over the days of the period, from 0 to 1 (as an incentive statement's
/// pace counts it).
pub fn elapsed_share(period: &crate::period::Period, today: chrono::NaiveDate) -> Decimal {
    let done = ((today - period.start).num_days() + 1).clamp(0, period.days());
    Decimal::from(done) / Decimal::from(period.days())
}

/// A ratio as answers show it: four places, half away from zero.
pub(crate) fn ratio(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// Money as answers show it: two places, half away from zero.
pub(crate) fn money(d: Decimal) -> Decimal {
    let mut m = d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    m.rescale(2);
    m
}
