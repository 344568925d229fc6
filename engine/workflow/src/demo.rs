//! A small company for `dealrules serve --demo`: a roster with managers and
//! regions, a quarter and a half of deals in every stage of the default
//! pack's `b2b` funnel (with their history, approvals and timers), pending
//! approvals, and a published incentive run of the previous quarter.
//!
//! Everything goes through the runtime's own operations (deals created and
//! moved by their owners, approval steps decided by their approvers, a run
//! started, approved and published by two admins), so the demo shows what
//! the API would have stored. The data is the same on every start (a fixed
//! seed) and dated relative to the clock's now: the seeding runtime's clock
//! is moved back to each event's time as it goes.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use dealrules_core::Snapshot;
use dealrules_model::{PeriodKind, Spec};
use dealrules_store::people::BEGINNING;
use dealrules_store::{ApprovalState, Person, RunState, Store};
use serde_json::{Map, json};

use crate::approvals::Verdict;
use crate::clock::Clock;
use crate::deals::{Event, NewDeal};
use crate::error::{WorkflowError, internal};
use crate::pool::LongWork;
use crate::runtime::{Actor, Workflow};

/// The funnel the demo's deals go through (the default pack's).
pub const FUNNEL: &str = "b2b";

/// What the demo stored.
#[derive(Debug, Clone)]
pub struct DemoCompany {
    pub people: usize,
    pub deals: usize,
    pub pending_approvals: usize,
    /// The published run and the period it pays, when the pack has an
    /// IncentivePlan in force for the previous period.
    pub run: Option<(String, String)>,
}

/// One of the demo's people: id, name, role, manager, region, locale.
type DemoPerson = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
);

const PEOPLE: &[DemoPerson] = &[
    ("u-mara", "Mara Lindqvist", "vp-sales", None, None, "en"),
    ("u-dan", "Daniel Okafor", "sales-director", Some("u-mara"), None, "en"),
    ("u-sam", "Sam Patel", "revops", Some("u-mara"), None, "en"),
    (
        "u-olivia",
        "Olivia Grant",
        "finance-manager",
        Some("u-mara"),
        None,
        "en",
    ),
    ("u-priya", "Priya Nair", "manager", Some("u-dan"), Some("NA"), "en"),
    ("u-jonas", "Jonas Weber", "manager", Some("u-dan"), Some("EMEA"), "en"),
    (
        "u-liwei",
        "李伟 (Li Wei)",
        "manager",
        Some("u-dan"),
        Some("APAC"),
        "zh-CN",
    ),
    ("ana", "Ana Ruiz", "ae", Some("u-priya"), Some("NA"), "en"),
    ("ben", "Ben Carter", "ae", Some("u-priya"), Some("NA"), "en"),
    ("chloe", "Chloe Martin", "ae", Some("u-priya"), Some("NA"), "en"),
    ("dario", "Dario Rossi", "ae", Some("u-jonas"), Some("EMEA"), "en"),
    ("eva", "Eva Novak", "ae", Some("u-jonas"), Some("EMEA"), "en"),
    ("farid", "Farid Haddad", "ae", Some("u-jonas"), Some("EMEA"), "en"),
    (
        "grace",
        "王芳 (Wang Fang)",
        "ae",
        Some("u-liwei"),
        Some("APAC"),
        "zh-CN",
    ),
    ("hiro", "Hiro Sato", "ae", Some("u-liwei"), Some("APAC"), "en"),
];

/// Who holds each `role:` group approvals are addressed to.
const ROLE_HOLDERS: &[(&str, &str)] = &[
    ("role:sales-director", "u-dan"),
    ("role:vp-sales", "u-mara"),
    ("role:finance-manager", "u-olivia"),
];

/// The admin who starts the run, and the one who approves it.
const REVOPS: &str = "u-sam";
const FINANCE: &str = "u-olivia";

const CUSTOMERS_A: &[&str] = &[
    "Northwind",
    "Bluefin",
    "Harbor",
    "Quarry",
    "Summit",
    "Lumen",
    "Cobalt",
    "Meridian",
    "Juniper",
    "Atlas",
    "Kestrel",
    "Orchard",
];
const CUSTOMERS_B: &[&str] = &[
    "Logistics",
    "Foods",
    "Health",
    "Energy",
    "Retail",
    "Systems",
    "Capital",
    "Labs",
];
const LOSS_REASONS: &[&str] = &["price", "no decision", "competitor", "timing"];

/// Where a demo deal ends up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Lead,
    Qualified,
    /// In proposal, its approval waiting for an approver.
    Pending,
    Negotiation,
    /// Won in the previous period (paid by the published run).
    WonEarlier,
    /// Won this period.
    Won,
    Lost,
}

const OUTCOMES: &[(Outcome, usize)] = &[
    (Outcome::WonEarlier, 12),
    (Outcome::Won, 6),
    (Outcome::Lost, 6),
    (Outcome::Negotiation, 6),
    (Outcome::Pending, 8),
    (Outcome::Qualified, 5),
    (Outcome::Lead, 5),
];

/// splitmix64: a small seeded generator, so the company is the same on
/// every start.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        let span = u64::try_from(hi - lo + 1).unwrap_or(1);
        lo + i64::try_from(self.next() % span).unwrap_or(0)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.next() % items.len() as u64).unwrap_or(0)]
    }
}

/// The first day of the period of `kind` that `day` falls in.
fn period_start(kind: PeriodKind, day: NaiveDate) -> NaiveDate {
    let (y, m) = (day.year(), day.month());
    let month = match kind {
        PeriodKind::Month => m,
        PeriodKind::Quarter => (m - 1) / 3 * 3 + 1,
        PeriodKind::Year => 1,
    };
    NaiveDate::from_ymd_opt(y, month, 1).unwrap_or(day)
}

/// The label of the period of `kind` that `day` falls in (`2026-Q3`).
fn period_label(kind: PeriodKind, day: NaiveDate) -> String {
    match kind {
        PeriodKind::Month => day.format("%Y-%m").to_string(),
        PeriodKind::Quarter => format!("{}-Q{}", day.year(), (day.month() - 1) / 3 + 1),
        PeriodKind::Year => day.year().to_string(),
    }
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// Seeds `store` (new and empty) with the demo company, on `snapshot`
/// (the default pack), dated relative to `now`.
pub async fn seed(
    store: Arc<Store>,
    snapshot: Arc<Snapshot>,
    now: DateTime<Utc>,
) -> Result<DemoCompany, WorkflowError> {
    if snapshot.funnel(FUNNEL).is_none() {
        return Err(WorkflowError::Unprocessable(format!(
            "the demo company's deals go through the default pack's Funnel `{FUNNEL}`, which the pack served has not"
        )));
    }
    let clock = Arc::new(Clock::with_offset(now - Utc::now()));
    let workflow = Workflow::new(
        store.clone(),
        clock.clone(),
        Arc::new(LongWork::default()),
        "demo".into(),
    )?;
    let people = roster();
    store.people().import_people(&people, "demo").await?;

    let plan = snapshot.pack.documents.iter().find_map(|d| match &d.spec {
        Spec::IncentivePlan(p) => Some((d.metadata.name.to_string(), p.period)),
        _ => None,
    });
    let kind = plan.as_ref().map_or(PeriodKind::Quarter, |p| p.1);
    let this_period = period_start(kind, now.date_naive());
    let previous = period_start(kind, this_period - Duration::days(1));
    let mut rng = Seeded(0x0dea_1001);
    let mut outcomes: Vec<Outcome> = OUTCOMES.iter().flat_map(|(o, n)| std::iter::repeat_n(*o, *n)).collect();
    // A seeded shuffle, so owners and stages mix.
    for i in (1..outcomes.len()).rev() {
        let j = usize::try_from(rng.next() % (i as u64 + 1)).unwrap_or(0);
        outcomes.swap(i, j);
    }
    let reps: Vec<&Person> = people.iter().filter(|p| p.role == "ae").collect();
    let seeder = Seeder {
        workflow: &workflow,
        snapshot: &snapshot,
        clock: &clock,
        people: &people,
        latest: now - Duration::minutes(10),
    };
    let mut pending = 0;
    for (i, outcome) in outcomes.iter().enumerate() {
        let rep = reps[i % reps.len()];
        let plan = deal_plan(&mut rng, *outcome, previous, this_period, now);
        if seeder.play(&mut rng, i + 1, rep, *outcome, &plan).await? {
            pending += 1;
        }
    }
    // Back to now for the run.
    clock.advance(now - clock.now());
    let run = match plan {
        Some((name, kind)) => {
            let label = period_label(kind, previous);
            publish_run(&workflow, &snapshot, &name, &label).await?
        }
        None => None,
    };
    tracing::info!(
        people = people.len(),
        deals = outcomes.len(),
        pending,
        "demo company seeded"
    );
    Ok(DemoCompany {
        people: people.len(),
        deals: outcomes.len(),
        pending_approvals: pending,
        run,
    })
}

fn roster() -> Vec<Person> {
    PEOPLE
        .iter()
        .map(|(id, name, role, manager, region, locale)| {
            let mut attributes = Map::new();
            attributes.insert("locale".into(), json!(locale));
            attributes.insert(
                "email".into(),
                json!(format!("{}@demo.example", id.trim_start_matches("u-"))),
            );
            Person {
                id: (*id).into(),
                name: (*name).into(),
                role: (*role).into(),
                manager: manager.map(Into::into),
                region: region.map(Into::into),
                team: region.map(|r| format!("{r} sales")),
                attributes,
                valid_from: BEGINNING.into(),
                valid_to: None,
            }
        })
        .collect()
}

/// When each step of a deal happens: created, then each later move (in
/// funnel order); a step after `latest` is not taken.
struct DealPlan {
    created: DateTime<Utc>,
    /// Gaps before qualified, proposal, negotiation, the close.
    steps: Vec<DateTime<Utc>>,
}

fn deal_plan(
    rng: &mut Seeded,
    outcome: Outcome,
    previous: NaiveDate,
    this_period: NaiveDate,
    now: DateTime<Utc>,
) -> DealPlan {
    let hours = |rng: &mut Seeded, lo: i64, hi: i64| Duration::hours(rng.between(lo, hi));
    let mut at = match outcome {
        // Closed deals start early in their period and move forward.
        Outcome::WonEarlier => midnight(previous) + hours(rng, 8, 24 * 40),
        Outcome::Won | Outcome::Lost => {
            let elapsed = (now - midnight(this_period)).num_hours().max(48);
            midnight(this_period) + hours(rng, 0, elapsed / 3)
        }
        // Open deals are recent: counted back from now.
        Outcome::Pending => now - hours(rng, 24 * 9, 24 * 12),
        Outcome::Negotiation => now - hours(rng, 24 * 12, 24 * 30),
        Outcome::Qualified => now - hours(rng, 24 * 3, 24 * 20),
        Outcome::Lead => now - hours(rng, 2, 24 * 10),
    };
    let created = at;
    let moves = match outcome {
        Outcome::Lead => 0,
        Outcome::Qualified => 1,
        Outcome::Pending => 2,
        Outcome::Negotiation => 3,
        Outcome::WonEarlier | Outcome::Won | Outcome::Lost => 4,
    };
    let mut steps = Vec::with_capacity(moves);
    for n in 0..moves {
        at += match (outcome, n) {
            // A pending request was opened in the last days.
            (Outcome::Pending, 1) => (now - hours(rng, 6, 24 * 3)) - at,
            (Outcome::Qualified, 0) => hours(rng, 1, 24 * 2),
            (Outcome::WonEarlier, _) => hours(rng, 24 * 2, 24 * 11),
            _ => hours(rng, 24, 24 * 6),
        };
        steps.push(at);
    }
    DealPlan { created, steps }
}

struct Seeder<'a> {
    workflow: &'a Workflow,
    snapshot: &'a Arc<Snapshot>,
    clock: &'a Clock,
    people: &'a [Person],
    latest: DateTime<Utc>,
}

impl Seeder<'_> {
    fn at(&self, t: DateTime<Utc>) {
        self.clock.advance(t - self.clock.now());
    }

    fn actor(&self, subject: &str) -> Actor {
        let groups = ROLE_HOLDERS
            .iter()
            .filter(|(_, holder)| *holder == subject)
            .map(|(group, _)| (*group).to_string())
            .collect();
        Actor {
            subject: subject.into(),
            admin: false,
            groups,
        }
    }

    /// Creates deal number `n` and plays its plan; whether it ends with a
    /// pending approval.
    async fn play(
        &self,
        rng: &mut Seeded,
        n: usize,
        rep: &Person,
        outcome: Outcome,
        plan: &DealPlan,
    ) -> Result<bool, WorkflowError> {
        let id = format!("d-{:04}", 1000 + n);
        let customer = format!("{} {}", rng.pick(CUSTOMERS_A), rng.pick(CUSTOMERS_B));
        let amount = rng.between(16, 560) * 500;
        // A pending request needs an approver: more than the rep may give alone.
        let discount = if outcome == Outcome::Pending {
            *rng.pick(&[12, 15, 18, 22, 25])
        } else {
            *rng.pick(&[0, 5, 8, 10, 12, 15, 20])
        };
        let terms = *rng.pick(&[30, 30, 45, 60]);
        let manager = rep.manager.clone().unwrap_or_default();
        let owner = self.actor(&rep.id);
        let close = plan.created + Duration::days(rng.between(30, 90));
        let deal = NewDeal {
            id: id.clone(),
            funnel: FUNNEL.into(),
            owner: rep.id.clone(),
            fields: json!({
                "name": customer,
                "amount": amount,
                "close_date": close.format("%Y-%m-%d").to_string(),
                "contact_email": format!("buyer{n}@{}.example", customer.to_lowercase().replace(' ', "-")),
                "region": rep.region,
                "new_logo": rng.next().is_multiple_of(3),
            }),
            context: json!({
                "rep": { "id": rep.id, "manager": manager, "role": rep.role, "region": rep.region },
                "customer": { "name": customer, "rating": rng.pick(&["A", "B", "C"]), "max_terms_days": 45, "credit_limit": 500000 },
            }),
        };
        self.at(plan.created);
        self.workflow.create_deal(self.snapshot, &owner, deal).await?;
        let stages = ["qualified", "proposal", "negotiation"];
        let mut pending = false;
        for (step, at) in plan.steps.iter().enumerate() {
            if *at > self.latest {
                break;
            }
            self.at(*at);
            let last = step == plan.steps.len() - 1;
            match stages.get(step) {
                Some(&"proposal") => {
                    let fields = json!({ "discount_pct": discount, "payment_terms_days": terms });
                    self.event(&owner, &id, Event::Update { fields }).await?;
                    self.event(&owner, &id, Event::Move { to: "proposal".into() }).await?;
                    if outcome == Outcome::Pending && last {
                        pending = true;
                    } else {
                        self.approve_all(&id, *at, rng).await?;
                    }
                }
                Some(stage) => self.event(&owner, &id, Event::Move { to: (*stage).into() }).await?,
                None if outcome == Outcome::Lost => {
                    let fields = json!({ "loss_reason": rng.pick(LOSS_REASONS) });
                    self.event(&owner, &id, Event::Update { fields }).await?;
                    self.event(&owner, &id, Event::Move { to: "lost".into() }).await?;
                }
                None => {
                    let fields =
                        json!({ "signed_contract_url": format!("https://docs.demo.example/contracts/{id}.pdf") });
                    self.event(&owner, &id, Event::Update { fields }).await?;
                    self.event(&owner, &id, Event::Move { to: "won".into() }).await?;
                }
            }
        }
        Ok(pending)
    }

    async fn event(&self, who: &Actor, deal: &str, event: Event) -> Result<(), WorkflowError> {
        self.workflow
            .apply_event(self.snapshot, who, deal, event, None)
            .await
            .map(drop)
    }

    /// Each pending step of the deal's requests decided by its approver,
    /// some hours apart (the clock stays before the deal's next step).
    async fn approve_all(&self, deal: &str, from: DateTime<Utc>, rng: &mut Seeded) -> Result<(), WorkflowError> {
        let mut at = from;
        for approval in crate::approval_requests(&self.workflow.store.deals(), Some("pending"), Some(deal)).await? {
            let mut current = approval;
            while current.state == ApprovalState::Pending {
                let step = current
                    .steps
                    .iter()
                    .find(|s| s.state == dealrules_store::StepState::Pending)
                    .ok_or_else(|| internal(format!("approval {} has no pending step", current.id)))?;
                let subject = ROLE_HOLDERS
                    .iter()
                    .find(|(group, _)| *group == step.approver)
                    .map(|(_, holder)| (*holder).to_string())
                    .or_else(|| {
                        self.people
                            .iter()
                            .any(|p| p.id == step.approver)
                            .then(|| step.approver.clone())
                    })
                    .ok_or_else(|| internal(format!("no demo approver for {}", step.approver)))?;
                at += Duration::minutes(rng.between(20, 300));
                self.at(at);
                current = self
                    .workflow
                    .decide_approval(
                        self.snapshot,
                        &self.actor(&subject),
                        &current.id,
                        Verdict::Approve,
                        Some("Fits the deal desk guidelines".into()),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

/// Runs `plan` for `period`, approves (another admin) and publishes it.
async fn publish_run(
    workflow: &Workflow,
    snapshot: &Arc<Snapshot>,
    plan: &str,
    period: &str,
) -> Result<Option<(String, String)>, WorkflowError> {
    let admin = |subject: &str| Actor {
        subject: subject.into(),
        admin: true,
        groups: vec![],
    };
    let run = workflow.run_now(snapshot.clone(), &admin(REVOPS), plan, period).await?;
    if let Some(error) = &run.error {
        tracing::warn!(run = %run.id, %error, "the demo's incentive run failed; the demo has no published run");
        return Ok(None);
    }
    workflow
        .advance_run(&admin(FINANCE), &run.id, RunState::Approved)
        .await?;
    workflow
        .advance_run(&admin(REVOPS), &run.id, RunState::Published)
        .await?;
    Ok(Some((run.id, period.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_labelled_from_their_first_day() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let q = period_start(PeriodKind::Quarter, day);
        assert_eq!(q, NaiveDate::from_ymd_opt(2026, 10, 1).unwrap());
        let previous = period_start(PeriodKind::Quarter, q - Duration::days(1));
        assert_eq!(period_label(PeriodKind::Quarter, previous), "2026-Q3");
        assert_eq!(period_label(PeriodKind::Month, day), "2026-11");
        assert_eq!(period_label(PeriodKind::Year, day), "2026");
    }

    #[test]
    fn the_seed_gives_the_same_company_every_time() {
        let draw = || {
            let mut rng = Seeded(0x0dea_1001);
            (0..20).map(|_| rng.between(1, 100)).collect::<Vec<_>>()
        };
        assert_eq!(draw(), draw());
        assert!(draw().iter().all(|n| (1..=100).contains(n)));
    }
}
