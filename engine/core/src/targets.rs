//! Targets: a yearly total decomposed by region, rep (or any rep field)
//! and period (section 7).

use std::collections::BTreeMap;
use std::sync::Arc;

use dealrules_expr::Value;
use dealrules_model::{PeriodKind, Shares, TargetsSpec};
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

    /// The pace ratio under which an alert is raised, when set.
    pub fn pace_alert(&self) -> Option<Decimal> {
        self.spec.pace_alert.as_ref().map(|p| p.below)
    }

    pub fn year(&self) -> i32 {
        self.spec.year
    }

    /// The share of the year a period carries: its quarter's phasing, a
    /// month's own phasing or a third of its quarter's.
    pub fn phase(&self, period: &Period) -> Decimal {
        let quarter = |q: u32| {
            self.spec
                .phasing
                .get(&format!("Q{q}"))
                .copied()
                .unwrap_or(Decimal::new(25, 2))
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
            targets.push(TargetRow {
                rep: id.clone(),
                period: self.spec.year.to_string(),
                amount: round2(annual),
            });
            for q in 1..=4 {
                let p = Period::parse(&format!("{}-Q{q}", self.spec.year), PeriodKind::Quarter).map_err(fail)?;
                let amount = annual
                    .checked_mul(self.phase(&p))
                    .ok_or_else(|| DecideError::Overflow {
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

fn round2(d: Decimal) -> Decimal {
    crate::money::Rounding::for_currency("USD").round(d)
}
