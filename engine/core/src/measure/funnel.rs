//! Funnel analytics and the forecast, exact, from each deal's trail of
//! stages (its `created` and `move` history entries).
//!
//! - A *visit* is a deal's stay in a stage: from the entry that put it
//!   there to the next move. A stage's `entered` counts the visits that
//!   began in `[since, until)`; every other figure of the stage is about
//!   those visits.
//! - A visit that ends is `advanced` when the move went to a stage later in
//!   the funnel's order, `lost` when it went to a lost stage, and
//!   `moved_back` otherwise — each judged by the stage order of the pack
//!   version recorded on that move, so a reordering of the stages does not
//!   rewrite the past.
//! - A *won* stage is a terminal stage named `won` or with probability 1;
//!   every other terminal stage is a *lost* stage.
//! - `conversion_to_next` is advanced / entered; `conversion_to_won` is
//!   the share of entered visits whose deal reached a won stage later.
//! - Days in stage (median, p90 by nearest rank) are over the visits that
//!   ended; an open visit has no length yet.
//! - `open`, `weighted` and `stalled` are the deals in the stage now (not
//!   filtered by the window): their count, amount x the stage's configured
//!   probability, and those in it longer than the stage's SLA.
//! - The forecast weighs the open deals by period (the quarter of
//!   `close_date`) twice: by the configured probability, and by the measured
//!   win rate of their stage (of the visits in the window whose deal has
//!   since been won or lost, the share won).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::{money, ratio};

/// A funnel's stages in order, as one pack version defined them.
#[derive(Debug, Clone, PartialEq)]
pub struct StageOrder {
    pub stages: Vec<StageInfo>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageInfo {
    pub id: String,
    pub probability: Decimal,
    pub terminal: bool,
    /// How long a deal may stay before it is stalled.
    pub sla: Option<std::time::Duration>,
}

impl StageInfo {
    pub fn won(&self) -> bool {
        self.terminal && (self.id == "won" || self.probability == Decimal::ONE)
    }

    pub fn lost(&self) -> bool {
        self.terminal && !self.won()
    }
}

impl StageOrder {
    fn index(&self, id: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.id == id)
    }

    fn get(&self, id: &str) -> Option<&StageInfo> {
        self.stages.iter().find(|s| s.id == id)
    }
}

/// One entry of a deal's trail: it entered `to` at `at` (from `from`, none
/// for the deal's creation) under pack `version`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub at: DateTime<Utc>,
    pub from: Option<String>,
    pub to: String,
    pub version: String,
}

/// A deal as the analytics read it: where it is now and how it got there.
#[derive(Debug, Clone, PartialEq)]
pub struct DealTrail {
    /// The group it counts in (`by`), or empty.
    pub key: String,
    pub stage: String,
    pub stage_entered_at: DateTime<Utc>,
    pub amount: Decimal,
    /// The quarter of its `close_date` (`2026-Q3`), when it has one.
    pub close_period: Option<String>,
    /// Oldest first.
    pub steps: Vec<Step>,
}

#[derive(Default, Clone)]
struct StageSums {
    entered: u64,
    advanced: u64,
    lost: u64,
    moved_back: u64,
    won_after: u64,
    /// Of the entered visits, how many deals are now won or lost.
    resolved: u64,
    days_ms: Vec<i64>,
    /// Days in stage found by the store ([`FunnelStats::set_days`]), in
    /// place of `days_ms`.
    days: Option<DaysInStage>,
    open: u64,
    open_amount: Decimal,
    weighted: Decimal,
    stalled: u64,
}

/// The window, the clock and the orders the analytics judge by.
pub struct FunnelWindow<'a> {
    pub funnel: &'a str,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
    /// The active pack's order: rows, probabilities, SLAs.
    pub current: Arc<StageOrder>,
    /// Each pack version's order, for the moves made under it (more can
    /// be added as they are met, [`FunnelStats::add_order`]); a version
    /// without one is judged by the current order.
    pub orders: HashMap<String, Arc<StageOrder>>,
}

/// Funnel analytics being gathered, a deal at a time (a million deals
/// stream through without being held).
pub struct FunnelStats<'a> {
    window: FunnelWindow<'a>,
    total: BTreeMap<String, StageSums>,
    groups: BTreeMap<String, BTreeMap<String, StageSums>>,
    /// Open deals: period -> stage -> (count, amount).
    open_by_period: BTreeMap<String, BTreeMap<String, (u64, Decimal)>>,
    deals: u64,
    overflow: bool,
}

fn in_window(w: &FunnelWindow<'_>, at: DateTime<Utc>) -> bool {
    w.since.is_none_or(|s| s <= at) && w.until.is_none_or(|u| at < u)
}

impl<'a> FunnelStats<'a> {
    pub fn new(window: FunnelWindow<'a>) -> FunnelStats<'a> {
        FunnelStats {
            window,
            total: BTreeMap::new(),
            groups: BTreeMap::new(),
            open_by_period: BTreeMap::new(),
            deals: 0,
            overflow: false,
        }
    }

    /// Whether the order of pack `version` is known.
    pub fn knows(&self, version: &str) -> bool {
        self.window.orders.contains_key(version)
    }

    /// The stage order of pack `version`.
    pub fn add_order(&mut self, version: &str, order: Arc<StageOrder>) {
        self.window.orders.insert(version.to_string(), order);
    }

    fn order_of(&self, version: &str) -> &StageOrder {
        self.window.orders.get(version).map_or(&*self.window.current, |o| &**o)
    }

    /// Whether entering `stage` under pack `version` is winning the deal.
    fn won(&self, stage: &str, version: &str) -> bool {
        self.order_of(version).get(stage).is_some_and(StageInfo::won)
    }

    /// Whether a trail ending in `stage` (under `version`) is won or lost.
    fn resolved(&self, stage: &str, version: &str) -> bool {
        self.order_of(version)
            .get(stage)
            .is_some_and(|st| st.won() || st.lost())
    }

    /// A move from `from` to `to` under pack `version`: lost, advanced or
    /// moved back, by that version's order.
    fn judge_move(&self, from: &str, to: &str, version: &str, v: &mut Visit) {
        let order = self.order_of(version);
        if order.get(to).is_some_and(StageInfo::lost) {
            v.lost = true;
        } else {
            match (order.index(from), order.index(to)) {
                (Some(a), Some(b)) if b > a => v.advanced = true,
                _ => v.moved_back = true,
            }
        }
    }

    /// Adds `group.count` visits that share everything they are judged by
    /// (a store's summary of the trails, [`VisitGroup`]); the same figures
    /// as adding the deals they came from, but days in stage, open deals
    /// and the deal count, which come separately.
    pub fn add_visits(&mut self, group: &VisitGroup) {
        let mut v = Visit {
            won_after: group.later.iter().any(|(s, version)| self.won(s, version)),
            resolved: self.resolved(&group.last.0, &group.last.1),
            ..Visit::default()
        };
        if let Some((to, version)) = &group.next {
            self.judge_move(&group.stage, to, version, &mut v);
        }
        let n = group.count;
        for sums in [&mut self.total, self.groups.entry(group.key.clone()).or_default()] {
            let s = sums.entry(group.stage.clone()).or_default();
            s.entered += n;
            s.advanced += n * u64::from(v.advanced);
            s.lost += n * u64::from(v.lost);
            s.moved_back += n * u64::from(v.moved_back);
            s.won_after += n * u64::from(v.won_after);
            s.resolved += n * u64::from(v.resolved);
        }
    }

    /// Days in `stage` of the visits that ended, for the whole funnel
    /// (`key` none) or one group.
    pub fn set_days(&mut self, key: Option<&str>, stage: &str, days: DaysInStage) {
        let sums = match key {
            None => &mut self.total,
            Some(k) => self.groups.entry(k.to_string()).or_default(),
        };
        sums.entry(stage.to_string()).or_default().days = Some(days);
    }

    /// `count` deals of group `key` now in `stage`, each of `amount`,
    /// closing in `close_period`; nothing for a stage that is not open in
    /// the active pack.
    pub fn add_open(&mut self, key: &str, stage: &str, close_period: Option<&str>, amount: Decimal, count: u64) {
        let Some(probability) = self
            .window
            .current
            .get(stage)
            .filter(|s| !s.terminal)
            .map(|s| s.probability)
        else {
            return;
        };
        let Some(total) = amount.checked_mul(Decimal::from(count)) else {
            self.overflow = true;
            return;
        };
        for sums in [&mut self.total, self.groups.entry(key.to_string()).or_default()] {
            let s = sums.entry(stage.to_string()).or_default();
            s.open += count;
            match (
                s.open_amount.checked_add(total),
                total.checked_mul(probability).and_then(|w| s.weighted.checked_add(w)),
            ) {
                (Some(a), Some(w)) => (s.open_amount, s.weighted) = (a, w),
                _ => self.overflow = true,
            }
        }
        let period = close_period.unwrap_or(NO_CLOSE_DATE).to_string();
        let cell = self
            .open_by_period
            .entry(period)
            .or_default()
            .entry(stage.to_string())
            .or_default();
        cell.0 += count;
        match cell.1.checked_add(total) {
            Some(a) => cell.1 = a,
            None => self.overflow = true,
        }
    }

    /// `count` deals of group `key` in `stage` longer than its SLA.
    pub fn add_stalled(&mut self, key: &str, stage: &str, count: u64) {
        for sums in [&mut self.total, self.groups.entry(key.to_string()).or_default()] {
            sums.entry(stage.to_string()).or_default().stalled += count;
        }
    }

    /// A group whose deals may have no figures: it still has rows.
    pub fn add_group(&mut self, key: &str) {
        self.groups.entry(key.to_string()).or_default();
    }

    /// How many deals of the funnel the figures cover.
    pub fn add_deals(&mut self, count: u64) {
        self.deals += count;
    }

    /// The active order's stages that are open (not terminal), with their
    /// SLA: the stages whose deals are counted open and stalled.
    pub fn open_stages(&self) -> Vec<(String, Option<std::time::Duration>)> {
        self.window
            .current
            .stages
            .iter()
            .filter(|s| !s.terminal)
            .map(|s| (s.id.clone(), s.sla))
            .collect()
    }

    /// Adds one deal.
    pub fn add(&mut self, deal: &DealTrail) {
        self.deals += 1;
        let mut visits: Vec<(String, Visit)> = Vec::new();
        // Where the trail ends: a won or lost stage, judged by its version.
        let resolved = deal.steps.last().is_some_and(|s| self.resolved(&s.to, &s.version));
        for (i, step) in deal.steps.iter().enumerate() {
            if !in_window(&self.window, step.at) {
                continue;
            }
            let next = deal.steps.get(i + 1);
            let mut v = Visit {
                won_after: deal.steps[i..].iter().any(|s| self.won(&s.to, &s.version)),
                resolved,
                ..Visit::default()
            };
            if let Some(n) = next {
                v.days_ms = Some((n.at - step.at).num_milliseconds().max(0));
                self.judge_move(&step.to, &n.to, &n.version, &mut v);
            }
            visits.push((step.to.clone(), v));
        }
        let current = self.window.current.get(&deal.stage).cloned();
        let open = current.as_ref().filter(|s| !s.terminal).map(|s| {
            let stalled = s
                .sla
                .and_then(|sla| chrono::Duration::from_std(sla).ok())
                .is_some_and(|sla| self.window.now - deal.stage_entered_at > sla);
            (s.probability, stalled)
        });
        for sums in [&mut self.total, self.groups.entry(deal.key.clone()).or_default()] {
            for (stage, v) in &visits {
                let s = sums.entry(stage.clone()).or_default();
                s.entered += 1;
                s.advanced += u64::from(v.advanced);
                s.lost += u64::from(v.lost);
                s.moved_back += u64::from(v.moved_back);
                s.won_after += u64::from(v.won_after);
                s.resolved += u64::from(v.resolved);
                s.days_ms.extend(v.days_ms);
            }
            if let Some((probability, stalled)) = open {
                let s = sums.entry(deal.stage.clone()).or_default();
                s.open += 1;
                s.stalled += u64::from(stalled);
                match (
                    s.open_amount.checked_add(deal.amount),
                    deal.amount
                        .checked_mul(probability)
                        .and_then(|w| s.weighted.checked_add(w)),
                ) {
                    (Some(a), Some(w)) => (s.open_amount, s.weighted) = (a, w),
                    _ => self.overflow = true,
                }
            }
        }
        if open.is_some() {
            let period = deal.close_period.clone().unwrap_or_else(|| NO_CLOSE_DATE.to_string());
            let cell = self
                .open_by_period
                .entry(period)
                .or_default()
                .entry(deal.stage.clone())
                .or_default();
            cell.0 += 1;
            match cell.1.checked_add(deal.amount) {
                Some(a) => cell.1 = a,
                None => self.overflow = true,
            }
        }
    }

    /// The analytics; `by` names what the groups are keyed by.
    pub fn finish(self, by: Option<&str>) -> Result<(FunnelReport, Forecast), String> {
        if self.overflow {
            return Err(format!("funnel `{}`: the amounts are out of range", self.window.funnel));
        }
        let order = self.stage_ids();
        let rows = |sums: &BTreeMap<String, StageSums>| -> Vec<StageRow> {
            order
                .iter()
                .map(|id| stage_row(id, sums.get(id).cloned().unwrap_or_default(), &self.window.current))
                .collect()
        };
        let stages = rows(&self.total);
        let groups = match by {
            Some(_) => self
                .groups
                .iter()
                .map(|(key, sums)| FunnelGroup {
                    key: key.clone(),
                    stages: rows(sums),
                })
                .collect(),
            None => Vec::new(),
        };
        let forecast = self.forecast(&stages)?;
        Ok((
            FunnelReport {
                funnel: self.window.funnel.to_string(),
                since: self.window.since,
                until: self.window.until,
                now: self.window.now,
                by: by.map(str::to_string),
                deals: self.deals,
                stages,
                groups,
            },
            forecast,
        ))
    }

    /// The active order's stages, then stages seen only in history.
    fn stage_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.window.current.stages.iter().map(|s| s.id.clone()).collect();
        for id in self.total.keys() {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        ids
    }

    fn forecast(&self, stages: &[StageRow]) -> Result<Forecast, String> {
        let overflow = || format!("funnel `{}`: the forecast is out of range", self.window.funnel);
        // Unrounded: the rows show four places, the forecast weighs exactly.
        let measured: HashMap<&str, Option<Decimal>> = self
            .total
            .iter()
            .map(|(id, s)| {
                let rate = (s.resolved > 0).then(|| Decimal::from(s.won_after) / Decimal::from(s.resolved));
                (id.as_str(), rate)
            })
            .collect();
        let mut periods = Vec::new();
        for (period, cells) in &self.open_by_period {
            let (mut count, mut amount, mut configured, mut by_measured) =
                (0u64, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
            for (stage, (n, a)) in cells {
                let p = self.window.current.get(stage).map_or(Decimal::ZERO, |s| s.probability);
                // A stage without measured outcomes weighs by its configured probability.
                let m = measured.get(stage.as_str()).copied().flatten().unwrap_or(p);
                count += n;
                amount = amount.checked_add(*a).ok_or_else(overflow)?;
                configured = a
                    .checked_mul(p)
                    .and_then(|w| configured.checked_add(w))
                    .ok_or_else(overflow)?;
                by_measured = a
                    .checked_mul(m)
                    .and_then(|w| by_measured.checked_add(w))
                    .ok_or_else(overflow)?;
            }
            periods.push(ForecastPeriod {
                period: period.clone(),
                open: count,
                amount: money(amount),
                weighted_configured: money(configured),
                weighted_measured: money(by_measured),
            });
        }
        let stages = stages
            .iter()
            .filter(|s| self.window.current.get(&s.stage).is_some_and(|x| !x.terminal))
            .map(|s| StageProbability {
                stage: s.stage.clone(),
                configured: s.probability,
                measured: s.win_rate_measured,
                resolved: s.resolved,
            })
            .collect();
        Ok(Forecast {
            funnel: self.window.funnel.to_string(),
            since: self.window.since,
            until: self.window.until,
            periods,
            stages,
        })
    }
}

const NO_CLOSE_DATE: &str = "(no close date)";

#[derive(Default)]
struct Visit {
    advanced: bool,
    lost: bool,
    moved_back: bool,
    won_after: bool,
    resolved: bool,
    days_ms: Option<i64>,
}

/// Milliseconds as days, two places.
fn days(ms: i64) -> Decimal {
    money(Decimal::from(ms) / Decimal::from(86_400_000))
}

fn share(part: u64, whole: u64) -> Option<Decimal> {
    (whole > 0).then(|| ratio(Decimal::from(part) / Decimal::from(whole)))
}

/// A group of visits a store counted together: the same stage, the same
/// next move, the same stages entered from then on and the same end of
/// the deal's trail.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitGroup {
    /// The group it counts in (`by`), or empty.
    pub key: String,
    pub stage: String,
    /// Where the deal went next and under which pack version; none while it
    /// is still there.
    pub next: Option<(String, String)>,
    /// Every (stage, version) the deal entered from this visit on, this one
    /// included.
    pub later: Vec<(String, String)>,
    /// The deal's latest entry: (stage, version).
    pub last: (String, String),
    pub count: u64,
}

/// Median and p90 (nearest rank) of the days in a stage, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DaysInStage {
    pub median_ms: Option<i64>,
    pub p90_ms: Option<i64>,
}

impl DaysInStage {
    /// The 0-based ranks among `n` sorted lengths that the figures read:
    /// the median's one or two, then the p90's.
    pub fn ranks(n: usize) -> Vec<usize> {
        match n {
            0 => Vec::new(),
            _ if n % 2 == 1 => vec![n / 2, (9 * n).div_ceil(10) - 1],
            _ => vec![n / 2 - 1, n / 2, (9 * n).div_ceil(10) - 1],
        }
    }

    /// The figures of `n` lengths, `at(rank)` giving the rank-th smallest
    /// (for each rank of [`DaysInStage::ranks`]).
    pub fn from_ranked(n: usize, mut at: impl FnMut(usize) -> i64) -> DaysInStage {
        if n == 0 {
            return DaysInStage::default();
        }
        let median = if n % 2 == 1 {
            at(n / 2)
        } else {
            (at(n / 2 - 1) + at(n / 2)) / 2
        };
        // Nearest rank: the ceil(0.9 n)-th smallest.
        DaysInStage {
            median_ms: Some(median),
            p90_ms: Some(at((9 * n).div_ceil(10) - 1)),
        }
    }
}

fn stage_row(id: &str, mut s: StageSums, current: &StageOrder) -> StageRow {
    let found = s.days.unwrap_or_else(|| {
        s.days_ms.sort_unstable();
        DaysInStage::from_ranked(s.days_ms.len(), |i| s.days_ms[i])
    });
    let (median, p90) = (found.median_ms.map(days), found.p90_ms.map(days));
    let stage = current.get(id);
    StageRow {
        stage: id.to_string(),
        in_current_pack: stage.is_some(),
        terminal: stage.is_some_and(|s| s.terminal),
        probability: stage.map(|s| s.probability),
        entered: s.entered,
        advanced: s.advanced,
        lost: s.lost,
        moved_back: s.moved_back,
        conversion_to_next: share(s.advanced, s.entered),
        conversion_to_won: share(s.won_after, s.entered),
        win_rate_measured: share(s.won_after, s.resolved),
        resolved: s.resolved,
        days_median: median,
        days_p90: p90,
        open: s.open,
        open_amount: money(s.open_amount),
        weighted: money(s.weighted),
        stalled: s.stalled,
        sla_days: stage
            .and_then(|s| s.sla)
            .map(|d| days(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))),
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FunnelReport {
    pub funnel: String,
    #[serde(serialize_with = "crate::answer_text::time_opt")]
    pub since: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::answer_text::time_opt")]
    pub until: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::answer_text::time")]
    pub now: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Deals of the funnel read.
    pub deals: u64,
    pub stages: Vec<StageRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<FunnelGroup>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FunnelGroup {
    pub key: String,
    pub stages: Vec<StageRow>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StageRow {
    pub stage: String,
    /// False for a stage only earlier pack versions had.
    pub in_current_pack: bool,
    pub terminal: bool,
    /// The configured probability (active pack).
    pub probability: Option<Decimal>,
    pub entered: u64,
    pub advanced: u64,
    pub lost: u64,
    pub moved_back: u64,
    pub conversion_to_next: Option<Decimal>,
    pub conversion_to_won: Option<Decimal>,
    /// Of the entered visits whose deal is now won or lost, the share won.
    pub win_rate_measured: Option<Decimal>,
    pub resolved: u64,
    pub days_median: Option<Decimal>,
    pub days_p90: Option<Decimal>,
    pub open: u64,
    pub open_amount: Decimal,
    pub weighted: Decimal,
    pub stalled: u64,
    pub sla_days: Option<Decimal>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Forecast {
    pub funnel: String,
    #[serde(serialize_with = "crate::answer_text::time_opt")]
    pub since: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::answer_text::time_opt")]
    pub until: Option<DateTime<Utc>>,
    pub periods: Vec<ForecastPeriod>,
    /// Each open stage's configured probability beside its measured win rate.
    pub stages: Vec<StageProbability>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ForecastPeriod {
    pub period: String,
    pub open: u64,
    pub amount: Decimal,
    pub weighted_configured: Decimal,
    pub weighted_measured: Decimal,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StageProbability {
    pub stage: String,
    pub configured: Option<Decimal>,
    pub measured: Option<Decimal>,
    /// How many outcomes the measured rate rests on.
    pub resolved: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(ids: &[&str]) -> Arc<StageOrder> {
        Arc::new(StageOrder {
            stages: ids
                .iter()
                .map(|id| StageInfo {
                    id: id.to_string(),
                    probability: match *id {
                        "lead" => Decimal::new(1, 1),
                        "qualified" => Decimal::new(3, 1),
                        "proposal" => Decimal::new(5, 1),
                        "won" => Decimal::ONE,
                        _ => Decimal::ZERO,
                    },
                    terminal: matches!(*id, "won" | "lost"),
                    sla: (*id == "proposal").then(|| std::time::Duration::from_secs(10 * 86400)),
                })
                .collect(),
        })
    }

    fn at(day: u32) -> DateTime<Utc> {
        format!("2026-03-{day:02}T00:00:00Z").parse().unwrap()
    }

    fn step(day: u32, from: Option<&str>, to: &str, version: &str) -> Step {
        Step {
            at: at(day),
            from: from.map(str::to_string),
            to: to.into(),
            version: version.into(),
        }
    }

    fn deal(key: &str, stage: &str, amount: i64, steps: Vec<Step>) -> DealTrail {
        DealTrail {
            key: key.into(),
            stage: stage.into(),
            stage_entered_at: steps.last().unwrap().at,
            amount: Decimal::from(amount),
            close_period: Some("2026-Q2".into()),
            steps,
        }
    }

    /// Pack v1 orders lead, qualified, proposal; v2 (from March 10) puts
    /// proposal before qualified. The same move proposal -> qualified is a
    /// step back under v1 and an advance under v2.
    #[test]
    fn conversion_and_days_in_stage_across_a_reordering() {
        let v1 = order(&["lead", "qualified", "proposal", "won", "lost"]);
        let v2 = order(&["lead", "proposal", "qualified", "won", "lost"]);
        let orders: HashMap<String, Arc<StageOrder>> = [("v1".to_string(), v1), ("v2".to_string(), v2.clone())].into();
        let deals = [
            // d1: lead 2 days, qualified 3 days, proposal 4 days (v1), won.
            deal(
                "ana",
                "won",
                100,
                vec![
                    step(1, None, "lead", "v1"),
                    step(3, Some("lead"), "qualified", "v1"),
                    step(6, Some("qualified"), "proposal", "v1"),
                    step(10, Some("proposal"), "won", "v2"),
                ],
            ),
            // d2: lead 1 day, proposal 2 days, back to qualified under v1 (a step
            // back), then lost.
            deal(
                "ana",
                "lost",
                200,
                vec![
                    step(1, None, "lead", "v1"),
                    step(2, Some("lead"), "proposal", "v1"),
                    step(4, Some("proposal"), "qualified", "v1"),
                    step(9, Some("qualified"), "lost", "v1"),
                ],
            ),
            // d3: under v2, lead 1 day, proposal 6 days, then qualified: an
            // advance under v2; open in qualified since the 18th.
            deal(
                "bo",
                "qualified",
                1000,
                vec![
                    step(11, None, "lead", "v2"),
                    step(12, Some("lead"), "proposal", "v2"),
                    step(18, Some("proposal"), "qualified", "v2"),
                ],
            ),
            // d4: open in proposal since the 2nd: stalled (SLA 10 days).
            deal(
                "bo",
                "proposal",
                400,
                vec![step(1, None, "lead", "v1"), step(2, Some("lead"), "proposal", "v1")],
            ),
        ];
        let mut stats = FunnelStats::new(FunnelWindow {
            funnel: "b2b",
            since: None,
            until: None,
            now: at(30),
            current: v2,
            orders: orders.clone(),
        });
        for d in &deals {
            stats.add(d);
        }
        let (report, forecast) = stats.finish(Some("owner")).unwrap();
        let row = |id: &str| report.stages.iter().find(|s| s.stage == id).unwrap().clone();
        let lead = row("lead");
        // Four deals entered lead and all advanced; one was won.
        assert_eq!((lead.entered, lead.advanced, lead.lost), (4, 4, 0));
        assert_eq!(lead.conversion_to_won, Some(Decimal::new(25, 2)));
        // Days in lead: 2, 1, 1, 1 -> median 1, p90 (4th of 4) 2.
        assert_eq!(
            (lead.days_median, lead.days_p90),
            (Some(Decimal::ONE), Some(Decimal::TWO))
        );
        let proposal = row("proposal");
        // Entered 4 times; d1 advanced (to won), d2 moved back (v1), d3
        // advanced (v2); d4 still there.
        assert_eq!(
            (proposal.entered, proposal.advanced, proposal.moved_back, proposal.lost),
            (4, 2, 1, 0)
        );
        assert_eq!(proposal.conversion_to_next, Some(Decimal::new(5, 1)));
        // Days: 4, 2, 6 -> median 4, p90 6.
        assert_eq!(
            (proposal.days_median, proposal.days_p90),
            (Some(Decimal::from(4)), Some(Decimal::from(6)))
        );
        assert_eq!((proposal.open, proposal.stalled), (1, 1));
        assert_eq!(proposal.weighted.to_string(), "200.00");
        let qualified = row("qualified");
        // d1 advanced to proposal (v1), d2 was lost, d3 is open there.
        assert_eq!((qualified.entered, qualified.advanced, qualified.lost), (3, 1, 1));
        assert_eq!(qualified.days_median, Some(Decimal::from(4))); // 3 and 5
        assert_eq!(
            (qualified.open, qualified.weighted.to_string()),
            (1, "300.00".to_string())
        );
        // Measured win rate of proposal: d1 won, d2 lost; d3 and d4 open.
        assert_eq!(proposal.win_rate_measured, Some(Decimal::new(5, 1)));
        assert_eq!(report.groups.len(), 2);
        assert_eq!(report.groups[1].key, "bo");

        // Forecast for Q2: 1000 in qualified (0.3 configured, measured 0.5:
        // d1 won, d2 lost) and 400 in proposal (0.5 and 0.5).
        let q2 = &forecast.periods[0];
        assert_eq!((q2.open, q2.amount.to_string()), (2, "1400.00".to_string()));
        assert_eq!(q2.weighted_configured.to_string(), "500.00");
        assert_eq!(q2.weighted_measured.to_string(), "700.00");
    }

    #[test]
    fn the_window_counts_visits_that_began_in_it() {
        let v1 = order(&["lead", "qualified", "won", "lost"]);
        let orders: HashMap<String, Arc<StageOrder>> = [("v1".to_string(), v1.clone())].into();
        let mut stats = FunnelStats::new(FunnelWindow {
            funnel: "b2b",
            since: Some(at(5)),
            until: Some(at(10)),
            now: at(30),
            current: v1,
            orders: orders.clone(),
        });
        stats.add(&deal(
            "ana",
            "won",
            1,
            vec![
                step(1, None, "lead", "v1"),
                step(6, Some("lead"), "qualified", "v1"),
                step(12, Some("qualified"), "won", "v1"),
            ],
        ));
        let (report, _) = stats.finish(None).unwrap();
        assert_eq!(report.stages[0].entered, 0, "lead was entered before the window");
        assert_eq!(report.stages[1].entered, 1);
        assert_eq!(report.stages[1].days_median, Some(Decimal::from(6)));
        assert_eq!(report.stages[2].entered, 0, "won was entered after it");
    }
}
