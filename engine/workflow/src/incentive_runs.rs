//! Incentive runs on stored data: every rep's statement for a period,
//! computed from the stored deals and the roster off the request path,
//! stored with the pack version and the input read; then approved (by an
//! admin other than who started it), published and locked. Also who may
//! read a statement, and the payroll lines of a run.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use dealrules_core::plan_input::period_of;
use dealrules_core::{Decision, Snapshot};
use dealrules_model::Kind;
use dealrules_store::{Run, RunState, StatementRow, timestamp_now};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value as Json;

use crate::error::{WorkflowError, internal};
use crate::period_parts::{Part, PeriodParts};
use crate::runtime::{Actor, Workflow};

/// A part being decided off the runtime.
struct PartJob {
    reps: Vec<String>,
    computing: tokio::task::JoinHandle<Result<Computed, WorkflowError>>,
}

/// What a run came to, part by part.
#[derive(Default)]
struct RunOutcome {
    currency: String,
    total: Decimal,
    /// Statements stored.
    reps: i64,
    /// Parts decided (and stored).
    parts: i64,
    /// Reps some part decided.
    decided: HashSet<String>,
}

fn parse_all(texts: &[String]) -> Result<Vec<Json>, WorkflowError> {
    texts
        .iter()
        .map(|s| serde_json::from_str(s).map_err(internal))
        .collect()
}

/// What stored inputs pay, plan by plan: each with the reps its part
/// decided (`None`: a whole input).
type Pays = Vec<(Option<Vec<String>>, BTreeMap<String, PaidByDeal>)>;

/// Takes in what stored inputs pay: a whole input's reps, or a part's reps
/// (replacing what an earlier part paid them).
fn merge_paid(into: &mut BTreeMap<String, PaidByDeal>, pays: Pays) {
    for (reps, by_plan) in pays {
        for (plan, mut paid) in by_plan {
            let slot = into.entry(plan).or_default();
            match &reps {
                None => slot.extend(paid),
                Some(reps) => {
                    for rep in reps {
                        slot.insert(rep.clone(), paid.remove(rep).unwrap_or_default());
                    }
                }
            }
        }
    }
}

/// A run's statements as computed, ready to store.
pub struct Computed {
    pub statements: Vec<StatementRow>,
    pub currency: String,
    pub total: Decimal,
    /// The plan input (JSON text): with the pack version, enough to
    /// recompute every statement exactly.
    pub input: String,
}

pub use crate::run_progress::{Progress, ProgressBoard, RunProgress};

/// Decides `plan` on `input` with `snapshot`: the statements to store.
pub fn compute(snapshot: &Snapshot, run: &Run, input: &Json, now: &str) -> Result<Computed, WorkflowError> {
    let value = dealrules_expr::Value::from_json(input);
    let decision = snapshot.decide(&run.plan, &value, now)?;
    let Decision::Plan(plan) = decision else {
        return Err(WorkflowError::Unprocessable(format!(
            "`{}` is not an IncentivePlan",
            run.plan
        )));
    };
    let mut total = Decimal::ZERO;
    let mut statements = Vec::with_capacity(plan.statements.len());
    for s in &plan.statements {
        total = total
            .checked_add(s.total)
            .ok_or_else(|| WorkflowError::Unprocessable(format!("the total of run {} overflows", run.id)))?;
        statements.push(StatementRow {
            run_id: run.id.clone(),
            rep: s.rep.clone(),
            plan: run.plan.clone(),
            period: run.period.clone(),
            total: s.total.to_string(),
            body: serde_json::to_string(s).map_err(internal)?,
        });
    }
    Ok(Computed {
        statements,
        currency: plan.currency.to_string(),
        total,
        input: serde_json::to_string(input).map_err(internal)?,
    })
}

/// The plans of a run: one, or several joined by `+` (a run of several
/// plans for one period; plan names never hold a `+`).
pub fn plans_of(run: &Run) -> Vec<&str> {
    run.plan.split('+').collect()
}

/// Decides each plan of a run of several on its own input and gives one
/// statement per rep with each plan's lines (each line names its plan),
/// `plans` (what each plan pays the rep) and the sums. The plans must pay
/// in one currency.
pub fn compute_plans(
    snapshot: &Snapshot,
    run: &Run,
    inputs: &[(String, Json)],
    now: &str,
) -> Result<Computed, WorkflowError> {
    let overflow = || WorkflowError::Unprocessable(format!("the total of run {} overflows", run.id));
    let mut currency: Option<String> = None;
    let mut order: Vec<String> = Vec::new();
    let mut by_rep: BTreeMap<String, Vec<(String, Json)>> = BTreeMap::new();
    for (plan, input) in inputs {
        let value = dealrules_expr::Value::from_json(input);
        let Decision::Plan(decision) = snapshot.decide(plan, &value, now)? else {
            return Err(WorkflowError::Unprocessable(format!(
                "`{plan}` is not an IncentivePlan"
            )));
        };
        match &currency {
            Some(c) if c != decision.currency => {
                return Err(WorkflowError::Unprocessable(format!(
                    "`{plan}` pays in {}, the run's other plans in {c}; a run of several plans pays in one currency",
                    decision.currency
                )));
            }
            _ => currency = Some(decision.currency.to_string()),
        }
        for st in &decision.statements {
            let pieces = by_rep.entry(st.rep.clone()).or_default();
            if pieces.is_empty() {
                order.push(st.rep.clone());
            }
            pieces.push((plan.clone(), serde_json::to_value(st).map_err(internal)?));
        }
    }
    let currency = currency.unwrap_or_default();
    let mut total = Decimal::ZERO;
    let mut statements = Vec::with_capacity(order.len());
    for rep in order {
        let pieces = by_rep.remove(&rep).unwrap_or_default();
        let mut credit = Decimal::ZERO;
        let mut earned = Decimal::ZERO;
        let mut paid = Decimal::ZERO;
        let mut lines = Vec::new();
        let mut plans = Vec::new();
        for (plan, st) in pieces {
            credit = credit
                .checked_add(decimal(&st["credit"], "a statement's credit")?)
                .ok_or_else(overflow)?;
            earned = earned
                .checked_add(decimal(&st["earned"], "a statement's earned")?)
                .ok_or_else(overflow)?;
            paid = paid
                .checked_add(decimal(&st["total"], "a statement's total")?)
                .ok_or_else(overflow)?;
            for line in st["lines"].as_array().into_iter().flatten() {
                let mut line = line.clone();
                line["plan"] = Json::String(plan.clone());
                lines.push(line);
            }
            let mut summary = serde_json::Map::new();
            summary.insert("plan".into(), Json::String(plan.clone()));
            for k in ["credit", "quota", "attainment", "earned", "total", "draw"] {
                if let Some(v) = st.get(k) {
                    summary.insert(k.into(), v.clone());
                }
            }
            plans.push(Json::Object(summary));
        }
        total = total.checked_add(paid).ok_or_else(overflow)?;
        let body = serde_json::json!({
            "rep": rep,
            "period": run.period,
            "currency": currency,
            "credit": credit.to_string(),
            "earned": earned.to_string(),
            "total": paid.to_string(),
            "lines": lines,
            "plans": plans,
        });
        statements.push(StatementRow {
            run_id: run.id.clone(),
            rep,
            plan: run.plan.clone(),
            period: run.period.clone(),
            total: paid.to_string(),
            body: serde_json::to_string(&body).map_err(internal)?,
        });
    }
    let input: serde_json::Map<String, Json> = inputs.iter().map(|(p, i)| (p.clone(), i.clone())).collect();
    Ok(Computed {
        statements,
        currency,
        total,
        input: serde_json::to_string(&serde_json::json!({ "plans": input })).map_err(internal)?,
    })
}

/// What each rep is paid deal by deal: rep -> deal -> amount, with the
/// deal `""` for what lines not tied to deals pay.
pub type PaidByDeal = BTreeMap<String, BTreeMap<String, Decimal>>;

/// What a plan's decision pays each rep, deal by deal, from the lines a
/// plan earns (clawbacks and adjustments left out).
pub fn paid_by_deal(snapshot: &Snapshot, plan: &str, input: &Json, now: &str) -> Result<PaidByDeal, WorkflowError> {
    let value = dealrules_expr::Value::from_json(input);
    let Decision::Plan(decision) = snapshot.decide(plan, &value, now)? else {
        return Err(WorkflowError::Unprocessable(format!(
            "`{plan}` is not an IncentivePlan"
        )));
    };
    let overflow = || WorkflowError::Unprocessable(format!("an adjustment of `{plan}` overflows"));
    let mut out: PaidByDeal = BTreeMap::new();
    for st in &decision.statements {
        let mine = out.entry(st.rep.clone()).or_default();
        for line in st
            .lines
            .iter()
            .filter(|l| l.component != "clawback" && l.component != "adjustment")
        {
            let mut rest = line.amount;
            for (deal, amount) in &line.by_deal {
                let slot = mine.entry(deal.clone()).or_default();
                *slot = slot.checked_add(*amount).ok_or_else(overflow)?;
                rest = rest.checked_sub(*amount).ok_or_else(overflow)?;
            }
            let slot = mine.entry(String::new()).or_default();
            *slot = slot.checked_add(rest).ok_or_else(overflow)?;
        }
    }
    Ok(out)
}

/// A locked period to adjust: its run, what the locked run paid deal by
/// deal (from the inputs it stored) and what the plans pay on the period
/// as the store holds it now, plan by plan.
pub struct LockedPeriod {
    pub run: Run,
    pub before: BTreeMap<String, PaidByDeal>,
    pub after: BTreeMap<String, PaidByDeal>,
    /// The period's deals cancelled since (left to the clawback).
    pub cancelled: HashSet<String>,
}

impl LockedPeriod {
    /// The reps either side pays.
    fn reps(&self) -> impl Iterator<Item = &String> {
        self.before.values().chain(self.after.values()).flat_map(|m| m.keys())
    }
}

/// Adjustment lines of `plan` for `reps`, by rep: for each locked period,
/// what the plan pays on the deals as they are now minus what it paid on
/// the input the locked run read (both under one snapshot, so only changed
/// data moves money), minus the adjustments earlier statements (`history`)
/// already paid for that period. One line per deal that moved, and one for
/// lines not tied to deals; they add up to the difference exactly. Deals
/// with a `cancelled_at` are left to the clawback. In a run of several
/// plans (`tag`), each line names its plan and only the plan's earlier
/// adjustments count.
pub fn adjustment_lines(
    plan: &str,
    tag: bool,
    locked: &[LockedPeriod],
    history: &[Json],
    reps: &[String],
) -> Result<BTreeMap<String, Vec<Json>>, WorkflowError> {
    let overflow = || WorkflowError::Unprocessable(format!("an adjustment of `{plan}` overflows"));
    let empty = BTreeMap::new();
    let mut out: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    for l in locked {
        let period = &l.run.period;
        for rep in reps {
            let before = l.before.get(plan).and_then(|m| m.get(rep)).unwrap_or(&empty);
            let after = l.after.get(plan).and_then(|m| m.get(rep)).unwrap_or(&empty);
            if before.is_empty() && after.is_empty() {
                continue;
            }
            let mut already: BTreeMap<String, Decimal> = BTreeMap::new();
            for st in history.iter().filter(|st| st["rep"].as_str() == Some(rep.as_str())) {
                for line in st["lines"].as_array().into_iter().flatten() {
                    if line["component"] != "adjustment" || line["adjusts"].as_str() != Some(period) {
                        continue;
                    }
                    if tag && line["plan"].as_str() != Some(plan) {
                        continue;
                    }
                    let deal = line["deals"][0].as_str().unwrap_or_default().to_string();
                    let amount = decimal(&line["amount"], "an adjustment's amount")?;
                    let slot = already.entry(deal).or_default();
                    *slot = slot.checked_add(amount).ok_or_else(overflow)?;
                }
            }
            let deals: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
            for deal in deals {
                if l.cancelled.contains(deal.as_str()) {
                    continue;
                }
                let was = before.get(deal).copied().unwrap_or_default();
                let is = after.get(deal).copied().unwrap_or_default();
                let paid = already.get(deal).copied().unwrap_or_default();
                let delta = is
                    .checked_sub(was)
                    .and_then(|d| d.checked_sub(paid))
                    .ok_or_else(overflow)?;
                if delta.is_zero() {
                    continue;
                }
                let sign = if delta > Decimal::ZERO { "+" } else { "" };
                let earlier = if paid.is_zero() {
                    String::new()
                } else {
                    format!(", {paid} adjusted already")
                };
                let (deals, by_deal, explain) = if deal.is_empty() {
                    (
                        serde_json::json!([]),
                        serde_json::json!({}),
                        format!(
                            "{period} (locked, run {}): lines not tied to a deal paid {was}, pay {is} now{earlier}: {sign}{delta}",
                            l.run.id
                        ),
                    )
                } else {
                    (
                        serde_json::json!([deal]),
                        serde_json::json!({ deal: delta.to_string() }),
                        format!(
                            "deal {deal} in {period} (locked, run {}): paid {was}, pays {is} now{earlier}: {sign}{delta}",
                            l.run.id
                        ),
                    )
                };
                let mut line = serde_json::json!({
                    "component": "adjustment",
                    "amount": delta.to_string(),
                    "deals": deals,
                    "adjusts": period,
                    "locked_run": l.run.id,
                    "explain": explain,
                    "by_deal": by_deal,
                });
                if tag {
                    line["plan"] = Json::String(plan.to_string());
                }
                out.entry(rep.clone()).or_default().push(line);
            }
        }
    }
    Ok(out)
}

/// Adds adjustment lines to a run's computed statements: each rep's
/// `earned` and `total` grow by their sum (after the draw), and a rep
/// with adjustments but no statement gets one of adjustments only.
pub fn apply_adjustments(
    run: &Run,
    computed: &mut Computed,
    mut lines: BTreeMap<String, Vec<Json>>,
) -> Result<(), WorkflowError> {
    if lines.is_empty() {
        return Ok(());
    }
    let overflow = || WorkflowError::Unprocessable(format!("the adjustments of run {} overflow", run.id));
    let add = |body: &mut Json, extra: Vec<Json>| -> Result<Decimal, WorkflowError> {
        let mut sum = Decimal::ZERO;
        for l in &extra {
            sum = sum
                .checked_add(decimal(&l["amount"], "an adjustment")?)
                .ok_or_else(overflow)?;
        }
        for k in ["earned", "total"] {
            let v = decimal(&body[k], k)?.checked_add(sum).ok_or_else(overflow)?;
            body[k] = Json::String(v.to_string());
        }
        if let Some(ls) = body["lines"].as_array_mut() {
            ls.extend(extra);
        }
        Ok(sum)
    };
    for row in &mut computed.statements {
        let Some(extra) = lines.remove(&row.rep) else {
            continue;
        };
        let mut body: Json = serde_json::from_str(&row.body).map_err(internal)?;
        let sum = add(&mut body, extra)?;
        computed.total = computed.total.checked_add(sum).ok_or_else(overflow)?;
        row.total = body["total"].as_str().unwrap_or_default().to_string();
        row.body = serde_json::to_string(&body).map_err(internal)?;
    }
    for (rep, extra) in lines {
        let mut body = serde_json::json!({
            "rep": rep, "period": run.period, "currency": computed.currency,
            "credit": "0", "earned": "0", "total": "0", "lines": [],
        });
        let sum = add(&mut body, extra)?;
        computed.total = computed.total.checked_add(sum).ok_or_else(overflow)?;
        computed.statements.push(StatementRow {
            run_id: run.id.clone(),
            rep,
            plan: run.plan.clone(),
            period: run.period.clone(),
            total: body["total"].as_str().unwrap_or_default().to_string(),
            body: serde_json::to_string(&body).map_err(internal)?,
        });
    }
    Ok(())
}

/// One payroll line of a run: `earned` (the plan's lines), `adjustments`
/// (clawbacks and adjustment lines), `draw` (what the draw added or
/// recovered) and `paid`; `earned + draw + adjustments = paid` exactly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PayrollLine {
    pub rep: String,
    pub period: String,
    pub currency: String,
    pub earned: Decimal,
    pub draw: Decimal,
    pub adjustments: Decimal,
    pub paid: Decimal,
}

fn decimal(v: &Json, what: &str) -> Result<Decimal, WorkflowError> {
    let text = match v {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        other => return Err(internal(format!("{what} is {other}, not a decimal"))),
    };
    text.parse().map_err(|e| internal(format!("{what}: {e}")))
}

/// The payroll line of a stored statement.
pub fn payroll_line(statement: &Json) -> Result<PayrollLine, WorkflowError> {
    let text = |k: &str| statement.get(k).and_then(Json::as_str).unwrap_or_default().to_string();
    let overflow = || internal("a payroll line overflows");
    let mut earned = Decimal::ZERO;
    let mut adjustments = Decimal::ZERO;
    for line in statement.get("lines").and_then(Json::as_array).into_iter().flatten() {
        let amount = decimal(line.get("amount").unwrap_or(&Json::Null), "a line's amount")?;
        match line.get("component").and_then(Json::as_str) {
            Some("clawback" | "adjustment") => adjustments = adjustments.checked_add(amount).ok_or_else(overflow)?,
            _ => earned = earned.checked_add(amount).ok_or_else(overflow)?,
        }
    }
    let paid = decimal(statement.get("total").unwrap_or(&Json::Null), "a statement's total")?;
    let draw = paid
        .checked_sub(earned)
        .and_then(|d| d.checked_sub(adjustments))
        .ok_or_else(overflow)?;
    Ok(PayrollLine {
        rep: text("rep"),
        period: text("period"),
        currency: text("currency"),
        earned,
        draw,
        adjustments,
        paid,
    })
}

/// A run with its per-rep summary.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    #[serde(flatten)]
    pub run: Run,
    /// While the run computes (on this node): how far it has got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Rep by rep: what each statement pays.
    pub statements: Vec<RepTotal>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepTotal {
    pub rep: String,
    pub total: String,
}

/// A statement as read back: the run it belongs to and the statement.
#[derive(Debug, Clone, Serialize)]
pub struct StoredStatement {
    pub plan: String,
    pub run: String,
    pub state: RunState,
    pub pack_version: String,
    pub statement: Json,
}

impl Workflow {
    /// Starts a run of `plan` for `period` on `snapshot`: recorded as
    /// `running` and computed in the background (on the pool for long
    /// work); the run as recorded.
    pub async fn start_run(
        self: &Arc<Self>,
        snapshot: Arc<Snapshot>,
        actor: &Actor,
        plan: &str,
        period: &str,
    ) -> Result<Run, WorkflowError> {
        let run = self.record_run(&snapshot, actor, &[plan], period).await?;
        self.spawn_run(snapshot, run)
    }

    /// Starts a run of several plans for one period: one statement per
    /// rep with each plan's lines. As [`Workflow::start_run`] otherwise.
    pub async fn start_plans_run(
        self: &Arc<Self>,
        snapshot: Arc<Snapshot>,
        actor: &Actor,
        plans: &[String],
        period: &str,
    ) -> Result<Run, WorkflowError> {
        let names: Vec<&str> = plans.iter().map(String::as_str).collect();
        let run = self.record_run(&snapshot, actor, &names, period).await?;
        self.spawn_run(snapshot, run)
    }

    fn spawn_run(self: &Arc<Self>, snapshot: Arc<Snapshot>, run: Run) -> Result<Run, WorkflowError> {
        let this = self.clone();
        let started = run.clone();
        tokio::spawn(async move {
            if let Err(e) = this.execute(snapshot, &started).await {
                tracing::warn!(run = %started.id, error = %e, "incentive run failed");
            }
        });
        Ok(run)
    }

    /// Runs `plan` for `period` to the end (the command line's way); the
    /// finished run.
    pub async fn run_now(
        &self,
        snapshot: Arc<Snapshot>,
        actor: &Actor,
        plan: &str,
        period: &str,
    ) -> Result<Run, WorkflowError> {
        let run = self.record_run(&snapshot, actor, &[plan], period).await?;
        self.execute(snapshot, &run).await?;
        self.store
            .runs()
            .run(&run.id)
            .await?
            .ok_or_else(|| internal(format!("run {} vanished", run.id)))
    }

    async fn record_run(
        &self,
        snapshot: &Snapshot,
        actor: &Actor,
        plans: &[&str],
        period: &str,
    ) -> Result<Run, WorkflowError> {
        if plans.is_empty() || plans.len() > 50 {
            return Err(WorkflowError::Invalid(format!(
                "a run names 1 to 50 plans, not {}",
                plans.len()
            )));
        }
        let mut names: Vec<&str> = Vec::with_capacity(plans.len());
        for plan in plans {
            let (kind, name) = snapshot.resolve(plan)?;
            if kind != Kind::IncentivePlan {
                return Err(WorkflowError::Unprocessable(format!(
                    "`{name}` is a {kind}, not an IncentivePlan"
                )));
            }
            if names.contains(&name) {
                return Err(WorkflowError::Invalid(format!("`{name}` is named twice")));
            }
            names.push(name);
        }
        let name = names.join("+");
        let name = name.as_str();
        period_of(period).map_err(WorkflowError::Invalid)?;
        if let Some(locked) = self.store.runs().locked_run(name, period).await? {
            return Err(WorkflowError::Conflict(format!(
                "{period} of `{name}` is locked (run {}); later changes are paid as adjustments in the next open period",
                locked.id
            )));
        }
        let run = Run {
            id: format!("run_{}", self.store.new_id().to_lowercase()),
            plan: name.to_string(),
            period: period.to_string(),
            state: RunState::Running,
            pack_version: snapshot.version.to_string(),
            currency: None,
            reps: 0,
            total: "0".into(),
            started_by: actor.subject.clone(),
            started_at: timestamp_now(),
            finished_at: None,
            approved_by: None,
            approved_at: None,
            published_by: None,
            published_at: None,
            locked_by: None,
            locked_at: None,
            error: None,
        };
        // On the board before anyone can see the run `running`.
        if let Ok(mut board) = self.run_progress.lock() {
            board.insert(run.id.clone(), Arc::default());
        }
        if let Err(e) = self.store.runs().insert_run(&run).await {
            if let Ok(mut board) = self.run_progress.lock() {
                board.remove(&run.id);
            }
            return Err(e.into());
        }
        tracing::info!(run = %run.id, plan = %run.plan, period = %run.period, "incentive run started");
        Ok(run)
    }

    /// Computes a recorded run and stores its statements, or records why
    /// it failed.
    fn progress_of(&self, id: &str) -> Option<Arc<RunProgress>> {
        self.run_progress.lock().ok()?.get(id).cloned()
    }

    async fn execute(&self, snapshot: Arc<Snapshot>, run: &Run) -> Result<(), WorkflowError> {
        let progress = self.progress_of(&run.id).unwrap_or_default();
        let done = self.finish(snapshot, run, &progress).await;
        if let Ok(mut board) = self.run_progress.lock() {
            board.remove(&run.id);
        }
        done
    }

    /// Computes a run and stores the outcome; its progress is on the
    /// board until the run is stored as computed or failed.
    async fn finish(&self, snapshot: Arc<Snapshot>, run: &Run, progress: &RunProgress) -> Result<(), WorkflowError> {
        let outcome = self.compute_run(snapshot, run, progress).await;
        let at = timestamp_now();
        match outcome {
            Ok(Some(o)) => {
                let stored = self
                    .store
                    .runs()
                    .finish_run(&run.id, &[], o.reps, &o.currency, &o.total.to_string(), None, &at)
                    .await?;
                if !stored {
                    self.store
                        .runs()
                        .fail_run(&run.id, "the period was locked while the run computed", &at)
                        .await?;
                }
                tracing::info!(run = %run.id, reps = o.reps, total = %o.total, parts = o.parts, "incentive run computed");
                Ok(())
            }
            Ok(None) => {
                self.store
                    .runs()
                    .fail_run(&run.id, "the run stopped being the running one while it computed", &at)
                    .await?;
                Ok(())
            }
            Err(e) => {
                self.store.runs().fail_run(&run.id, &e.to_string(), &at).await?;
                Err(e)
            }
        }
    }

    /// Computes a run part by part (see `period_parts`), storing each
    /// part's statements and input as it goes; `None` when the run stopped
    /// running meanwhile.
    async fn compute_run(
        &self,
        snapshot: Arc<Snapshot>,
        run: &Run,
        progress: &RunProgress,
    ) -> Result<Option<RunOutcome>, WorkflowError> {
        let now = self.clock.text();
        let plans: Vec<String> = plans_of(run).into_iter().map(str::to_string).collect();
        let deals = u64::try_from(self.store.deals().count_deals().await?).unwrap_or(0);
        progress.total.store(deals, Ordering::Relaxed);
        let locked = Arc::new(self.locked_periods(&snapshot, run, &plans, &now).await?);
        let mut parts =
            PeriodParts::open(&self.store, &[&*snapshot], &plans, &run.period, Some(&progress.read)).await?;
        let mut outcome = RunOutcome::default();
        let mut paid: BTreeMap<String, Decimal> = BTreeMap::new();
        // One part is decided while the next is read.
        let mut deciding: Option<PartJob> = None;
        while let Some(part) = parts.next(&[&*snapshot], &plans, &now).await? {
            if progress.read.load(Ordering::Relaxed) >= deals {
                progress.computing.store(true, Ordering::Relaxed);
            }
            if let Some(job) = deciding.take()
                && !self.store_part(run, job, &mut outcome, &mut paid).await?
            {
                return Ok(None);
            }
            deciding = Some(
                self.start_part(&snapshot, run, &plans, &parts, part, &locked, &now)
                    .await?,
            );
        }
        if let Some(job) = deciding.take()
            && !self.store_part(run, job, &mut outcome, &mut paid).await?
        {
            return Ok(None);
        }
        // Reps the locked periods adjust who are on no part (off the
        // roster now): statements of adjustments only.
        let left: std::collections::BTreeSet<String> = locked
            .iter()
            .flat_map(LockedPeriod::reps)
            .filter(|r| !outcome.decided.contains(*r))
            .cloned()
            .collect();
        if !left.is_empty() {
            let part = Part {
                reps: left.into_iter().collect(),
                deals: Vec::new(),
            };
            let job = self
                .start_part(&snapshot, run, &plans, &parts, part, &locked, &now)
                .await?;
            if !self.store_part(run, job, &mut outcome, &mut paid).await? {
                return Ok(None);
            }
        }
        progress.computing.store(true, Ordering::Relaxed);
        let overflow = || WorkflowError::Unprocessable(format!("the total of run {} overflows", run.id));
        outcome.total = paid
            .values()
            .try_fold(Decimal::ZERO, |sum, v| sum.checked_add(*v))
            .ok_or_else(overflow)?;
        outcome.reps = self.store.runs().count_statements(&run.id).await?;
        Ok(Some(outcome))
    }

    /// Starts deciding one part of a run (every plan of it, with the
    /// adjustments of its reps) off the runtime; [`Workflow::store_part`]
    /// stores what it decided. The next part is read meanwhile.
    #[allow(clippy::too_many_arguments)]
    async fn start_part(
        &self,
        snapshot: &Arc<Snapshot>,
        run: &Run,
        plans: &[String],
        parts: &PeriodParts<'_>,
        part: Part,
        locked: &Arc<Vec<LockedPeriod>>,
        now: &str,
    ) -> Result<PartJob, WorkflowError> {
        let Part { reps, mut deals } = part;
        let mut inputs = Vec::with_capacity(plans.len());
        for (k, plan) in plans.iter().enumerate() {
            let history = parse_all(
                &self
                    .store
                    .runs()
                    .earlier_statements_of(plan, &run.period, Some(&reps))
                    .await?,
            )?;
            // The last plan takes the part's deals; the others copy them.
            let deals = if k + 1 < plans.len() {
                deals.clone()
            } else {
                std::mem::take(&mut deals)
            };
            inputs.push((plan.clone(), parts.input_of(&reps, deals, history)));
        }
        // What earlier runs adjusted: a run of one plan reads it in its
        // input's history; a run of several, in its own earlier statements.
        let several = plans.len() > 1;
        let adjusted = if several && !locked.is_empty() {
            parse_all(
                &self
                    .store
                    .runs()
                    .earlier_statements_of(&run.plan, &run.period, Some(&reps))
                    .await?,
            )?
        } else {
            Vec::new()
        };
        let (snapshot, run_c, now, locked) = (snapshot.clone(), run.clone(), now.to_string(), locked.clone());
        let part_reps = reps.clone();
        let computing = tokio::task::spawn_blocking(move || -> Result<Computed, WorkflowError> {
            let mut computed = match inputs.as_slice() {
                [(_, input)] => compute(&snapshot, &run_c, input, &now)?,
                _ => compute_plans(&snapshot, &run_c, &inputs, &now)?,
            };
            if !locked.is_empty() {
                let mut lines: BTreeMap<String, Vec<Json>> = BTreeMap::new();
                for (plan, input) in &inputs {
                    let history = if several {
                        adjusted.as_slice()
                    } else {
                        input["history"].as_array().map(Vec::as_slice).unwrap_or_default()
                    };
                    for (rep, mut more) in adjustment_lines(plan, several, &locked, history, &reps)? {
                        lines.entry(rep).or_default().append(&mut more);
                    }
                }
                apply_adjustments(&run_c, &mut computed, lines)?;
            }
            Ok(computed)
        });
        Ok(PartJob {
            reps: part_reps,
            computing,
        })
    }

    /// Stores a part's statements and input once decided; false when the
    /// run is no longer running.
    async fn store_part(
        &self,
        run: &Run,
        job: PartJob,
        outcome: &mut RunOutcome,
        paid: &mut BTreeMap<String, Decimal>,
    ) -> Result<bool, WorkflowError> {
        let PartJob { reps, computing } = job;
        let computed = computing.await.map_err(internal)??;
        if !self
            .store
            .runs()
            .add_run_part(&run.id, outcome.parts, &reps, &computed.input, &computed.statements)
            .await?
        {
            return Ok(false);
        }
        outcome.parts += 1;
        for s in &computed.statements {
            let total: Decimal = s
                .total
                .parse()
                .map_err(|e| internal(format!("statement total {}: {e}", s.total)))?;
            paid.insert(s.rep.clone(), total);
        }
        outcome.decided.extend(reps);
        if outcome.currency.is_empty() || !computed.statements.is_empty() {
            outcome.currency = computed.currency;
        }
        Ok(true)
    }

    /// The locked periods of `run`'s plans before its period (periods of
    /// one kind): what each locked run paid deal by deal, from the inputs
    /// it stored, and what the plans pay on the same period as the store
    /// holds it now, read part by part as a run reads it.
    async fn locked_periods(
        &self,
        snapshot: &Arc<Snapshot>,
        run: &Run,
        plans: &[String],
        now: &str,
    ) -> Result<Vec<LockedPeriod>, WorkflowError> {
        let runs = self
            .store
            .runs()
            .runs(&dealrules_store::RunQuery {
                plan: Some(run.plan.clone()),
                period: None,
                state: Some(RunState::Locked),
            })
            .await?;
        let several = plans.len() > 1;
        let mut out: Vec<LockedPeriod> = Vec::new();
        for r in runs {
            if r.period.len() != run.period.len()
                || r.period >= run.period
                || out.iter().any(|l| l.run.period == r.period)
            {
                continue;
            }
            let mut locked = LockedPeriod {
                run: r,
                before: BTreeMap::new(),
                after: BTreeMap::new(),
                cancelled: HashSet::new(),
            };
            // What the locked run paid: one input (runs stored whole), or
            // its parts, a later part's reps replacing an earlier one's.
            if let Some(text) = self.store.runs().run_input(&locked.run.id).await? {
                let pays = self.pays(snapshot, plans, vec![(None, text)], now).await?;
                merge_paid(&mut locked.before, pays);
            }
            let mut k = 0;
            while let Some((reps, text)) = self.store.runs().run_input_part(&locked.run.id, k).await? {
                let pays = self.pays(snapshot, plans, vec![(Some(reps), text)], now).await?;
                merge_paid(&mut locked.before, pays);
                k += 1;
            }
            let mut parts = PeriodParts::open(&self.store, &[&**snapshot], plans, &locked.run.period, None).await?;
            while let Some(part) = parts.next(&[&**snapshot], plans, now).await? {
                for d in &part.deals {
                    if d.get("cancelled_at").is_some_and(|c| !c.is_null())
                        && let Some(id) = d["id"].as_str()
                    {
                        locked.cancelled.insert(id.to_string());
                    }
                }
                let mut inputs = serde_json::Map::new();
                for plan in plans {
                    let history = parse_all(
                        &self
                            .store
                            .runs()
                            .earlier_statements_of(plan, &locked.run.period, Some(&part.reps))
                            .await?,
                    )?;
                    inputs.insert(plan.clone(), parts.input(&part, history));
                }
                let text = if several {
                    serde_json::to_string(&serde_json::json!({ "plans": inputs }))
                } else {
                    serde_json::to_string(&inputs.into_iter().next().map(|(_, v)| v).unwrap_or_default())
                }
                .map_err(internal)?;
                let pays = self.pays(snapshot, plans, vec![(Some(part.reps), text)], now).await?;
                merge_paid(&mut locked.after, pays);
            }
            out.push(locked);
        }
        out.sort_by(|a, b| a.run.period.cmp(&b.run.period));
        Ok(out)
    }

    /// What each plan pays deal by deal on stored inputs (a run's input
    /// text, whole or a part with the reps it decided), off the runtime.
    async fn pays(
        &self,
        snapshot: &Arc<Snapshot>,
        plans: &[String],
        inputs: Vec<(Option<Vec<String>>, String)>,
        now: &str,
    ) -> Result<Pays, WorkflowError> {
        let (snapshot, plans, now) = (snapshot.clone(), plans.to_vec(), now.to_string());
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::with_capacity(inputs.len());
            for (reps, text) in inputs {
                let input: Json = serde_json::from_str(&text).map_err(internal)?;
                let mut by_plan = BTreeMap::new();
                for plan in &plans {
                    let one = match input.get("plans") {
                        Some(all) if plans.len() > 1 => all.get(plan).cloned().unwrap_or(Json::Null),
                        _ => input.clone(),
                    };
                    by_plan.insert(plan.clone(), paid_by_deal(&snapshot, plan, &one, &now)?);
                }
                out.push((reps, by_plan));
            }
            Ok(out)
        })
        .await
        .map_err(internal)?
    }

    /// A run with its per-rep totals. A running run shows its progress
    /// (when this node computes it) and no statements: those it stored so
    /// far are a part of the period.
    pub async fn run_view(&self, id: &str) -> Result<RunView, WorkflowError> {
        let mut run = self.store.runs().run(id).await?.ok_or_else(|| no_run(id))?;
        let mut progress = None;
        if run.state == RunState::Running {
            match self.progress_of(id) {
                Some(p) => {
                    let total = p.total.load(Ordering::Relaxed);
                    progress = Some(Progress {
                        phase: if p.computing.load(Ordering::Relaxed) {
                            "computing"
                        } else {
                            "reading"
                        },
                        processed: p.read.load(Ordering::Relaxed).min(total),
                        total,
                    });
                }
                // Finished between the two reads, or computed elsewhere.
                None => run = self.store.runs().run(id).await?.ok_or_else(|| no_run(id))?,
            }
        }
        let statements = if run.state == RunState::Running {
            Vec::new()
        } else {
            self.store
                .runs()
                .run_statements(id)
                .await?
                .into_iter()
                .map(|s| RepTotal {
                    rep: s.rep,
                    total: s.total,
                })
                .collect()
        };
        Ok(RunView {
            run,
            progress,
            statements,
        })
    }

    /// Moves a run on: approve (draft, by an admin other than who started
    /// it), publish (approved), lock (published).
    pub async fn advance_run(&self, actor: &Actor, id: &str, to: RunState) -> Result<Run, WorkflowError> {
        let run = self.store.runs().run(id).await?.ok_or_else(|| no_run(id))?;
        let from = match to {
            RunState::Approved => RunState::Draft,
            RunState::Published => RunState::Approved,
            RunState::Locked => RunState::Published,
            other => {
                return Err(WorkflowError::Invalid(format!(
                    "a run is not moved to {}",
                    other.as_str()
                )));
            }
        };
        if !actor.admin {
            return Err(WorkflowError::Forbidden("runs are moved on by admins".into()));
        }
        if to == RunState::Approved && actor.subject == run.started_by {
            return Err(WorkflowError::Forbidden(format!(
                "run {id} was started by {}; another admin approves it",
                run.started_by
            )));
        }
        if run.state != from
            || !self
                .store
                .runs()
                .move_run(id, from, to, &actor.subject, &timestamp_now())
                .await?
        {
            let now = self.store.runs().run(id).await?.map(|r| r.state).unwrap_or(run.state);
            return Err(WorkflowError::Conflict(format!(
                "run {id} is {}; only a {} run can be {}",
                now.as_str(),
                from.as_str(),
                to.as_str()
            )));
        }
        tracing::info!(run = %id, state = to.as_str(), by = %actor.subject, "incentive run moved");
        self.store.runs().run(id).await?.ok_or_else(|| no_run(id))
    }

    /// Whether `actor` may read `rep`'s statements: an admin, the rep, or
    /// someone above the rep in the hierarchy (managers as of `date`).
    pub async fn may_read_statements(&self, actor: &Actor, rep: &str, date: &str) -> Result<bool, WorkflowError> {
        if actor.admin || actor.subject == rep {
            return Ok(true);
        }
        let roster: BTreeMap<String, Option<String>> = self
            .store
            .people()
            .people_as_of(date, None)
            .await?
            .into_iter()
            .map(|p| (p.id, p.manager))
            .collect();
        let mut seen = HashSet::new();
        let mut at = rep.to_string();
        while let Some(Some(manager)) = roster.get(&at) {
            if manager == &actor.subject {
                return Ok(true);
            }
            if !seen.insert(manager.clone()) {
                break; // a loop in the hierarchy
            }
            at = manager.clone();
        }
        Ok(false)
    }

    /// `rep`'s published (or locked) statements for `period`, one per
    /// plan, when `actor` may read them.
    pub async fn statements_for(
        &self,
        actor: &Actor,
        rep: &str,
        period: &str,
    ) -> Result<Vec<StoredStatement>, WorkflowError> {
        let p = period_of(period).map_err(WorkflowError::Invalid)?;
        if !self
            .may_read_statements(actor, rep, &p.end.format("%Y-%m-%d").to_string())
            .await?
        {
            return Err(WorkflowError::Forbidden(format!(
                "{} may read their own statements and their reports', not {rep}'s",
                actor.subject
            )));
        }
        let rows = self
            .store
            .runs()
            .statements_of(rep, period, &[RunState::Published, RunState::Locked])
            .await?;
        let mut out: Vec<StoredStatement> = Vec::new();
        for (run, row) in rows {
            if out.last().is_some_and(|s| s.plan == row.plan) {
                continue; // an older run of the same plan
            }
            out.push(StoredStatement {
                plan: row.plan,
                run: run.id,
                state: run.state,
                pack_version: run.pack_version,
                statement: serde_json::from_str(&row.body).map_err(internal)?,
            });
        }
        Ok(out)
    }

    /// A run's payroll lines, by rep, and their sum.
    pub async fn payroll(&self, id: &str) -> Result<(Run, Vec<PayrollLine>), WorkflowError> {
        let run = self.store.runs().run(id).await?.ok_or_else(|| no_run(id))?;
        let lines = self
            .store
            .runs()
            .run_statements(id)
            .await?
            .iter()
            .map(|s| payroll_line(&serde_json::from_str(&s.body).map_err(internal)?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((run, lines))
    }
}

fn no_run(id: &str) -> WorkflowError {
    WorkflowError::NoRun(id.to_string())
}

/// The payroll lines as CSV, with a totals line that adds them up.
pub fn payroll_csv(lines: &[PayrollLine]) -> Result<String, WorkflowError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["rep", "period", "currency", "earned", "draw", "adjustments", "paid"])
        .map_err(internal)?;
    let mut sums = [Decimal::ZERO; 4];
    for l in lines {
        for (sum, v) in sums.iter_mut().zip([l.earned, l.draw, l.adjustments, l.paid]) {
            *sum = sum.checked_add(v).ok_or_else(|| internal("payroll totals overflow"))?;
        }
        w.write_record([
            &crate::statement_docs::no_formula(&l.rep),
            &l.period,
            &l.currency,
            &l.earned.to_string(),
            &l.draw.to_string(),
            &l.adjustments.to_string(),
            &l.paid.to_string(),
        ])
        .map_err(internal)?;
    }
    let currency = lines.first().map(|l| l.currency.as_str()).unwrap_or("");
    let period = lines.first().map(|l| l.period.as_str()).unwrap_or("");
    w.write_record([
        "total",
        period,
        currency,
        &sums[0].to_string(),
        &sums[1].to_string(),
        &sums[2].to_string(),
        &sums[3].to_string(),
    ])
    .map_err(internal)?;
    String::from_utf8(w.into_inner().map_err(internal)?).map_err(internal)
}

/// The payroll lines as an XLSX workbook: one sheet, amounts as numbers
/// with two decimals, and a totals row of SUM formulas (its cached values
/// are the exact decimal sums).
pub fn payroll_xlsx(lines: &[PayrollLine]) -> Result<Vec<u8>, WorkflowError> {
    use rust_xlsxwriter::{Format, Formula, Workbook};
    let x = |e: rust_xlsxwriter::XlsxError| internal(format!("writing the workbook: {e}"));
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("payroll").map_err(x)?;
    let bold = Format::new().set_bold();
    let money = Format::new().set_num_format("#,##0.00");
    let money_bold = Format::new().set_num_format("#,##0.00").set_bold();
    for (c, h) in ["rep", "period", "currency", "earned", "draw", "adjustments", "paid"]
        .iter()
        .enumerate()
    {
        sheet.write_string_with_format(0, c as u16, *h, &bold).map_err(x)?;
    }
    let mut sums = [Decimal::ZERO; 4];
    let number = |d: Decimal| -> Result<f64, WorkflowError> {
        use rust_decimal::prelude::ToPrimitive;
        d.to_f64()
            .ok_or_else(|| internal(format!("{d} does not fit a spreadsheet number")))
    };
    for (i, l) in lines.iter().enumerate() {
        let row = i as u32 + 1;
        sheet
            .write_string(row, 0, crate::statement_docs::no_formula(&l.rep))
            .map_err(x)?;
        sheet.write_string(row, 1, &l.period).map_err(x)?;
        sheet.write_string(row, 2, &l.currency).map_err(x)?;
        for (k, v) in [l.earned, l.draw, l.adjustments, l.paid].into_iter().enumerate() {
            sums[k] = sums[k]
                .checked_add(v)
                .ok_or_else(|| internal("payroll totals overflow"))?;
            sheet
                .write_number_with_format(row, 3 + k as u16, number(v)?, &money)
                .map_err(x)?;
        }
    }
    let total_row = lines.len() as u32 + 1;
    sheet
        .write_string_with_format(total_row, 0, "total", &bold)
        .map_err(x)?;
    for (k, col) in ["D", "E", "F", "G"].iter().enumerate() {
        let formula = Formula::new(format!("=SUM({col}2:{col}{total_row})")).set_result(sums[k].to_string());
        sheet
            .write_formula_with_format(total_row, 3 + k as u16, formula, &money_bold)
            .map_err(x)?;
    }
    sheet.set_column_width(0, 20).map_err(x)?;
    book.save_to_buffer().map_err(x)
}
