//! The notification outbox: rendered notifications and their delivery.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::states::OutboxState;
use crate::workflow::parse_text;
use crate::{Outbox, Result, query_err, timestamp_now};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxRow {
    pub id: String,
    pub deal_id: Option<String>,
    pub template: String,
    pub recipient: String,
    pub body: String,
    pub state: OutboxState,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

impl Outbox {
    pub async fn insert_outbox(&self, conn: &mut AnyConnection, o: &OutboxRow) -> Result<()> {
        sqlx::query("INSERT INTO outbox (id, deal_id, template, recipient, body, state, attempts, next_attempt_at, last_error, created_at, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
            .bind(&o.id)
            .bind(o.deal_id.clone())
            .bind(&o.template)
            .bind(&o.recipient)
            .bind(&o.body)
            .bind(o.state.as_str())
            .bind(o.attempts)
            .bind(&o.next_attempt_at)
            .bind(o.last_error.clone())
            .bind(&o.created_at)
            .bind(o.sent_at.clone())
            .execute(&mut *conn)
            .await
            .map_err(query_err("storing a notification"))?;
        Ok(())
    }

    /// Notifications due for delivery.
    pub async fn due_outbox(&self, now: &str, limit: i64) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query("SELECT id, deal_id, template, recipient, body, state, attempts, next_attempt_at, last_error, created_at, sent_at FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2")
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("reading the outbox"))?;
        rows.iter().map(outbox_row).collect()
    }

    pub async fn outbox(&self, deal_id: Option<&str>) -> Result<Vec<OutboxRow>> {
        let rows = match deal_id {
            Some(d) => sqlx::query("SELECT id, deal_id, template, recipient, body, state, attempts, next_attempt_at, last_error, created_at, sent_at FROM outbox WHERE deal_id = $1 ORDER BY id").bind(d).fetch_all(&self.pool).await,
            None => sqlx::query("SELECT id, deal_id, template, recipient, body, state, attempts, next_attempt_at, last_error, created_at, sent_at FROM outbox ORDER BY id LIMIT 1000").fetch_all(&self.pool).await,
        }
        .map_err(query_err("reading the outbox"))?;
        rows.iter().map(outbox_row).collect()
    }

    /// Takes a notification for delivery until `until`, unless another
    /// node took it first (its `next_attempt_at` moved).
    pub async fn claim_outbox(&self, id: &str, seen_next: &str, until: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET next_attempt_at = $3 WHERE id = $1 AND next_attempt_at = $2 AND state = 'pending'",
        )
        .bind(id)
        .bind(seen_next)
        .bind(until)
        .execute(&self.pool)
        .await
        .map_err(query_err("claiming a notification"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a delivery attempt: sent, or tried again at `next` (or
    /// failed for good when `next` is `None`).
    pub async fn outbox_attempt(&self, id: &str, ok: bool, error: Option<&str>, next: Option<&str>) -> Result<()> {
        let now = timestamp_now();
        let (state, next_at) = match (ok, next) {
            (true, _) => (OutboxState::Sent, now.clone()),
            (false, Some(n)) => (OutboxState::Pending, n.to_string()),
            (false, None) => (OutboxState::Failed, now.clone()),
        };
        sqlx::query("UPDATE outbox SET state = $2, attempts = attempts + 1, next_attempt_at = $3, last_error = $4, sent_at = $5 WHERE id = $1")
            .bind(id)
            .bind(state.as_str())
            .bind(next_at)
            .bind(error.map(str::to_string))
            .bind(ok.then_some(now))
            .execute(&self.pool)
            .await
            .map_err(query_err("updating the outbox"))?;
        Ok(())
    }
}

fn outbox_row(r: &AnyRow) -> Result<OutboxRow> {
    let e = || query_err("reading the outbox");
    Ok(OutboxRow {
        id: r.try_get(0).map_err(e())?,
        deal_id: r.try_get(1).map_err(e())?,
        template: r.try_get(2).map_err(e())?,
        recipient: r.try_get(3).map_err(e())?,
        body: r.try_get(4).map_err(e())?,
        state: parse_text(&r.try_get::<String, _>(5).map_err(e())?, "reading the outbox")?,
        attempts: r.try_get(6).map_err(e())?,
        next_attempt_at: r.try_get(7).map_err(e())?,
        last_error: r.try_get(8).map_err(e())?,
        created_at: r.try_get(9).map_err(e())?,
        sent_at: r.try_get(10).map_err(e())?,
    })
}
