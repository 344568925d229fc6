//! Incentive runs on stored data: every rep's statement for a period,
//! computed from the stored deals and the roster off the request path,
//! stored with the pack version and the input read; then approved (by an
//! admin other than who started it), published and locked. Also who may
//! read a statement, and the payroll lines of a run.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dealrules_core::plan_input::{PlanInput, RosterVersion, StoredDeal, period_of};
use dealrules_core::{Decision, Snapshot};
use dealrules_model::Kind;
use dealrules_store::people::BEGINNING;
use dealrules_store::{Run, RunState, StatementRow, Store, timestamp_now};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value as Json;

use crate::error::{WorkflowError, internal};
use crate::runtime::{Actor, Workflow};

/// Deals read from the store per page.
const PAGE: i64 = 5000;

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

/// The plan input a run of `plan` for `period` reads from the store now.
pub async fn read_input(store: &Store, plan: &str, period_label: &str) -> Result<Json, WorkflowError> {
    read_input_counted(store, plan, period_label, None).await
}

/// As [`read_input`], adding each deal read to `seen`.
pub async fn read_input_counted(
    store: &Store,
    plan: &str,
    period_label: &str,
    seen: Option<&AtomicU64>,
) -> Result<Json, WorkflowError> {
    let period = period_of(period_label).map_err(WorkflowError::Invalid)?;
    let end = period.end.format("%Y-%m-%d").to_string();
    let roster = store
        .people()
        .people_between(BEGINNING, &end)
        .await?
        .into_iter()
        .map(|p| RosterVersion {
            rep: p.as_rep(),
            id: p.id,
            from: p.valid_from,
            to: p.valid_to,
        })
        .collect();
    let deals = store
        .deals()
        .scan_deals(PAGE, |d| {
            if let Some(seen) = seen {
                seen.fetch_add(1, Ordering::Relaxed);
            }
            let stored = StoredDeal {
                id: &d.id,
                owner: &d.owner,
                stage: &d.stage,
                fields: &d.fields,
                stage_entered_at: &d.stage_entered_at,
            };
            PlanInput::reads(&period, &stored).then_some(d)
        })
        .await?;
    let mut input = PlanInput::new(&period, roster);
    for d in &deals {
        input.add_deal(&StoredDeal {
            id: &d.id,
            owner: &d.owner,
            stage: &d.stage,
            fields: &d.fields,
            stage_entered_at: &d.stage_entered_at,
        });
    }
    drop(deals);
    let history = store
        .runs()
        .earlier_statements(plan, period_label)
        .await?
        .iter()
        .map(|s| serde_json::from_str(s).map_err(internal))
        .collect::<Result<Vec<Json>, _>>()?;
    Ok(input.finish(history))
}

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

/// What a plan's decision pays each rep, deal by deal, from the lines a
/// plan earns (clawbacks and adjustments left out): `(rep, deal) ->
/// amount`, with `(rep, "")` for what lines not tied to deals pay.
fn paid_by_deal(
    snapshot: &Snapshot,
    plan: &str,
    input: &Json,
    now: &str,
) -> Result<BTreeMap<(String, String), Decimal>, WorkflowError> {
    let value = dealrules_expr::Value::from_json(input);
    let Decision::Plan(decision) = snapshot.decide(plan, &value, now)? else {
        return Err(WorkflowError::Unprocessable(format!(
            "`{plan}` is not an IncentivePlan"
        )));
    };
    let overflow = || WorkflowError::Unprocessable(format!("an adjustment of `{plan}` overflows"));
    let mut out: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for st in &decision.statements {
        for line in st
            .lines
            .iter()
            .filter(|l| l.component != "clawback" && l.component != "adjustment")
        {
            let mut rest = line.amount;
            for (deal, amount) in &line.by_deal {
                let slot = out.entry((st.rep.clone(), deal.clone())).or_default();
                *slot = slot.checked_add(*amount).ok_or_else(overflow)?;
                rest = rest.checked_sub(*amount).ok_or_else(overflow)?;
            }
            let slot = out.entry((st.rep.clone(), String::new())).or_default();
            *slot = slot.checked_add(rest).ok_or_else(overflow)?;
        }
    }
    Ok(out)
}

/// A locked period to adjust: its run and the input that run read.
pub struct LockedPeriod {
    pub run: Run,
    pub input: Json,
    /// The same period read from the store now.
    pub now_input: Json,
}

/// Adjustment lines, by rep: for each locked period, what the plan pays
/// on the deals as they are now minus what it pays on the input the
/// locked run read (both under `snapshot`, so only changed data moves
/// money), minus the adjustments earlier statements (`history`) already
/// paid for that period. One line per deal that moved, and one for lines
/// not tied to deals; they add up to the difference exactly. Deals with a
/// `cancelled_at` are left to the clawback.
pub fn adjustment_lines(
    snapshot: &Snapshot,
    plan: &str,
    locked: &[LockedPeriod],
    history: &[Json],
    now: &str,
) -> Result<BTreeMap<String, Vec<Json>>, WorkflowError> {
    let overflow = || WorkflowError::Unprocessable(format!("an adjustment of `{plan}` overflows"));
    let mut out: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    for l in locked {
        let period = &l.run.period;
        let cancelled: HashSet<&str> = l.now_input["deals"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d.get("cancelled_at").is_some_and(|c| !c.is_null()))
            .filter_map(|d| d["id"].as_str())
            .collect();
        let before = paid_by_deal(snapshot, plan, &l.input, now)?;
        let after = paid_by_deal(snapshot, plan, &l.now_input, now)?;
        let mut already: BTreeMap<(String, String), Decimal> = BTreeMap::new();
        for st in history {
            let rep = st["rep"].as_str().unwrap_or_default();
            for line in st["lines"].as_array().into_iter().flatten() {
                if line["component"] != "adjustment" || line["adjusts"].as_str() != Some(period) {
                    continue;
                }
                let deal = line["deals"][0].as_str().unwrap_or_default().to_string();
                let amount = decimal(&line["amount"], "an adjustment's amount")?;
                let slot = already.entry((rep.to_string(), deal)).or_default();
                *slot = slot.checked_add(amount).ok_or_else(overflow)?;
            }
        }
        let keys: std::collections::BTreeSet<&(String, String)> = before.keys().chain(after.keys()).collect();
        for key in keys {
            let (rep, deal) = key;
            if cancelled.contains(deal.as_str()) {
                continue;
            }
            let was = before.get(key).copied().unwrap_or_default();
            let is = after.get(key).copied().unwrap_or_default();
            let paid = already.get(key).copied().unwrap_or_default();
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
            out.entry(rep.clone()).or_default().push(serde_json::json!({
                "component": "adjustment",
                "amount": delta.to_string(),
                "deals": deals,
                "adjusts": period,
                "locked_run": l.run.id,
                "explain": explain,
                "by_deal": by_deal,
            }));
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
            Ok(c) => {
                let stored = self
                    .store
                    .runs()
                    .finish_run(&run.id, &c.statements, &c.currency, &c.total.to_string(), &c.input, &at)
                    .await?;
                if !stored {
                    self.store
                        .runs()
                        .fail_run(&run.id, "the period was locked while the run computed", &at)
                        .await?;
                }
                tracing::info!(run = %run.id, reps = c.statements.len(), total = %c.total, "incentive run computed");
                Ok(())
            }
            Err(e) => {
                self.store.runs().fail_run(&run.id, &e.to_string(), &at).await?;
                Err(e)
            }
        }
    }

    async fn compute_run(
        &self,
        snapshot: Arc<Snapshot>,
        run: &Run,
        progress: &RunProgress,
    ) -> Result<Computed, WorkflowError> {
        let now = self.clock.text();
        let plans = plans_of(run);
        let deals = u64::try_from(self.store.deals().count_deals().await?).unwrap_or(0);
        progress
            .total
            .store(deals.saturating_mul(plans.len() as u64), Ordering::Relaxed);
        let seen = Some(&progress.read);
        if plans.len() > 1 {
            let mut inputs = Vec::with_capacity(plans.len());
            for plan in plans {
                inputs.push((
                    plan.to_string(),
                    read_input_counted(&self.store, plan, &run.period, seen).await?,
                ));
            }
            progress.computing.store(true, Ordering::Relaxed);
            let run = run.clone();
            return self
                .long_work
                .run(move || compute_plans(&snapshot, &run, &inputs, &now))
                .await?;
        }
        let input = read_input_counted(&self.store, &run.plan, &run.period, seen).await?;
        let locked = self.locked_periods(run).await?;
        progress.computing.store(true, Ordering::Relaxed);
        let history: Vec<Json> = input["history"].as_array().cloned().unwrap_or_default();
        let run = run.clone();
        self.long_work
            .run(move || {
                let mut computed = compute(&snapshot, &run, &input, &now)?;
                if !locked.is_empty() {
                    let lines = adjustment_lines(&snapshot, &run.plan, &locked, &history, &now)?;
                    apply_adjustments(&run, &mut computed, lines)?;
                }
                Ok(computed)
            })
            .await?
    }

    /// The locked periods of `run`'s plan before its period (periods of
    /// one kind), each with the input its locked run read and the same
    /// period as the store holds it now.
    async fn locked_periods(&self, run: &Run) -> Result<Vec<LockedPeriod>, WorkflowError> {
        let runs = self
            .store
            .runs()
            .runs(&dealrules_store::RunQuery {
                plan: Some(run.plan.clone()),
                period: None,
                state: Some(RunState::Locked),
            })
            .await?;
        let mut out: Vec<LockedPeriod> = Vec::new();
        for r in runs {
            if r.period.len() != run.period.len()
                || r.period >= run.period
                || out.iter().any(|l| l.run.period == r.period)
            {
                continue;
            }
            let Some(text) = self.store.runs().run_input(&r.id).await? else {
                continue;
            };
            let input: Json = serde_json::from_str(&text).map_err(internal)?;
            let now_input = read_input(&self.store, &run.plan, &r.period).await?;
            out.push(LockedPeriod {
                run: r,
                input,
                now_input,
            });
        }
        out.sort_by(|a, b| a.run.period.cmp(&b.run.period));
        Ok(out)
    }

    /// A run with its per-rep totals.
    pub async fn run_view(&self, id: &str) -> Result<RunView, WorkflowError> {
        let run = self.store.runs().run(id).await?.ok_or_else(|| no_run(id))?;
        let statements = self
            .store
            .runs()
            .run_statements(id)
            .await?
            .into_iter()
            .map(|s| RepTotal {
                rep: s.rep,
                total: s.total,
            })
            .collect();
        let progress = match run.state {
            RunState::Running => self.progress_of(id).map(|p| {
                let total = p.total.load(Ordering::Relaxed);
                Progress {
                    phase: if p.computing.load(Ordering::Relaxed) {
                        "computing"
                    } else {
                        "reading"
                    },
                    processed: p.read.load(Ordering::Relaxed).min(total),
                    total,
                }
            }),
            _ => None,
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
