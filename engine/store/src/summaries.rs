//! Summaries the funnel and progress reports read (migration 0010): one
//! row per stage visit (`stage_visits`) and one per deal (`deal_facts`).
//!
//! They are facts, not judgements: which stage is won, lost or later in
//! the order is decided when a report is made, by the stage order of each
//! pack version, so they never go stale when a pack changes. They are
//! written in the transaction that writes the deal ([`Store::insert_deal`],
//! [`Store::update_deal`], imports) or a stage entry of its history
//! ([`Store::insert_history_at`]): a deal's visits are recomputed from its
//! whole history then, so they always equal what the history says. A
//! database from before them is summarized once when it opens
//! ([`Store::rebuild_measured_summaries`]).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::Value;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::credits::{CREDIT_COLUMNS, DealToCredit, READ_CHUNK, deal_to_credit};
use crate::{Analytics, Deal, Deals, Result, Store, query_err, timestamp};

/// The name of the rebuild in `summary_builds`.
const BUILD: &str = "measured";

/// The advisory lock key of the build (PostgreSQL).
const BUILD_LOCK: i64 = 0x7375_6d6d_6172; // "summar"

/// Rows per multi-row insert: 12 columns x 400 stays under both databases'
/// parameter limits.
const CHUNK: usize = 400;

/// The facts of a deal the reports read.
#[derive(Debug, Clone, PartialEq)]
pub struct DealFacts {
    pub deal_id: String,
    pub funnel: String,
    pub owner: String,
    pub region: String,
    pub stage: String,
    pub stage_entered_at: String,
    /// `fields.amount` as written (a number's text, a string trimmed), or
    /// empty.
    pub amount: String,
    pub close_quarter: Option<String>,
    pub closed_on: Option<String>,
    pub cancelled_on: Option<String>,
}

fn date_of(v: Option<&Value>) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(v?.as_str()?.get(..10)?, "%Y-%m-%d").ok()
}

fn day(d: NaiveDate) -> String {
    // The years a `%Y-%m-%d` text parses to have four digits.
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

/// Whether `s` has the store's time form, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn in_store_form(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// A stored time in the store's form (milliseconds, UTC), so text order is
/// time order; a text that is not a time is kept as it is. A text already
/// in that form is kept without parsing (a valid one would be written
/// back the same, an invalid one kept as it is).
fn normal_time(s: &str) -> String {
    if in_store_form(s) {
        return s.to_string();
    }
    DateTime::parse_from_rfc3339(s).map_or_else(|_| s.to_string(), |t| timestamp(t.with_timezone(&Utc)))
}

impl DealFacts {
    /// The facts of `d`, by the rules the reports use: a deal's close date
    /// is its `closed_at`, else its `booked_on`, else the day it entered a
    /// stage named `won` (as an incentive plan's input reads it).
    pub fn of(d: &Deal) -> DealFacts {
        let region = d.fields["region"]
            .as_str()
            .or_else(|| d.context["rep"]["region"].as_str())
            .unwrap_or("(none)");
        let amount = match &d.fields["amount"] {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.trim().to_string(),
            _ => String::new(),
        };
        let closed = date_of(d.fields.get("closed_at"))
            .or_else(|| date_of(d.fields.get("booked_on")))
            .or_else(|| {
                (d.stage == "won")
                    .then(|| NaiveDate::parse_from_str(d.stage_entered_at.get(..10)?, "%Y-%m-%d").ok())
                    .flatten()
            });
        DealFacts {
            deal_id: d.id.clone(),
            funnel: d.funnel.clone(),
            owner: d.owner.clone(),
            region: region.to_string(),
            stage: d.stage.clone(),
            stage_entered_at: normal_time(&d.stage_entered_at),
            amount,
            close_quarter: date_of(d.fields.get("close_date"))
                .map(|c| format!("{}-Q{}", c.year(), (c.month() - 1) / 3 + 1)),
            closed_on: closed.map(day),
            cancelled_on: date_of(d.fields.get("cancelled_at")).map(day),
        }
    }
}

/// One stay of a deal in a stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StageVisit {
    pub deal_id: String,
    pub seq: i64,
    pub funnel: String,
    pub stage: String,
    pub version: String,
    pub entered_at: String,
    pub next_stage: Option<String>,
    pub next_version: Option<String>,
    pub days_ms: Option<i64>,
    /// Every `stage\tversion` entered from this visit on, sorted, one a line.
    pub later: String,
    pub last_stage: String,
    pub last_version: String,
}

/// What `visit_counts` counts visits by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CountKey {
    funnel: String,
    entered_day: String,
    stage: String,
    next_stage: String,
    next_version: String,
    later: String,
    last_stage: String,
    last_version: String,
}

impl CountKey {
    fn of(v: &StageVisit) -> CountKey {
        CountKey {
            funnel: v.funnel.clone(),
            entered_day: day_of(&v.entered_at),
            stage: v.stage.clone(),
            next_stage: v.next_stage.clone().unwrap_or_default(),
            next_version: v.next_version.clone().unwrap_or_default(),
            later: v.later.clone(),
            last_stage: v.last_stage.clone(),
            last_version: v.last_version.clone(),
        }
    }
}

/// The day after `day` (YYYY-MM-DD).
fn next_day(day: &str) -> String {
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.succ_opt())
        .map_or_else(|| day.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// The day of a store-form time (its first ten characters).
fn day_of(t: &str) -> String {
    t.get(..10).unwrap_or(t).to_string()
}

/// A history entry as a trail reads it: (at, type, detail JSON, version).
pub type TrailRow<'a> = (&'a str, &'a str, &'a Value, &'a str);

/// The visits of deal `deal_id` of `funnel` from its history, oldest
/// first: each `created` entry (its `stage`) and `move` entry (its `to`)
/// begins one, the next one ends it.
pub fn visits_of(deal_id: &str, funnel: &str, history: &[TrailRow<'_>]) -> Vec<StageVisit> {
    let steps: Vec<(&str, &str, &str)> = history
        .iter()
        .filter_map(|(at, kind, detail, version)| {
            let to = match *kind {
                "created" => detail["stage"].as_str(),
                "move" => detail["to"].as_str(),
                _ => None,
            }?;
            Some((*at, to, *version))
        })
        .collect();
    let Some(&(_, last_stage, last_version)) = steps.last() else {
        return Vec::new();
    };
    let time = |s: &str| DateTime::parse_from_rfc3339(s).ok();
    let mut later: BTreeSet<String> = BTreeSet::new();
    let mut visits: Vec<StageVisit> = Vec::with_capacity(steps.len());
    for (i, &(at, stage, version)) in steps.iter().enumerate().rev() {
        later.insert(format!("{stage}\t{version}"));
        let next = steps.get(i + 1);
        visits.push(StageVisit {
            deal_id: deal_id.to_string(),
            seq: i as i64,
            funnel: funnel.to_string(),
            stage: stage.to_string(),
            version: version.to_string(),
            entered_at: normal_time(at),
            next_stage: next.map(|n| n.1.to_string()),
            next_version: next.map(|n| n.2.to_string()),
            days_ms: next.and_then(|n| Some((time(n.0)? - time(at)?).num_milliseconds().max(0))),
            later: later.iter().cloned().collect::<Vec<_>>().join("\n"),
            last_stage: last_stage.to_string(),
            last_version: last_version.to_string(),
        });
    }
    visits.reverse();
    visits
}

impl Deals {
    /// Writes the facts of `deals` (new or changed), inside a transaction.
    pub(crate) async fn upsert_deal_facts(&self, conn: &mut AnyConnection, deals: &[&Deal]) -> Result<()> {
        for chunk in deals.chunks(CHUNK) {
            let ids: Vec<&str> = chunk.iter().map(|d| d.id.as_str()).collect();
            // Kept credits: marked where the deal was read before the write
            // and, below, where it is read after.
            self.mark_deals(conn, &ids).await?;
            self.write_deal_facts(conn, chunk).await?;
            self.mark_deals(conn, &ids).await?;
        }
        Ok(())
    }

    /// Writes the facts of `deals` that were not stored before this
    /// transaction (so no fill read them yet), inside it: marked only where
    /// they are read after, and not at all when no period is filled.
    pub(crate) async fn insert_new_deal_facts(&self, conn: &mut AnyConnection, deals: &[&Deal]) -> Result<()> {
        let marking = self.any_credit_fill(conn).await?;
        for chunk in deals.chunks(CHUNK) {
            self.write_deal_facts(conn, chunk).await?;
            if marking {
                let ids: Vec<&str> = chunk.iter().map(|d| d.id.as_str()).collect();
                self.mark_deals(conn, &ids).await?;
            }
        }
        Ok(())
    }

    async fn write_deal_facts(&self, conn: &mut AnyConnection, chunk: &[&Deal]) -> Result<()> {
        let mut sql = String::from(
            "INSERT INTO deal_facts (deal_id, funnel, owner, region, stage, stage_entered_at, amount, close_quarter, closed_on, cancelled_on) VALUES ",
        );
        crate::placeholders::push_rows(&mut sql, self.backend, chunk.len(), 10);
        sql.push_str(
            " ON CONFLICT (deal_id) DO UPDATE SET funnel = excluded.funnel, owner = excluded.owner, \
             region = excluded.region, stage = excluded.stage, stage_entered_at = excluded.stage_entered_at, \
             amount = excluded.amount, close_quarter = excluded.close_quarter, closed_on = excluded.closed_on, \
             cancelled_on = excluded.cancelled_on",
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for d in chunk {
            let f = DealFacts::of(d);
            q = q
                .bind(f.deal_id)
                .bind(f.funnel)
                .bind(f.owner)
                .bind(f.region)
                .bind(f.stage)
                .bind(f.stage_entered_at)
                .bind(f.amount)
                .bind(f.close_quarter)
                .bind(f.closed_on)
                .bind(f.cancelled_on);
        }
        q.execute(&mut *conn).await.map_err(query_err("summarizing deals"))?;
        Ok(())
    }

    async fn insert_visits(&self, conn: &mut AnyConnection, visits: &[StageVisit]) -> Result<()> {
        for chunk in visits.chunks(CHUNK) {
            let mut sql = String::from(
                "INSERT INTO stage_visits (deal_id, seq, funnel, stage, version, entered_at, next_stage, next_version, days_ms, later, last_stage, last_version) VALUES ",
            );
            crate::placeholders::push_rows(&mut sql, self.backend, chunk.len(), 12);
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for v in chunk {
                q = q
                    .bind(&v.deal_id)
                    .bind(v.seq)
                    .bind(&v.funnel)
                    .bind(&v.stage)
                    .bind(&v.version)
                    .bind(&v.entered_at)
                    .bind(v.next_stage.clone())
                    .bind(v.next_version.clone())
                    .bind(v.days_ms)
                    .bind(&v.later)
                    .bind(&v.last_stage)
                    .bind(&v.last_version);
            }
            q.execute(&mut *conn)
                .await
                .map_err(query_err("summarizing stage visits"))?;
        }
        Ok(())
    }

    /// Recomputes the visits of deal `deal_id` from its history, inside the
    /// transaction that just wrote a stage entry of it.
    pub(crate) async fn resummarize_visits(&self, conn: &mut AnyConnection, deal_id: &str) -> Result<()> {
        let funnel: Option<String> = sqlx::query("SELECT funnel FROM deals WHERE id = $1")
            .bind(deal_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(query_err("summarizing stage visits"))?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(query_err("summarizing stage visits"))?;
        let old = sqlx::query(
            "SELECT funnel, entered_at, stage, next_stage, next_version, later, last_stage, last_version \
             FROM stage_visits WHERE deal_id = $1",
        )
        .bind(deal_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(query_err("summarizing stage visits"))?;
        let mut deltas: BTreeMap<CountKey, i64> = BTreeMap::new();
        for r in &old {
            let e = |x: sqlx::Error| query_err("summarizing stage visits")(x);
            let key = CountKey {
                funnel: r.try_get(0).map_err(e)?,
                entered_day: day_of(&r.try_get::<String, _>(1).map_err(e)?),
                stage: r.try_get(2).map_err(e)?,
                next_stage: r.try_get::<Option<String>, _>(3).map_err(e)?.unwrap_or_default(),
                next_version: r.try_get::<Option<String>, _>(4).map_err(e)?.unwrap_or_default(),
                later: r.try_get(5).map_err(e)?,
                last_stage: r.try_get(6).map_err(e)?,
                last_version: r.try_get(7).map_err(e)?,
            };
            *deltas.entry(key).or_default() -= 1;
        }
        sqlx::query("DELETE FROM stage_visits WHERE deal_id = $1")
            .bind(deal_id)
            .execute(&mut *conn)
            .await
            .map_err(query_err("summarizing stage visits"))?;
        // History of a deal that is not stored is in no funnel's report.
        let visits = match funnel {
            Some(funnel) => {
                let history = self.history_in(conn, deal_id).await?;
                let rows: Vec<TrailRow<'_>> = history
                    .iter()
                    .map(|e| (e.at.as_str(), e.kind.as_str(), &e.detail, e.version.as_str()))
                    .collect();
                visits_of(deal_id, &funnel, &rows)
            }
            None => Vec::new(),
        };
        for v in &visits {
            *deltas.entry(CountKey::of(v)).or_default() += 1;
        }
        self.insert_visits(conn, &visits).await?;
        for (key, n) in deltas.into_iter().filter(|(_, n)| *n != 0) {
            sqlx::query(
                "INSERT INTO visit_counts (funnel, entered_day, stage, next_stage, next_version, later, last_stage, last_version, n) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (funnel, entered_day, stage, next_stage, next_version, later, last_stage, last_version) \
                 DO UPDATE SET n = visit_counts.n + excluded.n",
            )
            .bind(key.funnel)
            .bind(key.entered_day)
            .bind(key.stage)
            .bind(key.next_stage)
            .bind(key.next_version)
            .bind(key.later)
            .bind(key.last_stage)
            .bind(key.last_version)
            .bind(n)
            .execute(&mut *conn)
            .await
            .map_err(query_err("counting stage visits"))?;
        }
        Ok(())
    }
}

impl Store {
    /// Whether the summaries were built for this database.
    pub async fn measured_summaries_built(&self) -> Result<bool> {
        let row = sqlx::query("SELECT built_at FROM summary_builds WHERE name = $1")
            .bind(BUILD)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading summary builds"))?;
        Ok(row.is_some())
    }

    /// Builds the summaries once, for a database whose deals were stored
    /// before them (called when the store opens).
    ///
    /// On PostgreSQL, nodes opening the database at once take turns on an
    /// advisory lock (held by one connection for the build): the first
    /// builds, the others find it built. A node that dies while building
    /// lets go of the lock with its connection, and the next one builds.
    pub(crate) async fn ensure_measured_summaries(&self) -> Result<()> {
        if self.measured_summaries_built().await? {
            return Ok(());
        }
        if self.backend != crate::Backend::Postgres {
            return self.rebuild_measured_summaries().await.map(drop);
        }
        let mut conn = self.pool.acquire().await.map_err(query_err("summarizing deals"))?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(BUILD_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(query_err("waiting for another node's summary build"))?;
        let built = match self.measured_summaries_built().await {
            Ok(true) => Ok(()),
            Ok(false) => self.rebuild_measured_summaries().await.map(drop),
            Err(e) => Err(e),
        };
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(BUILD_LOCK)
            .execute(&mut *conn)
            .await;
        if unlocked.is_err() {
            // Never back in the pool holding the lock.
            let _ = sqlx::Connection::close(conn.detach()).await;
        }
        built
    }

    /// Rebuilds both summaries from the deals and their history, a page of
    /// deals per transaction, and records that it was done. For a database
    /// that rows were written to outside the store (a bulk load). How many
    /// deals it summarized.
    pub async fn rebuild_measured_summaries(&self) -> Result<u64> {
        {
            let mut tx = self.begin_write().await?;
            // The kept credits go too: deals written outside the store may
            // have changed under them.
            for table in [
                "stage_visits",
                "visit_counts",
                "deal_facts",
                "summary_builds",
                "credit_marks",
                "credits",
                "credit_fills",
                "credit_fills_dropped",
            ] {
                sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}")))
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("clearing summaries"))?;
            }
            tx.commit().await?;
        }
        let mut after = String::new();
        let mut deals_done = 0u64;
        loop {
            let deals = self.analytics().funnel_deals_page(None, &after, 5000).await?;
            let (Some(first), Some(last)) = (deals.first(), deals.last()) else {
                break;
            };
            let trail = self.analytics().trails_between(&first.id, &last.id).await?;
            let details: Vec<Value> = trail
                .iter()
                .map(|e| serde_json::from_str(&e.detail).unwrap_or(Value::Null))
                .collect();
            let mut by_deal: std::collections::HashMap<&str, Vec<TrailRow<'_>>> =
                std::collections::HashMap::with_capacity(deals.len());
            for (e, detail) in trail.iter().zip(&details) {
                by_deal.entry(e.deal_id.as_str()).or_default().push((
                    e.at.as_str(),
                    e.kind.as_str(),
                    detail,
                    e.version.as_str(),
                ));
            }
            let mut visits = Vec::with_capacity(trail.len());
            for d in &deals {
                if let Some(rows) = by_deal.get(d.id.as_str()) {
                    visits.extend(visits_of(&d.id, &d.funnel, rows));
                }
            }
            let mut tx = self.begin_write().await?;
            let refs: Vec<&Deal> = deals.iter().collect();
            self.deals().upsert_deal_facts(&mut tx, &refs).await?;
            self.deals().insert_visits(&mut tx, &visits).await?;
            tx.commit().await?;
            deals_done += deals.len() as u64;
            after.clone_from(&last.id);
            if deals.len() < 5000 {
                break;
            }
        }
        {
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "INSERT INTO visit_counts (funnel, entered_day, stage, next_stage, next_version, later, last_stage, last_version, n) \
                 SELECT funnel, substr(entered_at, 1, 10), stage, COALESCE(next_stage, ''), COALESCE(next_version, ''), \
                 later, last_stage, last_version, COUNT(*) FROM stage_visits \
                 GROUP BY funnel, substr(entered_at, 1, 10), stage, COALESCE(next_stage, ''), COALESCE(next_version, ''), \
                 later, last_stage, last_version",
            )
            .execute(&mut *tx)
            .await
            .map_err(query_err("counting stage visits"))?;
            tx.commit().await?;
        }
        sqlx::query("INSERT INTO summary_builds (name, built_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(BUILD)
            .bind(crate::timestamp_now())
            .execute(&self.pool)
            .await
            .map_err(query_err("recording a summary build"))?;
        Ok(deals_done)
    }
}

/// What report rows are grouped by, as a column of `deal_facts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactsKey {
    Owner,
    Region,
}

impl FactsKey {
    /// The key's column as the start of a GROUP BY list (nothing without
    /// one: PostgreSQL refuses a constant there).
    fn grouped(key: Option<FactsKey>) -> String {
        key.map(|k| format!("{}, ", FactsKey::column(Some(k))))
            .unwrap_or_default()
    }

    fn column(key: Option<FactsKey>) -> &'static str {
        match key {
            None => "''",
            Some(FactsKey::Owner) => "f.owner",
            Some(FactsKey::Region) => "f.region",
        }
    }
}

/// Visits counted together (see [`Store::visit_groups`]).
#[derive(Debug, Clone, PartialEq)]
pub struct VisitCount {
    pub key: String,
    pub stage: String,
    pub next_stage: Option<String>,
    pub next_version: Option<String>,
    pub later: String,
    pub last_stage: String,
    pub last_version: String,
    pub count: i64,
}

/// The `entered_at` window of a visit query, appended to `sql` with
/// placeholders from `next`; the values to bind, in order.
fn window<'a>(sql: &mut String, since: Option<&'a str>, until: Option<&'a str>, next: &mut usize) -> Vec<&'a str> {
    let mut binds = Vec::new();
    if let Some(s) = since {
        sql.push_str(&format!(" AND v.entered_at >= ${next}"));
        *next += 1;
        binds.push(s);
    }
    if let Some(u) = until {
        sql.push_str(&format!(" AND v.entered_at < ${next}"));
        *next += 1;
        binds.push(u);
    }
    binds
}

impl Analytics {
    /// The visits of `funnel` that began in `[since, until)` (store-form
    /// times), counted by everything a report judges them by, and by the
    /// deal's owner or region when `key` says.
    pub async fn visit_groups(
        &self,
        funnel: &str,
        since: Option<&str>,
        until: Option<&str>,
        key: Option<FactsKey>,
    ) -> Result<Vec<VisitCount>> {
        if key.is_some() {
            return self.visit_rows_counted(funnel, since, until, key).await;
        }
        // Whole days from the day counts; the part of a day the window
        // cuts from the visits themselves.
        let midnight = |day: &str| format!("{day}T00:00:00.000Z");
        let first_whole = since.map(|s| {
            let d = day_of(s);
            if s == midnight(&d) { d } else { next_day(&d) }
        });
        let end_whole = until.map(day_of);
        if let (Some(a), Some(b)) = (&first_whole, &end_whole)
            && a >= b
        {
            return self.visit_rows_counted(funnel, since, until, None).await;
        }
        let mut out = self
            .day_counts(funnel, first_whole.as_deref(), end_whole.as_deref())
            .await?;
        if let (Some(s), Some(d)) = (since, &first_whole) {
            out.extend(
                self.visit_rows_counted(funnel, Some(s), Some(&midnight(d)), None)
                    .await?,
            );
        }
        if let (Some(u), Some(d)) = (until, &end_whole) {
            out.extend(
                self.visit_rows_counted(funnel, Some(&midnight(d)), Some(u), None)
                    .await?,
            );
        }
        Ok(out)
    }

    /// The day counts of `funnel` from day `first` to before day `end`.
    async fn day_counts(&self, funnel: &str, first: Option<&str>, end: Option<&str>) -> Result<Vec<VisitCount>> {
        let mut sql = String::from(
            "SELECT '', stage, next_stage, next_version, later, last_stage, last_version, CAST(SUM(n) AS BIGINT) \
             FROM visit_counts WHERE funnel = $1 AND n <> 0",
        );
        let mut next = 2;
        let mut binds = Vec::new();
        if let Some(f) = first {
            sql.push_str(&format!(" AND entered_day >= ${next}"));
            next += 1;
            binds.push(f);
        }
        if let Some(e) = end {
            sql.push_str(&format!(" AND entered_day < ${next}"));
            binds.push(e);
        }
        sql.push_str(" GROUP BY stage, next_stage, next_version, later, last_stage, last_version");
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(funnel);
        for b in binds {
            q = q.bind(b);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("reading visit counts"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let e = |x: sqlx::Error| query_err("reading visit counts")(x);
            let next_stage: String = r.try_get(2).map_err(e)?;
            let next_version: String = r.try_get(3).map_err(e)?;
            let ended = !next_stage.is_empty();
            let count: i64 = r.try_get(7).map_err(e)?;
            if count == 0 {
                continue;
            }
            out.push(VisitCount {
                key: String::new(),
                stage: r.try_get(1).map_err(e)?,
                next_stage: ended.then_some(next_stage),
                next_version: ended.then_some(next_version),
                later: r.try_get(4).map_err(e)?,
                last_stage: r.try_get(5).map_err(e)?,
                last_version: r.try_get(6).map_err(e)?,
                count,
            });
        }
        Ok(out)
    }

    /// The visits of `funnel` that began in `[since, until)`, counted from
    /// their own rows.
    async fn visit_rows_counted(
        &self,
        funnel: &str,
        since: Option<&str>,
        until: Option<&str>,
        key: Option<FactsKey>,
    ) -> Result<Vec<VisitCount>> {
        let k = FactsKey::column(key);
        let mut sql = format!(
            "SELECT {k}, v.stage, v.next_stage, v.next_version, v.later, v.last_stage, v.last_version, COUNT(*) \
             FROM stage_visits v{} WHERE v.funnel = $1",
            if key.is_some() {
                " JOIN deal_facts f ON f.deal_id = v.deal_id"
            } else {
                ""
            }
        );
        let mut next = 2;
        let binds = window(&mut sql, since, until, &mut next);
        sql.push_str(&format!(
            " GROUP BY {}v.stage, v.next_stage, v.next_version, v.later, v.last_stage, v.last_version",
            FactsKey::grouped(key)
        ));
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(funnel);
        for b in binds {
            q = q.bind(b);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("reading stage visits"))?;
        rows.iter()
            .map(|r| {
                let e = |x: sqlx::Error| query_err("reading stage visits")(x);
                Ok(VisitCount {
                    key: r.try_get(0).map_err(&e)?,
                    stage: r.try_get(1).map_err(&e)?,
                    next_stage: r.try_get(2).map_err(&e)?,
                    next_version: r.try_get(3).map_err(&e)?,
                    later: r.try_get(4).map_err(&e)?,
                    last_stage: r.try_get(5).map_err(&e)?,
                    last_version: r.try_get(6).map_err(&e)?,
                    count: r.try_get(7).map_err(&e)?,
                })
            })
            .collect()
    }

    /// The `rank`-th smallest time in `stage` (0-based, milliseconds) of the
    /// visits of `funnel` that began in `[since, until)` and ended, and the
    /// one after it.
    pub async fn stage_days_at(
        &self,
        funnel: &str,
        stage: &str,
        since: Option<&str>,
        until: Option<&str>,
        rank: usize,
    ) -> Result<Vec<i64>> {
        let mut sql = String::from(
            "SELECT v.days_ms FROM stage_visits v WHERE v.funnel = $1 AND v.stage = $2 AND v.days_ms IS NOT NULL",
        );
        let mut next = 3;
        let binds = window(&mut sql, since, until, &mut next);
        sql.push_str(&format!(" ORDER BY v.days_ms LIMIT 2 OFFSET {rank}"));
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(funnel).bind(stage);
        for b in binds {
            q = q.bind(b);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("reading days in stage"))?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>(0).map_err(query_err("reading days in stage")))
            .collect()
    }

    /// The times in stage of the ended visits of `funnel` that began in
    /// `[since, until)`, by group and stage: (key, stage, milliseconds,
    /// how many), in order of the time.
    pub async fn stage_days_counted(
        &self,
        funnel: &str,
        since: Option<&str>,
        until: Option<&str>,
        key: FactsKey,
    ) -> Result<Vec<(String, String, i64, i64)>> {
        let k = FactsKey::column(Some(key));
        let mut sql = format!(
            "SELECT {k}, v.stage, v.days_ms, COUNT(*) FROM stage_visits v JOIN deal_facts f ON f.deal_id = v.deal_id \
             WHERE v.funnel = $1 AND v.days_ms IS NOT NULL"
        );
        let mut next = 2;
        let binds = window(&mut sql, since, until, &mut next);
        sql.push_str(&format!(" GROUP BY {k}, v.stage, v.days_ms ORDER BY v.days_ms"));
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(funnel);
        for b in binds {
            q = q.bind(b);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("reading days in stage"))?;
        rows.iter()
            .map(|r| {
                let e = |x: sqlx::Error| query_err("reading days in stage")(x);
                Ok((
                    r.try_get(0).map_err(&e)?,
                    r.try_get(1).map_err(&e)?,
                    r.try_get(2).map_err(&e)?,
                    r.try_get(3).map_err(&e)?,
                ))
            })
            .collect()
    }

    /// The deals of `funnel` now in `stage`, counted by group, close quarter
    /// and amount: (key, close quarter, amount as written, how many).
    pub async fn open_deals_counted(
        &self,
        funnel: &str,
        stage: &str,
        key: Option<FactsKey>,
    ) -> Result<Vec<(String, Option<String>, String, i64)>> {
        let k = FactsKey::column(key);
        let sql = format!(
            "SELECT {k}, f.close_quarter, f.amount, COUNT(*) FROM deal_facts f WHERE f.funnel = $1 AND f.stage = $2 \
             GROUP BY {}f.close_quarter, f.amount",
            FactsKey::grouped(key)
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(funnel)
            .bind(stage)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("reading open deals"))?;
        rows.iter()
            .map(|r| {
                let e = |x: sqlx::Error| query_err("reading open deals")(x);
                Ok((
                    r.try_get(0).map_err(&e)?,
                    r.try_get(1).map_err(&e)?,
                    r.try_get(2).map_err(&e)?,
                    r.try_get(3).map_err(&e)?,
                ))
            })
            .collect()
    }

    /// The deals of `funnel` in `stage` since before `before` (store-form
    /// time), counted by group.
    pub async fn deals_in_stage_since_before(
        &self,
        funnel: &str,
        stage: &str,
        before: &str,
        key: Option<FactsKey>,
    ) -> Result<Vec<(String, i64)>> {
        let k = FactsKey::column(key);
        let sql = format!(
            "SELECT {k}, COUNT(*) FROM deal_facts f WHERE f.funnel = $1 AND f.stage = $2 AND f.stage_entered_at < $3 \
             {}",
            if key.is_some() {
                format!("GROUP BY {k}")
            } else {
                String::new()
            }
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(funnel)
            .bind(stage)
            .bind(before)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("reading stalled deals"))?;
        rows.iter()
            .map(|r| {
                let e = |x: sqlx::Error| query_err("reading stalled deals")(x);
                Ok((r.try_get(0).map_err(&e)?, r.try_get(1).map_err(&e)?))
            })
            .collect()
    }

    /// The owners or regions of the deals of `funnel`.
    pub async fn funnel_keys(&self, funnel: &str, key: FactsKey) -> Result<Vec<String>> {
        let k = FactsKey::column(Some(key));
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT DISTINCT {k} FROM deal_facts f WHERE f.funnel = $1"
        )))
        .bind(funnel)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading deals"))?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(query_err("reading deals")))
            .collect()
    }

    /// How many deals `funnel` has.
    pub async fn funnel_deal_count(&self, funnel: &str) -> Result<i64> {
        sqlx::query("SELECT COUNT(*) FROM deal_facts WHERE funnel = $1")
            .bind(funnel)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(query_err("counting deals"))
    }

    /// The deals closed or cancelled from day `first` to day `last`
    /// (`YYYY-MM-DD`, both included), in id order.
    pub async fn deals_closed_or_cancelled_between(&self, first: &str, last: &str) -> Result<Vec<DealToCredit>> {
        let (to, mut pages) = tokio::sync::mpsc::channel(4);
        let (reading, mut deals) = tokio::join!(self.send_deals_closed_or_cancelled_between(first, last, to), async {
            let mut deals = Vec::new();
            while let Some(mut page) = pages.recv().await {
                deals.append(&mut page);
            }
            deals
        });
        reading?;
        deals.shrink_to_fit();
        Ok(deals)
    }

    /// The deals of [`Analytics::deals_closed_or_cancelled_between`],
    /// handed to `to` a few thousand at a time as they are read, so the
    /// receiver works on one page while the next is read; all of them as
    /// of one moment. Stops early, without error, when the receiver is
    /// gone.
    ///
    /// How they are read depends on the database, each the faster of the
    /// two ways measured at 333,334 deals: SQLite reads the ids, then the
    /// deals as one JSON array per page, in one read transaction (a row at
    /// a time, its driver hands each row between threads); PostgreSQL
    /// streams the rows of one statement (building JSON there costs more
    /// than sending rows).
    pub async fn send_deals_closed_or_cancelled_between(
        &self,
        first: &str,
        last: &str,
        to: tokio::sync::mpsc::Sender<Vec<DealToCredit>>,
    ) -> Result<()> {
        match self.backend {
            crate::Backend::Sqlite => {
                let mut tx = self.pool.begin().await.map_err(query_err("reading deals"))?;
                let ids = self.ids_closed_or_cancelled_between(&mut tx, first, last).await?;
                for chunk in ids.chunks(READ_CHUNK) {
                    let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
                    let deals = self.deals_in(&mut tx, &refs).await?;
                    if to.send(deals).await.is_err() {
                        break;
                    }
                }
                tx.rollback().await.map_err(query_err("reading deals"))?;
            }
            crate::Backend::Postgres => {
                use futures_util::TryStreamExt;
                let mut rows = sqlx::query(AssertSqlSafe(format!(
                    "SELECT {CREDIT_COLUMNS} FROM deals WHERE id IN (\
                     SELECT deal_id FROM deal_facts WHERE closed_on >= $1 AND closed_on <= $2 \
                     UNION SELECT deal_id FROM deal_facts WHERE cancelled_on >= $3 AND cancelled_on <= $4) ORDER BY id"
                )))
                .bind(first)
                .bind(last)
                .bind(first)
                .bind(last)
                .fetch(&self.pool);
                let mut deals = Vec::with_capacity(READ_CHUNK);
                while let Some(r) = rows.try_next().await.map_err(query_err("reading deals"))? {
                    deals.push(deal_to_credit(&r)?);
                    if deals.len() == READ_CHUNK
                        && to
                            .send(std::mem::replace(&mut deals, Vec::with_capacity(READ_CHUNK)))
                            .await
                            .is_err()
                    {
                        return Ok(());
                    }
                }
                if !deals.is_empty() {
                    let _ = to.send(deals).await;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> String {
        DateTime::parse_from_rfc3339(s).map_or_else(|_| s.to_string(), |t| timestamp(t.with_timezone(&Utc)))
    }

    #[test]
    fn a_time_already_in_store_form_is_kept_as_parsing_would_write_it() {
        for s in [
            "2026-03-31T09:15:00.000Z",
            "2026-12-31T23:59:59.999Z",
            "2024-02-29T00:00:00.000Z",
            // Store-shaped but no time: parsing fails, the text is kept.
            "2026-02-30T00:00:00.000Z",
            "2026-13-01T00:00:00.000Z",
            "2026-01-01T24:00:00.000Z",
        ] {
            assert!(in_store_form(s), "{s}");
            assert_eq!(normal_time(s), parsed(s), "{s}");
        }
        for (s, want) in [
            ("2026-03-31T09:15:00Z", "2026-03-31T09:15:00.000Z"),
            ("2026-03-31T17:15:00+08:00", "2026-03-31T09:15:00.000Z"),
            ("2026-03-31t09:15:00.000z", "2026-03-31T09:15:00.000Z"),
            ("2026-03-31T09:15:00.123456Z", "2026-03-31T09:15:00.123Z"),
            ("yesterday", "yesterday"),
        ] {
            assert!(!in_store_form(s), "{s}");
            assert_eq!(normal_time(s), want, "{s}");
            assert_eq!(normal_time(s), parsed(s), "{s}");
        }
    }

    #[test]
    fn a_day_is_written_as_chrono_writes_it() {
        for (y, m, d) in [(2026, 1, 5), (999, 12, 31), (1, 1, 1), (9999, 2, 28)] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(day(date), date.format("%Y-%m-%d").to_string());
        }
    }
}
