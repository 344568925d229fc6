//! Targets: a yearly total decomposed by region, rep (or any rep field)
//! and period (section 7).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use dealrules_expr::Value;
use dealrules_model::{PeriodKind, Shares, TargetAdjustment, TargetsSpec};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::error::DecideError;
use crate::period::Period;

#[derive(Debug)]
pub struct Targets {
    pub name: Arc<str>,
    spec: TargetsSpec,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TargetRow {
    pub rep: String,
    pub period: String,
    pub amount: Decimal,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TargetsDecision<'a> {
    pub policy: &'a str,
    pub kind: &'static str,
    pub version: &'a str,
    pub measure: &'a str,
    pub year: i32,
    pub targets: Vec<TargetRow>,
}

fn field(rep: &Value, by: &str) -> Option<String> {
    let key = if by == "rep" { "id" } else { by };
    match rep.get(key)? {
        Value::Str(s) => Some(s.to_string()),
        Value::Num(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Targets {
    pub fn new(name: &str, spec: &TargetsSpec) -> Targets {
        Targets {
            name: name.into(),
            spec: spec.clone(),
        }
    }

    /// Every rep's yearly target: the total times the rep's share at every
    /// split level. `even` divides among the distinct values (reps, or
    /// regions...) that share every earlier level's value. One pass over
    /// the reps per level, however many reps there are.
    /// A rep the targets cannot place (no region, a region without a share)
    /// gets the reason instead of an amount.
    pub fn annual_all(&self, reps: &[Value]) -> std::collections::HashMap<String, Result<Decimal, String>> {
        use std::collections::{HashMap, HashSet};
        let levels = &self.spec.split;
        // For `even` levels: the distinct values seen within each group of
        // earlier levels' values.
        // Earlier levels' values -> the values seen at this level.
        type Seen = HashMap<Vec<Option<String>>, HashSet<Option<String>>>;
        let mut distinct: Vec<Seen> = vec![HashMap::new(); levels.len()];
        for r in reps {
            let values: Vec<Option<String>> = levels.iter().map(|l| field(r, &l.by)).collect();
            for (i, _) in levels.iter().enumerate() {
                distinct[i]
                    .entry(values[..i].to_vec())
                    .or_default()
                    .insert(values[i].clone());
            }
        }
        let mut out = HashMap::with_capacity(reps.len());
        for r in reps {
            let Some(id) = field(r, "rep") else { continue };
            let values: Vec<Option<String>> = levels.iter().map(|l| field(r, &l.by)).collect();
            let amount = (|| {
                let mut amount = self.spec.total;
                for (i, split) in levels.iter().enumerate() {
                    let value = values[i]
                        .clone()
                        .ok_or_else(|| format!("rep `{id}` has no `{}` for targets `{}`", split.by, self.name))?;
                    let share = match &split.shares {
                        Shares::Explicit(m) => *m.get(&value).ok_or_else(|| {
                            format!("targets `{}` give no share to {} `{value}`", self.name, split.by)
                        })?,
                        Shares::Even(_) => {
                            let n = distinct[i]
                                .get(&values[..i])
                                .map_or(1, |set| set.iter().filter(|v| v.is_some()).count());
                            Decimal::ONE / Decimal::from(n.max(1))
                        }
                    };
                    amount = amount
                        .checked_mul(share)
                        .ok_or_else(|| format!("targets `{}`: the target of rep `{id}` is out of range", self.name))?;
                }
                Ok(amount)
            })();
            out.insert(id, amount);
        }
        out
    }

    /// The year's total in force on `day`: the last adjustment effective
    /// on or before it, else the total.
    pub fn total_on(&self, day: NaiveDate) -> Decimal {
        self.adjustments()
            .filter(|(d, _)| *d <= day)
            .last()
            .map_or(self.spec.total, |(_, a)| a.total)
    }

    fn adjustments(&self) -> impl Iterator<Item = (NaiveDate, &TargetAdjustment)> {
        self.spec
            .adjustments
            .iter()
            .filter_map(|a| Some((NaiveDate::parse_from_str(&a.effective, "%Y-%m-%d").ok()?, a)))
    }

    /// The figures a period's target is made of: each total in force during
    /// part of the period, with the days it covers and why it changed.
    pub fn figures(&self, period: &Period) -> Vec<TargetFigure> {
        let mut out: Vec<TargetFigure> = Vec::new();
        let mut start = period.start;
        let mut current = (self.total_on(period.start), None::<String>);
        if let Some((_, a)) = self.adjustments().filter(|(d, _)| *d <= period.start).last() {
            current.1 = a.reason.clone();
        }
        for (d, a) in self
            .adjustments()
            .filter(|(d, _)| period.start < *d && *d <= period.end)
        {
            out.push(TargetFigure {
                from: start,
                to: d.pred_opt().unwrap_or(d),
                total: current.0,
                reason: current.1.take(),
            });
            start = d;
            current = (a.total, a.reason.clone());
        }
        out.push(TargetFigure {
            from: start,
            to: period.end,
            total: current.0,
            reason: current.1,
        });
        out
    }

    /// What a rep's yearly target (from [`Targets::annual_all`]) is
    /// multiplied by for `period`: the period's phasing, scaled by the
    /// adjustments in force. A period an adjustment cuts in two is counted
    /// month by month, a month so cut day by day: the days before the
    /// effective date at the old total, the rest at the new.
    pub fn period_scale(&self, period: &Period) -> Result<Decimal, String> {
        let overflow = || {
            format!(
                "targets `{}`: the target for {} is out of range",
                self.name, period.label
            )
        };
        let figures = self.figures(period);
        if figures.len() == 1 && figures[0].total == self.spec.total {
            return Ok(self.phase(period));
        }
        if self.spec.total.is_zero() {
            return Err(format!(
                "targets `{}`: a total of 0 cannot be adjusted (shares are taken of it)",
                self.name
            ));
        }
        let mut amount = Decimal::ZERO;
        if figures.len() == 1 {
            amount = figures[0].total.checked_mul(self.phase(period)).ok_or_else(overflow)?;
        } else {
            for month in months_of(period) {
                let phase = self.phase(&month);
                let days = Decimal::from(month.days());
                for f in &figures {
                    let (from, to) = (f.from.max(month.start), f.to.min(month.end));
                    if from > to {
                        continue;
                    }
                    let share = Decimal::from((to - from).num_days() + 1) / days;
                    let part = f
                        .total
                        .checked_mul(phase)
                        .and_then(|x| x.checked_mul(share))
                        .ok_or_else(overflow)?;
                    amount = amount.checked_add(part).ok_or_else(overflow)?;
                }
            }
        }
        amount.checked_div(self.spec.total).ok_or_else(overflow)
    }

    /// The pace alert's settings, when set.
    pub fn pace_settings(&self) -> Option<&dealrules_model::PaceAlert> {
        self.spec.pace_alert.as_ref()
    }

    pub fn measure(&self) -> &str {
        &self.spec.measure
    }

    /// The pace ratio under which an alert is raised, when set.
    pub fn pace_alert(&self) -> Option<Decimal> {
        self.spec.pace_alert.as_ref().map(|p| p.below)
    }

    pub fn year(&self) -> i32 {
        self.spec.year
    }

    /// The share of the year a period carries: its quarter's phasing (when
    /// the phasing is by month, the sum of the quarter's months; a quarter
    /// without phasing is a fourth), a month's own phasing or a third of its
    /// quarter's.
    pub fn phase(&self, period: &Period) -> Decimal {
        let phasing = &self.spec.phasing;
        let by_month = phasing.keys().any(|k| k.starts_with('M'));
        let quarter = |q: u32| match phasing.get(&format!("Q{q}")) {
            Some(share) => *share,
            None if by_month => (3 * q - 2..=3 * q)
                .filter_map(|m| phasing.get(&format!("M{m:02}")))
                .fold(Decimal::ZERO, |a, s| a.saturating_add(*s)),
            None => Decimal::new(25, 2),
        };
        match (period.kind, period.month) {
            (PeriodKind::Year, _) => Decimal::ONE,
            (PeriodKind::Quarter, _) => quarter(period.quarter),
            (PeriodKind::Month, Some(m)) => self
                .spec
                .phasing
                .get(&format!("M{m:02}"))
                .copied()
                .unwrap_or_else(|| quarter(period.quarter) / Decimal::from(3)),
            (PeriodKind::Month, None) => Decimal::ZERO,
        }
    }

    /// `{"reps": [...]}` -> one row per rep for the year and each quarter.
    pub fn decide<'a>(&'a self, version: &'a str, input: &Value) -> Result<TargetsDecision<'a>, DecideError> {
        let reps = match input.get("reps") {
            Some(Value::List(l)) => l.as_slice(),
            _ => {
                return Err(DecideError::BadInput(
                    "the input needs `reps`: a list of {id, region, ...}".into(),
                ));
            }
        };
        let fail = |m: String| DecideError::Policy {
            policy: self.name.to_string(),
            message: m,
        };
        let all = self.annual_all(reps);
        let mut targets = Vec::new();
        let mut by_rep: BTreeMap<String, ()> = BTreeMap::new();
        for r in reps {
            let id = field(r, "rep").ok_or_else(|| DecideError::BadInput("every rep needs an `id`".into()))?;
            if by_rep.insert(id.clone(), ()).is_some() {
                continue;
            }
            let annual = all[&id].clone().map_err(fail)?;
            // The year's row is scaled like the quarters': an adjustment
            // effective mid-year changes it from that day on.
            let year = Period::parse(&self.spec.year.to_string(), PeriodKind::Year).map_err(fail)?;
            let scale = self.period_scale(&year).map_err(fail)?;
            let amount = annual.checked_mul(scale).ok_or_else(|| DecideError::Overflow {
                policy: self.name.to_string(),
                at: format!("target of rep `{id}` for {}", year.label),
            })?;
            targets.push(TargetRow {
                rep: id.clone(),
                period: year.label.clone(),
                amount: round2(amount),
            });
            for q in 1..=4 {
                let p = Period::parse(&format!("{}-Q{q}", self.spec.year), PeriodKind::Quarter).map_err(fail)?;
                let scale = self.period_scale(&p).map_err(fail)?;
                let amount = annual.checked_mul(scale).ok_or_else(|| DecideError::Overflow {
                    policy: self.name.to_string(),
                    at: format!("target of rep `{id}` for {}", p.label),
                })?;
                targets.push(TargetRow {
                    rep: id.clone(),
                    period: p.label.clone(),
                    amount: round2(amount),
                });
            }
        }
        Ok(TargetsDecision {
            policy: &self.name,
            kind: "Targets",
            version,
            measure: &self.spec.measure,
            year: self.spec.year,
            targets,
        })
    }
}

/// One total in force from `from` to `to` (inclusive) within a period.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TargetFigure {
    #[serde(serialize_with = "crate::answer_text::date")]
    pub from: NaiveDate,
    #[serde(serialize_with = "crate::answer_text::date")]
    pub to: NaiveDate,
    /// The year's total in force.
    pub total: Decimal,
    /// Why this figure replaced the one before (the adjustment's reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The months of a period, in order.
pub fn months_of(period: &Period) -> Vec<Period> {
    (1..=12u32)
        .filter_map(|m| Period::parse(&format!("{}-{m:02}", period.year), PeriodKind::Month).ok())
        .filter(|m| period.start <= m.start && m.end <= period.end)
        .collect()
}

fn round2(d: Decimal) -> Decimal {
    crate::money::Rounding::for_currency("USD").round(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the year row of a decision ignored a mid-year adjustment
    /// that the quarter rows applied. One rep holds the whole target: 120,000
    /// a year, 30,000 a quarter (even phasing); from July 1 the total is
    /// 240,000, so Q3 and Q4 are 60,000 each and the year 30,000 x 2 +
    /// 60,000 x 2 = 180,000.
    #[test]
    fn the_year_row_applies_a_mid_year_adjustment() {
        let spec: dealrules_model::TargetsSpec = serde_json::from_value(serde_json::json!({
            "measure": "bookings", "year": 2026, "total": 120000,
            "split": [{"by": "rep", "shares": "even"}],
            "adjustments": [{"effective": "2026-07-01", "total": 240000}]
        }))
        .unwrap();
        let targets = Targets::new("fy2026", &spec);
        let input = Value::from_json(&serde_json::json!({"reps": [{"id": "ana"}]}));
        let decision = targets.decide("v1", &input).unwrap();
        let rows: Vec<(String, String)> = decision
            .targets
            .iter()
            .map(|r| (r.period.clone(), r.amount.to_string()))
            .collect();
        assert_eq!(
            rows,
            [
                ("2026", "180000.00"),
                ("2026-Q1", "30000.00"),
                ("2026-Q2", "30000.00"),
                ("2026-Q3", "60000.00"),
                ("2026-Q4", "60000.00"),
            ]
            .map(|(p, a)| (p.to_string(), a.to_string()))
        );
    }
}
