//! IncentivePlan: statements a rep can check by hand (section 6).
//!
//! A decision takes `{"period", "reps", "deals", "history"?}` and gives one
//! statement per rep: credit, quota, attainment, and every line with the
//! deals behind it, its basis, its rate and the arithmetic (`explain`).
//! Each line is rounded once, by the plan's rule; amounts divided among
//! reps or deals are split by largest remainder, so no cent is lost. A
//! deal split among reps who pay it at one rate is paid as one deal and
//! then divided, so the split never invents or loses a cent either.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use dealrules_expr::value::{NumberError, read_decimal};
use dealrules_expr::{Env, Expr, Map, Value, funcs::parse_date};
use dealrules_model::{
    Accumulate, Component, DealRate, Document, IncentivePlanSpec, Kind, Pack, Quota, TierBasis, TierMode,
};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::context::{DocCompiler, base_locals};
use crate::error::DecideError;
use crate::money::{Overflow, Rounding, allocate, checked_sum};
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
    Tiered(TieredDef),
    Rate(RateDef),
    Spiff {
        id: Arc<str>,
        when: Expr,
        amount: Decimal,
    },
    Scorecard {
        id: Arc<str>,
        target_bonus: Decimal,
        metrics: Vec<MetricDef>,
        threshold: Option<Decimal>,
    },
    Script {
        id: Arc<str>,
        script: String,
    },
    Plugin {
        id: Arc<str>,
        plugin: String,
        function: String,
    },
}

#[derive(Debug)]
struct TieredDef {
    id: Arc<str>,
    when: Option<Expr>,
    basis: TierBasis,
    mode: TierMode,
    accumulate: Accumulate,
    tiers: Vec<(Option<Decimal>, Decimal)>,
    cap: Option<Decimal>,
}

/// Each deal's credit times its own rate.
#[derive(Debug)]
struct RateDef {
    id: Arc<str>,
    when: Option<Expr>,
    rate: RateSource,
    cap: Option<Decimal>,
}

#[derive(Debug)]
enum RateSource {
    Fixed(Decimal),
    Expr(Expr),
    /// A DecisionTable's output, decided over `{deal, rep}`.
    Table {
        table: String,
        output: String,
    },
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
    /// The plan version the line was computed under (its
    /// `effective.from`), when the plan has several versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
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

/// One rep's credit from one deal (see [`IncentivePlan::credits`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DealCredit {
    pub deal: String,
    pub rep: String,
    pub credit: Decimal,
    pub closed: NaiveDate,
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
    match r.checked_mul(Decimal::ONE_HUNDRED) {
        Some(pct) => format!("{}%", pct.normalize()),
        // A rate too large to show in percent is shown as it is written.
        None => format!("{} (as a fraction)", r.normalize()),
    }
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
            Component::Tiered(t) => ComponentDef::Tiered(TieredDef {
                id: t.id.as_str().into(),
                when: match &t.when {
                    Some(w) => Some(compile(w)?),
                    None => None,
                },
                basis: t.basis,
                mode: t.mode,
                accumulate: t.accumulate,
                tiers: t.tiers.iter().map(|x| (x.upto, x.rate)).collect(),
                cap: t.cap,
            }),
            Component::Rate(r) => ComponentDef::Rate(RateDef {
                id: r.id.as_str().into(),
                when: match &r.when {
                    Some(w) => Some(compile(w)?),
                    None => None,
                },
                rate: match &r.rate {
                    DealRate::Fixed(x) => RateSource::Fixed(*x),
                    DealRate::Expression(e) => RateSource::Expr(compile(e)?),
                    DealRate::Table(t) => RateSource::Table {
                        table: t.table.clone(),
                        output: t.output.clone(),
                    },
                },
                cap: r.cap,
            }),
            Component::Spiff(s) => ComponentDef::Spiff {
                id: s.id.as_str().into(),
                when: compile(&s.when)?,
                amount: s.amount,
            },
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
                        Some(MetricDef {
                            id: m.id.clone(),
                            weight: m.weight,
                            actual: compile(&m.actual)?,
                            target,
                            cap: m.cap,
                        })
                    })
                    .collect::<Option<_>>()?,
            },
            Component::Script(s) => ComponentDef::Script {
                id: s.id.as_str().into(),
                script: s.script.clone(),
            },
            Component::Plugin(p) => ComponentDef::Plugin {
                id: p.id.as_str().into(),
                plugin: p.plugin.clone(),
                function: p.function.clone(),
            },
        });
    }
    Some(IncentivePlan {
        name: doc.metadata.name.as_str().into(),
        applies_to: spec.applies_to.as_deref().and_then(compile),
        effective: spec
            .effective
            .as_ref()
            .and_then(|e| Some((date(&e.from)?, date(&e.to)?))),
        period: spec.period,
        currency: spec.currency.as_str().into(),
        rounding: spec
            .rounding
            .as_ref()
            .map(|r| Rounding {
                places: r.places,
                mode: r.mode,
            })
            .unwrap_or_else(|| Rounding::for_currency(&spec.currency)),
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

/// The versions of one plan, oldest first: one document, or several
/// sharing a name whose `effective` ranges do not overlap. Each deal is
/// credited under the version in force on its close date.
#[derive(Debug)]
pub struct PlanVersions(Vec<IncentivePlan>);

/// One version's share of a decision over several versions.
struct Part<'v> {
    versions: &'v [IncentivePlan],
    me: usize,
    /// What earlier versions' tiered components counted and paid in the
    /// period: tiers fill with the period's credit across versions.
    earlier: &'v Earlier,
}

/// By rep and tiered component id: the credit earlier versions of a plan
/// counted in the period, and what their lines paid.
#[derive(Default)]
struct Earlier(std::collections::HashMap<(String, String), (Decimal, Decimal)>);

impl Earlier {
    fn of(&self, rep: &str, component: &str) -> (Decimal, Decimal) {
        self.0
            .get(&(rep.to_string(), component.to_string()))
            .copied()
            .unwrap_or_default()
    }

    fn add(&mut self, counted: Vec<(String, String, Decimal, Decimal)>) -> Result<(), Overflow> {
        for (rep, component, credit, paid) in counted {
            let slot = self.0.entry((rep, component)).or_default();
            slot.0 = slot.0.checked_add(credit).ok_or(Overflow)?;
            slot.1 = slot.1.checked_add(paid).ok_or(Overflow)?;
        }
        Ok(())
    }
}

/// By rep and tiered component: the credit the component counted and what
/// its line paid.
type Counted = Vec<(String, String, Decimal, Decimal)>;

impl Part<'_> {
    /// Whether this version takes back a deal cancelled on `cancelled`:
    /// the version in force on its close date does; when none was, the
    /// one in force on the cancellation; else the latest.
    fn governs(&self, closed: NaiveDate, cancelled: NaiveDate) -> bool {
        let in_force = |d: NaiveDate| {
            self.versions
                .iter()
                .position(|v| v.effective.is_some_and(|(from, to)| from <= d && d <= to))
        };
        let owner = in_force(closed)
            .or_else(|| in_force(cancelled))
            .unwrap_or(self.versions.len().saturating_sub(1));
        owner == self.me
    }
}

impl PlanVersions {
    /// Every version, oldest `effective.from` first.
    pub fn versions(&self) -> &[IncentivePlan] {
        &self.0
    }

    pub fn new(plan: IncentivePlan) -> PlanVersions {
        PlanVersions(vec![plan])
    }

    /// Takes the versions of `more` in; versions of one plan pay in one
    /// currency for one kind of period.
    pub fn add(&mut self, more: &mut PlanVersions) -> Result<(), String> {
        for v in more.0.drain(..) {
            let first = &self.0[0];
            if v.currency != first.currency {
                return Err(format!(
                    "this version of `{}` pays in {}, another in {}; the versions of a plan pay in one currency",
                    v.name, v.currency, first.currency
                ));
            }
            if v.period != first.period {
                return Err(format!(
                    "this version of `{}` has period {:?}, another {:?}; the versions of a plan share the period",
                    v.name, v.period, first.period
                ));
            }
            self.0.push(v);
        }
        self.0.sort_by_key(|v| v.effective.map(|(from, _)| from));
        Ok(())
    }

    /// One statement per rep: with one version, that version's; with
    /// several, each version pays the deals that closed while it was in
    /// force (its lines name it), and the draw applies once to the sum.
    pub fn decide<'a>(
        &'a self,
        version: &'a str,
        snapshot: &crate::Snapshot,
        input: &Value,
        now: &str,
    ) -> Result<PlanDecision<'a>, DecideError> {
        if let [only] = self.0.as_slice() {
            return only.decide(version, snapshot, input, now);
        }
        let history = list(input, "history")?;
        let mut parts = Vec::with_capacity(self.0.len());
        let mut earlier = Earlier::default();
        for (me, v) in self.0.iter().enumerate() {
            let part = Part {
                versions: &self.0,
                me,
                earlier: &earlier,
            };
            let (decided, counted) = v.decide_part(version, snapshot, input, now, Some(part))?;
            earlier
                .add(counted)
                .map_err(|_| v.overflow("tiers filled across versions"))?;
            parts.push(decided);
        }
        let latest = &self.0[self.0.len() - 1];
        let mut order: Vec<String> = Vec::new();
        let mut by_rep: BTreeMap<String, Vec<(usize, Statement)>> = BTreeMap::new();
        let mut period = String::new();
        for (k, d) in parts.into_iter().enumerate() {
            period = d.period;
            for s in d.statements {
                let pieces = by_rep.entry(s.rep.clone()).or_default();
                if pieces.is_empty() {
                    order.push(s.rep.clone());
                }
                pieces.push((k, s));
            }
        }
        let mut statements = Vec::with_capacity(order.len());
        for rep in order {
            let pieces = by_rep.remove(&rep).unwrap_or_default();
            let Some((governing, last)) = pieces.last().map(|(k, s)| (&self.0[*k], s.clone())) else {
                continue;
            };
            let overflow = || latest.overflow(format!("statement of rep `{rep}`"));
            let credit = checked_sum(pieces.iter().map(|(_, s)| s.credit)).map_err(|_| overflow())?;
            let lines: Vec<Line> = pieces.into_iter().flat_map(|(_, s)| s.lines).collect();
            let earned = checked_sum(lines.iter().map(|l| l.amount)).map_err(|_| overflow())?;
            let attainment = match last.quota.filter(|q| !q.is_zero()) {
                Some(q) => Some(credit.checked_div(q).ok_or_else(overflow)?.round_dp(4).normalize()),
                None => None,
            };
            let (total, draw) = governing.apply_draw(&rep, earned, history)?;
            let r = governing.rounding;
            statements.push(Statement {
                rep,
                period: period.clone(),
                currency: latest.currency.to_string(),
                credit: r.round(credit),
                quota: last.quota,
                attainment,
                earned: r.round(earned),
                total: r.round(total),
                lines,
                draw,
                pace: last.pace,
            });
        }
        Ok(PlanDecision {
            policy: &latest.name,
            kind: "IncentivePlan",
            version,
            period,
            currency: &latest.currency,
            statements,
        })
    }
}

/// Tier bands in credit units: `(upto, rate)`, the last `upto` may be open.
type Bands = Vec<(Option<Decimal>, Decimal)>;

/// Amounts or shares by rep, in the order the splits name the reps.
type ByRep = Vec<(String, Decimal)>;

/// A deal credited to one rep.
#[derive(Clone)]
struct Credited {
    id: String,
    credit: Decimal,
    deal: Value,
    /// The deal's place in the input: ids are the input's and may repeat.
    index: usize,
}

/// A deal whose credit is split among two or more reps: what it credits
/// as a whole, and each rep's share (a rep named twice has the sum).
struct SplitDeal {
    id: String,
    index: usize,
    credit: Decimal,
    shares: ByRep,
}

/// One rep's part of a split deal that a tiered line pays as one deal:
/// the whole credit at the reps' common rate, rounded once, divided by
/// largest remainder.
#[derive(Debug, Clone)]
struct PaidAsOne {
    rate: Decimal,
    deal_credit: Decimal,
    deal_pays: Decimal,
    share: Decimal,
    part: Decimal,
}

/// A rep's statement before split deals are settled across reps.
struct Draft<'c> {
    rep_id: String,
    mine: &'c [Credited],
    credit: Decimal,
    quota: Option<Decimal>,
    attainment: Option<Decimal>,
    /// One per component, in the plan's order (`None`: no line).
    lines: Vec<Option<Line>>,
    /// One per component: the deals a component's `when` keeps and their
    /// credit (`None`: every deal of the rep).
    views: Vec<Option<View>>,
    /// One per component: what earlier versions of the plan counted and
    /// paid for it in the period (zero but for tiered components).
    earlier: Vec<(Decimal, Decimal)>,
}

/// The credited deals one component counts for one rep.
struct View {
    deals: Vec<Credited>,
    credit: Decimal,
}

impl Draft<'_> {
    /// The deals and credit component `k` counts.
    fn view(&self, k: usize) -> (&[Credited], Decimal) {
        match &self.views[k] {
            Some(v) => (&v.deals, v.credit),
            None => (self.mine, self.credit),
        }
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Str(s) => Some(s.to_string()),
        Value::Num(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A number, or text that reads as one: statements carry money as text,
/// and so do most ERPs. `Ok(None)` for anything else; an error for text
/// written as a number that no exact decimal holds (never a rounded copy).
fn number(v: &Value) -> Result<Option<Decimal>, NumberError> {
    match v {
        Value::Num(n) => Ok(Some(*n)),
        Value::Str(s) => match read_decimal(s.trim()) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.is_number_shaped() => Err(e),
            Err(_) => Ok(None),
        },
        _ => Ok(None),
    }
}

/// What a value is, for "gave ..., not a number" errors.
fn described(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("text `{s}`"),
        other => other.type_name().to_string(),
    }
}

/// A number in an earlier statement of the input's `history`: bad input
/// naming the rep and the field when it is not one.
fn history_number(rep_id: &str, field: &str, v: &Value) -> Result<Decimal, DecideError> {
    match number(v) {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err(DecideError::BadInput(format!(
            "history of rep `{rep_id}`: `{field}` is {}, not a number",
            described(v)
        ))),
        Err(e) => Err(DecideError::BadInput(format!(
            "history of rep `{rep_id}`: `{field}`: {e}"
        ))),
    }
}

/// Amounts by deal id; a deal id the input repeats adds up, never overwrites.
fn by_deal(pairs: impl IntoIterator<Item = (String, Decimal)>) -> Result<BTreeMap<String, Decimal>, Overflow> {
    let mut out: BTreeMap<String, Decimal> = BTreeMap::new();
    for (id, amount) in pairs {
        let slot = out.entry(id).or_default();
        *slot = slot.checked_add(amount).ok_or(Overflow)?;
    }
    Ok(out)
}

fn list<'v>(input: &'v Value, key: &str) -> Result<&'v [Value], DecideError> {
    match input.get(key) {
        Some(Value::List(l)) => Ok(l.as_slice()),
        None | Some(Value::Null) => Ok(&[]),
        Some(other) => Err(DecideError::BadInput(format!(
            "`{key}` must be a list, got {}",
            other.type_name()
        ))),
    }
}

/// The reps whose statements an input asks for (`statements_for`, a list
/// of rep ids), when it asks for some: the other `reps` still count where
/// the plan reads the whole roster (targets split among reps) but get no
/// statement. A server runs a period in batches of reps this way, each
/// batch's input holding the whole roster and the deals that credit its
/// reps; a split deal is paid as one only among the reps asked for, so a
/// batch holds every rep its split deals credit.
fn statements_for(input: &Value) -> Result<Option<std::collections::HashSet<String>>, DecideError> {
    match input.get("statements_for") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::List(ids)) => ids
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    DecideError::BadInput(format!("`statements_for` lists rep ids, not {}", v.type_name()))
                })
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(other) => Err(DecideError::BadInput(format!(
            "`statements_for` must be a list of rep ids, got {}",
            other.type_name()
        ))),
    }
}

impl IncentivePlan {
    /// The version a line names: `effective.from`.
    fn version_tag(&self) -> Option<String> {
        self.effective.map(|(from, _)| from.format("%Y-%m-%d").to_string())
    }

    fn fail(&self, at: impl Into<String>, error: dealrules_expr::EvalError) -> DecideError {
        DecideError::Eval {
            policy: self.name.to_string(),
            at: at.into(),
            error,
        }
    }

    fn policy_error(&self, message: impl Into<String>) -> DecideError {
        DecideError::Policy {
            policy: self.name.to_string(),
            message: message.into(),
        }
    }

    /// Money or a quantity out of range, at `at` (a line, a total, a deal).
    fn overflow(&self, at: impl Into<String>) -> DecideError {
        DecideError::Overflow {
            policy: self.name.to_string(),
            at: at.into(),
        }
    }

    /// A number read from input or computed from it: numbers and numeric
    /// text alike; anything else is an error about `what`.
    fn expect_number(&self, v: &Value, what: impl std::fmt::Display) -> Result<Decimal, DecideError> {
        match number(v) {
            Ok(Some(n)) => Ok(n),
            Ok(None) => Err(self.policy_error(format!("{what} gave {}, not a number", described(v)))),
            Err(e) => Err(self.policy_error(format!("{what}: {e}"))),
        }
    }

    fn locals(&self, now: &Value, totals: Value, quota: Option<Decimal>, period: &Period) -> Vec<Value> {
        vec![
            self.vars.clone(),
            now.clone(),
            totals,
            quota.map(Value::Num).unwrap_or(Value::Null),
            Value::str(&period.label),
            Value::Null,
        ]
    }

    pub fn decide<'a>(
        &'a self,
        version: &'a str,
        snapshot: &crate::Snapshot,
        input: &Value,
        now: &str,
    ) -> Result<PlanDecision<'a>, DecideError> {
        Ok(self.decide_part(version, snapshot, input, now, None)?.0)
    }

    /// Decides the plan; as one `part` of several versions, it credits
    /// only the deals it governs, tags its lines with its version and
    /// leaves the draw to the statement the versions make together.
    fn decide_part<'a>(
        &'a self,
        version: &'a str,
        snapshot: &crate::Snapshot,
        input: &Value,
        now: &str,
        part: Option<Part<'_>>,
    ) -> Result<(PlanDecision<'a>, Counted), DecideError> {
        let bad = |m: String| DecideError::BadInput(m);
        let period_label = input
            .get("period")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("the input needs `period`, such as \"2026-Q1\"".into()))?;
        let period = Period::parse(period_label, self.period).map_err(bad)?;
        let now_value = match input.get("now") {
            Some(Value::Str(s)) => Value::Str(s.clone()),
            _ => Value::str(now),
        };
        let reps = list(input, "reps")?;
        let deals = list(input, "deals")?;
        let history = list(input, "history")?;
        let only = statements_for(input)?;

        // Who the plan applies to.
        let mut eligible: Vec<(String, &Value)> = Vec::new();
        for rep in reps {
            let id = text(rep.get("id")).ok_or_else(|| bad("every rep needs an `id`".into()))?;
            if only.as_ref().is_some_and(|o| !o.contains(id.as_str())) {
                continue;
            }
            let applies = match &self.applies_to {
                None => true,
                Some(e) => {
                    let facts: Map = [("rep".into(), rep.clone())].into_iter().collect();
                    let locals = self.locals(&now_value, Value::Null, None, &period);
                    e.eval_bool(&Env::new(&facts, &locals))
                        .map_err(|err| self.fail(format!("applies_to for rep `{id}`"), err))?
                }
            };
            if applies {
                eligible.push((id, rep));
            }
        }

        // Credit: which deals count, how much, and to whom.
        let mut credited: BTreeMap<String, Vec<Credited>> = BTreeMap::new();
        let mut split_deals: Vec<SplitDeal> = Vec::new();
        let mut cancelled: Vec<(&Value, String, NaiveDate, NaiveDate)> = Vec::new();
        for (index, deal) in deals.iter().enumerate() {
            let id = text(deal.get("id")).ok_or_else(|| bad("every deal needs an `id`".into()))?;
            let closed = match deal.get("closed_at").and_then(Value::as_str) {
                Some(s) => parse_date(s).map_err(|e| bad(format!("deal `{id}`: closed_at: {e}")))?,
                None => continue, // not closed: nothing to credit
            };
            if let Some(c) = deal.get("cancelled_at").and_then(Value::as_str) {
                let c = parse_date(c).map_err(|e| bad(format!("deal `{id}`: cancelled_at: {e}")))?;
                if period.contains(c) && !period.contains(closed) && part.as_ref().is_none_or(|p| p.governs(closed, c))
                {
                    cancelled.push((deal, id.clone(), closed, c));
                }
            }
            if !period.contains(closed) {
                continue;
            }
            let Some((amount, recipients, shares)) = self.credit_of(deal, &id, closed, &period, &now_value)? else {
                continue;
            };
            if recipients.len() > 1 {
                split_deals.push(SplitDeal {
                    id: id.clone(),
                    index,
                    credit: amount,
                    shares,
                });
            }
            for (rep, credit) in recipients {
                credited.entry(rep).or_default().push(Credited {
                    id: id.clone(),
                    credit,
                    deal: deal.clone(),
                    index,
                });
            }
        }

        // Targets are decomposed once for all reps.
        let annual_targets = match &self.quota {
            QuotaDef::Targets(name) => {
                let t = snapshot
                    .targets(name.as_deref())
                    .ok_or_else(|| self.policy_error("no Targets document for `quota: {from: targets}`"))?;
                Some((t, t.annual_all(reps)))
            }
            _ => None,
        };
        let splits_by_index: BTreeMap<usize, &SplitDeal> = split_deals.iter().map(|s| (s.index, s)).collect();
        let mut drafts = Vec::with_capacity(eligible.len());
        for (rep_id, rep) in &eligible {
            let mine: &[Credited] = credited.get(rep_id).map(Vec::as_slice).unwrap_or(&[]);
            let credit = checked_sum(mine.iter().map(|c| c.credit))
                .map_err(|_| self.overflow(format!("credit of rep `{rep_id}`")))?;
            let quota = match &annual_targets {
                Some((t, annual)) => {
                    if period.year != t.year() {
                        return Err(self.policy_error(format!(
                            "targets `{}` are for {}, not {}",
                            t.name,
                            t.year(),
                            period.label
                        )));
                    }
                    let a = annual
                        .get(rep_id)
                        .cloned()
                        .unwrap_or_else(|| Err(format!("targets give rep `{rep_id}` no share")));
                    let annual = a.map_err(|m| self.policy_error(m))?;
                    let scale = t.period_scale(&period).map_err(|m| self.policy_error(m))?;
                    Some(
                        annual
                            .checked_mul(scale)
                            .ok_or_else(|| self.overflow(format!("quota of rep `{rep_id}`")))?,
                    )
                }
                None => self.quota_of(rep_id, rep, &period, &now_value)?,
            };
            let attainment = match quota.filter(|q| !q.is_zero()) {
                Some(q) => Some(
                    credit
                        .checked_div(q)
                        .ok_or_else(|| self.overflow(format!("attainment of rep `{rep_id}`")))?,
                ),
                None => None,
            };
            let new_logos = mine
                .iter()
                .filter(|c| matches!(c.deal.get("new_logo"), Some(Value::Bool(true))))
                .count();
            let totals: Map = [
                ("credit".into(), Value::Num(credit)),
                ("deals".into(), Value::Num(Decimal::from(mine.len()))),
                ("new_logos".into(), Value::Num(Decimal::from(new_logos))),
            ]
            .into_iter()
            .collect();
            let locals = self.locals(&now_value, Value::map(totals), quota, &period);
            let mut lines = Vec::with_capacity(self.components.len());
            let mut views = Vec::with_capacity(self.components.len());
            let mut before = Vec::with_capacity(self.components.len());
            for c in &self.components {
                let view = self.view(c, rep, rep_id, mine, &locals)?;
                let (deals, counted) = view.as_ref().map_or((mine, credit), |v| (&v.deals, v.credit));
                let earlier = match (c, &part) {
                    (ComponentDef::Tiered(t), Some(p)) => p.earlier.of(rep_id, &t.id),
                    _ => (Decimal::ZERO, Decimal::ZERO),
                };
                lines.push(self.component_line(
                    c,
                    snapshot,
                    rep,
                    rep_id,
                    deals,
                    counted,
                    quota,
                    &locals,
                    &splits_by_index,
                    earlier,
                )?);
                views.push(view);
                before.push(earlier);
            }
            drafts.push(Draft {
                rep_id: rep_id.clone(),
                mine,
                credit,
                quota,
                attainment,
                lines,
                views,
                earlier: before,
            });
        }
        if !split_deals.is_empty() {
            for (k, c) in self.components.iter().enumerate() {
                if let ComponentDef::Tiered(t) = c {
                    self.pay_split_deals_as_one(t, k, &split_deals, &mut drafts)?;
                }
            }
        }

        let mut counted: Counted = Vec::new();
        if part.is_some() {
            for d in &drafts {
                for (k, c) in self.components.iter().enumerate() {
                    if let ComponentDef::Tiered(t) = c {
                        let paid = d.lines[k].as_ref().map_or(Decimal::ZERO, |l| l.amount);
                        counted.push((d.rep_id.clone(), t.id.to_string(), d.view(k).1, paid));
                    }
                }
            }
        }
        let mut statements = Vec::with_capacity(drafts.len());
        for d in drafts {
            let Draft {
                rep_id,
                credit,
                quota,
                attainment,
                lines,
                ..
            } = d;
            let mut lines: Vec<Line> = lines.into_iter().flatten().collect();
            lines.extend(self.clawbacks(&rep_id, &cancelled, history)?);
            let earned = checked_sum(lines.iter().map(|l| l.amount))
                .map_err(|_| self.overflow(format!("earned of rep `{rep_id}`")))?;
            let (total, draw) = match &part {
                None => self.apply_draw(&rep_id, earned, history)?,
                Some(_) => (earned, None),
            };
            if part.is_some() {
                let tag = self.version_tag();
                for l in &mut lines {
                    l.version = tag.clone();
                }
            }
            let pace = match (&annual_targets, attainment) {
                (Some((t, _)), Some(att)) => match t.pace_alert() {
                    Some(below) => self.pace(&rep_id, att, below, &now_value, &period)?,
                    None => None,
                },
                _ => None,
            };
            statements.push(Statement {
                rep: rep_id,
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
        Ok((
            PlanDecision {
                policy: &self.name,
                kind: "IncentivePlan",
                version,
                period: period.label,
                currency: &self.currency,
                statements,
            },
            counted,
        ))
    }

    /// What a deal closed on `closed` credits under this plan version, and
    /// to whom: `None` when the version is not in force on that date or the
    /// deal does not count (`credit.when`).
    fn credit_of(
        &self,
        deal: &Value,
        id: &str,
        closed: NaiveDate,
        period: &Period,
        now: &Value,
    ) -> Result<Option<(Decimal, ByRep, ByRep)>, DecideError> {
        if self.effective.is_some_and(|(from, to)| closed < from || closed > to) {
            return Ok(None);
        }
        let facts: Map = [("deal".into(), deal.clone())].into_iter().collect();
        let locals = self.locals(now, Value::Null, None, period);
        let env = Env::new(&facts, &locals);
        if !self
            .credit_when
            .eval_bool(&env)
            .map_err(|e| self.fail(format!("credit.when for deal `{id}`"), e))?
        {
            return Ok(None);
        }
        let value = self
            .credit_amount
            .eval(&env)
            .map_err(|e| self.fail(format!("credit.amount for deal `{id}`"), e))?;
        let amount = self
            .rounding
            .round(self.expect_number(&value, format_args!("credit.amount for deal `{id}`"))?);
        let (recipients, shares) = self.recipients(deal, id, amount, &env)?;
        Ok(Some((amount, recipients, shares)))
    }

    /// Each credit the plan gives for deals closed in `period` (each deal as
    /// a plan input carries it, with `closed_at`): the same `credit.when`,
    /// `credit.amount`, splits, rounding and effective range as a run, so
    /// target progress measures what the plan pays on.
    pub fn credits(&self, period: &Period, deals: &[Value], now: &str) -> Result<Vec<DealCredit>, DecideError> {
        let now = Value::str(now);
        let mut out = Vec::new();
        for deal in deals {
            let id = text(deal.get("id")).ok_or_else(|| DecideError::BadInput("every deal needs an `id`".into()))?;
            let Some(closed) = deal
                .get("closed_at")
                .and_then(Value::as_str)
                .and_then(|s| parse_date(s).ok())
            else {
                continue;
            };
            if !period.contains(closed) {
                continue;
            }
            if let Some((_, recipients, _)) = self.credit_of(deal, &id, closed, period, &now)? {
                for (rep, credit) in recipients {
                    out.push(DealCredit {
                        deal: id.clone(),
                        rep,
                        credit,
                        closed,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Whether what a deal credits under this plan depends only on the
    /// deal (as a plan input carries it), the pack and the period: no
    /// credit rule reads `now` or runs as a script (which may read it).
    /// Such credits can be kept and reused until the deal, its owner's
    /// roster or the pack changes.
    pub fn credit_is_of_the_deal_alone(&self) -> bool {
        let mut exprs = vec![&self.credit_when, &self.credit_amount];
        exprs.extend(self.splits.as_ref());
        dealrules_expr::SlotPlan::build(&exprs, &[]).is_some_and(|p| !p.reads_now())
    }

    /// What decides this version's credits, as canonical text: its name,
    /// effective range, rounding, `credit.when`, `credit.amount`,
    /// `credit.splits` and `vars` (all that [`IncentivePlan::credits`]
    /// evaluates), and nothing else (components, quota, draw...). Two
    /// versions with equal text credit every deal alike.
    pub fn credit_basis(&self) -> String {
        serde_json::json!({
            "plan": &*self.name,
            "effective": self.effective.map(|(from, to)| [from.to_string(), to.to_string()]),
            "rounding": [self.rounding.places.to_string(), format!("{:?}", self.rounding.mode)],
            "when": self.credit_when.source(),
            "amount": self.credit_amount.source(),
            "splits": self.splits.as_ref().map(Expr::source),
            "vars": self.vars.to_json(),
        })
        .to_string()
    }

    /// Whether a deal may credit reps other than its owner (`credit.splits`).
    pub fn splits_credit(&self) -> bool {
        self.splits.is_some()
    }

    /// The deal fields `credit.splits` can read (`None` without splits;
    /// `Interest::All`: the whole deal), so a caller asking whom a deal's
    /// splits name converts no more of the deal than that.
    pub fn splits_interest(&self) -> Option<dealrules_expr::Interest> {
        let splits = self.splits.as_ref()?;
        let mut reads = dealrules_expr::Interest::default();
        splits.collect_interest(&mut reads);
        Some(match reads {
            dealrules_expr::Interest::All => dealrules_expr::Interest::All,
            fields => fields.field("deal").map(|(_, i)| i.clone()).unwrap_or_default(),
        })
    }

    /// The reps `credit.splits` names for a deal closed in `period` (a
    /// deal as a plan input carries it, or its `id`, `closed_at` and the
    /// fields [`IncentivePlan::splits_interest`] names), in the order
    /// named; `None` when the deal closed outside the period or its splits
    /// give no list (it credits its owner at most). `credit.when`,
    /// `credit.amount` and the effective range are not evaluated, so a
    /// deal named here may credit no one: a superset of the deals
    /// [`IncentivePlan::credits`] finds split. An error when the splits
    /// fail or name a rep badly; [`IncentivePlan::credits`] on the whole
    /// deal then says whether the plan's credit fails too.
    pub fn split_reps(&self, period: &Period, deal: &Value, now: &Value) -> Result<Option<Vec<String>>, DecideError> {
        if self.splits.is_none() {
            return Ok(None);
        }
        let id = text(deal.get("id")).ok_or_else(|| DecideError::BadInput("every deal needs an `id`".into()))?;
        let closed = deal
            .get("closed_at")
            .and_then(Value::as_str)
            .and_then(|s| parse_date(s).ok());
        if !closed.is_some_and(|c| period.contains(c)) {
            return Ok(None);
        }
        let facts: Map = [("deal".into(), deal.clone())].into_iter().collect();
        let locals = self.locals(now, Value::Null, None, period);
        let Value::List(parts) = self.splits_of(&id, &Env::new(&facts, &locals))? else {
            return Ok(None);
        };
        parts
            .iter()
            .map(|p| {
                text(p.get("rep")).ok_or_else(|| self.policy_error(format!("a split of deal `{id}` has no `rep`")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Whether the plan's quota comes from the Targets document `name`
    /// (`{from: targets}` names the pack's only one).
    pub fn quota_from_targets(&self, name: &str, only_one: bool) -> bool {
        match &self.quota {
            QuotaDef::Targets(Some(n)) => n == name,
            QuotaDef::Targets(None) => only_one,
            _ => false,
        }
    }

    /// What `credit.splits` gives for a deal: a list of splits, or
    /// anything else (null without splits or when they read a missing
    /// field) for a deal that credits its owner.
    fn splits_of(&self, id: &str, env: &Env<'_>) -> Result<Value, DecideError> {
        let Some(splits) = &self.splits else {
            return Ok(Value::Null);
        };
        match splits.eval(env) {
            Ok(v) => Ok(v),
            Err(dealrules_expr::EvalError::Missing { .. }) => Ok(Value::Null),
            Err(err) => Err(self.fail(format!("credit.splits for deal `{id}`"), err)),
        }
    }

    /// Who a deal credits: its `splits` (shares summing to 1), or its owner.
    /// Gives each rep's credit and each rep's share; a rep named in two
    /// splits of one deal gets one credit with the shares added up.
    fn recipients(
        &self,
        deal: &Value,
        id: &str,
        amount: Decimal,
        env: &Env<'_>,
    ) -> Result<(ByRep, ByRep), DecideError> {
        let Value::List(parts) = self.splits_of(id, env)? else {
            let owner = text(deal.get("owner"))
                .ok_or_else(|| DecideError::BadInput(format!("deal `{id}` has no `owner` and no splits")))?;
            return Ok((vec![(owner.clone(), amount)], vec![(owner, Decimal::ONE)]));
        };
        let mut shares: ByRep = Vec::new();
        for p in parts.iter() {
            let rep =
                text(p.get("rep")).ok_or_else(|| self.policy_error(format!("a split of deal `{id}` has no `rep`")))?;
            let share = match p.get("share").map(number) {
                Some(Ok(Some(share))) => share,
                Some(Err(e)) => return Err(self.policy_error(format!("a split of deal `{id}`: share: {e}"))),
                _ => return Err(self.policy_error(format!("a split of deal `{id}` has no numeric `share`"))),
            };
            match shares.iter_mut().find(|(r, _)| *r == rep) {
                Some((_, s)) => {
                    *s = s
                        .checked_add(share)
                        .ok_or_else(|| self.overflow(format!("the splits of deal `{id}`")))?
                }
                None => shares.push((rep, share)),
            }
        }
        // Thirds cannot be written exactly: a sum within a millionth of 1
        // passes, and the shares are used as weights.
        let total = checked_sum(shares.iter().map(|(_, s)| *s))
            .map_err(|_| self.overflow(format!("the splits of deal `{id}`")))?;
        if total
            .checked_sub(Decimal::ONE)
            .is_none_or(|off| off.abs() > Decimal::new(1, 6))
        {
            return Err(self.policy_error(format!("the splits of deal `{id}` sum to {}, not 1", total.normalize())));
        }
        let weights: Vec<Decimal> = shares.iter().map(|(_, s)| *s).collect();
        let credits = allocate(amount, &weights, self.rounding)
            .map_err(|_| self.overflow(format!("the credit of deal `{id}` split among its reps")))?;
        Ok((shares.iter().map(|(r, _)| r.clone()).zip(credits).collect(), shares))
    }

    fn quota_of(
        &self,
        rep_id: &str,
        rep: &Value,
        period: &Period,
        now: &Value,
    ) -> Result<Option<Decimal>, DecideError> {
        Ok(match &self.quota {
            QuotaDef::None => None,
            QuotaDef::Amount(a) => Some(*a),
            QuotaDef::Expr(e) => {
                let facts: Map = [("rep".into(), rep.clone())].into_iter().collect();
                let locals = self.locals(now, Value::Null, None, period);
                match e
                    .eval(&Env::new(&facts, &locals))
                    .map_err(|err| self.fail(format!("quota for rep `{rep_id}`"), err))?
                {
                    Value::Null => None,
                    other => Some(self.expect_number(&other, format_args!("quota for rep `{rep_id}`"))?),
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
        splits: &BTreeMap<usize, &SplitDeal>,
        earlier: (Decimal, Decimal),
    ) -> Result<Option<Line>, DecideError> {
        let r = self.rounding;
        let money = |d: Decimal| r.round(d).to_string();
        let ids = |cs: &[&Credited]| cs.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        Ok(Some(match c {
            ComponentDef::Tiered(t) => {
                self.tiered_line(t, rep_id, mine, credit, quota, &BTreeMap::new(), earlier)?
                    .0
            }
            ComponentDef::Rate(d) => self.rate_line(d, snapshot, rep, rep_id, mine, credit, locals, splits)?,
            ComponentDef::Spiff { id, when, amount } => {
                let mut hits = Vec::new();
                for c in mine {
                    let facts: Map = [("deal".into(), c.deal.clone()), ("rep".into(), rep.clone())]
                        .into_iter()
                        .collect();
                    if when
                        .eval_bool(&Env::new(&facts, locals))
                        .map_err(|e| self.fail(format!("spiff `{id}` for deal `{}`", c.id), e))?
                    {
                        hits.push(c);
                    }
                }
                if hits.is_empty() {
                    return Ok(None);
                }
                let each = r.round(*amount);
                let total = each
                    .checked_mul(Decimal::from(hits.len()))
                    .ok_or_else(|| self.overflow(format!("spiff `{id}` for rep `{rep_id}`")))?;
                Line {
                    component: id.to_string(),
                    amount: r.round(total),
                    deals: ids(&hits),
                    basis: None,
                    rate: Some(format!("{} per deal", money(each))),
                    explain: format!(
                        "{} deal{} x {}",
                        hits.len(),
                        if hits.len() == 1 { "" } else { "s" },
                        money(each)
                    ),
                    by_deal: by_deal(hits.iter().map(|c| (c.id.clone(), each)))
                        .map_err(|_| self.overflow(format!("spiff `{id}` for rep `{rep_id}`")))?,
                    plugin: None,
                    version: None,
                }
            }
            ComponentDef::Scorecard {
                id,
                target_bonus,
                metrics,
                threshold,
            } => {
                let facts: Map = [("rep".into(), rep.clone())].into_iter().collect();
                let env = Env::new(&facts, locals);
                let overflow = || self.overflow(format!("scorecard `{id}` for rep `{rep_id}`"));
                let mut score = Decimal::ZERO;
                let mut parts = Vec::new();
                for m in metrics {
                    let what = |part: &str| format!("scorecard `{id}` metric `{}` {part} for rep `{rep_id}`", m.id);
                    let actual = m
                        .actual
                        .eval(&env)
                        .map_err(|e| self.fail(format!("scorecard `{id}` metric `{}`", m.id), e))?;
                    let actual = self.expect_number(&actual, what("actual"))?;
                    let target = match &m.target {
                        Ok(t) => *t,
                        Err(e) => {
                            let v = e
                                .eval(&env)
                                .map_err(|err| self.fail(format!("scorecard `{id}` metric `{}` target", m.id), err))?;
                            self.expect_number(&v, what("target"))?
                        }
                    };
                    if target.is_zero() {
                        return Err(self.policy_error(format!("scorecard `{id}` metric `{}` has a target of 0", m.id)));
                    }
                    let att = actual.checked_div(target).ok_or_else(overflow)?;
                    let counted = m.cap.map_or(att, |c| att.min(c));
                    score = m
                        .weight
                        .checked_mul(counted)
                        .and_then(|x| score.checked_add(x))
                        .ok_or_else(overflow)?;
                    parts.push(format!(
                        "{} x {}",
                        m.weight.normalize(),
                        counted.round_dp(4).normalize()
                    ));
                }
                let below = threshold.is_some_and(|t| score < t);
                let amount = r.round(if below {
                    Decimal::ZERO
                } else {
                    target_bonus.checked_mul(score).ok_or_else(overflow)?
                });
                let mut explain = format!(
                    "{} x ({}) = {} x {}",
                    money(*target_bonus),
                    parts.join(" + "),
                    money(*target_bonus),
                    score.round_dp(4).normalize()
                );
                if below {
                    explain.push_str(&format!(
                        "; score below the threshold {}, pays nothing",
                        threshold.unwrap_or_default().normalize()
                    ));
                }
                Line {
                    component: id.to_string(),
                    amount,
                    deals: vec![],
                    basis: Some(score.round_dp(4).normalize()),
                    rate: None,
                    explain,
                    by_deal: BTreeMap::new(),
                    plugin: None,
                    version: None,
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
                let call = snapshot
                    .call_plugin(plugin, function, &Value::map(input).to_json())
                    .map_err(|error| DecideError::Plugin {
                        policy: self.name.to_string(),
                        at: format!("component `{id}`"),
                        error,
                    })?;
                // The answer's digits are read once, exactly: a number with
                // more digits than a decimal holds is refused, not rounded
                // here and then again to cents.
                let answered = |v: &serde_json::Value| -> Result<Option<Decimal>, DecideError> {
                    let refused =
                        |e: NumberError| self.policy_error(format!("plugin `{plugin}` ({function}) answered {v}: {e}"));
                    number(&Value::try_from_json(v).map_err(refused)?).map_err(refused)
                };
                let (amount, explain) = match &call.value {
                    serde_json::Value::Object(m) => (
                        m.get("amount").map(answered).transpose()?.flatten().ok_or_else(|| {
                            self.policy_error(format!(
                                "plugin `{plugin}` ({function}) answered an object without a numeric `amount`"
                            ))
                        })?,
                        m.get("explain")
                            .and_then(|e| e.as_str())
                            .map(str::to_string)
                            .unwrap_or_else(|| format!("plugin {plugin}.{function}")),
                    ),
                    v => (
                        answered(v)?.ok_or_else(|| {
                            self.policy_error(format!("plugin `{plugin}` ({function}) answered {v}, not a number"))
                        })?,
                        format!("plugin {plugin}.{function}"),
                    ),
                };
                Line {
                    component: id.to_string(),
                    amount: r.round(amount),
                    deals: ids(&mine.iter().collect::<Vec<_>>()),
                    basis: None,
                    rate: None,
                    explain,
                    by_deal: BTreeMap::new(),
                    plugin: Some(
                        serde_json::json!({ "plugin": plugin, "function": function, "fuel_used": call.fuel_used, "micros": call.micros }),
                    ),
                    version: None,
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
                    Value::Map(m) => (
                        match m.get("amount") {
                            Some(a) => self.expect_number(a, format_args!("script `{script}` `amount`"))?,
                            None => {
                                return Err(self.policy_error(format!(
                                    "script `{script}` returned a mapping without a numeric `amount`"
                                )));
                            }
                        },
                        m.get("explain")
                            .map(|e| e.to_string())
                            .unwrap_or_else(|| format!("script {script}")),
                    ),
                    other => (
                        self.expect_number(other, format_args!("script `{script}`"))?,
                        format!("script {script}"),
                    ),
                };
                Line {
                    component: id.to_string(),
                    amount: r.round(amount),
                    deals: ids(&mine.iter().collect::<Vec<_>>()),
                    basis: None,
                    rate: None,
                    explain,
                    by_deal: BTreeMap::new(),
                    plugin: None,
                    version: None,
                }
            }
        }))
    }

    /// The deals component `c` counts for a rep when it has a `when`
    /// (`None`: every deal of the rep).
    fn view(
        &self,
        c: &ComponentDef,
        rep: &Value,
        rep_id: &str,
        mine: &[Credited],
        locals: &[Value],
    ) -> Result<Option<View>, DecideError> {
        let (id, when) = match c {
            ComponentDef::Tiered(TieredDef { id, when: Some(w), .. })
            | ComponentDef::Rate(RateDef { id, when: Some(w), .. }) => (id, w),
            _ => return Ok(None),
        };
        let mut deals = Vec::new();
        for c in mine {
            let facts: Map = [("deal".into(), c.deal.clone()), ("rep".into(), rep.clone())]
                .into_iter()
                .collect();
            if when
                .eval_bool(&Env::new(&facts, locals))
                .map_err(|e| self.fail(format!("component `{id}` when for deal `{}`", c.id), e))?
            {
                deals.push(c.clone());
            }
        }
        let credit = checked_sum(deals.iter().map(|c| c.credit))
            .map_err(|_| self.overflow(format!("component `{id}` credit of rep `{rep_id}`")))?;
        Ok(Some(View { deals, credit }))
    }

    /// The rate of one deal for a rate component.
    fn deal_rate(
        &self,
        d: &RateDef,
        snapshot: &crate::Snapshot,
        rep: &Value,
        c: &Credited,
        locals: &[Value],
    ) -> Result<Decimal, DecideError> {
        let id = &d.id;
        let what = || format!("component `{id}` rate for deal `{}`", c.id);
        let rate = match &d.rate {
            RateSource::Fixed(x) => return Ok(*x),
            RateSource::Expr(e) => {
                let facts: Map = [("deal".into(), c.deal.clone()), ("rep".into(), rep.clone())]
                    .into_iter()
                    .collect();
                e.eval(&Env::new(&facts, locals))
                    .map_err(|err| self.fail(what(), err))?
            }
            RateSource::Table { table, output } => {
                let input: Map = [("deal".into(), c.deal.clone()), ("rep".into(), rep.clone())]
                    .into_iter()
                    .collect();
                let now = locals[1].as_str().unwrap_or_default();
                let decided = snapshot
                    .decide(&format!("DecisionTable/{table}"), &Value::map(input), now)
                    .map_err(|e| self.policy_error(format!("{}: {e}", what())))?;
                let crate::Decision::Table(t) = decided else {
                    return Err(self.policy_error(format!("{}: `{table}` is not a DecisionTable", what())));
                };
                if !t.matched {
                    return Err(self.policy_error(format!("{}: table `{table}` has no row for it", what())));
                }
                t.outputs
                    .iter()
                    .find(|(k, _)| *k == output)
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Value::Null)
            }
        };
        let rate = self.expect_number(&rate, what())?;
        if rate < Decimal::ZERO {
            return Err(self.policy_error(format!("{} is negative ({rate})", what())));
        }
        Ok(rate)
    }

    /// A rate component's line: every deal's credit times its own rate,
    /// each rounded once; a split deal is paid as one deal at the rep's
    /// rate and divided by largest remainder; the cap binds the sum.
    #[allow(clippy::too_many_arguments)]
    fn rate_line(
        &self,
        d: &RateDef,
        snapshot: &crate::Snapshot,
        rep: &Value,
        rep_id: &str,
        mine: &[Credited],
        credit: Decimal,
        locals: &[Value],
        splits: &BTreeMap<usize, &SplitDeal>,
    ) -> Result<Line, DecideError> {
        let r = self.rounding;
        let money = |x: Decimal| r.round(x).to_string();
        let id = &d.id;
        let overflow = || self.overflow(format!("component `{id}` for rep `{rep_id}`"));
        let mut parts = Vec::with_capacity(mine.len());
        let mut paid_by_deal = Vec::with_capacity(mine.len());
        let mut rates: Vec<Decimal> = Vec::new();
        for c in mine {
            let rate = self.deal_rate(d, snapshot, rep, c, locals)?;
            if !rates.contains(&rate) {
                rates.push(rate);
            }
            let split = splits
                .get(&c.index)
                .and_then(|s| Some((s, s.shares.iter().position(|(who, _)| who == rep_id)?)));
            let paid = match split {
                Some((s, at)) => {
                    let deal_pays = r.round(s.credit.checked_mul(rate).ok_or_else(overflow)?);
                    let weights: Vec<Decimal> = s.shares.iter().map(|(_, share)| *share).collect();
                    let part = allocate(deal_pays, &weights, r).map_err(|_| overflow())?[at];
                    parts.push(format!(
                        "{}: split deal paid as one, {} x {} = {}, {} of it by largest remainder = {}",
                        c.id,
                        money(s.credit),
                        rate_text(rate),
                        money(deal_pays),
                        rate_text(s.shares[at].1),
                        money(part)
                    ));
                    part
                }
                None => {
                    let paid = r.round(c.credit.checked_mul(rate).ok_or_else(overflow)?);
                    parts.push(format!(
                        "{}: {} x {} = {}",
                        c.id,
                        money(c.credit),
                        rate_text(rate),
                        money(paid)
                    ));
                    paid
                }
            };
            paid_by_deal.push((c.id.clone(), paid));
        }
        let mut by_deal = by_deal(paid_by_deal).map_err(|_| overflow())?;
        let sum = checked_sum(by_deal.values().copied()).map_err(|_| overflow())?;
        let (amount, explain) = apply_cap(sum, parts.join("; "), d.cap, &money);
        let amount = r.round(amount);
        if amount != sum {
            let weights: Vec<Decimal> = by_deal.values().copied().collect();
            let keys: Vec<String> = by_deal.keys().cloned().collect();
            by_deal = keys
                .into_iter()
                .zip(allocate(amount, &weights, r).map_err(|_| overflow())?)
                .collect();
        }
        Ok(Line {
            component: id.to_string(),
            amount,
            deals: mine.iter().map(|c| c.id.clone()).collect(),
            basis: Some(r.round(credit)),
            rate: (!rates.is_empty()).then(|| rates.iter().map(|x| rate_text(*x)).collect::<Vec<_>>().join(" / ")),
            explain: if explain.is_empty() {
                "no credit".into()
            } else {
                explain
            },
            by_deal,
            plugin: None,
            version: None,
        })
    }

    /// A tiered component's bounds in credit units for one rep: attainment
    /// bounds are multiplied by the rep's quota.
    ///
    /// `earlier` is the credit earlier versions of the plan counted in the
    /// period: the bands start where it ends (a band it filled is gone, the
    /// band it reached is what is left of it).
    fn tier_bounds(
        &self,
        t: &TieredDef,
        rep_id: &str,
        quota: Option<Decimal>,
        earlier: Decimal,
    ) -> Result<(Decimal, Bands), DecideError> {
        let id = &t.id;
        let scale = match t.basis {
            TierBasis::Amount => Decimal::ONE,
            TierBasis::Attainment => quota.filter(|q| !q.is_zero()).ok_or_else(|| {
                self.policy_error(format!(
                    "component `{id}` is tiered on attainment, but rep `{rep_id}` has no quota"
                ))
            })?,
        };
        let bounds = t
            .tiers
            .iter()
            .map(|(u, rate)| Ok((u.map(|u| u.checked_mul(scale).ok_or(Overflow)).transpose()?, *rate)))
            .collect::<Result<Bands, Overflow>>()
            .map_err(|_| self.overflow(format!("component `{id}` tier bounds for rep `{rep_id}`")))?;
        if earlier <= Decimal::ZERO {
            return Ok((scale, bounds));
        }
        let last = bounds.last().map(|(_, rate)| *rate);
        let mut left: Bands = bounds
            .into_iter()
            .filter_map(|(upto, rate)| match upto {
                Some(u) if u <= earlier => None,
                // `earlier < u`: the difference fits.
                Some(u) => Some((Some(u - earlier), rate)),
                None => Some((None, rate)),
            })
            .collect();
        if left.is_empty()
            && let Some(rate) = last
        {
            // Past every bound: marginal tiers pay nothing more,
            // retroactive ones the last rate.
            left.push((Some(Decimal::ZERO), rate));
        }
        Ok((scale, left))
    }

    /// One rep's tiered line, and whether its cap bound it. `as_one` holds,
    /// by deal index, the rep's parts of split deals paid as one deal (see
    /// `pay_split_deals_as_one`); the rest of the credit is tiered as usual
    /// and rounded once.
    ///
    /// `earlier` is what earlier versions of the plan counted and paid for
    /// this component in the period: the tiers go on from that credit, and
    /// the cap holds what is left of it.
    #[allow(clippy::too_many_arguments)]
    fn tiered_line(
        &self,
        t: &TieredDef,
        rep_id: &str,
        mine: &[Credited],
        credit: Decimal,
        quota: Option<Decimal>,
        as_one: &BTreeMap<usize, PaidAsOne>,
        earlier: (Decimal, Decimal),
    ) -> Result<(Line, bool), DecideError> {
        let r = self.rounding;
        let money = |d: Decimal| r.round(d).to_string();
        let TieredDef {
            id,
            basis,
            mode,
            accumulate,
            tiers,
            cap,
            ..
        } = t;
        let overflow = || self.overflow(format!("component `{id}` for rep `{rep_id}`"));
        let (scale, bounds) = self.tier_bounds(t, rep_id, quota, earlier.0)?;
        let cap = &cap.map(|c| c.checked_sub(earlier.1).unwrap_or(c).max(Decimal::ZERO));
        let as_one_text = |c: &Credited, p: &PaidAsOne| {
            format!(
                "{}: split deal paid as one, {} x {} = {}, {} of it by largest remainder = {}",
                c.id,
                money(p.deal_credit),
                rate_text(p.rate),
                money(p.deal_pays),
                rate_text(p.share),
                money(p.part)
            )
        };
        let (amount, explain, by_deal, capped) = match accumulate {
            Accumulate::Period if as_one.is_empty() => {
                let (raw, explain) = tier_payout(credit, &bounds, *mode, &money).map_err(|_| overflow())?;
                let rounded = r.round(raw);
                let (amount, explain) = apply_cap(rounded, explain, *cap, &money);
                let amount = r.round(amount);
                let weights: Vec<Decimal> = mine.iter().map(|c| c.credit).collect();
                let shares = allocate(amount, &weights, r).map_err(|_| overflow())?;
                let by_deal = by_deal(mine.iter().map(|c| c.id.clone()).zip(shares)).map_err(|_| overflow())?;
                (amount, explain, by_deal, amount != rounded)
            }
            Accumulate::Period => {
                // The rep's credit is all paid at one rate (the caller
                // checked): the split deals' parts are fixed, and the rest
                // is rounded once and divided over its deals.
                let rate = as_one.values().next().map(|p| p.rate).unwrap_or_default();
                let (pool, fixed): (Vec<&Credited>, Vec<&Credited>) =
                    mine.iter().partition(|c| !as_one.contains_key(&c.index));
                let pool_credit = checked_sum(pool.iter().map(|c| c.credit)).map_err(|_| overflow())?;
                let pool_pays = r.round(pool_credit.checked_mul(rate).ok_or_else(overflow)?);
                let weights: Vec<Decimal> = pool.iter().map(|c| c.credit).collect();
                let shares = allocate(pool_pays, &weights, r).map_err(|_| overflow())?;
                let mut parts = Vec::new();
                if !pool.is_empty() {
                    parts.push(format!(
                        "{} x {} = {}",
                        money(pool_credit),
                        rate_text(rate),
                        money(pool_pays)
                    ));
                }
                parts.extend(fixed.iter().map(|c| as_one_text(c, &as_one[&c.index])));
                let pairs = pool
                    .iter()
                    .map(|c| c.id.clone())
                    .zip(shares)
                    .chain(fixed.iter().map(|c| (c.id.clone(), as_one[&c.index].part)));
                let by_deal = by_deal(pairs).map_err(|_| overflow())?;
                let amount = checked_sum(by_deal.values().copied()).map_err(|_| overflow())?;
                (amount, parts.join("; "), by_deal, cap.is_some_and(|c| amount > c))
            }
            Accumulate::Deal => {
                let mut parts = Vec::new();
                let mut paid_by_deal = Vec::with_capacity(mine.len());
                for c in mine {
                    let paid = match as_one.get(&c.index) {
                        Some(p) => {
                            parts.push(as_one_text(c, p));
                            p.part
                        }
                        None => {
                            let (raw, e) = tier_payout(c.credit, &bounds, *mode, &money).map_err(|_| overflow())?;
                            let paid = r.round(raw);
                            parts.push(format!("{}: {e} = {}", c.id, money(paid)));
                            paid
                        }
                    };
                    paid_by_deal.push((c.id.clone(), paid));
                }
                let mut by_deal = by_deal(paid_by_deal).map_err(|_| overflow())?;
                let sum = checked_sum(by_deal.values().copied()).map_err(|_| overflow())?;
                let (amount, explain) = apply_cap(sum, parts.join("; "), *cap, &money);
                let amount = r.round(amount);
                if amount != sum {
                    let weights: Vec<Decimal> = by_deal.values().copied().collect();
                    let keys: Vec<String> = by_deal.keys().cloned().collect();
                    by_deal = keys
                        .into_iter()
                        .zip(allocate(amount, &weights, r).map_err(|_| overflow())?)
                        .collect();
                }
                (amount, explain, by_deal, amount != sum)
            }
        };
        let rate = tiers
            .iter()
            .map(|(_, rate)| rate_text(*rate))
            .collect::<Vec<_>>()
            .join(" / ");
        let line = Line {
            component: id.to_string(),
            amount,
            deals: mine.iter().map(|c| c.id.clone()).collect(),
            basis: Some(match basis {
                TierBasis::Amount => r.round(credit),
                TierBasis::Attainment => credit.checked_div(scale).ok_or_else(overflow)?.round_dp(4).normalize(),
            }),
            rate: Some(rate),
            explain: match (explain.is_empty(), earlier.0 > Decimal::ZERO) {
                (true, _) => "no credit".into(),
                (false, false) => explain,
                (false, true) => format!(
                    "tiers from {} credited under earlier versions: {explain}",
                    money(earlier.0)
                ),
            },
            by_deal,
            plugin: None,
            version: None,
        };
        Ok((line, capped))
    }

    /// The rate a rep pays on its part of a split deal under `t`, when that
    /// part is paid at one rate: with `accumulate: period`, the rep's whole
    /// credit must sit at one rate; with `accumulate: deal`, the part must.
    fn part_rate(
        t: &TieredDef,
        bounds: &[(Option<Decimal>, Decimal)],
        rep_credit: Decimal,
        part_credit: Decimal,
    ) -> Option<Decimal> {
        match t.accumulate {
            Accumulate::Period => flat_rate(rep_credit, bounds, t.mode),
            Accumulate::Deal => flat_rate(part_credit, bounds, t.mode),
        }
    }

    /// Settles split deals across reps for one tiered component. A split
    /// deal whose reps all pay it at one rate is paid as one deal: its
    /// whole credit at that rate, rounded once, divided among the reps by
    /// their shares (largest remainder). So the reps' parts add up to what
    /// the deal pays unsplit at that rate, to the cent, where rounding
    /// each rep's part on its own could invent or lose one per rep. A rep
    /// whose cap then binds pays by its own tiers instead, and the deals
    /// it shares are settled again without it.
    fn pay_split_deals_as_one(
        &self,
        t: &TieredDef,
        k: usize,
        split_deals: &[SplitDeal],
        drafts: &mut [Draft<'_>],
    ) -> Result<(), DecideError> {
        let r = self.rounding;
        let by_rep: BTreeMap<&str, usize> = drafts.iter().enumerate().map(|(i, d)| (d.rep_id.as_str(), i)).collect();
        let bounds = drafts
            .iter()
            .map(|d| self.tier_bounds(t, &d.rep_id, d.quota, d.earlier[k].0).map(|(_, b)| b))
            .collect::<Result<Vec<_>, _>>()?;
        // Each rep's credit from each split deal, by the deal's index.
        let parts: Vec<BTreeMap<usize, Decimal>> = drafts
            .iter()
            .map(|d| d.view(k).0.iter().map(|c| (c.index, c.credit)).collect())
            .collect();
        let mut left_out = vec![false; drafts.len()];
        loop {
            let mut as_one: Vec<BTreeMap<usize, PaidAsOne>> = vec![BTreeMap::new(); drafts.len()];
            for s in split_deals.iter().filter(|s| s.credit > Decimal::ZERO) {
                let mut rate: Option<Decimal> = None;
                let mut takers = Vec::with_capacity(s.shares.len());
                for (rep, _) in &s.shares {
                    let Some(&i) = by_rep.get(rep.as_str()).filter(|&&i| !left_out[i]) else {
                        break;
                    };
                    let Some(&part) = parts[i].get(&s.index) else { break };
                    match (rate, Self::part_rate(t, &bounds[i], drafts[i].view(k).1, part)) {
                        (None, Some(x)) => rate = Some(x),
                        (Some(a), Some(b)) if a == b => {}
                        _ => break,
                    }
                    takers.push(i);
                }
                let Some(rate) = rate.filter(|_| takers.len() == s.shares.len()) else {
                    continue;
                };
                let overflow = || self.overflow(format!("component `{}`: split deal `{}` paid as one", t.id, s.id));
                let deal_pays = r.round(s.credit.checked_mul(rate).ok_or_else(overflow)?);
                let weights: Vec<Decimal> = s.shares.iter().map(|(_, share)| *share).collect();
                let divided = allocate(deal_pays, &weights, r).map_err(|_| overflow())?;
                for ((i, (_, share)), part) in takers.into_iter().zip(&s.shares).zip(divided) {
                    as_one[i].insert(
                        s.index,
                        PaidAsOne {
                            rate,
                            deal_credit: s.credit,
                            deal_pays,
                            share: *share,
                            part,
                        },
                    );
                }
            }
            let mut settled = Vec::new();
            for (i, paid) in as_one.iter().enumerate().filter(|(_, p)| !p.is_empty()) {
                let d = &drafts[i];
                let (mine, credit) = d.view(k);
                let (line, capped) = self.tiered_line(t, &d.rep_id, mine, credit, d.quota, paid, d.earlier[k])?;
                if capped {
                    left_out[i] = true;
                }
                settled.push((i, line));
            }
            if settled.iter().any(|(i, _)| left_out[*i]) {
                continue;
            }
            for (i, line) in settled {
                // Where paying as one changes nothing, the line keeps the
                // plain arithmetic, which is then just as true.
                let plain = &mut drafts[i].lines[k];
                if plain
                    .as_ref()
                    .is_none_or(|p| p.amount != line.amount || p.by_deal != line.by_deal)
                {
                    *plain = Some(line);
                }
            }
            return Ok(());
        }
    }

    /// Attainment against the share of the period elapsed at `now`.
    fn pace(
        &self,
        rep_id: &str,
        attainment: Decimal,
        below: Decimal,
        now: &Value,
        period: &Period,
    ) -> Result<Option<Pace>, DecideError> {
        let Some(today) = now.as_str().and_then(|n| parse_date(n).ok()) else {
            return Ok(None);
        };
        let done = ((today - period.start).num_days() + 1).clamp(0, period.days());
        let elapsed = Decimal::from(done) / Decimal::from(period.days());
        if elapsed.is_zero() {
            return Ok(None);
        }
        let ratio = attainment
            .checked_div(elapsed)
            .ok_or_else(|| self.overflow(format!("pace of rep `{rep_id}`")))?;
        Ok(Some(Pace {
            elapsed: elapsed.round_dp(4).normalize(),
            attainment: attainment.round_dp(4).normalize(),
            ratio: ratio.round_dp(4).normalize(),
            alert: ratio < below,
            below,
        }))
    }

    /// Takes back what earlier statements paid for deals cancelled within
    /// the clawback window.
    fn clawbacks(
        &self,
        rep_id: &str,
        cancelled: &[(&Value, String, NaiveDate, NaiveDate)],
        history: &[Value],
    ) -> Result<Vec<Line>, DecideError> {
        let Some((within_days, share)) = self.clawback else {
            return Ok(vec![]);
        };
        let mut lines = Vec::new();
        for (_, id, closed, at) in cancelled {
            let days = (*at - *closed).num_days();
            if days > within_days {
                continue;
            }
            let overflow = || self.overflow(format!("clawback of deal `{id}` for rep `{rep_id}`"));
            let mut paid = Decimal::ZERO;
            for st in history.iter().filter(|s| text(s.get("rep")).as_deref() == Some(rep_id)) {
                let Some(Value::List(ls)) = st.get("lines") else {
                    continue;
                };
                for l in ls.iter() {
                    if let Some(v) = l.get("by_deal").and_then(|b| b.get(id)) {
                        let amount = history_number(rep_id, &format!("by_deal.{id}"), v)?;
                        paid = paid.checked_add(amount).ok_or_else(overflow)?;
                    }
                }
            }
            if paid.is_zero() {
                continue;
            }
            let back = self.rounding.round(paid.checked_mul(share).ok_or_else(overflow)?);
            lines.push(Line {
                component: "clawback".into(),
                amount: -back,
                deals: vec![id.clone()],
                basis: Some(paid),
                rate: Some(rate_text(share)),
                explain: format!(
                    "deal {id} cancelled {days} days after close (window {within_days} days): {} paid x {} taken back",
                    self.rounding.round(paid),
                    rate_text(share)
                ),
                by_deal: BTreeMap::from([(id.clone(), -back)]),
                plugin: None,
                version: None,
            });
        }
        Ok(lines)
    }

    /// A draw: recoverable pays at least the draw and carries what it
    /// advanced; non-recoverable pays the larger of earned and draw.
    fn apply_draw(
        &self,
        rep_id: &str,
        earned: Decimal,
        history: &[Value],
    ) -> Result<(Decimal, Option<DrawLine>), DecideError> {
        let Some((amount, recoverable)) = self.draw else {
            return Ok((earned, None));
        };
        let owed_before = match history
            .iter()
            .rev()
            .find(|s| text(s.get("rep")).as_deref() == Some(rep_id))
            .and_then(|s| s.get("draw")?.get("owed_after"))
        {
            Some(v) if recoverable => history_number(rep_id, "draw.owed_after", v)?,
            _ => Decimal::ZERO,
        };
        let overflow = || self.overflow(format!("draw of rep `{rep_id}`"));
        let net = earned.checked_sub(owed_before).ok_or_else(overflow)?;
        let (paid, owed_after) = match (recoverable, net >= amount) {
            (true, true) => (net, Decimal::ZERO),
            (true, false) => (amount, amount.checked_sub(net).ok_or_else(overflow)?),
            (false, _) => (earned.max(amount), Decimal::ZERO),
        };
        let r = self.rounding;
        Ok((
            paid,
            Some(DrawLine {
                amount: r.round(amount),
                recoverable,
                earned: r.round(earned),
                owed_before: r.round(owed_before),
                paid: r.round(paid),
                owed_after: r.round(owed_after),
            }),
        ))
    }
}

/// Tiered payout on `x` over bands `(upto, rate)` (upper bounds inclusive,
/// the last may be open). Marginal pays each band's slice at its rate;
/// retroactive pays all of `x` at the rate of the band `x` falls in.
fn tier_payout(
    x: Decimal,
    tiers: &[(Option<Decimal>, Decimal)],
    mode: TierMode,
    money: &dyn Fn(Decimal) -> String,
) -> Result<(Decimal, String), Overflow> {
    if x <= Decimal::ZERO {
        return Ok((Decimal::ZERO, String::new()));
    }
    match mode {
        TierMode::Retroactive => {
            let rate = retroactive_rate(x, tiers);
            Ok((
                x.checked_mul(rate).ok_or(Overflow)?,
                format!("{} x {}", money(x), rate_text(rate)),
            ))
        }
        TierMode::Marginal => {
            let mut total = Decimal::ZERO;
            let mut parts = Vec::new();
            for (slice, rate) in marginal_slices(x, tiers) {
                total = slice
                    .checked_mul(rate)
                    .and_then(|p| total.checked_add(p))
                    .ok_or(Overflow)?;
                parts.push(format!("{} x {}", money(slice), rate_text(rate)));
            }
            Ok((total, parts.join(" + ")))
        }
    }
}

/// The rate of the band `x` falls in (the last band past every bound).
fn retroactive_rate(x: Decimal, tiers: &[(Option<Decimal>, Decimal)]) -> Decimal {
    tiers
        .iter()
        .find(|(upto, _)| upto.is_none_or(|u| x <= u))
        .or(tiers.last())
        .map_or(Decimal::ZERO, |(_, rate)| *rate)
}

/// The non-empty slices of `x > 0` in each band, with the band's rate.
fn marginal_slices(x: Decimal, tiers: &[(Option<Decimal>, Decimal)]) -> Vec<(Decimal, Decimal)> {
    let mut lower = Decimal::ZERO;
    let mut slices = Vec::new();
    for (upto, rate) in tiers {
        let upper = upto.unwrap_or(Decimal::MAX);
        if x <= lower {
            break;
        }
        // `lower < x <= MAX` and `lower <= upper`: the difference fits.
        let slice = x.min(upper) - lower;
        if slice > Decimal::ZERO {
            slices.push((slice, *rate));
        }
        lower = upper;
    }
    slices
}

/// The one rate a payout on `x` is paid at, when it is `x` times that rate
/// exactly: retroactive tiers always; marginal tiers when every slice of
/// `x` is in a band of the same rate. No credit is paid at the rate the
/// first cent would be (a rep with a zero share of a split deal joins its
/// other reps); a negative credit pays nothing, at no rate.
fn flat_rate(x: Decimal, tiers: &[(Option<Decimal>, Decimal)], mode: TierMode) -> Option<Decimal> {
    if x < Decimal::ZERO {
        return None;
    }
    if x.is_zero() {
        return tiers
            .iter()
            .find(|(upto, _)| upto.is_none_or(|u| u > Decimal::ZERO))
            .map(|(_, rate)| *rate);
    }
    match mode {
        TierMode::Retroactive => Some(retroactive_rate(x, tiers)),
        TierMode::Marginal => {
            let slices = marginal_slices(x, tiers);
            let first = slices.first()?.1;
            slices.iter().all(|(_, rate)| *rate == first).then_some(first)
        }
    }
}

fn apply_cap(
    amount: Decimal,
    explain: String,
    cap: Option<Decimal>,
    money: &dyn Fn(Decimal) -> String,
) -> (Decimal, String) {
    match cap {
        Some(c) if amount > c => (c, format!("{explain} = {}, capped at {}", money(amount), money(c))),
        _ => (amount, explain),
    }
}

impl crate::Snapshot {
    /// Every version of the IncentivePlan `name`, oldest first.
    pub fn plan_versions(&self, name: &str) -> Option<&[IncentivePlan]> {
        match self.compiled(Kind::IncentivePlan, name)? {
            crate::Compiled::Plan(versions) => Some(versions.versions()),
            _ => None,
        }
    }

    /// The IncentivePlan documents (every version of every plan) whose
    /// quota comes from the Targets document `name`.
    pub fn plans_fed_by(&self, name: &str) -> Vec<&IncentivePlan> {
        let first = self
            .entries_of(Kind::Targets)
            .find(|(_, c)| matches!(c, crate::Compiled::Targets(_)))
            .is_some_and(|(n, _)| n == name);
        self.entries_of(Kind::IncentivePlan)
            .flat_map(|(_, c)| match c {
                crate::Compiled::Plan(versions) => versions.versions(),
                _ => &[],
            })
            .filter(|p| p.quota_from_targets(name, first))
            .collect()
    }

    /// A fingerprint of everything that decides what the deals credit
    /// toward the Targets document `name` (see the workflow's kept
    /// credits): the credit rules of each plan version fed by it, in the
    /// order they credit, or, when none is, which stage of each funnel is
    /// won; and the engine's own version. Two pack versions with equal
    /// fingerprints credit every deal alike, so credits kept under one
    /// hold under the other. The Targets document's own figures are not
    /// part of it: they weigh the credits, not make them.
    pub fn credit_basis(&self, name: &str) -> String {
        use sha2::{Digest, Sha256};
        let plans = self.plans_fed_by(name);
        let rules: Vec<String> = if plans.is_empty() {
            let mut funnels: Vec<String> = self
                .entries_of(Kind::Funnel)
                .filter_map(|(n, c)| match c {
                    crate::Compiled::Funnel(f) => Some(
                        serde_json::json!({
                            "funnel": n,
                            "won": (0..f.stages.len()).filter(|&i| f.is_won(i)).map(|i| &*f.stages[i].id).collect::<Vec<_>>(),
                        })
                        .to_string(),
                    ),
                    _ => None,
                })
                .collect();
            funnels.sort();
            funnels
        } else {
            plans.iter().map(|p| p.credit_basis()).collect()
        };
        let text = serde_json::json!({
            "engine": env!("CARGO_PKG_VERSION"),
            "targets": name,
            "plans": !plans.is_empty(),
            "rules": rules,
        })
        .to_string();
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    /// Every Targets document of the pack.
    pub fn all_targets(&self) -> Vec<&crate::targets::Targets> {
        self.entries_of(Kind::Targets)
            .filter_map(|(_, c)| match c {
                crate::Compiled::Targets(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    /// The pack's Targets document by name, or its only one.
    pub fn targets(&self, name: Option<&str>) -> Option<&crate::targets::Targets> {
        self.entries_of(Kind::Targets).find_map(|(n, c)| match c {
            crate::Compiled::Targets(t) if name.is_none_or(|x| x == n) => Some(t),
            _ => None,
        })
    }
}
