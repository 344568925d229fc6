//! Targets and the funnel, measured on the stored deals: the rows are read
//! here, a page at a time, and the pure core computes
//! ([`dealrules_core::measure`]). Also the scheduled pace check, which
//! notifies each rep behind pace (and their manager) once per period.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use dealrules_core::measure::funnel::{
    DaysInStage, DealTrail, Forecast, FunnelReport, FunnelStats, FunnelWindow, StageInfo, StageOrder, Step, VisitGroup,
};
use dealrules_core::measure::progress::{Credited, Progress, ProgressBy, progress};
use dealrules_core::plan_input::{PlanInput, RosterVersion, StoredDeal, period_of};
use dealrules_core::targets::Targets;
use dealrules_core::{DecideError, Snapshot};
use dealrules_model::{AlertSchedule, Kind, Spec};
use dealrules_store::credits::{CreditRow, DealToCredit, FillKey, FillState};
use dealrules_store::people::BEGINNING;
use dealrules_store::summaries::FactsKey;
use dealrules_store::{Deal, OutboxRow, OutboxState, Store};
use rust_decimal::Decimal;
use serde_json::Value as Json;

use crate::error::{WorkflowError, internal};
use crate::fill_gate::FillGate;
use crate::runtime::Workflow;

/// Deals read per page.
const PAGE: i64 = 5000;

/// The template a pace alert is rendered with.
pub const PACE_TEMPLATE: &str = "pace-behind";

fn unknown(kind: &str, name: &str) -> WorkflowError {
    WorkflowError::Decide(DecideError::UnknownPolicy {
        name: name.to_string(),
        hint: format!(" (no {kind} of that name in the active pack)"),
    })
}

fn decimal(v: &Json) -> Decimal {
    match v {
        Json::Number(n) => n.to_string().parse().unwrap_or_default(),
        Json::String(s) => s.trim().parse().unwrap_or_default(),
        _ => Decimal::ZERO,
    }
}

fn time(s: &str) -> Result<DateTime<Utc>, WorkflowError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| internal(format!("a stored time `{s}`: {e}")))
}

/// The quarter of a `close_date` field.
fn quarter_of(v: &Json) -> Option<String> {
    let d = NaiveDate::parse_from_str(v.as_str()?.get(..10)?, "%Y-%m-%d").ok()?;
    Some(format!("{}-Q{}", d.year(), (d.month() - 1) / 3 + 1))
}

/// The stage order of a funnel as the core compiled it.
pub fn current_order(f: &dealrules_core::Funnel) -> StageOrder {
    StageOrder {
        stages: f
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| StageInfo {
                id: s.id.to_string(),
                probability: s.probability,
                terminal: s.terminal,
                sla: f.sla(i),
            })
            .collect(),
    }
}

/// The stage order of funnel `name` in the stored pack `version`, if the
/// store has that pack and it has that funnel.
async fn order_in_version(store: &Store, version: &str, name: &str) -> Result<Option<StageOrder>, WorkflowError> {
    let Some(source) = store.packs().pack(version).await? else {
        return Ok(None);
    };
    let (pack, _) = dealrules_model::load_pack_partial(source);
    let Some(Spec::Funnel(spec)) = pack.find(Kind::Funnel, name).map(|d| &d.spec) else {
        return Ok(None);
    };
    Ok(Some(StageOrder {
        stages: spec
            .stages
            .iter()
            .map(|s| StageInfo {
                id: s.id.clone(),
                probability: s.probability.unwrap_or_default(),
                terminal: s.terminal,
                sla: None,
            })
            .collect(),
    }))
}

/// What funnel analytics group deals by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunnelBy {
    Owner,
    Region,
}

impl FunnelBy {
    pub const ALL: [&'static str; 2] = ["owner", "region"];

    pub fn parse(s: &str) -> Result<FunnelBy, WorkflowError> {
        match s {
            "owner" => Ok(FunnelBy::Owner),
            "region" => Ok(FunnelBy::Region),
            other => Err(WorkflowError::Invalid(format!(
                "`by` is owner or region, not `{other}`"
            ))),
        }
    }

    fn key(self, deal: &Deal) -> String {
        match self {
            FunnelBy::Owner => deal.owner.clone(),
            FunnelBy::Region => deal.fields["region"]
                .as_str()
                .or_else(|| deal.context["rep"]["region"].as_str())
                .unwrap_or("(none)")
                .to_string(),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            FunnelBy::Owner => "owner",
            FunnelBy::Region => "region",
        }
    }

    fn facts_key(self) -> FactsKey {
        match self {
            FunnelBy::Owner => FactsKey::Owner,
            FunnelBy::Region => FactsKey::Region,
        }
    }
}

/// A bound for stored times (milliseconds) as stored text: a bound with a
/// part of a millisecond is taken up to the next whole one, so `at >= t`
/// and `at < t` select the same stored times as the text comparison.
fn bound_text(t: DateTime<Utc>) -> String {
    let past = i64::from(!t.timestamp_subsec_nanos().is_multiple_of(1_000_000));
    DateTime::<Utc>::from_timestamp_millis(t.timestamp_millis() + past)
        .map_or_else(|| dealrules_store::timestamp(t), dealrules_store::timestamp)
}

/// A time given as a query bound: RFC 3339, or a date (its midnight UTC).
pub fn bound(s: &str, what: &str) -> Result<DateTime<Utc>, WorkflowError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
        .ok_or_else(|| WorkflowError::Invalid(format!("`{what}` is a date or an RFC 3339 time, not `{s}`")))
}

impl Workflow {
    /// Progress of the Targets document `name` over `period`, by `by`, at
    /// the server clock's today.
    pub async fn target_progress(
        &self,
        snapshot: &Snapshot,
        name: &str,
        period: &str,
        by: ProgressBy,
    ) -> Result<Progress, WorkflowError> {
        let targets = snapshot.targets(Some(name)).ok_or_else(|| unknown("Targets", name))?;
        let period = period_of(period).map_err(WorkflowError::Invalid)?;
        if period.year != targets.year() {
            return Err(WorkflowError::Unprocessable(format!(
                "targets `{name}` are for {}, not {}",
                targets.year(),
                period.label
            )));
        }
        let now = self.clock.now();
        let (roster, credits) = match basis_of(snapshot, targets) {
            Some(basis) => {
                kept_credits(
                    &self.store,
                    &self.credit_fills,
                    Asker::Report,
                    snapshot,
                    targets,
                    &basis,
                    &period,
                    &now,
                )
                .await?
            }
            None => {
                let (roster, credits) = read_credits(&self.store, snapshot, targets, &period, &now).await?;
                (roster, Arc::new(credits))
            }
        };
        progress(targets, &period, by, &roster, &credits, now.date_naive()).map_err(WorkflowError::Unprocessable)
    }

    /// Makes the kept credits of the periods reports are likeliest to ask
    /// for next under `snapshot`, so the first of them finds them ready:
    /// for each Targets document whose credits are kept, the quarter of the
    /// server's today (what the console opens on; the year's first or last
    /// quarter outside it) and, when its `pace_alert` checks a month or the
    /// year, that period too. Run by the activation owner right after a
    /// pack version goes live; a fill a pack version with the same credit
    /// rules made is read, not made again, and a report arriving meanwhile
    /// waits for the fill under way rather than making its own. How many
    /// fills it went through.
    pub async fn fill_current_credits(&self, snapshot: &Snapshot) -> Result<usize, WorkflowError> {
        let today = self.clock.now().date_naive();
        let mut done = 0;
        for targets in snapshot.all_targets() {
            let Some(basis) = basis_of(snapshot, targets) else {
                continue;
            };
            let year = targets.year();
            let quarter = match today.year().cmp(&year) {
                std::cmp::Ordering::Equal => (today.month() - 1) / 3 + 1,
                std::cmp::Ordering::Less => 1,
                std::cmp::Ordering::Greater => 4,
            };
            let mut labels = vec![format!("{year}-Q{quarter}")];
            if today.year() == year {
                match targets.pace_settings().map(|a| a.period) {
                    Some(dealrules_model::PeriodKind::Month) => labels.push(format!("{year}-{:02}", today.month())),
                    Some(dealrules_model::PeriodKind::Year) => labels.push(year.to_string()),
                    _ => {}
                }
            }
            for label in labels {
                let period = period_of(&label).map_err(WorkflowError::Invalid)?;
                let now = self.clock.now();
                let started = std::time::Instant::now();
                kept_credits(
                    &self.store,
                    &self.credit_fills,
                    Asker::Activation,
                    snapshot,
                    targets,
                    &basis,
                    &period,
                    &now,
                )
                .await?;
                tracing::info!(
                    targets = %targets.name, period = %label, version = %snapshot.version,
                    ms = started.elapsed().as_millis() as u64, "kept credits made for the new pack version"
                );
                done += 1;
            }
        }
        Ok(done)
    }

    /// Progress as [`Workflow::target_progress`] measures it, with every
    /// deal of the period read and credited again rather than the credits
    /// the store keeps: what those must agree with (the tests compare
    /// both).
    pub async fn target_progress_from_deals(
        &self,
        snapshot: &Snapshot,
        name: &str,
        period: &str,
        by: ProgressBy,
    ) -> Result<Progress, WorkflowError> {
        let targets = snapshot.targets(Some(name)).ok_or_else(|| unknown("Targets", name))?;
        let period = period_of(period).map_err(WorkflowError::Invalid)?;
        let now = self.clock.now();
        let (roster, credits) = read_credits(&self.store, snapshot, targets, &period, &now).await?;
        progress(targets, &period, by, &roster, &credits, now.date_naive()).map_err(WorkflowError::Unprocessable)
    }

    /// Funnel analytics and the forecast of funnel `name`, over the moves
    /// made in `[since, until)`: aggregated by the store from its summaries
    /// (one row per stage visit, one per deal), and judged here by each
    /// pack version's stage order. The same figures as
    /// [`Workflow::funnel_analytics_from_history`].
    pub async fn funnel_analytics(
        &self,
        snapshot: &Snapshot,
        name: &str,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        by: Option<FunnelBy>,
    ) -> Result<(FunnelReport, Forecast), WorkflowError> {
        let funnel = snapshot.funnel(name).ok_or_else(|| unknown("Funnel", name))?;
        let current = Arc::new(current_order(funnel));
        let now = self.clock.now();
        let mut stats = FunnelStats::new(FunnelWindow {
            funnel: name,
            since,
            until,
            now,
            current: current.clone(),
            orders: HashMap::from([(snapshot.version.to_string(), current)]),
        });
        let key = by.map(FunnelBy::facts_key);
        let (since_text, until_text) = (since.map(bound_text), until.map(bound_text));
        let (since_text, until_text) = (since_text.as_deref(), until_text.as_deref());
        let counted = self
            .store
            .analytics()
            .visit_groups(name, since_text, until_text, key)
            .await?;
        let mut missing: HashSet<String> = HashSet::new();
        let mut groups = Vec::with_capacity(counted.len());
        // Visits that ended, by stage: the days in stage are their lengths.
        let mut ended: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
        for c in counted {
            let later: Vec<(String, String)> = c
                .later
                .lines()
                .filter_map(|l| l.split_once('\t'))
                .map(|(s, v)| (s.to_string(), v.to_string()))
                .collect();
            let next = c.next_stage.zip(c.next_version);
            let versions = later
                .iter()
                .map(|(_, v)| v.as_str())
                .chain(next.as_ref().map(|(_, v)| v.as_str()))
                .chain(std::iter::once(c.last_version.as_str()));
            for v in versions {
                if !stats.knows(v) && !missing.contains(v) {
                    match order_in_version(&self.store, v, name).await? {
                        Some(order) => stats.add_order(v, Arc::new(order)),
                        None => {
                            missing.insert(v.to_string());
                        }
                    }
                }
            }
            let count = u64::try_from(c.count).unwrap_or_default();
            if next.is_some() {
                *ended.entry(c.stage.clone()).or_default() += count;
            }
            groups.push(VisitGroup {
                key: c.key,
                stage: c.stage,
                next,
                later,
                last: (c.last_stage, c.last_version),
                count,
            });
        }
        for g in &groups {
            stats.add_visits(g);
        }
        for (stage, n) in &ended {
            let n = usize::try_from(*n).unwrap_or(usize::MAX);
            let mut found: HashMap<usize, i64> = HashMap::new();
            for rank in DaysInStage::ranks(n) {
                if found.contains_key(&rank) {
                    continue;
                }
                let two = self
                    .store
                    .analytics()
                    .stage_days_at(name, stage, since_text, until_text, rank)
                    .await?;
                for (i, ms) in two.into_iter().enumerate() {
                    found.insert(rank + i, ms);
                }
            }
            let days = DaysInStage::from_ranked(n, |r| found.get(&r).copied().unwrap_or_default());
            stats.set_days(None, stage, days);
        }
        if let Some(k) = key {
            // Per group: every length, counted, in order.
            let mut lengths: HashMap<(String, String), Vec<(i64, u64)>> = HashMap::new();
            for (key, stage, ms, n) in self
                .store
                .analytics()
                .stage_days_counted(name, since_text, until_text, k)
                .await?
            {
                lengths
                    .entry((key, stage))
                    .or_default()
                    .push((ms, u64::try_from(n).unwrap_or_default()));
            }
            for ((key, stage), runs) in lengths {
                let n: u64 = runs.iter().map(|r| r.1).sum();
                let days = DaysInStage::from_ranked(usize::try_from(n).unwrap_or(usize::MAX), |rank| {
                    let mut seen = 0u64;
                    for (ms, c) in &runs {
                        seen += c;
                        if (rank as u64) < seen {
                            return *ms;
                        }
                    }
                    0
                });
                stats.set_days(Some(&key), &stage, days);
            }
        }
        for (stage, sla) in stats.open_stages() {
            for (key, quarter, amount, n) in self.store.analytics().open_deals_counted(name, &stage, key).await? {
                let amount = decimal(&Json::String(amount));
                let count = u64::try_from(n).unwrap_or_default();
                stats.add_open(&key, &stage, quarter.as_deref(), amount, count);
            }
            let Some(sla) = sla.and_then(|d| chrono::Duration::from_std(d).ok()) else {
                continue;
            };
            let Some(before) = now.checked_sub_signed(sla) else {
                continue;
            };
            // Stalled: entered before `now - sla`.
            let before = bound_text(before);
            for (key, n) in self
                .store
                .analytics()
                .deals_in_stage_since_before(name, &stage, &before, key)
                .await?
            {
                stats.add_stalled(&key, &stage, u64::try_from(n).unwrap_or_default());
            }
        }
        stats.add_deals(u64::try_from(self.store.analytics().funnel_deal_count(name).await?).unwrap_or_default());
        if let Some(k) = key {
            // Every group of the funnel's deals has rows, zero or not.
            for g in self.store.analytics().funnel_keys(name, k).await? {
                stats.add_group(&g);
            }
        }
        stats
            .finish(by.map(FunnelBy::as_str))
            .map_err(WorkflowError::Unprocessable)
    }

    /// Funnel analytics recomputed from every deal of the funnel and its
    /// whole history, a page at a time: what the summaries must agree with
    /// (the tests compare both).
    pub async fn funnel_analytics_from_history(
        &self,
        snapshot: &Snapshot,
        name: &str,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        by: Option<FunnelBy>,
    ) -> Result<(FunnelReport, Forecast), WorkflowError> {
        let funnel = snapshot.funnel(name).ok_or_else(|| unknown("Funnel", name))?;
        let current = Arc::new(current_order(funnel));
        let mut stats = FunnelStats::new(FunnelWindow {
            funnel: name,
            since,
            until,
            now: self.clock.now(),
            current: current.clone(),
            orders: HashMap::from([(snapshot.version.to_string(), current)]),
        });
        let mut missing: HashSet<String> = HashSet::new();
        let mut after = String::new();
        loop {
            let deals = self
                .store
                .analytics()
                .funnel_deals_page(Some(name), &after, PAGE)
                .await?;
            let (Some(first), Some(last)) = (deals.first(), deals.last()) else {
                break;
            };
            let trail = self.store.analytics().trails_between(&first.id, &last.id).await?;
            for entry in &trail {
                if !stats.knows(&entry.version) && !missing.contains(&entry.version) {
                    match order_in_version(&self.store, &entry.version, name).await? {
                        Some(order) => stats.add_order(&entry.version, Arc::new(order)),
                        None => {
                            missing.insert(entry.version.clone());
                        }
                    }
                }
            }
            // By deal, each in the order it happened (grouped here rather than
            // merged by comparing ids: the database's collation orders them).
            let mut by_deal: HashMap<&str, Vec<&dealrules_store::TrailEntry>> = HashMap::with_capacity(deals.len());
            for e in &trail {
                by_deal.entry(e.deal_id.as_str()).or_default().push(e);
            }
            for deal in &deals {
                let mut steps = Vec::new();
                for e in by_deal.get(deal.id.as_str()).into_iter().flatten() {
                    let detail: Json = serde_json::from_str(&e.detail).map_err(internal)?;
                    let (from, to) = match e.kind.as_str() {
                        "created" => (None, detail["stage"].as_str()),
                        _ => (detail["from"].as_str().map(str::to_string), detail["to"].as_str()),
                    };
                    let Some(to) = to else { continue };
                    steps.push(Step {
                        at: time(&e.at)?,
                        from,
                        to: to.to_string(),
                        version: e.version.clone(),
                    });
                }
                stats.add(&DealTrail {
                    key: by.map(|b| b.key(deal)).unwrap_or_default(),
                    stage: deal.stage.clone(),
                    stage_entered_at: time(&deal.stage_entered_at)?,
                    amount: decimal(&deal.fields["amount"]),
                    close_period: quarter_of(&deal.fields["close_date"]),
                    steps,
                });
            }
            after.clone_from(&last.id);
            if (deals.len() as i64) < PAGE {
                break;
            }
        }
        stats
            .finish(by.map(FunnelBy::as_str))
            .map_err(WorkflowError::Unprocessable)
    }

    /// The scheduled pace check: for each Targets document with a
    /// `pace_alert`, once per due time of its schedule across every node
    /// sharing the database, tells each rep behind pace in the current
    /// period (and their manager) through the outbox, once per period and
    /// rep. How many alerts it queued.
    pub async fn check_pace(&self, snapshot: &Snapshot) -> Result<usize, WorkflowError> {
        let now = self.clock.now();
        let mut queued = 0;
        for targets in snapshot.all_targets() {
            let name = targets.name.to_string();
            let Some(alert) = targets.pace_settings() else { continue };
            let slot = dealrules_store::timestamp(last_due(alert.schedule, now));
            let today = now.date_naive();
            if today.year() != targets.year() {
                continue;
            }
            let label = match alert.period {
                dealrules_model::PeriodKind::Month => format!("{}-{:02}", today.year(), today.month()),
                dealrules_model::PeriodKind::Quarter => format!("{}-Q{}", today.year(), (today.month() - 1) / 3 + 1),
                dealrules_model::PeriodKind::Year => today.year().to_string(),
            };
            if self.store.analytics().pace_check_done(&name, &slot).await? {
                continue;
            }
            // Measured before the write transaction: SQLite writers take turns.
            let p = self.target_progress(snapshot, &name, &label, ProgressBy::Rep).await?;
            let at = dealrules_store::timestamp(now);
            let mut tx = self.store.begin_write().await?;
            if !self
                .store
                .analytics()
                .claim_pace_check(&mut tx, &name, &slot, &self.node, &at)
                .await?
            {
                continue;
            }
            for row in p.rows.iter().filter(|r| r.alert) {
                let pace = row.pace.map(|x| x.to_string()).unwrap_or_default();
                if !self
                    .store
                    .analytics()
                    .record_pace_alert(&mut tx, &name, &p.period, &row.key, &pace, &slot, &at)
                    .await?
                {
                    continue;
                }
                let mut context = tera::Context::new();
                context.insert("targets", &name);
                context.insert("period", &p.period);
                context.insert("rep", &row.key);
                context.insert("row", row);
                context.insert("elapsed_share", &p.elapsed_share);
                context.insert("below", &p.below);
                for to in std::iter::once(&row.key).chain(row.manager.as_ref()) {
                    context.insert("recipient", to);
                    let chosen = crate::notify::localized(
                        &self.store.people(),
                        &self.templates,
                        &mut tx,
                        PACE_TEMPLATE,
                        to,
                        &at,
                    )
                    .await?;
                    let body = self
                        .templates
                        .render(&chosen, &context)
                        .map_err(|e| internal(format!("template {PACE_TEMPLATE}: {e}")))?;
                    let outbox = OutboxRow {
                        id: self.store.new_id(),
                        deal_id: None,
                        template: PACE_TEMPLATE.into(),
                        recipient: to.clone(),
                        body,
                        state: OutboxState::Pending,
                        attempts: 0,
                        next_attempt_at: at.clone(),
                        last_error: None,
                        created_at: at.clone(),
                        sent_at: None,
                    };
                    self.store.outbox().insert_outbox(&mut tx, &outbox).await?;
                    queued += 1;
                }
                tracing::info!(targets = %name, period = %p.period, rep = %row.key, pace = %pace, "pace alert queued");
            }
            tx.commit().await?;
        }
        Ok(queued)
    }
}

/// The latest due time of a schedule at or before `now`: today's, this
/// Monday's or this month's 1st, 00:00 UTC.
pub fn last_due(schedule: AlertSchedule, now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now.date_naive();
    let day = match schedule {
        AlertSchedule::Daily => today,
        AlertSchedule::Weekly => today - chrono::Duration::days(i64::from(today.weekday().num_days_from_monday())),
        AlertSchedule::Monthly => today.with_day(1).unwrap_or(today),
    };
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// The roster as a plan input reads it: every version of every person in
/// force at some time up to the end of the period.
fn roster_of(people: Vec<dealrules_store::Person>) -> Vec<RosterVersion> {
    people
        .into_iter()
        .map(|p| RosterVersion {
            rep: p.as_rep(),
            id: p.id,
            from: p.valid_from,
            to: p.valid_to,
        })
        .collect()
}

fn day_text(d: NaiveDate) -> String {
    dealrules_expr::funcs::day_text(d)
}

/// The roster and the credits of deals closed in `period`, each deal read
/// and credited now: by the plans whose quota comes from `targets` (their
/// `credit` rules, splits and versions), or, when none does, each won
/// deal's amount to its owner. What the kept credits must agree with.
async fn read_credits(
    store: &Store,
    snapshot: &Snapshot,
    targets: &Targets,
    period: &dealrules_core::period::Period,
    now: &DateTime<Utc>,
) -> Result<(Vec<RosterVersion>, Vec<Credited>), WorkflowError> {
    let end = day_text(period.end);
    let roster = roster_of(store.people().people_between(BEGINNING, &end).await?);
    let input = PlanInput::new(period, roster.clone());
    // The store's summary finds the deals closed or cancelled in the
    // period by index; the period's own rule then reads each. Read by one
    // task and credited here a page at a time, so the two overlap.
    let (to, mut pages) = tokio::sync::mpsc::channel(4);
    let (analytics, start) = (store.analytics(), day_text(period.start));
    let reader = tokio::spawn(async move { analytics.send_deals_closed_or_cancelled_between(&start, &end, to).await });
    let mut credits = Vec::new();
    while let Some(deals) = pages.recv().await {
        credits.extend(credit_deals(snapshot, targets, &input, &deals, now)?);
    }
    reader
        .await
        .map_err(|e| internal(format!("reading the period's deals: {e}")))??;
    Ok((roster, credits))
}

/// What `deals` credit in `period` (those the period reads; the rest
/// credit nothing), by the rules of [`read_credits`]; `input` holds the
/// period and the roster.
fn credit_deals(
    snapshot: &Snapshot,
    targets: &Targets,
    input: &PlanInput,
    deals: &[DealToCredit],
    now: &DateTime<Utc>,
) -> Result<Vec<Credited>, WorkflowError> {
    fn stored(d: &DealToCredit) -> StoredDeal<'_> {
        StoredDeal {
            id: &d.id,
            owner: &d.owner,
            stage: &d.stage,
            fields: &d.fields,
            stage_entered_at: &d.stage_entered_at,
        }
    }
    let text = |d: &DealToCredit, k: &str| d.fields.get(k).and_then(Json::as_str).map(str::to_string);
    let period = input.period();
    let plans = snapshot.plans_fed_by(&targets.name);
    let mut credits = Vec::new();
    if plans.is_empty() {
        for d in deals {
            let Some(Some(closed)) = PlanInput::read_close(period, &stored(d)) else {
                continue;
            };
            let won = match snapshot.funnel(&d.funnel) {
                Some(f) => f.stage(&d.stage).is_some_and(|i| f.is_won(i)),
                None => d.stage == "won",
            };
            if !won {
                continue;
            }
            credits.push(Credited {
                deal: d.id.clone(),
                rep: d.owner.clone(),
                credit: decimal(d.fields.get("amount").unwrap_or(&Json::Null)),
                closed,
                product: text(d, "product"),
                channel: text(d, "channel"),
            });
        }
    } else {
        let mut read = Vec::with_capacity(deals.len());
        let values: Vec<dealrules_expr::Value> = deals
            .iter()
            .filter_map(|d| {
                let facts = input.deal_facts(&stored(d))?;
                read.push(d);
                Some(facts)
            })
            .collect();
        let by_id: HashMap<&str, &DealToCredit> = read.iter().map(|d| (d.id.as_str(), *d)).collect();
        let mut seen = HashSet::new();
        let now = dealrules_store::timestamp(*now);
        for plan in plans {
            for c in plan.credits(period, &values, &now)? {
                if !seen.insert((c.deal.clone(), c.rep.clone())) {
                    continue;
                }
                let d = by_id.get(c.deal.as_str());
                credits.push(Credited {
                    product: d.and_then(|d| text(d, "product")),
                    channel: d.and_then(|d| text(d, "channel")),
                    deal: c.deal,
                    rep: c.rep,
                    credit: c.credit,
                    closed: c.closed,
                });
            }
        }
    }
    Ok(credits)
}

/// Whether the credits of `targets`' period can be kept between reports:
/// what each deal credits depends only on the deal, its owner on the
/// roster, the pack and the period (no plan fed by the targets reads `now`
/// or credits by script).
fn credits_keepable(snapshot: &Snapshot, targets: &Targets) -> bool {
    snapshot
        .plans_fed_by(&targets.name)
        .iter()
        .all(|p| p.credit_is_of_the_deal_alone())
}

fn credit_rows(credits: &[Credited]) -> Vec<CreditRow> {
    credits
        .iter()
        .map(|c| CreditRow {
            deal_id: c.deal.clone(),
            rep: c.rep.clone(),
            credit: c.credit,
            closed_on: day_text(c.closed),
            product: c.product.clone(),
            channel: c.channel.clone(),
        })
        .collect()
}

/// The credit basis of `targets` in `snapshot`, when its credits can be
/// kept (see [`dealrules_core::Snapshot::credit_basis`]).
fn basis_of(snapshot: &Snapshot, targets: &Targets) -> Option<String> {
    credits_keepable(snapshot, targets).then(|| snapshot.credit_basis(&targets.name))
}

/// The Targets documents of `snapshot` whose credits are kept, with their
/// bases: the fills the active version reads.
fn live_fills(snapshot: &Snapshot) -> Vec<(String, String)> {
    snapshot
        .all_targets()
        .into_iter()
        .filter_map(|t| Some((t.name.to_string(), basis_of(snapshot, t)?)))
        .collect()
}

/// The roster and the credits of `period` while the fill `id` is being
/// stored: `kept`, what its maker read and credited, with the deals marked
/// in the fill since (written, or their owner changed) credited again now,
/// as the report after the store will.
async fn credits_while_stored(
    store: &Store,
    snapshot: &Snapshot,
    targets: &Targets,
    period: &dealrules_core::period::Period,
    now: &DateTime<Utc>,
    id: &str,
    kept: &[Credited],
) -> Result<(Vec<RosterVersion>, Vec<Credited>), WorkflowError> {
    let analytics = store.analytics();
    let mut conn = analytics.read_connection().await?;
    // Marks, then the roster and the deals: a write after the marks were
    // read is a write after this report began reading.
    let marks = analytics.credit_marks(&mut conn, id).await?;
    let roster = roster_of(
        store
            .people()
            .people_between_in(&mut conn, BEGINNING, &day_text(period.end))
            .await?,
    );
    let ids: Vec<&str> = marks.iter().map(|(d, _)| d.as_str()).collect();
    let deals = analytics.deals_in(&mut conn, &ids).await?;
    drop(conn);
    let marked: HashSet<&str> = ids.iter().copied().collect();
    let mut credits: Vec<Credited> = kept
        .iter()
        .filter(|c| !marked.contains(c.deal.as_str()))
        .cloned()
        .collect();
    let input = PlanInput::new(period, roster.clone());
    credits.extend(credit_deals(snapshot, targets, &input, &deals, now)?);
    Ok((roster, credits))
}

/// Who asks for kept credits: a report, for its credits; the activation
/// owner, only for the fill to be made (a fill already made, or one a
/// newer pack version has dropped meanwhile, is left as it is, and the
/// answer is empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asker {
    Report,
    Activation,
}

/// The roster and the credits of `period`, from the credits the store
/// keeps for this credit basis, Targets document and period (see
/// [`dealrules_store::credits`]): made by the first report that asks (by
/// [`read_credits`]) unless a pack version with the same credit rules made
/// them already, then brought up to date by crediting again the deals
/// marked since (written, or their owner changed on the roster), and read
/// added up by rep, day, product and channel.
#[allow(clippy::too_many_arguments)]
async fn kept_credits(
    store: &Arc<Store>,
    gate: &Arc<FillGate>,
    asker: Asker,
    snapshot: &Snapshot,
    targets: &Targets,
    basis: &str,
    period: &dealrules_core::period::Period,
    now: &DateTime<Utc>,
) -> Result<(Vec<RosterVersion>, Arc<Vec<Credited>>), WorkflowError> {
    let nothing = (Vec::new(), Arc::new(Vec::new()));
    let (first, last) = (day_text(period.start), day_text(period.end));
    let analytics = store.analytics();
    let key = FillKey {
        basis,
        targets: &targets.name,
        period: &period.label,
        first_day: &first,
        last_day: &last,
    };
    let mut fill = analytics
        .credit_fill(&key, &snapshot.version, &live_fills(snapshot))
        .await?;
    if fill.state == FillState::Filling {
        // One maker per fill in this process: the others wait for it to
        // have read and credited, then add up what it read (and what was
        // written since) while its credits are stored, or read them kept.
        let gate_key = format!("{basis}/{}/{}", targets.name, period.label);
        let making = gate.lock_of(&gate_key).lock_owned().await;
        // Published before the gate opens, withdrawn once stored: absent
        // here, the fill is stored (or was never made, or failed).
        if let Some((id, credits)) = gate.storing_of(&gate_key)
            && id == fill.id
        {
            drop(making);
            if asker == Asker::Activation {
                return Ok(nothing);
            }
            return credits_while_stored(store, snapshot, targets, period, now, &id, &credits)
                .await
                .map(|(roster, credits)| (roster, Arc::new(credits)));
        }
        if let Some(now_stored) = analytics.find_credit_fill(&key).await? {
            fill = now_stored;
        }
        if fill.state == FillState::Filling {
            // PostgreSQL: the fill's row is held until its credits are
            // stored, so a report on another node waits for them (SQLite
            // has one writer process, and holds its write lock only to
            // store).
            let mut held = None;
            if analytics.fills_held_across_nodes() {
                let mut tx = store.begin_write().await?;
                match analytics.lock_credit_fill(&mut tx, &fill.id).await? {
                    Some(FillState::Filling) => held = Some(tx),
                    Some(FillState::Ready) => {
                        tx.commit().await?;
                        fill.state = FillState::Ready;
                    }
                    // Dropped for a newer pack version's meanwhile: this
                    // report reads its period whole.
                    None => {
                        tx.commit().await?;
                        if asker == Asker::Activation {
                            return Ok(nothing);
                        }
                        return read_credits(store, snapshot, targets, period, now)
                            .await
                            .map(|(roster, credits)| (roster, Arc::new(credits)));
                    }
                }
            }
            if fill.state == FillState::Filling {
                // Read after the fill was made: a deal written from then on
                // is marked in it.
                let started = std::time::Instant::now();
                let (roster, credits) = read_credits(store, snapshot, targets, period, now).await?;
                let read = started.elapsed();
                gate.count_made();
                // This report answers from what it credited, and so do the
                // reports asking while the credits are stored (with the
                // deals marked since credited again).
                let credits = Arc::new(credits);
                gate.set_storing(&gate_key, Some((fill.id.clone(), credits.clone())));
                let kept = credits.clone();
                drop(making);
                let (store, id) = (store.clone(), fill.id.clone());
                let (name, label) = (targets.name.to_string(), period.label.clone());
                let gate = gate.clone();
                let behind = gate.leave_behind();
                tokio::spawn(async move {
                    let _behind = behind;
                    let stored = std::time::Instant::now();
                    let rows = credit_rows(&kept);
                    drop(kept);
                    let analytics = store.analytics();
                    let done = async {
                        let mut tx = match held {
                            Some(tx) => tx,
                            None => store.begin_write().await?,
                        };
                        if analytics.lock_credit_fill(&mut tx, &id).await? == Some(FillState::Filling) {
                            analytics.fill_credits(&mut tx, &id, &rows).await?;
                            tx.commit().await?;
                        }
                        Ok::<(), dealrules_store::StoreError>(())
                    }
                    .await;
                    // Stored (or not: left `filling`, the next report makes
                    // it again); either way no longer read from memory.
                    gate.set_storing(&gate_key, None);
                    match done {
                        Ok(()) => tracing::info!(
                            targets = %name, period = %label, credits = rows.len(),
                            read_and_credited_ms = read.as_millis() as u64,
                            stored_ms = stored.elapsed().as_millis() as u64,
                            "kept credits filled"
                        ),
                        Err(e) => {
                            tracing::warn!(targets = %name, period = %label, error = %e, "storing kept credits failed")
                        }
                    }
                    // Then the credits of the fills this one replaced (their
                    // rows went when it was made), after the reports that
                    // waited for it.
                    let cleared = std::time::Instant::now();
                    match analytics.clear_dropped_fills().await {
                        Ok(0) => {}
                        Ok(rows) => tracing::info!(
                            rows,
                            ms = cleared.elapsed().as_millis() as u64,
                            "credits of dropped fills deleted"
                        ),
                        Err(e) => tracing::warn!(error = %e, "deleting the credits of dropped fills failed"),
                    }
                });
                return Ok((roster, credits));
            }
        }
    }
    if asker == Asker::Activation {
        return Ok(nothing);
    }
    if analytics.has_credit_marks(&fill.id).await? {
        let mut tx = store.begin_write().await?;
        if analytics.lock_credit_fill(&mut tx, &fill.id).await? == Some(FillState::Ready) {
            // Marks, then the roster and the deals: a write after the marks
            // were read leaves a new mark for the next report.
            let marks = analytics.credit_marks(&mut tx, &fill.id).await?;
            let roster = roster_of(store.people().people_between_in(&mut tx, BEGINNING, &last).await?);
            let ids: Vec<&str> = marks.iter().map(|(d, _)| d.as_str()).collect();
            let deals = analytics.deals_in(&mut tx, &ids).await?;
            let input = PlanInput::new(period, roster);
            let credits = credit_deals(snapshot, targets, &input, &deals, now)?;
            analytics
                .recredit(&mut tx, &fill.id, &marks, &credit_rows(&credits))
                .await?;
            tx.commit().await?;
            tracing::debug!(targets = %targets.name, period = %period.label, deals = marks.len(), "kept credits brought up to date");
        }
    }
    let roster = roster_of(store.people().people_between(BEGINNING, &last).await?);
    let summed = analytics.summed_credits(&fill.id).await?;
    // A fill is dropped (its credits and its row in one transaction) when
    // another pack version makes its own: still there after the sums were
    // read, the sums are all of it.
    if analytics.credit_fill_state(&fill.id).await?.is_none() {
        return read_credits(store, snapshot, targets, period, now)
            .await
            .map(|(roster, credits)| (roster, Arc::new(credits)));
    }
    let credits = summed
        .into_iter()
        .map(|s| {
            let closed = NaiveDate::parse_from_str(&s.closed_on, "%Y-%m-%d")
                .map_err(|e| internal(format!("a kept credit's day `{}`: {e}", s.closed_on)))?;
            Ok(Credited {
                deal: String::new(),
                rep: s.rep,
                credit: s.credit,
                closed,
                product: s.product,
                channel: s.channel,
            })
        })
        .collect::<Result<Vec<_>, WorkflowError>>()?;
    Ok((roster, Arc::new(credits)))
}
