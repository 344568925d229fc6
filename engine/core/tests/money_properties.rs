//! Properties of the money arithmetic that every statement relies on.

use dealrules_core::Snapshot;
use dealrules_core::money::{Rounding, allocate};
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
        let parts = allocate(total, &w, r).expect("amounts in range");
        prop_assert_eq!(parts.iter().copied().sum::<Decimal>(), total);
        let sum: Decimal = w.iter().copied().sum();
        for (p, wi) in parts.iter().zip(&w) {
            let exact = total * *wi / sum;
            prop_assert!((*p - exact).abs() < Decimal::new(1, 2), "{} vs {}", p, exact);
        }
    }
}

proptest! {
    /// With refunds among the deals, weights have both signs: the parts
    /// still add up to the whole, each within a cent of its exact share.
    #[test]
    fn allocations_with_refunds_sum_to_the_whole(total in cents(), weights in prop::collection::vec(-1000i32..1000, 2..12)) {
        let r = Rounding { places: 2, mode: RoundingMode::HalfUp };
        let w: Vec<Decimal> = weights.iter().map(|&x| Decimal::from(x)).collect();
        let sum: Decimal = w.iter().copied().sum();
        prop_assume!(!sum.is_zero());
        let parts = allocate(total, &w, r).expect("amounts in range");
        prop_assert_eq!(parts.iter().copied().sum::<Decimal>(), total);
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

// ---------------------------------------------------------------- split deals

/// Shares as people write them, summing to 1: rounded to 2, 4, 6 or 10
/// places with the last share what is left; or n equal shares written to
/// 6 or 10 places (thirds), which sum to 1 only within a millionth.
fn written_shares() -> impl Strategy<Value = Vec<Decimal>> {
    let rounded = (
        prop::collection::vec(1u32..1000, 2..7),
        prop::sample::select(vec![2u32, 4, 6, 10]),
    )
        .prop_filter_map("the last share must be above zero", |(w, places)| {
            let sum = Decimal::from(w.iter().sum::<u32>());
            let mut shares: Vec<Decimal> = w[1..]
                .iter()
                .map(|&x| (Decimal::from(x) / sum).round_dp(places))
                .collect();
            let last = Decimal::ONE - shares.iter().copied().sum::<Decimal>();
            (last > Decimal::ZERO).then(|| {
                shares.insert(0, last);
                shares
            })
        });
    let equal = (2u32..8, prop::sample::select(vec![6u32, 10]))
        .prop_map(|(n, places)| vec![(Decimal::ONE / Decimal::from(n)).round_dp(places); n as usize])
        .prop_filter("shares must sum to 1 within a millionth", |s| {
            (s.iter().copied().sum::<Decimal>() - Decimal::ONE).abs() <= Decimal::new(1, 6)
        });
    prop_oneof![rounded, equal]
}

/// A plan paying one tiered component on credit `deal.amount`, split by `deal.splits`.
fn split_plan(component: &str) -> Snapshot {
    let yaml = format!(
        "apiVersion: dealrules/v1\nkind: IncentivePlan\nmetadata: {{ name: p }}\nspec:\n  period: quarter\n  currency: USD\n  credit: {{ when: 'true', amount: deal.amount, splits: deal.splits }}\n  components:\n    - {component}\n"
    );
    Snapshot::load(PackSource::from_texts([("p.yaml", yaml.as_str())])).unwrap()
}

/// Statements for `deals` (`(id, owner, amount, splits)`) over reps r0..rn.
fn statements(
    s: &Snapshot,
    reps: usize,
    deals: &[(String, usize, Decimal, Option<Vec<Decimal>>)],
    amounts_as_text: bool,
) -> Vec<serde_json::Value> {
    let deals: Vec<serde_json::Value> = deals
        .iter()
        .map(|(id, owner, amount, splits)| {
            let amount = if amounts_as_text { serde_json::json!(amount.to_string()) } else { serde_json::Value::Number(amount.to_string().parse().unwrap()) };
            let mut d = serde_json::json!({"id": id, "owner": format!("r{owner}"), "amount": amount, "closed_at": "2026-02-01"});
            if let Some(shares) = splits {
                let splits: Vec<serde_json::Value> = shares
                    .iter()
                    .enumerate()
                    .map(|(i, share)| serde_json::json!({"rep": format!("r{i}"), "share": serde_json::Value::Number(share.to_string().parse().unwrap())}))
                    .collect();
                d["splits"] = serde_json::Value::Array(splits);
            }
            d
        })
        .collect();
    let reps: Vec<serde_json::Value> = (0..reps).map(|i| serde_json::json!({"id": format!("r{i}")})).collect();
    let input = serde_json::json!({"period": "2026-Q1", "reps": reps, "deals": deals});
    let d = s
        .decide_json("p", &input.to_string(), "2026-04-01")
        .unwrap_or_else(|e| panic!("{e}\n{input}"));
    serde_json::to_value(d).unwrap()["statements"]
        .as_array()
        .unwrap()
        .clone()
}

fn dec(v: &serde_json::Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("{v} is not money"))
        .parse()
        .unwrap()
}

/// What one rep's line pays for `deal`.
fn paid_for(st: &serde_json::Value, deal: &str) -> Decimal {
    st["lines"][0]["by_deal"].get(deal).map(dec).unwrap_or_default()
}

fn cents_above_zero() -> impl Strategy<Value = Decimal> {
    (1i64..100_000_000_000).prop_map(|c| Decimal::new(c, 2))
}

/// A flat rate as people write it: 0.1% to 40% in steps of 0.1%.
fn flat_rate() -> impl Strategy<Value = Decimal> {
    (1i64..=400).prop_map(|r| Decimal::new(r, 3))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    /// A flat rate is linear in credit: however a deal is split, its reps'
    /// amounts for it add up to what the unsplit deal pays, each within one
    /// cent of its exact share, and the credit is split the same way.
    #[test]
    fn a_split_deal_pays_what_the_unsplit_deal_pays(
        amount in cents_above_zero(),
        shares in written_shares(),
        rate in flat_rate(),
        accumulate in prop::sample::select(vec!["period", "deal"]),
        own in prop::collection::vec(0i64..10_000, 0..4),
        as_text in any::<bool>(),
    ) {
        let s = split_plan(&format!("{{ id: c, type: tiered, basis: amount, accumulate: {accumulate}, tiers: [ {{ rate: {rate} }} ] }}"));
        let unsplit = statements(&s, 1, &[("d".into(), 0, amount, None)], as_text);
        let whole = dec(&unsplit[0]["lines"][0]["amount"]);
        prop_assert_eq!(whole, (amount * rate).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero));
        // The reps may also sell deals of their own, which change nothing here.
        let mut deals = vec![("d".to_string(), 0, amount, Some(shares.clone()))];
        deals.extend(own.iter().enumerate().map(|(i, c)| (format!("own{i}"), i % shares.len(), Decimal::new(*c, 2), None)));
        let split = statements(&s, shares.len(), &deals, as_text);
        let total_share: Decimal = shares.iter().copied().sum();
        let unit = Decimal::new(1, 2);
        let mut paid = Decimal::ZERO;
        let mut credited = Decimal::ZERO;
        for (st, share) in split.iter().zip(&shares) {
            let part = paid_for(st, "d");
            let weight = *share / total_share;
            prop_assert!((part - whole * weight).abs() < unit, "{} for a {} share of {}", part, share, whole);
            paid += part;
            let own_credit: Decimal = deals[1..].iter().filter(|d| format!("r{}", d.1) == st["rep"]).map(|d| d.2).sum();
            let credit = dec(&st["credit"]) - own_credit;
            prop_assert!((credit - amount * weight).abs() < unit, "credit {} for a {} share of {}", credit, share, amount);
            credited += credit;
            // Every line is the sum of what it says it pays for each deal.
            let line = &st["lines"][0];
            let by_deal: Decimal = line["by_deal"].as_object().unwrap().values().map(dec).sum();
            prop_assert_eq!(by_deal, dec(&line["amount"]));
        }
        prop_assert_eq!(paid, whole);
        prop_assert_eq!(credited, amount);
    }

    /// Where tiers give the split reps different rates, there is no one
    /// payout for the deal to divide: each rep pays its own credit at its
    /// own rate, rounded once, exactly as if that credit were a deal of its
    /// own. Where they land on one rate, the deal pays as one at that rate.
    /// The credit always adds up to the deal's.
    #[test]
    fn split_reps_on_different_tiers_pay_their_own_credit(
        amount in (1i64..2_000_000).prop_map(|c| Decimal::new(c, 2)),
        shares in written_shares(),
        mode in prop::sample::select(vec!["marginal", "retroactive"]),
    ) {
        let tiers = "[ { upto: 1000, rate: 0.05 }, { upto: 5000, rate: 0.08 }, { rate: 0.12 } ]";
        let s = split_plan(&format!("{{ id: c, type: tiered, basis: amount, mode: {mode}, tiers: {tiers} }}"));
        let split = statements(&s, shares.len(), &[("d".into(), 0, amount, Some(shares.clone()))], false);
        let credits: Vec<Decimal> = split.iter().map(|st| dec(&st["credit"])).collect();
        prop_assert_eq!(credits.iter().copied().sum::<Decimal>(), amount);
        // The one rate a credit is paid at, if it is paid at one.
        let flat = |c: Decimal| -> Option<Decimal> {
            let band = |c: Decimal| if c <= Decimal::from(1000) { Decimal::new(5, 2) } else if c <= Decimal::from(5000) { Decimal::new(8, 2) } else { Decimal::new(12, 2) };
            // No credit (a zero share) is at the first cent's rate.
            match mode {
                "retroactive" => Some(band(c)),
                _ => (c <= Decimal::from(1000)).then(|| Decimal::new(5, 2)),
            }
        };
        let rates: Vec<Option<Decimal>> = credits.iter().map(|c| flat(*c)).collect();
        let paid: Vec<Decimal> = split.iter().map(|st| dec(&st["lines"][0]["amount"])).collect();
        match rates[0] {
            Some(r) if rates.iter().all(|x| *x == Some(r)) => {
                let whole = (amount * r).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
                prop_assert_eq!(paid.iter().copied().sum::<Decimal>(), whole);
            }
            _ => {
                for (credit, p) in credits.iter().zip(&paid) {
                    let alone = statements(&s, 1, &[("d".into(), 0, *credit, None)], false);
                    prop_assert_eq!(*p, dec(&alone[0]["lines"][0]["amount"]), "credit {}", credit);
                }
            }
        }
    }
}
