//! Deals imported in bulk (history from before dealrules, CRM back-fills):
//! idempotent by id, in one transaction, so a file goes in whole or not at
//! all. Imported deals are ordinary deals: the pipeline shows them and
//! events move them on; each one's history says it was imported.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::{Deal, Deals, Result, StoreError, TimerRow, query_err};

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// Rows per multi-row statement: 10 columns x 500 stays under both
/// databases' parameter limits.
const CHUNK: usize = 500;

/// Deals from which an import into SQLite counts as bulk.
const BULK: usize = 5_000;

impl Deals {
    /// Creates the deals that are new, updates those whose owner, stage or
    /// fields differ, leaves the rest; one transaction. `version` is the
    /// pack in force, `actor` who imported, `at` the time recorded.
    ///
    /// `timers` gives the timers of a deal that enters its stage by the
    /// import (a new deal, or one whose stage the import changes): they
    /// are stored in the same transaction, and the scheduled funnel timers
    /// of a deal whose stage changed are cancelled, as a move does.
    pub async fn import_deals(
        &self,
        deals: &[Deal],
        version: &str,
        actor: &str,
        at: &str,
        timers: &(dyn Fn(&Deal) -> Vec<TimerRow> + Sync),
    ) -> Result<ImportCounts> {
        let mut tx = self.begin_write().await?;
        // A bulk import into SQLite touches index pages all over (deals by
        // owner, by funnel): a page cache of 64 MiB instead of the default
        // 2 MiB for this connection while it imports, then back. Each
        // multi-row insert inside the transaction keeps a statement journal
        // (the pages it changed, to undo that statement alone): in memory
        // while it imports rather than in a temporary file.
        let bulk = self.backend == crate::Backend::Sqlite && deals.len() >= BULK;
        if bulk {
            for pragma in ["PRAGMA cache_size = -65536", "PRAGMA temp_store = MEMORY"] {
                sqlx::query(pragma)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("importing deals"))?;
            }
        }
        let mut counts = ImportCounts::default();
        for chunk in deals.chunks(CHUNK) {
            let existing = self.deals_by_id(&mut tx, chunk).await?;
            let mut new = Vec::new();
            let mut history = Vec::new();
            let mut scheduled: Vec<TimerRow> = Vec::new();
            let mut left_stage: Vec<&str> = Vec::new();
            for d in chunk {
                match existing.get(&d.id) {
                    None => {
                        new.push(d);
                        scheduled.extend(timers(d));
                        history.push((d.id.clone(), json!({ "imported": "created", "stage": d.stage })));
                        counts.created += 1;
                    }
                    Some(old) if old.owner == d.owner && old.stage == d.stage && old.fields == d.fields => {
                        counts.unchanged += 1;
                    }
                    Some(old) => {
                        let mut changed = d.clone();
                        changed.funnel = old.funnel.clone();
                        changed.context = old.context.clone();
                        changed.created_at = old.created_at.clone();
                        changed.revision = old.revision + 1;
                        if old.stage == d.stage {
                            changed.stage_entered_at = old.stage_entered_at.clone();
                        } else {
                            left_stage.push(&d.id);
                            scheduled.extend(timers(&changed));
                        }
                        self.update_deal(&mut tx, &changed).await?;
                        history.push((
                            d.id.clone(),
                            json!({ "imported": "updated", "from_stage": old.stage, "stage": d.stage }),
                        ));
                        counts.updated += 1;
                    }
                }
            }
            self.insert_deals(&mut tx, &new).await?;
            for id in left_stage {
                sqlx::query(
                    "UPDATE timers SET state = 'cancelled', fired_at = $2 WHERE deal_id = $1 AND kind = 'funnel' AND state = 'scheduled'",
                )
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(query_err("cancelling timers"))?;
            }
            self.insert_timers(&mut tx, &scheduled).await?;
            self.insert_import_history(&mut tx, &history, version, actor, at)
                .await?;
        }
        if bulk {
            for pragma in ["PRAGMA cache_size = -2000", "PRAGMA temp_store = DEFAULT"] {
                sqlx::query(pragma)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("importing deals"))?;
            }
        }
        tx.commit().await?;
        Ok(counts)
    }

    async fn deals_by_id(&self, conn: &mut AnyConnection, chunk: &[Deal]) -> Result<HashMap<String, Deal>> {
        if chunk.is_empty() {
            return Ok(HashMap::new());
        }
        let mut sql = format!("SELECT {DEAL_COLUMNS} FROM deals WHERE id IN (");
        crate::placeholders::push_list(&mut sql, self.backend, 1, chunk.len());
        sql.push(')');
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for d in chunk {
            q = q.bind(&d.id);
        }
        let rows = q.fetch_all(&mut *conn).await.map_err(query_err("reading deals"))?;
        rows.iter().map(|r| deal_row(r).map(|d| (d.id.clone(), d))).collect()
    }

    async fn insert_deals(&self, conn: &mut AnyConnection, deals: &[&Deal]) -> Result<()> {
        if deals.is_empty() {
            return Ok(());
        }
        let mut sql = String::from(
            "INSERT INTO deals (id, funnel, owner, stage, fields, context, stage_entered_at, created_at, updated_at, revision) VALUES ",
        );
        crate::placeholders::push_rows(&mut sql, self.backend, deals.len(), 10);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for d in deals {
            q = q
                .bind(&d.id)
                .bind(&d.funnel)
                .bind(&d.owner)
                .bind(&d.stage)
                .bind(text(&d.fields)?)
                .bind(text(&d.context)?)
                .bind(&d.stage_entered_at)
                .bind(&d.created_at)
                .bind(&d.updated_at)
                .bind(d.revision);
        }
        q.execute(&mut *conn).await.map_err(query_err("importing deals"))?;
        self.insert_new_deal_facts(conn, deals).await
    }

    async fn insert_timers(&self, conn: &mut AnyConnection, timers: &[TimerRow]) -> Result<()> {
        for chunk in timers.chunks(CHUNK) {
            let mut sql = String::from(
                "INSERT INTO timers (id, deal_id, kind, name, stage, approval_id, due_at, every_ms, state, fired_at, fired_by, version) VALUES ",
            );
            crate::placeholders::push_rows(&mut sql, self.backend, chunk.len(), 12);
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for t in chunk {
                q = q
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
                    .bind(&t.version);
            }
            q.execute(&mut *conn).await.map_err(query_err("scheduling timers"))?;
        }
        Ok(())
    }

    async fn insert_import_history(
        &self,
        conn: &mut AnyConnection,
        entries: &[(String, serde_json::Value)],
        version: &str,
        actor: &str,
        at: &str,
    ) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut sql = String::from("INSERT INTO deal_history (id, deal_id, at, type, detail, version, actor) VALUES ");
        crate::placeholders::push_rows(&mut sql, self.backend, entries.len(), 7);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (deal, detail) in entries {
            q = q
                .bind(self.new_id())
                .bind(deal)
                .bind(at)
                .bind("import")
                .bind(text(detail)?)
                .bind(version)
                .bind(actor);
        }
        q.execute(&mut *conn).await.map_err(query_err("importing deals"))?;
        Ok(())
    }

    /// How many deals are stored.
    pub async fn count_deals(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM deals")
            .fetch_one(&self.pool)
            .await
            .map_err(query_err("counting deals"))?;
        row.try_get(0).map_err(query_err("counting deals"))
    }

    /// Deals a run reads, streamed in pages of `page` by id so a million
    /// deals never sit in memory as rows and parsed values at once:
    /// `keep` sees each and returns what to hold.
    pub async fn scan_deals<T>(&self, page: i64, mut keep: impl FnMut(Deal) -> Option<T>) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let sql = format!(
                "SELECT {DEAL_COLUMNS} FROM deals WHERE id > $1 ORDER BY id LIMIT {}",
                page.max(1)
            );
            let rows = sqlx::query(AssertSqlSafe(sql))
                .bind(&after)
                .fetch_all(&self.pool)
                .await
                .map_err(query_err("reading deals"))?;
            let n = rows.len();
            for r in &rows {
                let d = deal_row(r)?;
                after.clone_from(&d.id);
                if let Some(t) = keep(d) {
                    out.push(t);
                }
            }
            if (n as i64) < page.max(1) {
                return Ok(out);
            }
        }
    }
}

impl Deals {
    /// One page of deals in owner and id order (the `deals (owner, id)`
    /// index), after `after` (an owner and an id) when given: a period is
    /// read this way, each owner's deals one after the other, in the
    /// database's own order of owners.
    pub async fn deals_by_owner(&self, after: Option<(&str, &str)>, page: i64) -> Result<Vec<Deal>> {
        let page = page.max(1);
        let rows = match after {
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {DEAL_COLUMNS} FROM deals ORDER BY owner, id LIMIT {page}"
                )))
                .fetch_all(&self.pool)
                .await
            }
            Some((owner, id)) => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {DEAL_COLUMNS} FROM deals WHERE (owner, id) > ($1, $2) ORDER BY owner, id LIMIT {page}"
                )))
                .bind(owner)
                .bind(id)
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(query_err("reading deals"))?;
        rows.iter().map(deal_row).collect()
    }

    /// The deals of the given owners (any number, read 500 owners a query).
    pub async fn scan_deals_of_owners<T>(
        &self,
        owners: &[String],
        mut keep: impl FnMut(Deal) -> Option<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for chunk in owners.chunks(CHUNK) {
            let mut sql = format!("SELECT {DEAL_COLUMNS} FROM deals WHERE owner IN (");
            crate::placeholders::push_list(&mut sql, self.backend, 1, chunk.len());
            sql.push_str(") ORDER BY owner, id");
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for o in chunk {
                q = q.bind(o);
            }
            for r in q
                .fetch_all(&self.pool)
                .await
                .map_err(query_err("reading deals"))?
                .iter()
            {
                if let Some(t) = keep(deal_row(r)?) {
                    out.push(t);
                }
            }
        }
        Ok(out)
    }

    /// The deals whose fields' JSON text holds `word` (a field name, such
    /// as `cancelled_at`), for `keep` to check properly: a scan the
    /// database does without handing every row over. `word` is written
    /// by the caller, not a user.
    pub async fn scan_deals_mentioning<T>(
        &self,
        word: &str,
        mut keep: impl FnMut(Deal) -> Option<T>,
    ) -> Result<Vec<T>> {
        // `_` in a name matches any one character: the test is loose, never
        // strict, and `keep` decides.
        let pattern = format!("%{word}%");
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DEAL_COLUMNS} FROM deals WHERE fields LIKE $1 ORDER BY id"
        )))
        .bind(pattern)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading deals"))?;
        let mut out = Vec::new();
        for r in &rows {
            if let Some(t) = keep(deal_row(r)?) {
                out.push(t);
            }
        }
        Ok(out)
    }
}

pub(crate) const DEAL_COLUMNS: &str =
    "id, funnel, owner, stage, fields, context, stage_entered_at, created_at, updated_at, revision";

pub(crate) fn deal_row(r: &sqlx::any::AnyRow) -> Result<Deal> {
    let s = |i: usize| r.try_get::<String, _>(i).map_err(query_err("reading a deal"));
    let json = |i: usize| -> Result<serde_json::Value> {
        serde_json::from_str(&s(i)?).map_err(|e| StoreError::Query {
            what: "reading a deal",
            source: sqlx::Error::Decode(Box::new(e)),
        })
    };
    Ok(Deal {
        id: s(0)?,
        funnel: s(1)?,
        owner: s(2)?,
        stage: s(3)?,
        fields: json(4)?,
        context: json(5)?,
        stage_entered_at: s(6)?,
        created_at: s(7)?,
        updated_at: s(8)?,
        revision: r.try_get(9).map_err(query_err("reading a deal"))?,
    })
}

fn text(v: &serde_json::Value) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::BadArgument(e.to_string()))
}
