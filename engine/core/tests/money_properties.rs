//! Properties of the money arithmetic that every statement relies on.

use dealrules_core::money::{allocate, Rounding};
use dealrules_core::Snapshot;
use dealrules_expr::Value;
use dealrules_model::{PackSource, RoundingMode};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn cents() -> impl Strategy<Value = Decimal> {
    (-10_000_000i64..10_000_000).prop_map(|c| Decimal::new(c, 2))
}

proptest! {
    /// A split never loses or invents a cent, and no part is off by more
    /// than a cent from its exact share.
    #[test]
    fn allocations_sum_to_the_whole(total in cents(), weights in prop::collection::vec(1u32..1000, 1..12)) {
        let r = Rounding { places: 2, mode: RoundingMode::HalfUp };
        let w: Vec<Decimal> = weights.iter().map(|&x| Decimal::from(x)).collect();
        let parts = allocate(total, &w, r);
        prop_assert_eq!(parts.iter().copied().sum::<Decimal>(), total);
        let sum: Decimal = w.iter().copied().sum();
        for (p, wi) in parts.iter().zip(&w) {
            let exact = total * *wi / sum;
            prop_assert!((*p - exact).abs() < Decimal::new(1, 2), "{} vs {}", p, exact);
        }
    }
}

fn plan(mode: &str, rates: &[u32]) -> Snapshot {
    let mut tiers = String::new();
    for (i, r) in rates.iter().enumerate() {
        if i + 1 == rates.len() {
            tiers.push_str(&format!("{{ rate: 0.{r:02} }}"));
        } else {
            tiers.push_str(&format!("{{ upto: {}, rate: 0.{r:02} }}, ", (i + 1) * 50000));
        }
    }
    let yaml = format!(
        "apiVersion: dealrules/v1\nkind: IncentivePlan\nmetadata: {{ name: p }}\nspec:\n  period: quarter\n  currency: USD\n  credit: {{ when: 'true', amount: deal.amount }}\n  components:\n    - {{ id: c, type: tiered, basis: amount, mode: {mode}, tiers: [ {tiers} ] }}\n"
    );
    Snapshot::load(PackSource::from_texts([("p.yaml", yaml.as_str())])).unwrap()
}

fn payout(s: &Snapshot, credit: Decimal) -> Decimal {
    let input = Value::from_json_str(&format!(
        r#"{{"period": "2026-Q1", "reps": [{{"id": "r1"}}], "deals": [{{"id": "d1", "owner": "r1", "amount": {credit}, "closed_at": "2026-02-01"}}]}}"#
    ))
    .unwrap();
    let d = serde_json::to_value(s.decide("p", &input, "2026-04-01").unwrap()).unwrap();
    d["statements"][0]["total"].as_str().unwrap().parse().unwrap()
}

fn rising_rates() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(1u32..20, 1..5).prop_map(|mut v| {
        v.sort();
        v.dedup();
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// More credit never pays less under a marginal plan.
    #[test]
    fn marginal_payout_is_monotonic(rates in rising_rates(), a in 0i64..40_000_000, b in 0i64..40_000_000) {
        let s = plan("marginal", &rates);
        let (lo, hi) = (Decimal::new(a.min(b), 2), Decimal::new(a.max(b), 2));
        prop_assert!(payout(&s, lo) <= payout(&s, hi));
    }

    /// With rates that rise, paying everything at the reached rate is never
    /// less than paying each slice at its own.
    #[test]
    fn retroactive_is_at_least_marginal_for_rising_rates(rates in rising_rates(), c in 0i64..40_000_000) {
        let credit = Decimal::new(c, 2);
        prop_assert!(payout(&plan("retroactive", &rates), credit) >= payout(&plan("marginal", &rates), credit));
    }
}
