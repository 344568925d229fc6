//! The impact of a candidate pack on real history, against the active one:
//! (1) the logged decisions replayed on both, counted by policy, the
//! changed ones listed up to a cap; (2) every rep's statement of each
//! incentive plan for the chosen periods, recomputed from the stored deals
//! and people on both, with the delta per rep and in total; (3) the open
//! deals whose next move the candidate would refuse and the scheduled
//! timers it would cancel.
//!
//! The decision log is read in pages (the next page is read while the
//! current one is replayed), so a quarter of millions of decisions never
//! sits in memory at once; progress goes out on a `watch` channel.

use std::collections::BTreeMap;
use std::sync::Arc;

use dealrules_core::backtest::{Case, compare};
use dealrules_core::{Decision, Snapshot};
use dealrules_expr::Value;
use dealrules_model::Kind;
use dealrules_store::{Deals, DecisionQuery, DecisionRecord, Decisions, MAX_PAGE, Store, TimerKind};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use tokio::sync::watch;

use crate::error::{WorkflowError, internal};
use crate::facts::facts;
use crate::period_parts::PeriodParts;
use crate::timers::cancel_reason;

/// Changed decisions, refused moves and cancelled timers listed, at most.
pub const DEFAULT_EXAMPLES: usize = 100;
/// The largest `examples` a request may ask for.
pub const MAX_EXAMPLES: usize = 10_000;

/// What to measure.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImpactRequest {
    /// Replay the decisions logged on or after this time (RFC 3339 or
    /// YYYY-MM-DD); left out, no decisions are replayed.
    #[serde(default)]
    pub decisions_since: Option<String>,
    /// ... and before this one.
    #[serde(default)]
    pub decisions_until: Option<String>,
    /// Recompute every incentive plan's statements for these periods
    /// (`2026-Q4`, `2026-11`, `2026`).
    #[serde(default)]
    pub incentive_periods: Vec<String>,
    /// List at most this many changed decisions, refused moves and
    /// cancelled timers each (default 100); all are counted.
    #[serde(default, deserialize_with = "whole_number")]
    pub examples: Option<usize>,
}

/// A count written as a JSON number with no fraction (`300` or `300.0`).
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    use serde::Deserialize;
    let n = Option::<serde_json::Number>::deserialize(d)?;
    n.map(|n| {
        n.as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                    .map(|f| f as u64)
            })
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| serde::de::Error::custom(format!("`examples` must be a whole number, not {n}")))
    })
    .transpose()
}

impl ImpactRequest {
    fn examples(&self) -> usize {
        self.examples.unwrap_or(DEFAULT_EXAMPLES).min(MAX_EXAMPLES)
    }
}

/// How far a job has come.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImpactProgress {
    /// `decisions`, `incentives`, `funnels` or `done`.
    pub phase: String,
    pub decisions_replayed: u64,
    /// Decisions in the range, counted when the job started.
    pub decisions_total: u64,
    /// Plan and period pairs recomputed, of `incentives_total`.
    pub incentives_done: u64,
    pub incentives_total: u64,
    pub deals_checked: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Impact {
    pub active_version: String,
    pub candidate_version: String,
    pub decisions: DecisionImpact,
    pub incentives: Vec<PlanImpact>,
    pub funnels: FunnelImpact,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DecisionImpact {
    pub replayed: u64,
    pub changed: u64,
    pub by_policy: Vec<PolicyCount>,
    /// The first changed decisions (oldest first), up to `examples`.
    pub examples: Vec<ChangedDecision>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PolicyCount {
    pub policy: String,
    pub replayed: u64,
    pub changed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangedDecision {
    /// The decision log id.
    pub id: String,
    pub policy: String,
    pub decided_at: String,
    pub input: Json,
    /// The active pack's answer (without version and trace).
    pub before: Json,
    /// The candidate's answer.
    pub after: Json,
    /// Top-level fields that differ.
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanImpact {
    pub plan: String,
    pub period: String,
    pub currency: String,
    pub reps: u64,
    pub reps_changed: u64,
    pub total_before: Decimal,
    pub total_after: Decimal,
    pub delta: Decimal,
    /// Every rep with a statement on either side, by rep id.
    pub by_rep: Vec<RepDelta>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepDelta {
    pub rep: String,
    pub before: Decimal,
    pub after: Decimal,
    pub delta: Decimal,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FunnelImpact {
    /// Open deals (not in a terminal stage) checked.
    pub open_deals: u64,
    /// Moves the active pack allows and the candidate refuses, counted.
    pub refused: u64,
    pub refused_moves: Vec<RefusedMove>,
    /// Scheduled timers the candidate would cancel, counted.
    pub cancelled: u64,
    pub cancelled_timers: Vec<CancelledTimer>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RefusedMove {
    pub deal: String,
    pub funnel: String,
    pub stage: String,
    pub to: String,
    /// Why the candidate refuses it.
    pub reasons: Vec<Json>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CancelledTimer {
    pub deal: String,
    pub timer: String,
    pub stage: Option<String>,
    pub due_at: String,
    pub reason: String,
}

/// Measures `candidate` against `active` on what `store` holds; `now` is
/// when plans and moves are decided. It reads across aggregates (the
/// decision log, deals, the roster and earlier runs), so it takes the store.
pub async fn measure(
    store: &Store,
    active: Arc<Snapshot>,
    candidate: Arc<Snapshot>,
    request: &ImpactRequest,
    now: &str,
    progress: &watch::Sender<ImpactProgress>,
) -> Result<Impact, WorkflowError> {
    let examples = request.examples();
    let decisions = match &request.decisions_since {
        Some(since) => {
            progress.send_modify(|p| p.phase = "decisions".into());
            replay_decisions(
                &store.decisions(),
                &active,
                &candidate,
                since,
                request.decisions_until.as_deref(),
                examples,
                progress,
            )
            .await?
        }
        None => DecisionImpact::default(),
    };
    progress.send_modify(|p| p.phase = "incentives".into());
    let incentives = recompute_plans(store, &active, &candidate, &request.incentive_periods, now, progress).await?;
    progress.send_modify(|p| p.phase = "funnels".into());
    let funnels = check_funnels(&store.deals(), &active, &candidate, now, examples, progress).await?;
    progress.send_modify(|p| p.phase = "done".into());
    Ok(Impact {
        active_version: active.version.to_string(),
        candidate_version: candidate.version.to_string(),
        decisions,
        incentives,
        funnels,
    })
}

/// What replaying one page found.
struct PageReplay {
    counts: BTreeMap<String, (u64, u64)>,
    examples: Vec<ChangedDecision>,
}

fn replay_page(active: &Snapshot, candidate: &Snapshot, page: &[DecisionRecord], mut room: usize) -> PageReplay {
    let mut out = PageReplay {
        counts: BTreeMap::new(),
        examples: Vec::new(),
    };
    for r in page {
        let counts = match out.counts.get_mut(&r.policy) {
            Some(c) => c,
            None => out.counts.entry(r.policy.clone()).or_default(),
        };
        counts.0 += 1;
        // A logged input that no longer reads as JSON is replayed as null:
        // both packs see the same thing.
        let input = Value::from_json_str(&r.input).unwrap_or(Value::Null);
        let case = Case {
            id: String::new(),
            policy: r.policy.clone(),
            input,
        };
        if let Some(change) = compare(active, candidate, &case, &r.decided_at) {
            counts.1 += 1;
            if room > 0 {
                room -= 1;
                out.examples.push(ChangedDecision {
                    id: r.id.clone(),
                    policy: r.policy.clone(),
                    decided_at: r.decided_at.clone(),
                    input: serde_json::from_str(&r.input).unwrap_or(Json::Null),
                    before: change.before,
                    after: change.after,
                    fields: change.fields,
                });
            }
        }
    }
    out
}

async fn replay_decisions(
    log: &Decisions,
    active: &Arc<Snapshot>,
    candidate: &Arc<Snapshot>,
    since: &str,
    until: Option<&str>,
    examples: usize,
    progress: &watch::Sender<ImpactProgress>,
) -> Result<DecisionImpact, WorkflowError> {
    let query = |after: Option<String>| DecisionQuery {
        policy: None,
        since: Some(since.to_string()),
        until: until.map(str::to_string),
        after,
        limit: MAX_PAGE,
    };
    let total = log.count_decisions_between(since, until).await?;
    progress.send_modify(|p| p.decisions_total = total);
    let mut result = DecisionImpact::default();
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut page = log.decisions(&query(None)).await?;
    while !page.is_empty() {
        let last = page.last().map(|r| r.id.clone());
        let n = page.len() as u64;
        let room = examples.saturating_sub(result.examples.len());
        let (a, c) = (active.clone(), candidate.clone());
        // The next page is read while this one is replayed.
        // Halves of the page on two threads; the first half lists first.
        let replay = tokio::task::spawn_blocking(move || {
            let (first, second) = page.split_at(page.len() / 2);
            std::thread::scope(|scope| {
                let early = scope.spawn(|| replay_page(&a, &c, first, room));
                let late = replay_page(&a, &c, second, room);
                let mut early = early.join().map_err(|_| "replaying a page of decisions panicked")?;
                for (policy, (r, ch)) in late.counts {
                    let e = early.counts.entry(policy).or_default();
                    e.0 += r;
                    e.1 += ch;
                }
                let left = room.saturating_sub(early.examples.len());
                early.examples.extend(late.examples.into_iter().take(left));
                Ok::<_, &str>(early)
            })
        });
        let next_query = query(last);
        let (replayed, next) = tokio::join!(replay, log.decisions(&next_query));
        let replayed = replayed.map_err(internal)?.map_err(internal)?;
        for (policy, (r, c)) in replayed.counts {
            let entry = counts.entry(policy).or_default();
            entry.0 += r;
            entry.1 += c;
            result.replayed += r;
            result.changed += c;
        }
        result.examples.extend(replayed.examples);
        progress.send_modify(|p| p.decisions_replayed += n);
        page = next?;
    }
    result.by_policy = counts
        .into_iter()
        .map(|(policy, (replayed, changed))| PolicyCount {
            policy,
            replayed,
            changed,
        })
        .collect();
    Ok(result)
}

/// Each rep's statement total, and the plan's currency.
type RepTotals = (BTreeMap<String, Decimal>, String);

/// Each rep's statement total of `plan` on `snapshot`, and the plan's
/// currency; `None` when the snapshot has no such plan.
fn statements(snapshot: &Snapshot, plan: &str, input: &Value, now: &str) -> Result<Option<RepTotals>, WorkflowError> {
    if !snapshot.pack.has(Kind::IncentivePlan, plan) {
        return Ok(None);
    }
    let Decision::Plan(decided) = snapshot.decide(plan, input, now)? else {
        return Err(WorkflowError::Unprocessable(format!(
            "`{plan}` is not an IncentivePlan"
        )));
    };
    let mut totals = BTreeMap::new();
    for s in &decided.statements {
        let sum = totals.entry(s.rep.to_string()).or_insert(Decimal::ZERO);
        *sum = sum
            .checked_add(s.total)
            .ok_or_else(|| WorkflowError::Unprocessable(format!("rep {}'s total of {plan} overflows", s.rep)))?;
    }
    Ok(Some((totals, decided.currency.to_string())))
}

fn plans_of(s: &Snapshot) -> impl Iterator<Item = String> + '_ {
    s.pack
        .documents
        .iter()
        .filter(|d| d.kind == Kind::IncentivePlan)
        .map(|d| d.metadata.name.to_string())
}

/// Each plan's statement totals on both packs for one part.
type Decided = Vec<(String, Option<RepTotals>, Option<RepTotals>)>;

/// A part's reps and its decision, running.
type Deciding = (Vec<String>, tokio::task::JoinHandle<Result<Decided, WorkflowError>>);

/// Each plan's totals by rep on either side, and its currency.
type Sides = BTreeMap<String, (BTreeMap<String, Decimal>, BTreeMap<String, Decimal>, String)>;

/// Takes a part's totals in: a rep decided again by a later part keeps the
/// later total.
fn take_in(sides: &mut Sides, reps: &[String], decided: Decided) {
    for (plan, before, after) in decided {
        let side = sides.entry(plan).or_default();
        for r in reps {
            side.0.remove(r);
            side.1.remove(r);
        }
        if let Some((totals, currency)) = before {
            side.0.extend(totals);
            if side.2.is_empty() {
                side.2 = currency;
            }
        }
        if let Some((totals, currency)) = after {
            side.1.extend(totals);
            side.2 = currency;
        }
    }
}

async fn recompute_plans(
    store: &Store,
    active: &Arc<Snapshot>,
    candidate: &Arc<Snapshot>,
    periods: &[String],
    now: &str,
    progress: &watch::Sender<ImpactProgress>,
) -> Result<Vec<PlanImpact>, WorkflowError> {
    let mut plans: Vec<String> = plans_of(active).chain(plans_of(candidate)).collect();
    plans.sort();
    plans.dedup();
    progress.send_modify(|p| p.incentives_total = (plans.len() * periods.len()) as u64);
    let overflow = |what: &str| WorkflowError::Unprocessable(format!("{what} overflows"));
    let mut out = Vec::new();
    for period in periods {
        let mut sides = Sides::new();
        // The period is read once, part by part, for every plan.
        let mut parts = PeriodParts::open(store, &[&**active, &**candidate], &plans, period, None).await?;
        // One part is decided (on both packs, side by side) while the next
        // is read.
        let mut deciding: Option<Deciding> = None;
        loop {
            let next = parts.next(&[&**active, &**candidate], &plans, now).await?;
            if let Some((reps, job)) = deciding.take() {
                let decided = job.await.map_err(internal)??;
                take_in(&mut sides, &reps, decided);
            }
            let Some(part) = next else { break };
            let mut inputs = Vec::with_capacity(plans.len());
            for plan in &plans {
                let history = store
                    .runs()
                    .earlier_statements_of(plan, period, Some(&part.reps))
                    .await?
                    .iter()
                    .map(|s| serde_json::from_str(s).map_err(internal))
                    .collect::<Result<Vec<Json>, _>>()?;
                inputs.push((plan.clone(), parts.input(&part, history)));
            }
            let (a, c, at) = (active.clone(), candidate.clone(), now.to_string());
            let job = tokio::task::spawn_blocking(move || {
                let mut out = Vec::with_capacity(inputs.len());
                for (plan, input) in inputs {
                    let input = Value::from_json(&input);
                    let (before, after) = std::thread::scope(|scope| {
                        let before = scope.spawn(|| statements(&a, &plan, &input, &at));
                        let after = statements(&c, &plan, &input, &at);
                        let before = before
                            .join()
                            .map_err(|_| internal("recomputing the active pack's statements panicked"))?;
                        Ok::<_, WorkflowError>((before?, after?))
                    })?;
                    out.push((plan, before, after));
                }
                Ok::<_, WorkflowError>(out)
            });
            deciding = Some((part.reps, job));
        }
        for plan in &plans {
            let (before, after, currency) = sides.remove(plan).unwrap_or_default();
            let mut reps: Vec<&String> = before.keys().chain(after.keys()).collect();
            reps.sort();
            reps.dedup();
            let mut impact = PlanImpact {
                plan: plan.clone(),
                period: period.clone(),
                currency,
                reps: reps.len() as u64,
                reps_changed: 0,
                total_before: Decimal::ZERO,
                total_after: Decimal::ZERO,
                delta: Decimal::ZERO,
                by_rep: Vec::with_capacity(reps.len()),
            };
            for rep in reps {
                let b = before.get(rep).copied().unwrap_or(Decimal::ZERO);
                let a = after.get(rep).copied().unwrap_or(Decimal::ZERO);
                let delta = a.checked_sub(b).ok_or_else(|| overflow("a rep's delta"))?;
                if !delta.is_zero() {
                    impact.reps_changed += 1;
                }
                impact.total_before = impact
                    .total_before
                    .checked_add(b)
                    .ok_or_else(|| overflow("the total"))?;
                impact.total_after = impact.total_after.checked_add(a).ok_or_else(|| overflow("the total"))?;
                impact.by_rep.push(RepDelta {
                    rep: rep.clone(),
                    before: b,
                    after: a,
                    delta,
                });
            }
            impact.delta = impact
                .total_after
                .checked_sub(impact.total_before)
                .ok_or_else(|| overflow("the total delta"))?;
            out.push(impact);
            progress.send_modify(|p| p.incentives_done += 1);
        }
    }
    Ok(out)
}

/// Whether `snapshot` allows `deal` (as `facts`) to move to `to`, and why not.
fn check_move(snapshot: &Snapshot, funnel: &str, facts: &Json, to: &str, now: &str) -> (bool, Vec<Json>) {
    let mut input = facts.clone();
    input["move"] = json!(to);
    match snapshot.decide(funnel, &Value::from_json(&input), now) {
        Ok(Decision::Move(m)) => (
            m.allowed,
            m.reasons
                .iter()
                .map(|r| serde_json::to_value(r).unwrap_or(Json::Null))
                .collect(),
        ),
        Ok(_) => (
            false,
            vec![json!({ "code": "not_a_funnel", "message": format!("`{funnel}` is not a Funnel") })],
        ),
        Err(e) => (false, vec![json!({ "code": "error", "message": e.to_string() })]),
    }
}

fn is_open(snapshot: &Snapshot, funnel: &str, stage: &str) -> bool {
    snapshot
        .funnel(funnel)
        .and_then(|f| f.stage(stage).map(|i| !f.stages[i].terminal))
        .unwrap_or(false)
}

async fn check_funnels(
    deals: &Deals,
    active: &Arc<Snapshot>,
    candidate: &Arc<Snapshot>,
    now: &str,
    examples: usize,
    progress: &watch::Sender<ImpactProgress>,
) -> Result<FunnelImpact, WorkflowError> {
    let mut out = FunnelImpact::default();
    // Only open deals are kept (closed ones have no next move).
    let open = deals
        .scan_deals(5000, |d| is_open(active, &d.funnel, &d.stage).then_some(d))
        .await?;
    out.open_deals = open.len() as u64;
    for chunk in open.chunks(500) {
        let mut batch = Vec::with_capacity(chunk.len());
        for deal in chunk {
            let approvals = deals.approvals(None, Some(&deal.id)).await?;
            batch.push((deal.clone(), facts(deal, &approvals)));
        }
        let (a, c, at) = (active.clone(), candidate.clone(), now.to_string());
        let refused = tokio::task::spawn_blocking(move || {
            let mut refused = Vec::new();
            for (deal, facts) in &batch {
                let Some(f) = a.funnel(&deal.funnel) else { continue };
                for to in f.moves_from(&deal.stage) {
                    if !check_move(&a, &deal.funnel, facts, &to, &at).0 {
                        continue;
                    }
                    let (allowed, reasons) = check_move(&c, &deal.funnel, facts, &to, &at);
                    if !allowed {
                        refused.push(RefusedMove {
                            deal: deal.id.clone(),
                            funnel: deal.funnel.clone(),
                            stage: deal.stage.clone(),
                            to: to.to_string(),
                            reasons,
                        });
                    }
                }
            }
            refused
        })
        .await
        .map_err(internal)?;
        out.refused += refused.len() as u64;
        let room = examples.saturating_sub(out.refused_moves.len());
        out.refused_moves.extend(refused.into_iter().take(room));
        progress.send_modify(|p| p.deals_checked += chunk.len() as u64);
    }
    for t in deals
        .scheduled_timers()
        .await?
        .into_iter()
        .filter(|t| t.kind == TimerKind::Funnel)
    {
        let Some(deal) = deals.deal(&t.deal_id).await? else {
            continue;
        };
        if cancel_reason(active, &deal.funnel, &t).is_some() {
            // The active pack already cancels it.
            continue;
        }
        if let Some(reason) = cancel_reason(candidate, &deal.funnel, &t) {
            out.cancelled += 1;
            if out.cancelled_timers.len() < examples {
                out.cancelled_timers.push(CancelledTimer {
                    deal: deal.id.clone(),
                    timer: t.name.clone(),
                    stage: t.stage.clone(),
                    due_at: t.due_at.clone(),
                    reason,
                });
            }
        }
    }
    Ok(out)
}
