//! IncentivePlan: statements a rep can check by hand (section 6).
//!
//! A decision takes `{"period", "reps", "deals", "history"?}` and gives one
//! statement per rep: credit, quota, attainment, and every line with the
//! deals behind it, its basis, its rate and the arithmetic (`explain`).
//! Each line is rounded once, by the plan's rule; amounts divided among
//! reps or deals are split by largest remainder, so no cent is lost.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use dealrules_expr::{funcs::parse_date, Env, Expr, Map, Value};
use dealrules_model::{Accumulate, Component, Document, IncentivePlanSpec, Kind, Pack, Quota, TierBasis, TierMode};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::context::{base_locals, DocCompiler};
use crate::error::DecideError;
use crate::money::{allocate, Rounding};
use crate::period::Period;
use crate::validate::PLAN_LOCALS;

/// Local slots of plan expressions, in `PLAN_LOCALS` order.
const L_TOTALS: usize = 2;
const L_QUOTA: usize = 3;
const L_PERIOD: usize = 4;

#[derive(Debug)]
pub struct IncentivePlan {
    pub name: Arc<str>,
    applies_to: Option<Expr>,
    effective: Option<(NaiveDate, NaiveDate)>,
    period: dealrules_model::PeriodKind,
    currency: Arc<str>,
    rounding: Rounding,
    credit_when: Expr,
    credit_amount: Expr,
    splits: Option<Expr>,
    quota: QuotaDef,
    components: Vec<ComponentDef>,
    clawback: Option<(i64, Decimal)>,
    draw: Option<(Decimal, bool)>,
    vars: Value,
}

#[derive(Debug)]
enum QuotaDef {
    None,
    Amount(Decimal),
    Expr(Expr),
    /// A Targets document (`None`: the pack's only one).
    Targets(Option<String>),
}

#[derive(Debug)]
enum ComponentDef {
    Tiered { id: Arc<str>, basis: TierBasis, mode: TierMode, accumulate: Accumulate, tiers: Vec<(Option<Decimal>, Decimal)>, cap: Option<Decimal> },
    Spiff { id: Arc<str>, when: Expr, amount: Decimal },
    Scorecard { id: Arc<str>, target_bonus: Decimal, metrics: Vec<MetricDef>, threshold: Option<Decimal> },
    Script { id: Arc<str>, script: String },
    Plugin { id: Arc<str>, plugin: String, function: String },
}

#[derive(Debug)]
struct MetricDef {
    id: String,
    weight: Decimal,
    actual: Expr,
    target: Result<Decimal, Expr>,
    cap: Option<Decimal>,
}

/// One line of a statement.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Line {
    pub component: String,
    pub amount: Decimal,
    pub deals: Vec<String>,
    /// What the line was computed on (credit, attainment, score).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basis: Option<Decimal>,
    /// The rate, or the rates, used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    pub explain: String,
    /// The line's amount by deal, for clawbacks in later periods.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_deal: BTreeMap<String, Decimal>,
    /// The plugin call behind a plugin line: its fuel and time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DrawLine {
    pub amount: Decimal,
    pub recoverable: bool,
    pub earned: Decimal,
    pub owed_before: Decimal,
    pub paid: Decimal,
    pub owed_after: Decimal,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Statement {
    pub rep: String,
    pub period: String,
    pub currency: String,
    pub credit: Decimal,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attainment: Option<Decimal>,
    /// The lines added up.
    pub earned: Decimal,
    /// What is paid: `earned`, or the draw's payment.
    pub total: Decimal,
    pub lines: Vec<Line>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draw: Option<DrawLine>,
    /// Attainment against the share of the period elapsed (targets with `pace_alert`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pace: Option<Pace>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Pace {
    /// Share of the period elapsed at `now` (0 to 1).
    pub elapsed: Decimal,
    pub attainment: Decimal,
    /// attainment / elapsed.
    pub ratio: Decimal,
    /// The ratio is under the targets' `pace_alert.below`.
    pub alert: bool,
    pub below: Decimal,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlanDecision<'a> {
    pub policy: &'a str,
    pub kind: &'static str,
    pub version: &'a str,
    pub period: String,
    pub currency: &'a str,
    pub statements: Vec<Statement>,
}

fn rate_text(r: Decimal) -> String {
    format!("{}%", (r * Decimal::from(100)).normalize())
}

pub fn compile(doc: &Document, spec: &IncentivePlanSpec, pack: &Pack, cx: &mut DocCompiler) -> Option<IncentivePlan> {
    let before = cx.diags.len();
    crate::validate::incentive_plan(doc, spec, pack, cx);
    if cx.diags.len() != before {
        return None;
    }
    // Validation compiled every expression already; these cannot fail.
    let compile = |src: &str| cx.engine.compile(src, &PLAN_LOCALS).ok();
    let date = |s: &str| parse_date(s).ok();
    let quota = match &spec.quota {
        None => QuotaDef::None,
        Some(Quota::Amount(a)) => QuotaDef::Amount(*a),
        Some(Quota::Expression(e)) => QuotaDef::Expr(compile(e)?),
        Some(Quota::From(f)) => QuotaDef::Targets((f.from != "targets").then(|| f.from.clone())),
    };
    let mut components = Vec::new();
    for c in &spec.components {
        components.push(match c {
            Component::Tiered(t) => ComponentDef::Tiered {
                id: t.id.as_str().into(),
                basis: t.basis,
                mode: t.mode,
                accumulate: t.accumulate,
                tiers: t.tiers.iter().map(|x| (x.upto, x.rate)).collect(),
                cap: t.cap,
            },
            Component::Spiff(s) => ComponentDef::Spiff { id: s.id.as_str().into(), when: compile(&s.when)?, amount: s.amount },
            Component::Scorecard(s) => ComponentDef::Scorecard {
                id: s.id.as_str().into(),
                target_bonus: s.target_bonus,
                threshold: s.threshold,
                metrics: s
                    .metrics
                    .iter()
                    .map(|m| {
                        let target = match &m.target {
                            serde_json::Value::String(t) => Err(compile(t)?),
                            other => Ok(Value::from_json(other).as_decimal()?),
                        };
                        Some(MetricDef { id: m.id.clone(), weight: m.weight, actual: compile(&m.actual)?, target, cap: m.cap })
                    })
                    .collect::<Option<_>>()?,
            },
            Component::Script(s) => ComponentDef::Script { id: s.id.as_str().into(), script: s.script.clone() },
            Component::Plugin(p) => ComponentDef::Plugin { id: p.id.as_str().into(), plugin: p.plugin.clone(), function: p.function.clone() },
        });
    }
    Some(IncentivePlan {
        name: doc.metadata.name.as_str().into(),
        applies_to: spec.applies_to.as_deref().and_then(compile),
        effective: spec.effective.as_ref().and_then(|e| Some((date(&e.from)?, date(&e.to)?))),
        period: spec.period,
        currency: spec.currency.as_str().into(),
        rounding: spec.rounding.as_ref().map(|r| Rounding { places: r.places, mode: r.mode }).unwrap_or_else(|| Rounding::for_currency(&spec.currency)),
        credit_when: compile(&spec.credit.when)?,
        credit_amount: compile(&spec.credit.amount)?,
        splits: spec.credit.splits.as_deref().and_then(compile),
        quota,
        components,
        clawback: spec.clawback.as_ref().and_then(|c| {
            let d = dealrules_model::duration::parse_duration(&c.within.0).ok()?;
            Some(((d.as_secs() / 86_400) as i64, c.share))
        }),
        draw: spec.draw.as_ref().map(|d| (d.amount, d.recoverable)),
        vars: base_locals(&spec.vars).swap_remove(0),
    })
}

/// A deal credited to one rep.
struct Credited {
    id: String,
    credit: Decimal,
    deal: Value,
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Str(s) => Some(s.to_string()),
        Value::Num(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A number, or text that reads as one (statements carry money as text).
fn number(v: &Value) -> Option<Decimal> {
    match v {
        Value::Num(n) => Some(*n),
        Value::Str(s) => dealrules_expr::value::parse_decimal(s.trim()),
        _ => None,
    }
}

fn list<'v>(input: &'v Value, key: &str) -> Result<&'v [Value], DecideError> {
    match input.get(key) {
        Some(Value::List(l)) => Ok(l.as_slice()),
        None | Some(Value::Null) => Ok(&[]),
        Some(other) => Err(DecideError::BadInput(format!("`{key}` must be a list, got {}", other.type_name()))),
    }
}

impl IncentivePlan {
    fn fail(&self, at: impl Into<String>, error: dealrules_expr::EvalError) -> DecideError {
        DecideError::Eval { policy: self.name.to_string(), at: at.into(), error }
    }

    fn policy_error(&self, message: impl Into<String>) -> DecideError {
        DecideError::Policy { policy: self.name.to_string(), message: message.into() }
    }

    fn locals(&self, now: &Value, totals: Value, quota: Option<Decimal>, period: &Period) -> Vec<Value> {
        vec![self.vars.clone(), now.clone(), totals, quota.map(Value::Num).unwrap_or(Value::Null), Value::str(&period.label), Value::Null]
    }

    pub fn decide<'a>(&'a self, version: &'a str, snapshot: &crate::Snapshot, input: &Value, now: &str) -> Result<PlanDecision<'a>, DecideError> {
        let bad = |m: String| DecideError::BadInput(m);
        let period_label = input.get("period").and_then(Value::as_str).ok_or_else(|| bad("the input needs `period`, such as \"2026-Q1\"".into()))?;
        let period = Period::parse(period_label, self.period).map_err(bad)?;
        let now_value = match input.get("now") {
            Some(Value::Str(s)) => Value::Str(s.clone()),
            _ => Value::str(now),
        };
        let reps = list(input, "reps")?;
        let deals = list(input, "deals")?;
        let history = list(input, "history")?;

        // Who the plan applies to.
        let mut eligible: Vec<(String, &Value)> = Vec::new();
        for rep in reps {
            let id = text(rep.get("id")).ok_or_else(|| bad("every rep needs an `id`".into()))?;
            let applies = match &self.applies_to {
                None => true,
                Some(e) => {
                    let facts: Map = [("rep".into(), rep.clone())].into_iter().collect();
                    let locals = self.locals(&now_value, Value::Null, None, &period);
                    e.eval_bool(&Env::new(&facts, &locals)).map_err(|err| self.fail(format!("applies_to for rep `{id}`"), err))?
                }
            };
            if applies {
                eligible.push((id, rep));
            }
        }

        // Credit: which deals count, how much, and to whom.
        let mut credited: BTreeMap<String, Vec<Credited>> = BTreeMap::new();
        let mut cancelled: Vec<(&Value, String, NaiveDate, NaiveDate)> = Vec::new();
        for deal in deals {
            let id = text(deal.get("id")).ok_or_else(|| bad("every deal needs an `id`".into()))?;
            let closed = match deal.get("closed_at").and_then(Value::as_str) {
                Some(s) => parse_date(s).map_err(|e| bad(format!("deal `{id}`: closed_at: {e}")))?,
                None => continue, // not closed: nothing to credit
            };
            if let Some(c) = deal.get("cancelled_at").and_then(Value::as_str) {
                let c = parse_date(c).map_err(|e| bad(format!("deal `{id}`: cancelled_at: {e}")))?;
                if period.contains(c) && !period.contains(closed) {
                    cancelled.push((deal, id.clone(), closed, c));
                }
            }
            if !period.contains(closed) || self.effective.is_some_and(|(from, to)| closed < from || closed > to) {
                continue;
            }
            let facts: Map = [("deal".into(), deal.clone())].into_iter().collect();
            let locals = self.locals(&now_value, Value::Null, None, &period);
            let env = Env::new(&facts, &locals);
            if !self.credit_when.eval_bool(&env).map_err(|e| self.fail(format!("credit.when for deal `{id}`"), e))? {
                continue;
            }
            let amount = match self.credit_amount.eval(&env).map_err(|e| self.fail(format!("credit.amount for deal `{id}`"), e))? {
                Value::Num(n) => self.rounding.round(n),
                other => return Err(self.policy_error(format!("credit.amount for deal `{id}` gave {}, not a number", other.type_name()))),
            };
            for (rep, credit) in self.recipients(deal, &id, amount, &env)? {
                credited.entry(rep).or_default().push(Credited { id: id.clone(), credit, deal: deal.clone() });
            }
        }

        // Targets are decomposed once for all reps.
        let annual_targets = match &self.quota {
            QuotaDef::Targets(name) => {
                let t = snapshot.targets(name.as_deref()).ok_or_else(|| self.policy_error("no Targets document for `quota: {from: targets}`"))?;
                Some((t, t.annual_all(reps)))
            }
            _ => None,
        };
        let mut statements = Vec::new();
        for (rep_id, rep) in &eligible {
            let mine: &[Credited] = credited.get(rep_id).map(Vec::as_slice).unwrap_or(&[]);
            let credit: Decimal = mine.iter().map(|c| c.credit).sum();
            let quota = match &annual_targets {
                Some((t, annual)) => {
                    if period.year != t.year() {
                        return Err(self.policy_error(format!("targets `{}` are for {}, not {}", t.name, t.year(), period.label)));
                    }
                    let a = annual.get(rep_id).cloned().unwrap_or_else(|| Err(format!("targets give rep `{rep_id}` no share")));
                    Some(a.map_err(|m| self.policy_error(m))? * t.phase(&period))
                }
                None => self.quota_of(rep_id, rep, &period, &now_value)?,
            };
            let attainment = quota.filter(|q| !q.is_zero()).map(|q| credit / q);
            let new_logos = mine.iter().filter(|c| matches!(c.deal.get("new_logo"), Some(Value::Bool(true)))).count();
            let totals: Map = [
                ("credit".into(), Value::Num(credit)),
                ("deals".into(), Value::Num(Decimal::from(mine.len()))),
                ("new_logos".into(), Value::Num(Decimal::from(new_logos))),
            ]
            .into_iter()
            .collect();
            let locals = self.locals(&now_value, Value::map(totals), quota, &period);
            let mut lines = Vec::new();
            for c in &self.components {
                if let Some(line) = self.component_line(c, snapshot, rep, rep_id, mine, credit, quota, &locals)? {
                    lines.push(line);
                }
            }
            lines.extend(self.clawbacks(rep_id, &cancelled, history)?);
            let earned: Decimal = lines.iter().map(|l| l.amount).sum();
            let (total, draw) = self.apply_draw(rep_id, earned, history);
            let pace = match (&annual_targets, attainment) {
                (Some((t, _)), Some(att)) => t.pace_alert().and_then(|below| {
                    let today = parse_date(now_value.as_str()?).ok()?;
                    let done = ((today - period.start).num_days() + 1).clamp(0, period.days());
                    let elapsed = Decimal::from(done) / Decimal::from(period.days());
                    (!elapsed.is_zero()).then(|| {
                        let ratio = att / elapsed;
                        Pace { elapsed: elapsed.round_dp(4).normalize(), attainment: att.round_dp(4).normalize(), ratio: ratio.round_dp(4).normalize(), alert: ratio < below, below }
                    })
                }),
                _ => None,
            };
            statements.push(Statement {
                rep: rep_id.clone(),
                period: period.label.clone(),
                currency: self.currency.to_string(),
                credit: self.rounding.round(credit),
                quota: quota.map(|q| self.rounding.round(q)),
                attainment: attainment.map(|a| a.round_dp(4).normalize()),
                earned: self.rounding.round(earned),
                total: self.rounding.round(total),
                lines,
                draw,
                pace,
            });
        }
        Ok(PlanDecision { policy: &self.name, kind: "IncentivePlan", version, period: period.label, currency: &self.currency, statements })
    }

    /// Who a deal credits: its `splits` (shares summing to 1), or its owner.
    fn recipients(&self, deal: &Value, id: &str, amount: Decimal, env: &Env<'_>) -> Result<Vec<(String, Decimal)>, DecideError> {
        let splits = match &self.splits {
            None => Value::Null,
            Some(e) => match e.eval(env) {
                Ok(v) => v,
                Err(dealrules_expr::EvalError::Missing { .. }) => Value::Null,
                Err(err) => return Err(self.fail(format!("credit.splits for deal `{id}`"), err)),
            },
        };
        let Value::List(parts) = splits else {
            let owner = text(deal.get("owner")).ok_or_else(|| DecideError::BadInput(format!("deal `{id}` has no `owner` and no splits")))?;
            return Ok(vec![(owner, amount)]);
        };
        let mut reps = Vec::new();
        let mut shares = Vec::new();
        for p in parts.iter() {
            let rep = text(p.get("rep")).ok_or_else(|| self.policy_error(format!("a split of deal `{id}` has no `rep`")))?;
            let share = p.get("share").and_then(Value::as_decimal).ok_or_else(|| self.policy_error(format!("a split of deal `{id}` has no numeric `share`")))?;
            reps.push(rep);
            shares.push(share);
        }
        // Thirds cannot be written exactly: a sum within a millionth of 1
        // passes, and the shares are used as weights.
        let total: Decimal = shares.iter().copied().sum();
        if (total - Decimal::ONE).abs() > Decimal::new(1, 6) {
            return Err(self.policy_error(format!("the splits of deal `{id}` sum to {}, not 1", total.normalize())));
        }
        Ok(reps.into_iter().zip(allocate(amount, &shares, self.rounding)).collect())
    }

    fn quota_of(&self, rep_id: &str, rep: &Value, period: &Period, now: &Value) -> Result<Option<Decimal>, DecideError> {
        Ok(match &self.quota {
            QuotaDef::None => None,
            QuotaDef::Amount(a) => Some(*a),
            QuotaDef::Expr(e) => {
                let facts: Map = [("rep".into(), rep.clone())].into_iter().collect();
                let locals = self.locals(now, Value::Null, None, period);
                match e.eval(&Env::new(&facts, &locals)).map_err(|err| self.fail(format!("quota for rep `{rep_id}`"), err))? {
                    Value::Num(n) => Some(n),
                    Value::Null => None,
                    other => return Err(self.policy_error(format!("quota for rep `{rep_id}` gave {}, not a number", other.type_name()))),
                }
            }
            // Targets quotas are decomposed for all reps at once in `decide`.
            QuotaDef::Targets(_) => None,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn component_line(
        &self,
        c: &ComponentDef,
        snapshot: &crate::Snapshot,
        rep: &Value,
        rep_id: &str,
        mine: &[Credited],
        credit: Decimal,
        quota: Option<Decimal>,
        locals: &[Value],
    ) -> Result<Option<Line>, DecideError> {
        let r = self.rounding;
        let money = |d: Decimal| r.round(d).to_string();
        let ids = |cs: &[&Credited]| cs.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        Ok(Some(match c {
            ComponentDef::Tiered { id, basis, mode, accumulate, tiers, cap } => {
                let scale = match basis {
                    TierBasis::Amount => Decimal::ONE,
                    TierBasis::Attainment => quota.filter(|q| !q.is_zero()).ok_or_else(|| self.policy_error(format!("component `{id}` is tiered on attainment, but rep `{rep_id}` has no quota")))?,
                };
                let bounds: Vec<(Option<Decimal>, Decimal)> = tiers.iter().map(|(u, rate)| (u.map(|u| u * scale), *rate)).collect();
                let (amount, explain, by_deal) = match accumulate {
                    Accumulate::Period => {
                        let (raw, explain) = tier_payout(credit, &bounds, *mode, &money);
                        let (amount, explain) = apply_cap(r.round(raw), explain, *cap, &money);
                        let amount = r.round(amount);
                        let weights: Vec<Decimal> = mine.iter().map(|c| c.credit).collect();
                        let shares = allocate(amount, &weights, r);
                        (amount, explain, mine.iter().map(|c| c.id.clone()).zip(shares).collect())
                    }
                    Accumulate::Deal => {
                        let mut parts = Vec::new();
                        let mut by_deal = BTreeMap::new();
                        let mut sum = Decimal::ZERO;
                        for c in mine {
                            let (raw, e) = tier_payout(c.credit, &bounds, *mode, &money);
                            let paid = r.round(raw);
                            parts.push(format!("{}: {e} = {}", c.id, money(paid)));
                            by_deal.insert(c.id.clone(), paid);
                            sum += paid;
                        }
                        let (amount, explain) = apply_cap(sum, parts.join("; "), *cap, &money);
                        let amount = r.round(amount);
                        if amount != sum {
                            let weights: Vec<Decimal> = by_deal.values().copied().collect();
                            let keys: Vec<String> = by_deal.keys().cloned().collect();
                            by_deal = keys.into_iter().zip(allocate(amount, &weights, r)).collect();
                        }
                        (amount, explain, by_deal)
                    }
                };
                let rate = tiers.iter().map(|(_, rate)| rate_text(*rate)).collect::<Vec<_>>().join(" / ");
                Line {
                    component: id.to_string(),
                    amount,
                    deals: ids(&mine.iter().collect::<Vec<_>>()),
                    basis: Some(match basis {
                        TierBasis::Amount => r.round(credit),
                        TierBasis::Attainment => (credit / scale).round_dp(4).normalize(),
                    }),
                    rate: Some(rate),
                    explain: if explain.is_empty() { "no credit".into() } else { explain },
                    by_deal, plugin: None,
}
            }
            ComponentDef::Spiff { id, when, amount } => {
                let mut hits = Vec::new();
                for c in mine {
                    let facts: Map = [("deal".into(), c.deal.clone()), ("rep".into(), rep.clone())].into_iter().collect();
                    if when.eval_bool(&Env::new(&facts, locals)).map_err(|e| self.fail(format!("spiff `{id}` for deal `{}`", c.id), e))? {
                        hits.push(c);
                    }
                }
                if hits.is_empty() {
                    return Ok(None);
                }
                let each = r.round(*amount);
                let total = each * Decimal::from(hits.len());
                Line {
                    component: id.to_string(),
                    amount: r.round(total),
                    deals: ids(&hits),
                    basis: None,
                    rate: Some(format!("{} per deal", money(each))),
                    explain: format!("{} deal{} x {}", hits.len(), if hits.len() == 1 { "" } else { "s" }, money(each)),
                    by_deal: hits.iter().map(|c| (c.id.clone(), each)).collect(), plugin: None,
}
            }
            ComponentDef::Scorecard { id, target_bonus, metrics, threshold } => {
                let facts: Map = [("rep".into(), rep.clone())].into_iter().collect();
                let env = Env::new(&facts, locals);
                let mut score = Decimal::ZERO;
                let mut parts = Vec::new();
                for m in metrics {
                    let num = |v: Value, what: &str| v.as_decimal().ok_or_else(|| self.policy_error(format!("scorecard `{id}` metric `{}`: {what} is {}, not a number", m.id, v.type_name())));
                    let actual = num(m.actual.eval(&env).map_err(|e| self.fail(format!("scorecard `{id}` metric `{}`", m.id), e))?, "actual")?;
                    let target = match &m.target {
                        Ok(t) => *t,
                        Err(e) => num(e.eval(&env).map_err(|err| self.fail(format!("scorecard `{id}` metric `{}` target", m.id), err))?, "target")?,
                    };
                    if target.is_zero() {
                        return Err(self.policy_error(format!("scorecard `{id}` metric `{}` has a target of 0", m.id)));
                    }
                    let att = actual / target;
                    let counted = m.cap.map_or(att, |c| att.min(c));
                    score += m.weight * counted;
                    parts.push(format!("{} x {}", m.weight.normalize(), counted.round_dp(4).normalize()));
                }
                let below = threshold.is_some_and(|t| score < t);
                let amount = r.round(if below { Decimal::ZERO } else { *target_bonus * score });
                let mut explain = format!("{} x ({}) = {} x {}", money(*target_bonus), parts.join(" + "), money(*target_bonus), score.round_dp(4).normalize());
                if below {
                    explain.push_str(&format!("; score below the threshold {}, pays nothing", threshold.unwrap_or_default().normalize()));
                }
                Line {
                    component: id.to_string(),
                    amount,
                    deals: vec![],
                    basis: Some(score.round_dp(4).normalize()),
                    rate: None,
                    explain,
                    by_deal: BTreeMap::new(), plugin: None,
}
            }
            ComponentDef::Plugin { id, plugin, function } => {
                let deals = Value::list(mine.iter().map(|c| c.deal.clone()).collect());
                let input: Map = [
                    ("rep".into(), rep.clone()),
                    ("deals".into(), deals),
                    ("totals".into(), locals[L_TOTALS].clone()),
                    ("quota".into(), locals[L_QUOTA].clone()),
                    ("period".into(), locals[L_PERIOD].clone()),
                ]
                .into_iter()
                .collect();
                let call = snapshot.call_plugin(plugin, function, &Value::map(input).to_json()).map_err(|e| self.policy_error(format!("component `{id}`: {e}")))?;
                let number = |v: &serde_json::Value| number(&Value::from_json(v));
                let (amount, explain) = match &call.value {
                    serde_json::Value::Object(m) => (
                        m.get("amount").and_then(number).ok_or_else(|| self.policy_error(format!("plugin `{plugin}` ({function}) answered an object without a numeric `amount`")))?,
                        m.get("explain").and_then(|e| e.as_str()).map(str::to_string).unwrap_or_else(|| format!("plugin {plugin}.{function}")),
                    ),
                    v => (number(v).ok_or_else(|| self.policy_error(format!("plugin `{plugin}` ({function}) answered {v}, not a number")))?, format!("plugin {plugin}.{function}")),
                };
                Line {
                    component: id.to_string(),
                    amount: r.round(amount),
                    deals: ids(&mine.iter().collect::<Vec<_>>()),
                    basis: None,
                    rate: None,
                    explain,
                    by_deal: BTreeMap::new(),
                    plugin: Some(serde_json::json!({ "plugin": plugin, "function": function, "fuel_used": call.fuel_used, "micros": call.micros })),
                }
            }
            ComponentDef::Script { id, script } => {
                let deals = Value::list(mine.iter().map(|c| c.deal.clone()).collect());
                let input: Map = [
                    ("rep".into(), rep.clone()),
                    ("deals".into(), deals),
                    ("totals".into(), locals[L_TOTALS].clone()),
                    ("quota".into(), locals[L_QUOTA].clone()),
                    ("period".into(), locals[L_PERIOD].clone()),
                    ("vars".into(), self.vars.clone()),
                ]
                .into_iter()
                .collect();
                let out = snapshot.run_script(script, &Value::map(input))?;
                let (amount, explain) = match &out {
                    Value::Num(n) => (*n, format!("script {script}")),
                    Value::Map(m) => (
                        m.get("amount").and_then(Value::as_decimal).ok_or_else(|| self.policy_error(format!("script `{script}` returned a mapping without a numeric `amount`")))?,
                        m.get("explain").map(|e| e.to_string()).unwrap_or_else(|| format!("script {script}")),
                    ),
                    other => return Err(self.policy_error(format!("script `{script}` returned {}, not a number", other.type_name()))),
                };
                Line { component: id.to_string(), amount: r.round(amount), deals: ids(&mine.iter().collect::<Vec<_>>()), basis: None, rate: None, explain, by_deal: BTreeMap::new(), plugin: None }
            }
        }))
    }

    /// Takes back what earlier statements paid for deals cancelled within
    /// the clawback window.
    fn clawbacks(&self, rep_id: &str, cancelled: &[(&Value, String, NaiveDate, NaiveDate)], history: &[Value]) -> Result<Vec<Line>, DecideError> {
        let Some((within_days, share)) = self.clawback else { return Ok(vec![]) };
        let mut lines = Vec::new();
        for (_, id, closed, at) in cancelled {
            let days = (*at - *closed).num_days();
            if days > within_days {
                continue;
            }
            let mut paid = Decimal::ZERO;
            for st in history.iter().filter(|s| text(s.get("rep")).as_deref() == Some(rep_id)) {
                let Some(Value::List(ls)) = st.get("lines") else { continue };
                for l in ls.iter() {
                    if let Some(v) = l.get("by_deal").and_then(|b| b.get(id)) {
                        paid += number(v).unwrap_or_default();
                    }
                }
            }
            if paid.is_zero() {
                continue;
            }
            let back = self.rounding.round(paid * share);
            lines.push(Line {
                component: "clawback".into(),
                amount: -back,
                deals: vec![id.clone()],
                basis: Some(paid),
                rate: Some(rate_text(share)),
                explain: format!("deal {id} cancelled {days} days after close (window {within_days} days): {} paid x {} taken back", self.rounding.round(paid), rate_text(share)),
                by_deal: BTreeMap::from([(id.clone(), -back)]), plugin: None,
});
        }
        Ok(lines)
    }

    /// A draw: recoverable pays at least the draw and carries what it
    /// advanced; non-recoverable pays the larger of earned and draw.
    fn apply_draw(&self, rep_id: &str, earned: Decimal, history: &[Value]) -> (Decimal, Option<DrawLine>) {
        let Some((amount, recoverable)) = self.draw else { return (earned, None) };
        let owed_before = if recoverable {
            history
                .iter()
                .rev()
                .find(|s| text(s.get("rep")).as_deref() == Some(rep_id))
                .and_then(|s| number(s.get("draw")?.get("owed_after")?))
                .unwrap_or_default()
        } else {
            Decimal::ZERO
        };
        let net = earned - owed_before;
        let (paid, owed_after) = match (recoverable, net >= amount) {
            (true, true) => (net, Decimal::ZERO),
            (true, false) => (amount, amount - net),
            (false, _) => (earned.max(amount), Decimal::ZERO),
        };
        let r = self.rounding;
        (paid, Some(DrawLine { amount: r.round(amount), recoverable, earned: r.round(earned), owed_before: r.round(owed_before), paid: r.round(paid), owed_after: r.round(owed_after) }))
    }
}

/// Tiered payout on `x` over bands `(upto, rate)` (upper bounds inclusive,
/// the last may be open). Marginal pays each band's slice at its rate;
/// retroactive pays all of `x` at the rate of the band `x` falls in.
fn tier_payout(x: Decimal, tiers: &[(Option<Decimal>, Decimal)], mode: TierMode, money: &dyn Fn(Decimal) -> String) -> (Decimal, String) {
    if x <= Decimal::ZERO {
        return (Decimal::ZERO, String::new());
    }
    match mode {
        TierMode::Retroactive => {
            let (_, rate) = tiers.iter().find(|(upto, _)| upto.is_none_or(|u| x <= u)).or(tiers.last()).copied().unwrap_or((None, Decimal::ZERO));
            (x * rate, format!("{} x {}", money(x), rate_text(rate)))
        }
        TierMode::Marginal => {
            let mut lower = Decimal::ZERO;
            let mut total = Decimal::ZERO;
            let mut parts = Vec::new();
            for (upto, rate) in tiers {
                let upper = upto.unwrap_or(Decimal::MAX);
                if x <= lower {
                    break;
                }
                let slice = x.min(upper) - lower;
                if slice > Decimal::ZERO {
                    total += slice * rate;
                    parts.push(format!("{} x {}", money(slice), rate_text(*rate)));
                }
                lower = upper;
            }
            (total, parts.join(" + "))
        }
    }
}

fn apply_cap(amount: Decimal, explain: String, cap: Option<Decimal>, money: &dyn Fn(Decimal) -> String) -> (Decimal, String) {
    match cap {
        Some(c) if amount > c => (c, format!("{explain} = {}, capped at {}", money(amount), money(c))),
        _ => (amount, explain),
    }
}

impl crate::Snapshot {
    /// The pack's Targets document by name, or its only one.
    pub fn targets(&self, name: Option<&str>) -> Option<&crate::targets::Targets> {
        self.entries_of(Kind::Targets).find_map(|(n, c)| match c {
            crate::Compiled::Targets(t) if name.is_none_or(|x| x == n) => Some(t),
            _ => None,
        })
    }
}
