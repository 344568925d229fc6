//! Rows of the workflow runtime: deals, their history, approval requests,
//! delegations, timers, the outbox and idempotency keys.
//!
//! Everything that changes a deal happens in one write transaction
//! ([`Db::begin_write`]): the functions here that take a connection are
//! meant to run inside it, so an event, a timer firing or an approval
//! decision is stored whole or not at all.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row, Transaction};

use crate::states::{ApprovalState, StepState, TimerKind, TimerState};
use crate::{Backend, Db, Deals, Result, StoreError, query_err, timestamp_now};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deal {
    pub id: String,
    pub funnel: String,
    pub owner: String,
    pub stage: String,
    /// The deal's fields (amount, close_date, ...).
    pub fields: Value,
    /// Facts beside the deal that policies read: `rep`, `customer`, ...
    pub context: Value,
    pub stage_entered_at: String,
    pub created_at: String,
    pub updated_at: String,
    pub revision: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    pub id: String,
    pub at: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub detail: Value,
    /// The pack version in force.
    pub version: String,
    /// A token's subject, or `timer`.
    pub actor: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalStep {
    pub level: String,
    /// A user id, or `role:NAME`.
    pub approver: String,
    pub state: StepState,
    pub decided_by: Option<String>,
    pub comment: Option<String>,
    pub decided_at: Option<String>,
    /// Decided by an admin who was not the approver.
    #[serde(default)]
    pub overridden: bool,
    /// Decided by a delegate of the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegate_of: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    pub id: String,
    pub deal: String,
    pub policy: String,
    pub level: String,
    pub state: ApprovalState,
    pub submitter: String,
    /// The decision and the values its rules tested (for smart re-approval).
    pub basis: Value,
    pub steps: Vec<ApprovalStep>,
    pub version: String,
    pub created_at: String,
    pub decided_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delegation {
    pub id: String,
    pub from_user: String,
    pub to_user: String,
    pub starts_on: String,
    pub ends_on: String,
    pub created_by: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimerRow {
    pub id: String,
    pub deal_id: String,
    pub kind: TimerKind,
    pub name: String,
    pub stage: Option<String>,
    pub approval_id: Option<String>,
    pub due_at: String,
    pub every_ms: Option<i64>,
    pub state: TimerState,
    pub fired_at: Option<String>,
    pub fired_by: Option<String>,
    pub version: String,
}

fn json_text(v: &impl Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::BadArgument(e.to_string()))
}

/// A state or kind as stored.
pub(crate) fn parse_text<T: std::str::FromStr<Err = String>>(text: &str, what: &'static str) -> Result<T> {
    text.parse().map_err(|e: String| StoreError::Query {
        what,
        source: sqlx::Error::Decode(e.into()),
    })
}

pub(crate) fn parse_json<T: for<'de> Deserialize<'de>>(text: &str, what: &'static str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Query {
        what,
        source: sqlx::Error::Decode(Box::new(e)),
    })
}

const DEAL_COLUMNS: &str =
    "id, funnel, owner, stage, fields, context, stage_entered_at, created_at, updated_at, revision";

fn deal_row(r: &AnyRow) -> Result<Deal> {
    let s = |i: usize| r.try_get::<String, _>(i).map_err(query_err("reading a deal"));
    Ok(Deal {
        id: s(0)?,
        funnel: s(1)?,
        owner: s(2)?,
        stage: s(3)?,
        fields: parse_json(&s(4)?, "reading a deal")?,
        context: parse_json(&s(5)?, "reading a deal")?,
        stage_entered_at: s(6)?,
        created_at: s(7)?,
        updated_at: s(8)?,
        revision: r.try_get(9).map_err(query_err("reading a deal"))?,
    })
}

const APPROVAL_COLUMNS: &str =
    "id, deal_id, policy, level, state, submitter, basis, steps, version, created_at, decided_at";

fn approval_row(r: &AnyRow) -> Result<Approval> {
    let s = |i: usize| r.try_get::<String, _>(i).map_err(query_err("reading an approval"));
    Ok(Approval {
        id: s(0)?,
        deal: s(1)?,
        policy: s(2)?,
        level: s(3)?,
        state: parse_text(&s(4)?, "reading an approval")?,
        submitter: s(5)?,
        basis: parse_json(&s(6)?, "reading an approval")?,
        steps: parse_json(&s(7)?, "reading an approval")?,
        version: s(8)?,
        created_at: s(9)?,
        decided_at: r.try_get(10).map_err(query_err("reading an approval"))?,
    })
}

const TIMER_COLUMNS: &str =
    "id, deal_id, kind, name, stage, approval_id, due_at, every_ms, state, fired_at, fired_by, version";

fn timer_row(r: &AnyRow) -> Result<TimerRow> {
    let e = || query_err("reading a timer");
    Ok(TimerRow {
        id: r.try_get(0).map_err(e())?,
        deal_id: r.try_get(1).map_err(e())?,
        kind: parse_text(&r.try_get::<String, _>(2).map_err(e())?, "reading a timer")?,
        name: r.try_get(3).map_err(e())?,
        stage: r.try_get(4).map_err(e())?,
        approval_id: r.try_get(5).map_err(e())?,
        due_at: r.try_get(6).map_err(e())?,
        every_ms: r.try_get(7).map_err(e())?,
        state: parse_text(&r.try_get::<String, _>(8).map_err(e())?, "reading a timer")?,
        fired_at: r.try_get(9).map_err(e())?,
        fired_by: r.try_get(10).map_err(e())?,
        version: r.try_get(11).map_err(e())?,
    })
}

/// A write transaction (and, on SQLite, this process's writer turn).
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await.map_err(query_err("committing a transaction"))
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl Db {
    /// A transaction for changes. On SQLite the process's writers queue on
    /// an in-process lock first (SQLite allows one writer; its own busy
    /// handler would make them sleep and retry) and then take the write lock
    /// at once (`BEGIN IMMEDIATE`); on PostgreSQL rows are locked as they
    /// are read.
    pub async fn begin_write(&self) -> Result<WriteTx> {
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .map_err(query_err("starting a transaction"))?;
        Ok(WriteTx { tx, _guard: guard })
    }
}

impl Deals {
    // ---- deals ----

    /// Reads a deal for change: locked until the transaction ends.
    pub async fn lock_deal(&self, conn: &mut AnyConnection, id: &str) -> Result<Option<Deal>> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT id, funnel, owner, stage, fields, context, stage_entered_at, created_at, updated_at, revision FROM deals WHERE id = $1"
            }
            Backend::Postgres => {
                "SELECT id, funnel, owner, stage, fields, context, stage_entered_at, created_at, updated_at, revision FROM deals WHERE id = $1 FOR UPDATE"
            }
        };
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(query_err("reading a deal"))?;
        row.as_ref().map(deal_row).transpose()
    }

    pub async fn deal(&self, id: &str) -> Result<Option<Deal>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DEAL_COLUMNS} FROM deals WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading a deal"))?;
        row.as_ref().map(deal_row).transpose()
    }

    /// The deals of `ids` that exist, by id, in one query per 500 ids
    /// (the approvals inbox shows each request's deal).
    pub async fn deals_with_ids(&self, ids: &[&str]) -> Result<std::collections::HashMap<String, Deal>> {
        let mut found = std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut sql = format!("SELECT {DEAL_COLUMNS} FROM deals WHERE id IN (");
            crate::placeholders::push_list(&mut sql, self.backend, 1, chunk.len());
            sql.push(')');
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id);
            }
            let rows = q.fetch_all(&self.pool).await.map_err(query_err("reading deals"))?;
            for row in &rows {
                let deal = deal_row(row)?;
                found.insert(deal.id.clone(), deal);
            }
        }
        Ok(found)
    }

    /// Every deal (for the pipeline and for reconciling after a pack change).
    pub async fn deals(&self) -> Result<Vec<Deal>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DEAL_COLUMNS} FROM deals ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading deals"))?;
        rows.iter().map(deal_row).collect()
    }

    /// A page of deals by id, after `after` (the last id of the previous
    /// page): the console's and `GET /v1/deals`' list, never every deal.
    pub async fn deals_page(&self, after: &str, limit: i64) -> Result<Vec<Deal>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DEAL_COLUMNS} FROM deals WHERE id > $1 ORDER BY id LIMIT {}",
            limit.clamp(1, crate::MAX_PAGE as i64)
        )))
        .bind(after)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading deals"))?;
        rows.iter().map(deal_row).collect()
    }

    /// Inserts a deal; false when the id is taken.
    pub async fn insert_deal(&self, conn: &mut AnyConnection, d: &Deal) -> Result<bool> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "INSERT OR IGNORE INTO deals (id, funnel, owner, stage, fields, context, stage_entered_at, created_at, updated_at, revision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            }
            Backend::Postgres => {
                "INSERT INTO deals (id, funnel, owner, stage, fields, context, stage_entered_at, created_at, updated_at, revision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING"
            }
        };
        let done = sqlx::query(sql)
            .bind(&d.id)
            .bind(&d.funnel)
            .bind(&d.owner)
            .bind(&d.stage)
            .bind(json_text(&d.fields)?)
            .bind(json_text(&d.context)?)
            .bind(&d.stage_entered_at)
            .bind(&d.created_at)
            .bind(&d.updated_at)
            .bind(d.revision)
            .execute(&mut *conn)
            .await
            .map_err(query_err("storing a deal"))?;
        let inserted = done.rows_affected() == 1;
        if inserted {
            self.upsert_deal_facts(conn, &[d]).await?;
        }
        Ok(inserted)
    }

    pub async fn update_deal(&self, conn: &mut AnyConnection, d: &Deal) -> Result<()> {
        sqlx::query("UPDATE deals SET owner = $2, stage = $3, fields = $4, context = $5, stage_entered_at = $6, updated_at = $7, revision = $8 WHERE id = $1")
            .bind(&d.id)
            .bind(&d.owner)
            .bind(&d.stage)
            .bind(json_text(&d.fields)?)
            .bind(json_text(&d.context)?)
            .bind(&d.stage_entered_at)
            .bind(&d.updated_at)
            .bind(d.revision)
            .execute(&mut *conn)
            .await
            .map_err(query_err("storing a deal"))?;
        self.upsert_deal_facts(conn, &[d]).await
    }

    /// A history entry with its time given (the runtime's clock).
    pub async fn insert_history_at(&self, conn: &mut AnyConnection, deal_id: &str, e: &HistoryEntry) -> Result<()> {
        sqlx::query("INSERT INTO deal_history (id, deal_id, at, type, detail, version, actor) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&e.id)
            .bind(deal_id)
            .bind(&e.at)
            .bind(&e.kind)
            .bind(json_text(&e.detail)?)
            .bind(&e.version)
            .bind(&e.actor)
            .execute(&mut *conn)
            .await
            .map_err(query_err("storing history"))?;
        if matches!(e.kind.as_str(), "created" | "move") {
            self.resummarize_visits(conn, deal_id).await?;
        }
        Ok(())
    }

    pub async fn history(&self, deal_id: &str) -> Result<Vec<HistoryEntry>> {
        let mut conn = self.pool.acquire().await.map_err(query_err("reading history"))?;
        self.history_in(&mut conn, deal_id).await
    }

    /// A deal's history, inside a transaction.
    pub async fn history_in(&self, conn: &mut AnyConnection, deal_id: &str) -> Result<Vec<HistoryEntry>> {
        let rows =
            sqlx::query("SELECT id, at, type, detail, version, actor FROM deal_history WHERE deal_id = $1 ORDER BY id")
                .bind(deal_id)
                .fetch_all(&mut *conn)
                .await
                .map_err(query_err("reading history"))?;
        rows.iter()
            .map(|r| {
                let s = |i: usize| r.try_get::<String, _>(i).map_err(query_err("reading history"));
                Ok(HistoryEntry {
                    id: s(0)?,
                    at: s(1)?,
                    kind: s(2)?,
                    detail: parse_json(&s(3)?, "reading history")?,
                    version: s(4)?,
                    actor: s(5)?,
                })
            })
            .collect()
    }

    // ---- idempotency ----

    /// The stored answer to an earlier request with this key:
    /// (request hash, status, response).
    pub async fn idempotent(
        &self,
        conn: &mut AnyConnection,
        deal_id: &str,
        key: &str,
    ) -> Result<Option<(String, i64, String)>> {
        let row =
            sqlx::query("SELECT request_hash, status, response FROM idempotency_keys WHERE deal_id = $1 AND key = $2")
                .bind(deal_id)
                .bind(key)
                .fetch_optional(&mut *conn)
                .await
                .map_err(query_err("reading an idempotency key"))?;
        row.map(|r| {
            Ok((
                r.try_get(0).map_err(query_err("reading an idempotency key"))?,
                r.try_get(1).map_err(query_err("reading an idempotency key"))?,
                r.try_get(2).map_err(query_err("reading an idempotency key"))?,
            ))
        })
        .transpose()
    }

    pub async fn remember(
        &self,
        conn: &mut AnyConnection,
        deal_id: &str,
        key: &str,
        request_hash: &str,
        status: i64,
        response: &str,
    ) -> Result<()> {
        sqlx::query("INSERT INTO idempotency_keys (deal_id, key, request_hash, status, response, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(deal_id)
            .bind(key)
            .bind(request_hash)
            .bind(status)
            .bind(response)
            .bind(timestamp_now())
            .execute(&mut *conn)
            .await
            .map_err(query_err("storing an idempotency key"))?;
        Ok(())
    }

    // ---- approvals ----

    pub async fn insert_approval(&self, conn: &mut AnyConnection, a: &Approval) -> Result<()> {
        sqlx::query("INSERT INTO approvals (id, deal_id, policy, level, state, submitter, basis, steps, version, created_at, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
            .bind(&a.id)
            .bind(&a.deal)
            .bind(&a.policy)
            .bind(&a.level)
            .bind(a.state.as_str())
            .bind(&a.submitter)
            .bind(json_text(&a.basis)?)
            .bind(json_text(&a.steps)?)
            .bind(&a.version)
            .bind(&a.created_at)
            .bind(a.decided_at.clone())
            .execute(&mut *conn)
            .await
            .map_err(query_err("storing an approval"))?;
        Ok(())
    }

    pub async fn update_approval(&self, conn: &mut AnyConnection, a: &Approval) -> Result<()> {
        sqlx::query("UPDATE approvals SET state = $2, steps = $3, decided_at = $4 WHERE id = $1")
            .bind(&a.id)
            .bind(a.state.as_str())
            .bind(json_text(&a.steps)?)
            .bind(a.decided_at.clone())
            .execute(&mut *conn)
            .await
            .map_err(query_err("storing an approval"))?;
        Ok(())
    }

    /// The approvals of a deal, oldest first (inside a transaction).
    pub async fn deal_approvals(&self, conn: &mut AnyConnection, deal_id: &str) -> Result<Vec<Approval>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE deal_id = $1 ORDER BY id"
        )))
        .bind(deal_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(query_err("reading approvals"))?;
        rows.iter().map(approval_row).collect()
    }

    pub async fn approval(&self, conn: &mut AnyConnection, id: &str) -> Result<Option<Approval>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(query_err("reading an approval"))?;
        row.as_ref().map(approval_row).transpose()
    }

    /// Approvals by state and deal, oldest first.
    pub async fn approvals(&self, state: Option<ApprovalState>, deal: Option<&str>) -> Result<Vec<Approval>> {
        let mut sql = format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE 1 = 1");
        let mut binds = Vec::new();
        if let Some(s) = state {
            binds.push(s.as_str().to_string());
            sql.push_str(&format!(" AND state = ${}", binds.len()));
        }
        if let Some(d) = deal {
            binds.push(d.to_string());
            sql.push_str(&format!(" AND deal_id = ${}", binds.len()));
        }
        sql.push_str(" ORDER BY id LIMIT 1000");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(query_err("reading approvals"))?;
        rows.iter().map(approval_row).collect()
    }

    // ---- delegations ----

    pub async fn add_delegation(
        &self,
        from_user: &str,
        to_user: &str,
        starts_on: &str,
        ends_on: &str,
        created_by: &str,
    ) -> Result<Delegation> {
        let d = Delegation {
            id: format!("dlg_{}", self.new_id().to_lowercase()),
            from_user: from_user.into(),
            to_user: to_user.into(),
            starts_on: starts_on.into(),
            ends_on: ends_on.into(),
            created_by: created_by.into(),
            created_at: timestamp_now(),
        };
        sqlx::query("INSERT INTO delegations (id, from_user, to_user, starts_on, ends_on, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&d.id)
            .bind(&d.from_user)
            .bind(&d.to_user)
            .bind(&d.starts_on)
            .bind(&d.ends_on)
            .bind(&d.created_by)
            .bind(&d.created_at)
            .execute(&self.pool)
            .await
            .map_err(query_err("storing a delegation"))?;
        Ok(d)
    }

    /// Delegations in force on `day` (YYYY-MM-DD).
    /// Delegations in force on `day`, outside any transaction.
    pub async fn delegations_in_force(&self, day: &str) -> Result<Vec<Delegation>> {
        let mut conn = self.pool.acquire().await.map_err(query_err("reading delegations"))?;
        self.delegations_on(&mut conn, day).await
    }

    pub async fn delegations_on(&self, conn: &mut AnyConnection, day: &str) -> Result<Vec<Delegation>> {
        let rows = sqlx::query("SELECT id, from_user, to_user, starts_on, ends_on, created_by, created_at FROM delegations WHERE starts_on <= $1 AND ends_on >= $1 ORDER BY id")
            .bind(day)
            .fetch_all(&mut *conn)
            .await
            .map_err(query_err("reading delegations"))?;
        rows.iter()
            .map(|r| {
                let s = |i: usize| r.try_get::<String, _>(i).map_err(query_err("reading delegations"));
                Ok(Delegation {
                    id: s(0)?,
                    from_user: s(1)?,
                    to_user: s(2)?,
                    starts_on: s(3)?,
                    ends_on: s(4)?,
                    created_by: s(5)?,
                    created_at: s(6)?,
                })
            })
            .collect()
    }

    // ---- timers ----

    pub async fn insert_timer(&self, conn: &mut AnyConnection, t: &TimerRow) -> Result<()> {
        sqlx::query("INSERT INTO timers (id, deal_id, kind, name, stage, approval_id, due_at, every_ms, state, fired_at, fired_by, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
            .bind(&t.id)
            .bind(&t.deal_id)
            .bind(t.kind.as_str())
            .bind(&t.name)
            .bind(t.stage.clone())
            .bind(t.approval_id.clone())
            .bind(&t.due_at)
            .bind(t.every_ms)
            .bind(t.state.as_str())
            .bind(t.fired_at.clone())
            .bind(t.fired_by.clone())
            .bind(&t.version)
            .execute(&mut *conn)
            .await
            .map_err(query_err("storing a timer"))?;
        Ok(())
    }

    /// The scheduled timers of a deal.
    pub async fn deal_timers(&self, conn: &mut AnyConnection, deal_id: &str) -> Result<Vec<TimerRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TIMER_COLUMNS} FROM timers WHERE deal_id = $1 AND state = 'scheduled' ORDER BY id"
        )))
        .bind(deal_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(query_err("reading timers"))?;
        rows.iter().map(timer_row).collect()
    }

    /// Every scheduled timer (to reconcile with a new pack).
    pub async fn scheduled_timers(&self) -> Result<Vec<TimerRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TIMER_COLUMNS} FROM timers WHERE state = 'scheduled' ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading timers"))?;
        rows.iter().map(timer_row).collect()
    }

    pub async fn set_timer_state(
        &self,
        conn: &mut AnyConnection,
        id: &str,
        state: TimerState,
        at: &str,
        by: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE timers SET state = $2, fired_at = $3, fired_by = $4 WHERE id = $1 AND state = 'scheduled'",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(at)
        .bind(by.map(str::to_string))
        .execute(&mut *conn)
        .await
        .map_err(query_err("updating a timer"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims up to `limit` timers due at `now` for this transaction. On
    /// PostgreSQL the rows are locked and rows other nodes hold are
    /// skipped, so each timer goes to one node; the claim ends with the
    /// transaction (a node that dies mid-way releases its rows).
    pub async fn claim_due_timers(&self, conn: &mut AnyConnection, now: &str, limit: i64) -> Result<Vec<TimerRow>> {
        let sql = match self.backend {
            Backend::Sqlite => format!(
                "SELECT {TIMER_COLUMNS} FROM timers WHERE state = 'scheduled' AND due_at <= $1 ORDER BY due_at, id LIMIT $2"
            ),
            Backend::Postgres => format!(
                "SELECT {TIMER_COLUMNS} FROM timers WHERE state = 'scheduled' AND due_at <= $1 ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"
            ),
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
            .map_err(query_err("claiming timers"))?;
        rows.iter().map(timer_row).collect()
    }

    /// How many timers are in each state (for tests and status).
    pub async fn timer_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM timers GROUP BY state ORDER BY state")
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("counting timers"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(query_err("counting timers"))?,
                    r.try_get(1).map_err(query_err("counting timers"))?,
                ))
            })
            .collect()
    }

    pub async fn timers_of(&self, deal_id: &str) -> Result<Vec<TimerRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TIMER_COLUMNS} FROM timers WHERE deal_id = $1 ORDER BY id"
        )))
        .bind(deal_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading timers"))?;
        rows.iter().map(timer_row).collect()
    }
}
