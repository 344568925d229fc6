//! A period read from the store in parts, so a run of a million deals never
//! holds them all: deals come in owner order (each owner's deals together,
//! in the database's own order of owners) and are cut into batches of about
//! [`BATCH_DEALS`] deals at an owner's boundary; each batch decides the
//! statements of the reps who own its deals. Reps who own no deal come
//! after, [`BATCH_REPS`] at a time.
//!
//! Every part's input holds the whole roster (targets are split among all
//! reps) and asks for its own reps' statements (`statements_for`), so each
//! statement is exactly what one input of the whole period gives:
//!
//! - a deal cancelled in the period and closed before it (a clawback) is
//!   read by every part: any rep's history may have paid it;
//! - a deal that credits reps other than its owner (`credit.splits`) ties
//!   those reps together (a split deal is paid as one among its reps). When
//!   the reps a split deal ties fell in different batches, their
//!   statements are decided again at the end, in parts that keep each
//!   group of tied reps whole, from their own deals and the split deals
//!   that credit them. A rep decided twice keeps the later statement (and
//!   the later part is the input it was decided from).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use dealrules_core::Snapshot;
use dealrules_core::incentive::IncentivePlan;
use dealrules_core::period::Period;
use dealrules_core::plan_input::{PlanInput, RosterVersion, StoredDeal, cancel_date, close_date, period_of};
use dealrules_expr::Interest;
use dealrules_store::people::BEGINNING;
use dealrules_store::{Deal, Store};
use serde_json::Value as Json;

use crate::error::WorkflowError;

/// Deals of the period a batch holds before it is cut at the next owner.
pub const BATCH_DEALS: usize = 50_000;
/// Reps a batch decides at most (reps who own few deals in the period).
pub const BATCH_REPS: usize = 1_000;
/// Deals read from the store per query.
const PAGE: i64 = 5_000;

/// One part of a period: the reps whose statements it decides and the
/// deals their input holds (as a plan input holds them).
#[derive(Debug, Clone)]
pub struct Part {
    pub reps: Vec<String>,
    pub deals: Vec<Json>,
}

/// A deal that credits reps other than its owner.
struct SharedDeal {
    deal: Json,
    /// The part that read it.
    seen_in: usize,
    /// The reps on the roster it ties together: its owner and its credited reps.
    reps: Vec<String>,
}

/// Reads one period in parts; see the module's rules.
pub struct PeriodParts<'s> {
    store: &'s Store,
    input: PlanInput,
    /// The reps on the roster during the period, as a plan reads them.
    reps_json: Vec<Json>,
    on_roster: HashSet<String>,
    /// Deals cancelled in the period and closed outside it.
    every_part: Vec<Json>,
    /// Where the owner-ordered scan is.
    after: Option<(String, String)>,
    pending: VecDeque<Deal>,
    scanned: bool,
    owners_seen: HashSet<String>,
    /// Reps who own no deal, decided after the scan.
    idle: Option<VecDeque<String>>,
    /// Split deals found while scanning (only when a plan splits credit),
    /// by deal id, and the part each rep was decided in.
    shared: Option<BTreeMap<String, SharedDeal>>,
    decided_in: HashMap<String, usize>,
    batches: usize,
    /// Groups of tied reps decided again after the scan.
    again: Option<VecDeque<Vec<String>>>,
    seen: Option<&'s AtomicU64>,
    batch_deals: usize,
    batch_reps: usize,
}

impl<'s> PeriodParts<'s> {
    /// Opens `label` (`2026-Q1`, `2026-03`, `2026`) for `plans` of
    /// `snapshots` (one pack, or two compared): the roster, and the deals
    /// every part reads. Each deal read is added to `seen`.
    pub async fn open(
        store: &'s Store,
        snapshots: &[&Snapshot],
        plans: &[String],
        label: &str,
        seen: Option<&'s AtomicU64>,
    ) -> Result<PeriodParts<'s>, WorkflowError> {
        let period = period_of(label).map_err(WorkflowError::Invalid)?;
        let end = period.end.format("%Y-%m-%d").to_string();
        let roster: Vec<RosterVersion> = store
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
        let mut input = PlanInput::new(&period, roster);
        let in_period = input.reps_in_period();
        let reps_json: Vec<Json> = in_period.iter().map(|v| Json::Object(v.rep.clone())).collect();
        let on_roster: HashSet<String> = in_period.iter().map(|v| v.id.clone()).collect();
        // Clawbacks: the cheap text test first, then the real one.
        let clawbacks = store
            .deals()
            .scan_deals_mentioning("cancelled_at", |d| {
                let s = stored(&d);
                let closed_in = close_date(&s).is_some_and(|c| period.contains(c));
                let cancelled_in = cancel_date(&s).is_some_and(|c| period.contains(c));
                (!closed_in && cancelled_in).then_some(d)
            })
            .await?;
        for d in &clawbacks {
            input.add_deal(&stored(d));
        }
        let every_part = input.take_deals();
        let splits = plans.iter().any(|p| {
            snapshots.iter().any(|snapshot| {
                snapshot
                    .plan_versions(p)
                    .is_some_and(|vs| vs.iter().any(|v| v.splits_credit()))
            })
        });
        Ok(PeriodParts {
            store,
            input,
            reps_json,
            on_roster,
            every_part,
            after: None,
            pending: VecDeque::new(),
            scanned: false,
            owners_seen: HashSet::new(),
            idle: None,
            shared: splits.then(BTreeMap::new),
            decided_in: HashMap::new(),
            batches: 0,
            again: None,
            seen,
            batch_deals: BATCH_DEALS,
            batch_reps: BATCH_REPS,
        })
    }

    /// Parts cut after `deals` deals or `reps` reps instead of the
    /// defaults ([`BATCH_DEALS`], [`BATCH_REPS`]).
    pub fn sized(mut self, deals: usize, reps: usize) -> Self {
        self.batch_deals = deals.max(1);
        self.batch_reps = reps.max(1);
        self
    }

    pub fn period(&self) -> &Period {
        self.input.period()
    }

    /// The plan input of a part: the period, the whole roster, the part's
    /// deals, `history` (the earlier statements of the part's reps) and
    /// `statements_for` (the part's reps).
    pub fn input(&self, part: &Part, history: Vec<Json>) -> Json {
        self.input_of(&part.reps, part.deals.clone(), history)
    }

    /// As [`PeriodParts::input`], taking a part's deals rather than
    /// copying them.
    pub fn input_of(&self, reps: &[String], deals: Vec<Json>, history: Vec<Json>) -> Json {
        let mut input = serde_json::Map::with_capacity(5);
        input.insert("period".into(), Json::String(self.period().label.clone()));
        input.insert("reps".into(), Json::Array(self.reps_json.clone()));
        input.insert("deals".into(), Json::Array(deals));
        input.insert("history".into(), Json::Array(history));
        input.insert(
            "statements_for".into(),
            Json::Array(reps.iter().cloned().map(Json::String).collect()),
        );
        Json::Object(input)
    }

    /// The next part, or `None` after the last. `snapshots`, `plans` and
    /// `now` find the split deals (what `credit.splits` credits).
    pub async fn next(
        &mut self,
        snapshots: &[&Snapshot],
        plans: &[String],
        now: &str,
    ) -> Result<Option<Part>, WorkflowError> {
        while !self.scan_over() {
            let Some(part) = self.next_batch().await? else { break };
            self.note_shared(snapshots, plans, now, &part)?;
            if !part.reps.is_empty() {
                return Ok(Some(part));
            }
        }
        if self.idle.is_none() {
            let mut idle: Vec<String> = self
                .on_roster
                .iter()
                .filter(|r| !self.owners_seen.contains(*r))
                .cloned()
                .collect();
            idle.sort();
            self.idle = Some(idle.into());
        }
        if let Some(idle) = self.idle.as_mut().filter(|i| !i.is_empty()) {
            let n = idle.len().min(self.batch_reps);
            let reps: Vec<String> = idle.drain(..n).collect();
            let part = Part {
                reps,
                deals: by_id(self.every_part.clone()),
            };
            self.note_shared(snapshots, plans, now, &part)?;
            return Ok(Some(part));
        }
        if self.again.is_none() {
            self.again = Some(self.tied_groups().into());
        }
        let Some(reps) = self.again.as_mut().and_then(VecDeque::pop_front) else {
            return Ok(None);
        };
        let shared = self.shared.as_ref();
        let is_shared = |id: &str| shared.is_some_and(|s| s.contains_key(id));
        let period = self.period().clone();
        let input = &self.input;
        let mut deals = self
            .store
            .deals()
            .scan_deals_of_owners(&reps, |d| {
                let s = stored(&d);
                if is_shared(&d.id) || !close_date(&s).is_some_and(|c| period.contains(c)) {
                    return None;
                }
                input.deal(&s)
            })
            .await?;
        let group: HashSet<&String> = reps.iter().collect();
        if let Some(shared) = &self.shared {
            deals.extend(
                shared
                    .values()
                    .filter(|s| s.reps.iter().any(|r| group.contains(r)))
                    .map(|s| s.deal.clone()),
            );
        }
        deals.extend(self.every_part.iter().cloned());
        Ok(Some(Part {
            reps,
            deals: by_id(deals),
        }))
    }

    fn scan_over(&self) -> bool {
        self.scanned && self.pending.is_empty()
    }

    /// The next batch of the owner-ordered scan (its reps may be none:
    /// deals of owners not on the roster).
    async fn next_batch(&mut self) -> Result<Option<Part>, WorkflowError> {
        let mut reps = Vec::new();
        let mut deals = Vec::new();
        let mut owner: Option<String> = None;
        let mut any = false;
        loop {
            if self.pending.is_empty() {
                if self.scanned {
                    break;
                }
                let after = self.after.as_ref().map(|(o, i)| (o.as_str(), i.as_str()));
                let page = self.store.deals().deals_by_owner(after, PAGE).await?;
                if (page.len() as i64) < PAGE {
                    self.scanned = true;
                }
                if let Some(last) = page.last() {
                    self.after = Some((last.owner.clone(), last.id.clone()));
                }
                self.pending.extend(page);
                continue;
            }
            let Some(next) = self.pending.front() else { break };
            if owner.as_deref() != Some(next.owner.as_str()) {
                if deals.len() >= self.batch_deals || reps.len() >= self.batch_reps {
                    break;
                }
                owner = Some(next.owner.clone());
                if self.on_roster.contains(&next.owner) && self.owners_seen.insert(next.owner.clone()) {
                    reps.push(next.owner.clone());
                }
            }
            let Some(d) = self.pending.pop_front() else { break };
            any = true;
            if let Some(seen) = self.seen {
                seen.fetch_add(1, Ordering::Relaxed);
            }
            let s = stored(&d);
            if close_date(&s).is_some_and(|c| self.input.period().contains(c))
                && let Some(j) = self.input.deal(&s)
            {
                deals.push(j);
            }
        }
        if !any {
            return Ok(None);
        }
        deals.extend(self.every_part.iter().cloned());
        Ok(Some(Part {
            reps,
            deals: by_id(deals),
        }))
    }

    /// Notes the split deals of a part and which part decided its reps.
    /// A deal is split when its `credit.splits` names a rep other than its
    /// owner: only the splits are evaluated, on the fields they read (not
    /// the deal's credit), so a deal whose splits name others but that
    /// credits no one is kept as split too, which decides its reps again
    /// together and changes no statement.
    fn note_shared(
        &mut self,
        snapshots: &[&Snapshot],
        plans: &[String],
        now: &str,
        part: &Part,
    ) -> Result<(), WorkflowError> {
        let batch = self.batches;
        self.batches += 1;
        for r in &part.reps {
            self.decided_in.insert(r.clone(), batch);
        }
        let Some(shared) = self.shared.as_mut() else {
            return Ok(());
        };
        let period = self.input.period().clone();
        let now_value = dealrules_expr::Value::str(now);
        let versions: Vec<(&IncentivePlan, Interest)> = snapshots
            .iter()
            .flat_map(|s| plans.iter().filter_map(|p| s.plan_versions(p)))
            .flatten()
            .filter_map(|v| Some((v, v.splits_interest()?)))
            .collect();
        for deal in &part.deals {
            let Some(id) = deal["id"].as_str() else { continue };
            let owner = deal["owner"].as_str().unwrap_or_default();
            for (v, reads) in &versions {
                let reps = match v.split_reps(&period, &splits_view(deal, reads), &now_value) {
                    Ok(Some(reps)) => reps,
                    Ok(None) => continue,
                    // Splits that fail: the plan's own credit says whether
                    // the deal fails the run or credits no one.
                    Err(_) => v
                        .credits(&period, &[dealrules_expr::Value::from_json(deal)], now)?
                        .into_iter()
                        .map(|c| c.rep)
                        .collect(),
                };
                for rep in reps {
                    if !shared.contains_key(id) {
                        if rep == owner {
                            continue;
                        }
                        let mut reps = Vec::new();
                        if self.on_roster.contains(owner) {
                            reps.push(owner.to_string());
                        }
                        shared.insert(
                            id.to_string(),
                            SharedDeal {
                                deal: deal.clone(),
                                seen_in: batch,
                                reps,
                            },
                        );
                    }
                    let Some(entry) = shared.get_mut(id) else { continue };
                    if self.on_roster.contains(&rep) && !entry.reps.contains(&rep) {
                        entry.reps.push(rep);
                    }
                }
            }
        }
        Ok(())
    }

    /// The groups of reps split deals tie across batches, each whole,
    /// packed `batch_reps` reps to a part where they fit.
    fn tied_groups(&self) -> Vec<Vec<String>> {
        let Some(shared) = &self.shared else {
            return Vec::new();
        };
        // Union-find over the reps split deals tie.
        let mut parent: HashMap<&str, &str> = HashMap::new();
        fn root<'a>(parent: &mut HashMap<&'a str, &'a str>, r: &'a str) -> &'a str {
            let mut at = r;
            while let Some(&p) = parent.get(at) {
                if p == at {
                    break;
                }
                at = p;
            }
            parent.insert(r, at);
            at
        }
        for s in shared.values() {
            for r in &s.reps {
                parent.entry(r.as_str()).or_insert(r.as_str());
            }
            for pair in s.reps.windows(2) {
                let (a, b) = (root(&mut parent, &pair[0]), root(&mut parent, &pair[1]));
                if a != b {
                    parent.insert(a, b);
                }
            }
        }
        // A group is decided again when its reps and its split deals were
        // not all in one part.
        let mut groups: BTreeMap<&str, (Vec<String>, HashSet<usize>)> = BTreeMap::new();
        let reps: Vec<&str> = parent.keys().copied().collect();
        for r in reps {
            let g = root(&mut parent, r);
            let entry = groups.entry(g).or_default();
            entry.0.push(r.to_string());
            entry.1.insert(self.decided_in.get(r).copied().unwrap_or(usize::MAX));
        }
        for s in shared.values() {
            if let Some(r) = s.reps.first() {
                let g = root(&mut parent, r);
                if let Some(entry) = groups.get_mut(g) {
                    entry.1.insert(s.seen_in);
                }
            }
        }
        let mut out: Vec<Vec<String>> = Vec::new();
        let mut current: Vec<String> = Vec::new();
        for (mut reps, parts) in groups.into_values() {
            if parts.len() < 2 {
                continue;
            }
            reps.sort();
            if !current.is_empty() && current.len() + reps.len() > self.batch_reps {
                out.push(std::mem::take(&mut current));
            }
            current.extend(reps);
        }
        if !current.is_empty() {
            out.push(current);
        }
        for g in &mut out {
            g.sort();
        }
        out
    }
}

/// A part's deals in id order, as one input of the whole period holds
/// them (the store reads them by id): lines list their deals, and split
/// payouts break ties, in that order. Each id is looked up once, not at
/// every comparison.
fn by_id(mut deals: Vec<Json>) -> Vec<Json> {
    deals.sort_by_cached_key(|d| d["id"].as_str().map(str::to_owned));
    deals
}

/// What `credit.splits` sees of a deal: its `id`, `owner` and
/// `closed_at`, and the fields the splits read (`reads`), converted; the
/// rest of the deal is left out, so finding split deals costs little more
/// than a lookup for deals that name no splits.
fn splits_view(deal: &Json, reads: &Interest) -> dealrules_expr::Value {
    let (Json::Object(fields), Interest::Fields(wanted)) = (deal, reads) else {
        return dealrules_expr::Value::from_json(deal);
    };
    let keep = |k: &str| matches!(k, "id" | "owner" | "closed_at") || wanted.iter().any(|(w, _)| w == k);
    let view: dealrules_expr::Map = fields
        .iter()
        .filter(|(k, _)| keep(k))
        .map(|(k, v)| (k.as_str().into(), dealrules_expr::Value::from_json(v)))
        .collect();
    dealrules_expr::Value::map(view)
}

fn stored(d: &Deal) -> StoredDeal<'_> {
    StoredDeal {
        id: &d.id,
        owner: &d.owner,
        stage: &d.stage,
        fields: &d.fields,
        stage_entered_at: &d.stage_entered_at,
    }
}
