//! What target progress, funnel analytics and pace alerts read and write:
//! a funnel's deals a page at a time with their stage trail, and the
//! pace check's claims and sent alerts (each an insert that only one node
//! can make, on SQLite and PostgreSQL alike).

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::deal_import::{DEAL_COLUMNS, deal_row};
use crate::{Analytics, Deal, Result, query_err};

/// A stage entry of a deal's history: `created` or `move`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrailEntry {
    pub deal_id: String,
    pub at: String,
    pub kind: String,
    /// JSON text: `{"stage"}` for created, `{"from", "to"}` for a move.
    pub detail: String,
    pub version: String,
}

impl Analytics {
    /// Up to `limit` deals of `funnel` (every funnel: `None`) after the id
    /// `after`, in id order.
    pub async fn funnel_deals_page(&self, funnel: Option<&str>, after: &str, limit: i64) -> Result<Vec<Deal>> {
        let rows = match funnel {
            Some(f) => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {DEAL_COLUMNS} FROM deals WHERE funnel = $1 AND id > $2 ORDER BY funnel, id LIMIT {}",
                    limit.max(1)
                )))
                .bind(f)
                .bind(after)
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {DEAL_COLUMNS} FROM deals WHERE id > $1 ORDER BY id LIMIT {}",
                    limit.max(1)
                )))
                .bind(after)
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(query_err("reading deals"))?;
        rows.iter().map(deal_row).collect()
    }

    /// The stage entries (`created`, `move`) of the deals with ids from
    /// `first` to `last`, by deal and then in the order they happened.
    pub async fn trails_between(&self, first: &str, last: &str) -> Result<Vec<TrailEntry>> {
        let rows = sqlx::query(
            "SELECT deal_id, at, type, detail, version FROM deal_history \
             WHERE deal_id >= $1 AND deal_id <= $2 AND type IN ('created', 'move') ORDER BY deal_id, id",
        )
        .bind(first)
        .bind(last)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading deal history"))?;
        rows.iter()
            .map(|r| {
                let s = |i: usize| r.try_get::<String, _>(i).map_err(query_err("reading deal history"));
                Ok(TrailEntry {
                    deal_id: s(0)?,
                    at: s(1)?,
                    kind: s(2)?,
                    detail: s(3)?,
                    version: s(4)?,
                })
            })
            .collect()
    }

    /// Takes the pace check of `targets` due at `slot` for `node`: true for
    /// the one node whose insert lands, false for every other.
    pub async fn claim_pace_check(
        &self,
        conn: &mut AnyConnection,
        targets: &str,
        slot: &str,
        node: &str,
        at: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO pace_checks (targets, slot, node, at) VALUES ($1, $2, $3, $4) ON CONFLICT (targets, slot) DO NOTHING",
        )
        .bind(targets)
        .bind(slot)
        .bind(node)
        .bind(at)
        .execute(&mut *conn)
        .await
        .map_err(query_err("claiming a pace check"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether the pace check of `targets` due at `slot` has run.
    pub async fn pace_check_done(&self, targets: &str, slot: &str) -> Result<bool> {
        let row = sqlx::query("SELECT node FROM pace_checks WHERE targets = $1 AND slot = $2")
            .bind(targets)
            .bind(slot)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading pace checks"))?;
        Ok(row.is_some())
    }

    /// Records that the row `row` of `targets` was told it is behind in
    /// `period`: true the first time, false if it already was.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_pace_alert(
        &self,
        conn: &mut AnyConnection,
        targets: &str,
        period: &str,
        row: &str,
        pace: &str,
        slot: &str,
        at: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO pace_alerts (targets, period, row_key, pace, check_slot, sent_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (targets, period, row_key) DO NOTHING",
        )
        .bind(targets)
        .bind(period)
        .bind(row)
        .bind(pace)
        .bind(slot)
        .bind(at)
        .execute(&mut *conn)
        .await
        .map_err(query_err("recording a pace alert"))?;
        Ok(done.rows_affected() == 1)
    }

    /// The pace alerts sent for `targets`: (period, row, pace, slot).
    pub async fn pace_alerts(&self, targets: &str) -> Result<Vec<(String, String, String, String)>> {
        let rows = sqlx::query(
            "SELECT period, row_key, pace, check_slot FROM pace_alerts WHERE targets = $1 ORDER BY period, row_key",
        )
        .bind(targets)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading pace alerts"))?;
        rows.iter()
            .map(|r| {
                let s = |i: usize| r.try_get::<String, _>(i).map_err(query_err("reading pace alerts"));
                Ok((s(0)?, s(1)?, s(2)?, s(3)?))
            })
            .collect()
    }
}
