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
        Targets { name: name.into(), spec: spec.clone() }
    }

    /// A rep's share of the yearly total: the product of its share at every
    /// split level. `even` divides among the reps (or values) that share
    /// every earlier level's value.
    pub fn annual(&self, reps: &[Value], rep_id: &str) -> Result<Decimal, String> {
        let rep = reps.iter().find(|r| field(r, "rep").as_deref() == Some(rep_id)).ok_or_else(|| format!("no rep `{rep_id}` in the input"))?;
        let mut amount = self.spec.total;
        for (level, split) in self.spec.split.iter().enumerate() {
            let value = field(rep, &split.by).ok_or_else(|| format!("rep `{rep_id}` has no `{}` for targets `{}`", split.by, self.name))?;
            let share = match &split.shares {
                Shares::Explicit(m) => *m.get(&value).ok_or_else(|| format!("targets `{}` give no share to {} `{value}`", self.name, split.by))?,
                Shares::Even(_) => {
                    let earlier = &self.spec.split[..level];
                    let same_group = |r: &&Value| earlier.iter().all(|e| field(r, &e.by) == field(rep, &e.by));
                    let mut values: Vec<String> = reps.iter().filter(same_group).filter_map(|r| field(r, &split.by)).collect();
                    values.sort();
                    values.dedup();
                    Decimal::ONE / Decimal::from(values.len().max(1))
                }
            };
            amount *= share;
        }
        Ok(amount)
    }

    /// The share of the year a period carries: its quarter's phasing, a
    /// month's own phasing or a third of its quarter's.
    pub fn phase(&self, period: &Period) -> Decimal {
        let quarter = |q: u32| self.spec.phasing.get(&format!("Q{q}")).copied().unwrap_or(Decimal::new(25, 2));
        match (period.kind, period.month) {
            (PeriodKind::Year, _) => Decimal::ONE,
            (PeriodKind::Quarter, _) => quarter(period.quarter),
            (PeriodKind::Month, Some(m)) => self.spec.phasing.get(&format!("M{m:02}")).copied().unwrap_or_else(|| quarter(period.quarter) / Decimal::from(3)),
            (PeriodKind::Month, None) => Decimal::ZERO,
        }
    }

    /// A rep's target for a period.
    pub fn for_period(&self, reps: &[Value], rep_id: &str, period: &Period) -> Result<Decimal, String> {
        if period.year != self.spec.year {
            return Err(format!("targets `{}` are for {}, not {}", self.name, self.spec.year, period.label));
        }
        Ok(self.annual(reps, rep_id)? * self.phase(period))
    }

    /// `{"reps": [...]}` -> one row per rep for the year and each quarter.
    pub fn decide<'a>(&'a self, version: &'a str, input: &Value) -> Result<TargetsDecision<'a>, DecideError> {
        let reps = match input.get("reps") {
            Some(Value::List(l)) => l.as_slice(),
            _ => return Err(DecideError::BadInput("the input needs `reps`: a list of {id, region, ...}".into())),
        };
        let mut targets = Vec::new();
        let mut by_rep: BTreeMap<String, ()> = BTreeMap::new();
        for r in reps {
            let id = field(r, "rep").ok_or_else(|| DecideError::BadInput("every rep needs an `id`".into()))?;
            if by_rep.insert(id.clone(), ()).is_some() {
                continue;
            }
            let fail = |m: String| DecideError::Policy { policy: self.name.to_string(), message: m };
            let annual = self.annual(reps, &id).map_err(fail)?;
            targets.push(TargetRow { rep: id.clone(), period: self.spec.year.to_string(), amount: round2(annual) });
            for q in 1..=4 {
                let p = Period::parse(&format!("{}-Q{q}", self.spec.year), PeriodKind::Quarter).map_err(fail)?;
                targets.push(TargetRow { rep: id.clone(), period: p.label.clone(), amount: round2(annual * self.phase(&p)) });
            }
        }
        Ok(TargetsDecision { policy: &self.name, kind: "Targets", version, measure: &self.spec.measure, year: self.spec.year, targets })
    }
}

fn round2(d: Decimal) -> Decimal {
    crate::money::Rounding::for_currency("USD").round(d)
}
