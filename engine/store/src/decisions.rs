//! The decision log: every decision with its input, result, pack version
//! and time.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::{Db, Decisions, MAX_PAGE, Result, normalize_time, query_err};

/// One line of the decision log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionRecord {
    pub id: String,
    pub decided_at: String,
    pub policy: String,
    pub version: String,
    /// `ok` or `error`.
    pub outcome: String,
    pub subject: String,
    /// The request body as it was sent.
    pub input: String,
    /// The response body: the decision, or the problem.
    pub result: String,
}

impl DecisionRecord {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: &Db,
        decided_at: &str,
        policy: &str,
        version: &str,
        outcome: &str,
        subject: &str,
        input: &str,
        result: &str,
    ) -> DecisionRecord {
        DecisionRecord {
            id: store.new_id(),
            decided_at: decided_at.into(),
            policy: policy.into(),
            version: version.into(),
            outcome: outcome.into(),
            subject: subject.into(),
            input: input.into(),
            result: result.into(),
        }
    }
}

/// Which decisions to read: oldest first from `since` (or after the id
/// `after`, for the next page), at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct DecisionQuery {
    pub policy: Option<String>,
    /// RFC 3339 or `YYYY-MM-DD`, inclusive.
    pub since: Option<String>,
    /// RFC 3339 or `YYYY-MM-DD`, exclusive.
    pub until: Option<String>,
    /// The id of the last record of the previous page.
    pub after: Option<String>,
    /// 0 means 100; at most [`MAX_PAGE`].
    pub limit: u32,
}

impl Decisions {
    /// Writes a batch in one transaction.
    pub async fn log_decisions(&self, batch: &[DecisionRecord]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        // 8 columns x 400 rows stays under both databases' parameter limits.
        for chunk in batch.chunks(400) {
            let mut sql = String::from(
                "INSERT INTO decision_log (id, decided_at, policy, version, outcome, subject, input, result) VALUES ",
            );
            crate::placeholders::push_rows(&mut sql, self.backend, chunk.len(), 8);
            // Only placeholders are formatted into the text; every value is bound.
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(&r.id)
                    .bind(&r.decided_at)
                    .bind(&r.policy)
                    .bind(&r.version)
                    .bind(&r.outcome)
                    .bind(&r.subject)
                    .bind(&r.input)
                    .bind(&r.result);
            }
            q.execute(&mut *tx)
                .await
                .map_err(query_err("writing the decision log"))?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn decisions(&self, query: &DecisionQuery) -> Result<Vec<DecisionRecord>> {
        let mut sql = String::from(
            "SELECT id, decided_at, policy, version, outcome, subject, input, result FROM decision_log WHERE 1 = 1",
        );
        let mut binds: Vec<String> = Vec::new();
        let mut filter = |sql: &mut String, clause: &str, value: String| {
            binds.push(value);
            sql.push_str(&format!(" AND {clause} ${}", binds.len()));
        };
        if let Some(p) = &query.policy {
            filter(&mut sql, "policy =", p.clone());
        }
        if let Some(s) = &query.since {
            filter(&mut sql, "decided_at >=", normalize_time(s)?);
        }
        if let Some(u) = &query.until {
            filter(&mut sql, "decided_at <", normalize_time(u)?);
        }
        if let Some(a) = &query.after {
            filter(&mut sql, "id >", a.clone());
        }
        let limit = if query.limit == 0 {
            100
        } else {
            query.limit.min(MAX_PAGE)
        };
        sql.push_str(&format!(" ORDER BY id LIMIT {limit}"));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("reading the decision log"))?;
        rows.iter().map(decision_row).collect()
    }

    pub async fn decision(&self, id: &str) -> Result<Option<DecisionRecord>> {
        let row = sqlx::query(
            "SELECT id, decided_at, policy, version, outcome, subject, input, result FROM decision_log WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading the decision log"))?;
        row.as_ref().map(decision_row).transpose()
    }

    /// Deletes decisions made before `before` (RFC 3339); how many.
    pub async fn prune_decisions(&self, before: &str) -> Result<u64> {
        let before = normalize_time(before)?;
        let done = sqlx::query("DELETE FROM decision_log WHERE decided_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(query_err("pruning the decision log"))?;
        Ok(done.rows_affected())
    }

    /// How many decisions were made from `since` (inclusive) to `until`
    /// (exclusive, or to now).
    pub async fn count_decisions_between(&self, since: &str, until: Option<&str>) -> Result<u64> {
        let since = normalize_time(since)?;
        let row = match until {
            Some(u) => {
                sqlx::query("SELECT COUNT(*) FROM decision_log WHERE decided_at >= $1 AND decided_at < $2")
                    .bind(since)
                    .bind(normalize_time(u)?)
                    .fetch_one(&self.pool)
                    .await
            }
            None => {
                sqlx::query("SELECT COUNT(*) FROM decision_log WHERE decided_at >= $1")
                    .bind(since)
                    .fetch_one(&self.pool)
                    .await
            }
        }
        .map_err(query_err("counting the decision log"))?;
        let n: i64 = row.try_get(0).map_err(query_err("counting the decision log"))?;
        Ok(n.max(0) as u64)
    }

    pub async fn count_decisions(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM decision_log")
            .fetch_one(&self.pool)
            .await
            .map_err(query_err("counting the decision log"))?;
        row.try_get(0).map_err(query_err("counting the decision log"))
    }
}

fn decision_row(r: &AnyRow) -> Result<DecisionRecord> {
    let get = |i: usize| r.try_get::<String, _>(i).map_err(query_err("reading the decision log"));
    Ok(DecisionRecord {
        id: get(0)?,
        decided_at: get(1)?,
        policy: get(2)?,
        version: get(3)?,
        outcome: get(4)?,
        subject: get(5)?,
        input: get(6)?,
        result: get(7)?,
    })
}
