//! The credits a targets progress report adds up (migration 0012), kept
//! per *fill*: the credits of the deals one period reads, as the plans fed
//! by one Targets document credit them under one set of credit rules (the
//! fill's *basis*).
//!
//! A fill is made when a pack version goes live or by the first report
//! that asks for it, and is then kept exact by marks rather than by time:
//!
//! - every write of a deal (the transaction that writes its facts, see
//!   [`crate::summaries`]) marks the deal in the fills whose period read it
//!   before the write or reads it after;
//! - every change of a person marks, in every fill, the deals they own that
//!   the fill's period reads (a deal carries its owner as of its close date);
//! - a fill belongs to a *basis*, a fingerprint of the credit rules that
//!   made it (migration 0013), not to a pack version: a new pack version
//!   whose rules have the same basis reads the fills already made, one
//!   with other rules makes new ones (and the fills no active Targets
//!   document reads are dropped when one is made: their rows at once,
//!   their credits and marks in short transactions once the new fill is
//!   stored, migration 0015).
//!
//! The next report credits the marked deals again and clears the marks it
//! saw; a mark written meanwhile has a new value and stays for the report
//! after. Which rules credit a deal is the workflow's business: the store
//! keeps rows and marks.
//!
//! On PostgreSQL, the writers' marks and the making of a fill take an
//! advisory lock (shared by the writers, exclusive for the fill's row), so
//! a deal written while a fill is being made is either seen by the fill's
//! reading or marked in it.

use std::collections::HashMap;

use rust_decimal::Decimal;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::workflow::parse_json;
use crate::{Analytics, Backend, Db, Result, StoreError, query_err};

/// The advisory lock key of fills and marks (PostgreSQL).
const FILL_LOCK: i64 = 0x6372_6564_6974; // "credit"

/// Deals per statement when marking and clearing: under both databases'
/// parameter limits.
const CHUNK: usize = 400;

/// Credits stored per statement (one JSON parameter).
const JSON_CHUNK: usize = 5000;

/// Deals whose credits (or marks) of a dropped fill one transaction
/// deletes: short enough for a deal write to get the SQLite write lock
/// in between.
const DROP_CHUNK: usize = 5000;

/// A fill's state: being made by a report, or ready to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillState {
    Filling,
    Ready,
}

impl FillState {
    /// The state as `credit_fills.state` stores it.
    fn stored(state: &str) -> FillState {
        if state == "ready" {
            FillState::Ready
        } else {
            FillState::Filling
        }
    }
}

/// A fill: the credits of one period's deals under one pack version and
/// Targets document.
#[derive(Debug, Clone, PartialEq)]
pub struct CreditFill {
    pub id: String,
    pub state: FillState,
}

/// Which fill: a Targets document's period, under credit rules of one
/// basis (a fingerprint of what decides the credits, made by the workflow).
#[derive(Debug, Clone, Copy)]
pub struct FillKey<'a> {
    pub basis: &'a str,
    pub targets: &'a str,
    /// Its label: 2026-Q1, 2026-03, 2026.
    pub period: &'a str,
    /// YYYY-MM-DD.
    pub first_day: &'a str,
    pub last_day: &'a str,
}

/// A rep's credit from one deal.
#[derive(Debug, Clone, PartialEq)]
pub struct CreditRow {
    pub deal_id: String,
    pub rep: String,
    pub credit: Decimal,
    /// YYYY-MM-DD.
    pub closed_on: String,
    pub product: Option<String>,
    pub channel: Option<String>,
}

/// Credits added up by rep, close day, product and channel.
#[derive(Debug, Clone, PartialEq)]
pub struct SummedCredit {
    pub rep: String,
    pub closed_on: String,
    pub product: Option<String>,
    pub channel: Option<String>,
    pub credit: Decimal,
}

/// What crediting reads of a deal: no context, times or revision.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct DealToCredit {
    pub id: String,
    pub funnel: String,
    pub owner: String,
    pub stage: String,
    /// The deal's fields (a JSON object).
    pub fields: serde_json::Value,
    /// RFC 3339.
    pub stage_entered_at: String,
}

/// Deals read per statement (or page) for crediting. On SQLite each
/// statement answers one JSON array of them (one row), which the database
/// builds and this side parses at once, rather than a row and six values
/// a deal through the driver (three quarters of the read's time at
/// 333,334 deals).
pub(crate) const READ_CHUNK: usize = 5000;

/// The columns [`deal_to_credit`] reads, in its order.
pub(crate) const CREDIT_COLUMNS: &str = "id, funnel, owner, stage, fields, stage_entered_at";

/// A deal to credit from a row of [`CREDIT_COLUMNS`].
pub(crate) fn deal_to_credit(r: &sqlx::any::AnyRow) -> Result<DealToCredit> {
    let s = |i: usize| r.try_get::<String, _>(i).map_err(query_err("reading a deal"));
    Ok(DealToCredit {
        id: s(0)?,
        funnel: s(1)?,
        owner: s(2)?,
        stage: s(3)?,
        fields: parse_json(&s(4)?, "reading a deal")?,
        stage_entered_at: s(5)?,
    })
}

/// A JSON array the database built, parsed.
fn parsed<T: serde::de::DeserializeOwned>(r: &sqlx::any::AnyRow, what: &'static str) -> Result<T> {
    let text: Option<String> = r.try_get(0).map_err(query_err(what))?;
    parse_json(text.as_deref().unwrap_or("[]"), what)
}

/// A credit as an integer of its own scale, when it fits a BIGINT.
fn units(d: Decimal) -> (Option<i64>, i64) {
    let scale = i64::from(d.scale());
    (i64::try_from(d.mantissa()).ok(), scale)
}

type SumKey = (String, String, Option<String>, Option<String>);

fn add(sums: &mut HashMap<SumKey, Decimal>, key: SumKey, credit: Decimal) -> Result<()> {
    let sum = sums.entry(key).or_default();
    *sum = sum
        .checked_add(credit)
        .ok_or_else(|| StoreError::BadArgument("credits add up past the largest decimal".into()))?;
    Ok(())
}

impl Db {
    /// PostgreSQL: the marks a transaction writes wait for a fill being
    /// made, and a fill being made waits for the transactions marking.
    pub(crate) async fn lock_for_marks(&self, conn: &mut AnyConnection) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
                .bind(FILL_LOCK)
                .execute(&mut *conn)
                .await
                .map_err(query_err("marking credits"))?;
        }
        Ok(())
    }

    /// Whether any period is filled, under the lock a fill's maker waits
    /// for (PostgreSQL), so none is made before this transaction ends.
    pub(crate) async fn any_credit_fill(&self, conn: &mut AnyConnection) -> Result<bool> {
        self.lock_for_marks(conn).await?;
        let row = sqlx::query("SELECT id FROM credit_fills LIMIT 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(query_err("marking credits"))?;
        Ok(row.is_some())
    }

    /// Marks the deals `ids` in the fills whose period reads them by their
    /// stored facts, inside the transaction that writes them: called with
    /// the facts before the write and again after, so a deal is marked
    /// where it was read and where it will be (a fill holds credits only of
    /// deals its period read when they were last credited).
    pub(crate) async fn mark_deals(&self, conn: &mut AnyConnection, ids: &[&str]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.lock_for_marks(conn).await?;
        let mark = self.new_id();
        for chunk in ids.chunks(CHUNK) {
            let mut sql = String::from("INSERT INTO credit_marks (fill_id, deal_id, mark) SELECT f.id, d.deal_id, ");
            crate::placeholders::push_list(&mut sql, self.backend, 1, 1);
            sql.push_str(" FROM credit_fills f, deal_facts d WHERE d.deal_id IN (");
            crate::placeholders::push_list(&mut sql, self.backend, 2, chunk.len());
            sql.push_str(
                ") AND ((d.closed_on >= f.first_day AND d.closed_on <= f.last_day) \
                 OR (d.cancelled_on >= f.first_day AND d.cancelled_on <= f.last_day)) \
                 ON CONFLICT (fill_id, deal_id) DO UPDATE SET mark = excluded.mark",
            );
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(&mark);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&mut *conn).await.map_err(query_err("marking credits"))?;
        }
        Ok(())
    }

    /// Marks, in every fill, the deals `owner` owns that the fill's period
    /// reads (closed or cancelled in it), inside the transaction that
    /// changes the person.
    pub(crate) async fn mark_deals_of_owner(&self, conn: &mut AnyConnection, owner: &str) -> Result<()> {
        self.lock_for_marks(conn).await?;
        sqlx::query(
            "INSERT INTO credit_marks (fill_id, deal_id, mark) SELECT f.id, d.deal_id, $1 \
             FROM credit_fills f, deals o JOIN deal_facts d ON d.deal_id = o.id WHERE o.owner = $2 \
             AND ((d.closed_on >= f.first_day AND d.closed_on <= f.last_day) \
             OR (d.cancelled_on >= f.first_day AND d.cancelled_on <= f.last_day)) \
             ON CONFLICT (fill_id, deal_id) DO UPDATE SET mark = excluded.mark",
        )
        .bind(self.new_id())
        .bind(owner)
        .execute(&mut *conn)
        .await
        .map_err(query_err("marking credits"))?;
        Ok(())
    }
}

impl Analytics {
    /// The fill `key`: the one stored (made by this pack version or by any
    /// other whose credit rules have the same basis), or a new one, empty
    /// and `Filling`, made now under pack `version`. Making one drops the
    /// fills no longer read: those whose targets and basis are not among
    /// `live` (the active version's Targets documents and their bases).
    /// Their rows go now, so no report reads them; their credits and marks
    /// stay until [`Analytics::clear_dropped_fills`].
    pub async fn credit_fill(&self, key: &FillKey<'_>, version: &str, live: &[(String, String)]) -> Result<CreditFill> {
        if let Some(fill) = self.find_fill(&self.pool, key).await? {
            return Ok(fill);
        }
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(FILL_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(query_err("making a credit fill"))?;
        }
        if let Some(fill) = self.find_fill(&mut *tx, key).await? {
            tx.commit().await?;
            return Ok(fill);
        }
        let stored = sqlx::query("SELECT id, targets, basis FROM credit_fills")
            .fetch_all(&mut *tx)
            .await
            .map_err(query_err("reading credit fills"))?;
        let mut old = Vec::new();
        for r in &stored {
            let e = || query_err("reading credit fills");
            let (id, targets, basis): (String, String, String) = (
                r.try_get(0).map_err(e())?,
                r.try_get(1).map_err(e())?,
                r.try_get(2).map_err(e())?,
            );
            if !live.iter().any(|(t, b)| *t == targets && *b == basis) {
                old.push(id);
            }
        }
        // The dropped fills' rows go here; their credits and marks later,
        // a few thousand at a time ([`Analytics::clear_dropped_fills`]).
        let now = crate::timestamp_now();
        for id in &old {
            sqlx::query(
                "INSERT INTO credit_fills_dropped (id, dropped_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(query_err("dropping a credit fill"))?;
            sqlx::query("DELETE FROM credit_fills WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(query_err("dropping a credit fill"))?;
        }
        let id = self.new_id();
        sqlx::query(
            "INSERT INTO credit_fills (id, basis, pack_version, targets, period, first_day, last_day, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'filling', $8)",
        )
        .bind(&id)
        .bind(key.basis)
        .bind(version)
        .bind(key.targets)
        .bind(key.period)
        .bind(key.first_day)
        .bind(key.last_day)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(query_err("making a credit fill"))?;
        tx.commit().await?;
        tracing::info!(targets = %key.targets, period = %key.period, %version, basis = %key.basis, fill = %id, dropped = old.len(), "credit fill made");
        Ok(CreditFill {
            id,
            state: FillState::Filling,
        })
    }

    /// Deletes the credits and marks of the fills dropped by
    /// [`Analytics::credit_fill`], those of [`DROP_CHUNK`] deals to a
    /// transaction so that deal writes go on meanwhile: run after a new
    /// fill is stored, and it finishes what a run stopped half way (a
    /// restart) left. How many rows it deleted.
    pub async fn clear_dropped_fills(&self) -> Result<u64> {
        let dropped = sqlx::query("SELECT id FROM credit_fills_dropped ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("reading dropped credit fills"))?;
        let mut deleted = 0;
        for r in &dropped {
            let id: String = r.try_get(0).map_err(query_err("reading dropped credit fills"))?;
            for table in ["credits", "credit_marks"] {
                let sql = format!(
                    "DELETE FROM {table} WHERE fill_id = $1 AND deal_id IN \
                     (SELECT deal_id FROM {table} WHERE fill_id = $2 ORDER BY deal_id LIMIT {DROP_CHUNK})"
                );
                loop {
                    let mut tx = self.begin_write().await?;
                    let done = sqlx::query(AssertSqlSafe(sql.clone()))
                        .bind(&id)
                        .bind(&id)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_err("clearing a dropped credit fill"))?
                        .rows_affected();
                    tx.commit().await?;
                    deleted += done;
                    if done == 0 {
                        break;
                    }
                }
            }
            let mut tx = self.begin_write().await?;
            sqlx::query("DELETE FROM credit_fills_dropped WHERE id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(query_err("clearing a dropped credit fill"))?;
            tx.commit().await?;
        }
        Ok(deleted)
    }

    /// The fill `key`, if one is stored.
    pub async fn find_credit_fill(&self, key: &FillKey<'_>) -> Result<Option<CreditFill>> {
        self.find_fill(&self.pool, key).await
    }

    async fn find_fill<'e, E>(&self, conn: E, key: &FillKey<'_>) -> Result<Option<CreditFill>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let row = sqlx::query("SELECT id, state FROM credit_fills WHERE targets = $1 AND period = $2 AND basis = $3")
            .bind(key.targets)
            .bind(key.period)
            .bind(key.basis)
            .fetch_optional(conn)
            .await
            .map_err(query_err("reading credit fills"))?;
        row.map(|r| {
            let id: String = r.try_get(0).map_err(query_err("reading credit fills"))?;
            let state: String = r.try_get(1).map_err(query_err("reading credit fills"))?;
            Ok(CreditFill {
                id,
                state: FillState::stored(&state),
            })
        })
        .transpose()
    }

    /// The state of the fill `id`, or `None` once it has been dropped.
    pub async fn credit_fill_state(&self, id: &str) -> Result<Option<FillState>> {
        self.fill_state(&self.pool, "SELECT state FROM credit_fills WHERE id = $1", id)
            .await
    }

    /// Whether a fill's maker holds its row lock while it reads and
    /// credits (PostgreSQL, where nodes share the database and a report
    /// on another node should wait for the fill rather than make it
    /// again); on SQLite the write lock is held only to store.
    pub fn fills_held_across_nodes(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// Locks the fill `id` for the rest of the transaction (PostgreSQL; on
    /// SQLite the write transaction is alone): its state, or `None` when a
    /// newer pack version's fill has replaced it.
    pub async fn lock_credit_fill(&self, conn: &mut AnyConnection, id: &str) -> Result<Option<FillState>> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT state FROM credit_fills WHERE id = $1",
            Backend::Postgres => "SELECT state FROM credit_fills WHERE id = $1 FOR UPDATE",
        };
        self.fill_state(conn, sql, id).await
    }

    async fn fill_state<'e, E>(&self, conn: E, sql: &'static str, id: &str) -> Result<Option<FillState>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(query_err("reading credit fills"))?;
        row.map(|r| {
            r.try_get::<String, _>(0)
                .map(|s| FillState::stored(&s))
                .map_err(query_err("reading credit fills"))
        })
        .transpose()
    }

    /// Stores the credits of the fill `id` and makes it ready, in `conn`
    /// (a write transaction holding [`Analytics::lock_credit_fill`]).
    pub async fn fill_credits(&self, conn: &mut AnyConnection, id: &str, rows: &[CreditRow]) -> Result<()> {
        self.insert_credits(conn, id, rows).await?;
        sqlx::query("UPDATE credit_fills SET state = 'ready' WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(query_err("storing credits"))?;
        Ok(())
    }

    /// Stores `rows` in the fill `id`, a few thousand to a statement: each
    /// statement's rows go as one JSON array (one parameter) that the
    /// database takes apart, rather than nine parameters a row, which both
    /// databases bind and plan row by row.
    async fn insert_credits(&self, conn: &mut AnyConnection, id: &str, rows: &[CreditRow]) -> Result<()> {
        // Two plans crediting one rep from one deal: the first plan's
        // credit counts (as the report's own reading takes it).
        let sql = match self.backend {
            Backend::Sqlite => {
                "INSERT INTO credits (fill_id, deal_id, rep, credit, units, scale, closed_on, product, channel) \
                 SELECT $1, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), \
                 json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'), \
                 json_extract(value, '$[6]'), json_extract(value, '$[7]') FROM json_each($2) WHERE true \
                 ON CONFLICT (fill_id, deal_id, rep) DO NOTHING"
            }
            Backend::Postgres => {
                "INSERT INTO credits (fill_id, deal_id, rep, credit, units, scale, closed_on, product, channel) \
                 SELECT $1, r->>0, r->>1, r->>2, (r->>3)::BIGINT, (r->>4)::BIGINT, r->>5, r->>6, r->>7 \
                 FROM json_array_elements($2::json) AS r \
                 ON CONFLICT (fill_id, deal_id, rep) DO NOTHING"
            }
        };
        for chunk in rows.chunks(JSON_CHUNK) {
            let json: Vec<serde_json::Value> = chunk
                .iter()
                .map(|c| {
                    let (units, scale) = units(c.credit);
                    serde_json::json!([
                        c.deal_id,
                        c.rep,
                        c.credit.to_string(),
                        units,
                        scale,
                        c.closed_on,
                        c.product,
                        c.channel
                    ])
                })
                .collect();
            let text = serde_json::Value::Array(json).to_string();
            sqlx::query(sql)
                .bind(id)
                .bind(text)
                .execute(&mut *conn)
                .await
                .map_err(query_err("storing credits"))?;
        }
        Ok(())
    }

    /// A connection for reads outside a write transaction: the marks and
    /// deals a report credits while a fill's credits are being stored.
    pub async fn read_connection(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        self.pool.acquire().await.map_err(query_err("reading credit marks"))
    }

    /// The marks of the fill `id`: (deal, mark).
    pub async fn credit_marks(&self, conn: &mut AnyConnection, id: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT deal_id, mark FROM credit_marks WHERE fill_id = $1 ORDER BY deal_id")
            .bind(id)
            .fetch_all(&mut *conn)
            .await
            .map_err(query_err("reading credit marks"))?;
        rows.iter()
            .map(|r| {
                let e = query_err("reading credit marks");
                Ok((
                    r.try_get(0).map_err(e)?,
                    r.try_get(1).map_err(query_err("reading credit marks"))?,
                ))
            })
            .collect()
    }

    /// Whether the fill `id` has marks.
    pub async fn has_credit_marks(&self, id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT deal_id FROM credit_marks WHERE fill_id = $1 LIMIT 1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading credit marks"))?;
        Ok(row.is_some())
    }

    /// The deals of `ids` that exist, read in `conn`, in id order.
    pub async fn deals_in(&self, conn: &mut AnyConnection, ids: &[&str]) -> Result<Vec<DealToCredit>> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(READ_CHUNK) {
            let list = serde_json::to_string(chunk).map_err(|e| StoreError::BadArgument(e.to_string()))?;
            let mut deals: Vec<DealToCredit> = match self.backend {
                Backend::Sqlite => {
                    let row = sqlx::query(
                        "SELECT json_group_array(json_array(id, funnel, owner, stage, json(fields), stage_entered_at)) \
                         FROM deals WHERE id IN (SELECT value FROM json_each($1))",
                    )
                    .bind(list)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(query_err("reading deals"))?;
                    parsed(&row, "reading deals")?
                }
                Backend::Postgres => sqlx::query(AssertSqlSafe(format!(
                    "SELECT {CREDIT_COLUMNS} FROM deals WHERE id IN (SELECT json_array_elements_text($1::json))"
                )))
                .bind(list)
                .fetch_all(&mut *conn)
                .await
                .map_err(query_err("reading deals"))?
                .iter()
                .map(deal_to_credit)
                .collect::<Result<_>>()?,
            };
            deals.sort_unstable_by(|a, b| a.id.cmp(&b.id));
            found.append(&mut deals);
        }
        Ok(found)
    }

    /// The ids of the deals closed or cancelled from day `first` to day
    /// `last` (both included), in order: from the indexes of close and
    /// cancel days, which carry them (migration 0015).
    pub(crate) async fn ids_closed_or_cancelled_between(
        &self,
        conn: &mut AnyConnection,
        first: &str,
        last: &str,
    ) -> Result<Vec<String>> {
        let agg = match self.backend {
            Backend::Sqlite => "json_group_array(deal_id)",
            Backend::Postgres => "json_agg(deal_id)::text",
        };
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {agg} FROM (SELECT deal_id FROM deal_facts WHERE closed_on >= $1 AND closed_on <= $2 \
             UNION ALL SELECT deal_id FROM deal_facts WHERE cancelled_on >= $3 AND cancelled_on <= $4) AS ids"
        )))
        .bind(first)
        .bind(last)
        .bind(first)
        .bind(last)
        .fetch_one(&mut *conn)
        .await
        .map_err(query_err("reading deals"))?;
        let mut ids: Vec<String> = parsed(&row, "reading deals")?;
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// Replaces the credits of the marked deals of fill `id` with `rows`
    /// (their credits now) and clears the marks seen, unless a write has
    /// marked the deal again since; in `conn`, holding the fill's lock.
    pub async fn recredit(
        &self,
        conn: &mut AnyConnection,
        id: &str,
        marks: &[(String, String)],
        rows: &[CreditRow],
    ) -> Result<()> {
        for chunk in marks.chunks(CHUNK) {
            let mut sql = String::from("DELETE FROM credits WHERE fill_id = ");
            crate::placeholders::push_list(&mut sql, self.backend, 1, 1);
            sql.push_str(" AND deal_id IN (");
            crate::placeholders::push_list(&mut sql, self.backend, 2, chunk.len());
            sql.push(')');
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(id);
            for (deal, _) in chunk {
                q = q.bind(deal);
            }
            q.execute(&mut *conn).await.map_err(query_err("storing credits"))?;
        }
        self.insert_credits(conn, id, rows).await?;
        for (deal, mark) in marks {
            sqlx::query("DELETE FROM credit_marks WHERE fill_id = $1 AND deal_id = $2 AND mark = $3")
                .bind(id)
                .bind(deal)
                .bind(mark)
                .execute(&mut *conn)
                .await
                .map_err(query_err("clearing credit marks"))?;
        }
        Ok(())
    }

    /// The credits of the fill `id`, added up by rep, close day, product
    /// and channel: by the database for those stored as integers, here
    /// (exactly) for the rest and for any sum a BIGINT cannot hold.
    pub async fn summed_credits(&self, id: &str) -> Result<Vec<SummedCredit>> {
        let mut sums: HashMap<SumKey, Decimal> = HashMap::new();
        let summed = sqlx::query(
            "SELECT rep, closed_on, product, channel, scale, CAST(SUM(units) AS TEXT) FROM credits \
             WHERE fill_id = $1 AND units IS NOT NULL GROUP BY rep, closed_on, product, channel, scale",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await;
        let exact_only = match summed {
            Ok(rows) => {
                for r in &rows {
                    let e = || query_err("reading credits");
                    let scale: i64 = r.try_get(4).map_err(e())?;
                    let total: String = r.try_get(5).map_err(e())?;
                    let mut credit: Decimal = total
                        .parse()
                        .map_err(|_| StoreError::BadArgument(format!("a sum of credits `{total}` is not a number")))?;
                    credit
                        .set_scale(u32::try_from(scale).unwrap_or_default())
                        .map_err(|_| StoreError::BadArgument(format!("a credit's scale {scale}")))?;
                    add(
                        &mut sums,
                        (
                            r.try_get(0).map_err(e())?,
                            r.try_get(1).map_err(e())?,
                            r.try_get(2).map_err(e())?,
                            r.try_get(3).map_err(e())?,
                        ),
                        credit,
                    )?;
                }
                "AND units IS NULL"
            }
            // SQLite's SUM stops at an integer overflow: add them all here.
            Err(e) => {
                tracing::debug!(error = %e, "credits summed one by one");
                sums.clear();
                ""
            }
        };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT rep, closed_on, product, channel, credit FROM credits WHERE fill_id = $1 {exact_only}"
        )))
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading credits"))?;
        for r in &rows {
            let e = || query_err("reading credits");
            let text: String = r.try_get(4).map_err(e())?;
            let credit: Decimal = text
                .parse()
                .map_err(|_| StoreError::BadArgument(format!("a stored credit `{text}` is not a number")))?;
            add(
                &mut sums,
                (
                    r.try_get(0).map_err(e())?,
                    r.try_get(1).map_err(e())?,
                    r.try_get(2).map_err(e())?,
                    r.try_get(3).map_err(e())?,
                ),
                credit,
            )?;
        }
        let mut out: Vec<SummedCredit> = sums
            .into_iter()
            .map(|((rep, closed_on, product, channel), credit)| SummedCredit {
                rep,
                closed_on,
                product,
                channel,
                credit,
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.rep, &a.closed_on, &a.product, &a.channel).cmp(&(&b.rep, &b.closed_on, &b.product, &b.channel))
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_are_integers_of_their_own_scale() {
        assert_eq!(units("1234.50".parse().unwrap()), (Some(123450), 2));
        assert_eq!(units("-7".parse().unwrap()), (Some(-7), 0));
        // 28 digits do not fit a BIGINT: kept as text only.
        assert_eq!(units("1234567890123456789012345678".parse().unwrap()).0, None);
    }
}
