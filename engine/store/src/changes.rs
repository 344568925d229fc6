//! Change requests: whole files against a base pack version, their state
//! and every transition (who, when, a comment); the lease a node takes to
//! fire a scheduled change; impact jobs with their progress and result.
//!
//! A move from one state to the next is a conditional update (`WHERE
//! state = <from>`) with its transition row in the same transaction, so
//! two admins (or two nodes) racing on one change see one winner.

use std::collections::BTreeMap;

use base64::Engine as _;
use dealrules_model::PackSource;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::states::{ChangeKind, ChangeState, ImpactState};
use crate::{Changes, MAX_PAGE, Result, StoreError, query_err, timestamp_now};

/// A change's files: path -> the whole new content, or `None` for a
/// deleted file.
pub type ChangeFiles = BTreeMap<String, Option<Vec<u8>>>;

/// A change request as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    pub id: String,
    pub kind: ChangeKind,
    pub title: String,
    pub state: ChangeState,
    pub author: String,
    pub base_version: String,
    pub files: ChangeFiles,
    /// What the last save's gate found (JSON, as the API shows it).
    pub validation: Value,
    pub activate_at: Option<String>,
    /// An emergency rollback: activated by one admin, without a second.
    pub emergency: bool,
    pub activation_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One move of a change request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeTransition {
    /// `None` for its creation.
    pub from: Option<ChangeState>,
    pub to: ChangeState,
    pub by: String,
    pub at: String,
    pub comment: Option<String>,
}

/// An impact job: its progress while it runs, its result when done.
#[derive(Debug, Clone, PartialEq)]
pub struct ImpactJob {
    pub id: String,
    pub change_id: String,
    pub state: ImpactState,
    pub request: Value,
    pub progress: Value,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub requested_by: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// How often the job was started again from the beginning because the
    /// node running it stopped.
    pub restarts: i64,
}

/// The files of `candidate` that differ from `base`: what a change from
/// one to the other holds (a rollback is made this way).
pub fn pack_changes(base: &PackSource, candidate: &PackSource) -> ChangeFiles {
    let mut out = ChangeFiles::new();
    for (path, bytes) in &candidate.files {
        if base.files.get(path) != Some(bytes) {
            out.insert(path.clone(), Some(bytes.clone()));
        }
    }
    for path in base.files.keys() {
        if !candidate.files.contains_key(path) {
            out.insert(path.clone(), None);
        }
    }
    out
}

fn files_to_json(files: &ChangeFiles) -> String {
    let mut map = Map::new();
    for (path, content) in files {
        let entry = match content {
            None => json!({ "deleted": true }),
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => json!({ "text": text }),
                Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(bytes) }),
            },
        };
        map.insert(path.clone(), entry);
    }
    Value::Object(map).to_string()
}

fn files_from_json(id: &str, text: &str) -> Result<ChangeFiles> {
    let damaged = |message: String| StoreError::BadArgument(format!("stored change {id} cannot be read: {message}"));
    let value: Value = serde_json::from_str(text).map_err(|e| damaged(e.to_string()))?;
    let map = value
        .as_object()
        .ok_or_else(|| damaged("files is not an object".into()))?;
    let mut out = ChangeFiles::new();
    for (path, entry) in map {
        let content = if entry.get("deleted").and_then(Value::as_bool) == Some(true) {
            None
        } else if let Some(text) = entry.get("text").and_then(Value::as_str) {
            Some(text.as_bytes().to_vec())
        } else if let Some(b64) = entry.get("base64").and_then(Value::as_str) {
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| damaged(format!("{path}: {e}")))?,
            )
        } else {
            return Err(damaged(format!("{path}: neither `text`, `base64` nor `deleted`")));
        };
        out.insert(path.clone(), content);
    }
    Ok(out)
}

const CHANGE_COLUMNS: &str = "id, kind, title, state, author, base_version, files, validation, activate_at, emergency, activation_id, created_at, updated_at";

fn parse<T: std::str::FromStr<Err = String>>(text: &str) -> Result<T> {
    text.parse().map_err(|e: String| StoreError::Query {
        what: "reading a change request",
        source: sqlx::Error::Decode(e.into()),
    })
}

fn change_row(r: &AnyRow) -> Result<ChangeRecord> {
    let e = || query_err("reading a change request");
    let id: String = r.try_get(0).map_err(e())?;
    let files: String = r.try_get(6).map_err(e())?;
    let validation: String = r.try_get(7).map_err(e())?;
    Ok(ChangeRecord {
        kind: parse(&r.try_get::<String, _>(1).map_err(e())?)?,
        title: r.try_get(2).map_err(e())?,
        state: parse(&r.try_get::<String, _>(3).map_err(e())?)?,
        author: r.try_get(4).map_err(e())?,
        base_version: r.try_get(5).map_err(e())?,
        files: files_from_json(&id, &files)?,
        validation: serde_json::from_str(&validation).unwrap_or(Value::Null),
        activate_at: r.try_get(8).map_err(e())?,
        emergency: r.try_get::<i64, _>(9).map_err(e())? != 0,
        activation_id: r.try_get(10).map_err(e())?,
        created_at: r.try_get(11).map_err(e())?,
        updated_at: r.try_get(12).map_err(e())?,
        id,
    })
}

/// What a move may set besides the state.
#[derive(Debug, Clone, Default)]
pub struct MoveSet<'a> {
    pub activate_at: Option<&'a str>,
    pub activation_id: Option<&'a str>,
    /// A rebase carried the change forward onto this version.
    pub base_version: Option<&'a str>,
    pub validation: Option<&'a Value>,
}

impl Changes {
    /// Stores a new change request with its first transition.
    pub async fn insert_change(&self, c: &ChangeRecord, comment: Option<&str>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO change_requests ({CHANGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )))
        .bind(&c.id)
        .bind(c.kind.as_str())
        .bind(&c.title)
        .bind(c.state.as_str())
        .bind(&c.author)
        .bind(&c.base_version)
        .bind(files_to_json(&c.files))
        .bind(c.validation.to_string())
        .bind(c.activate_at.clone())
        .bind(i64::from(c.emergency))
        .bind(c.activation_id.clone())
        .bind(&c.created_at)
        .bind(&c.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(query_err("storing a change request"))?;
        self.insert_transition(&mut tx, &c.id, None, c.state, &c.author, &c.created_at, comment)
            .await?;
        tx.commit().await
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_transition(
        &self,
        conn: &mut sqlx::AnyConnection,
        change: &str,
        from: Option<ChangeState>,
        to: ChangeState,
        by: &str,
        at: &str,
        comment: Option<&str>,
    ) -> Result<()> {
        sqlx::query("INSERT INTO change_transitions (id, change_id, from_state, to_state, by_subject, at, comment) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(self.new_id())
            .bind(change)
            .bind(from.map(|s| s.as_str().to_string()))
            .bind(to.as_str())
            .bind(by)
            .bind(at)
            .bind(comment.map(str::to_string))
            .execute(&mut *conn)
            .await
            .map_err(query_err("recording a change transition"))?;
        Ok(())
    }

    pub async fn change(&self, id: &str) -> Result<Option<ChangeRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHANGE_COLUMNS} FROM change_requests WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading a change request"))?;
        row.as_ref().map(change_row).transpose()
    }

    /// Change requests, newest first, in one state or all.
    pub async fn changes(&self, state: Option<ChangeState>) -> Result<Vec<ChangeRecord>> {
        let rows =
            match state {
                Some(s) => sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {CHANGE_COLUMNS} FROM change_requests WHERE state = $1 ORDER BY id DESC LIMIT {MAX_PAGE}"
                )))
                .bind(s.as_str())
                .fetch_all(&self.pool)
                .await,
                None => {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {CHANGE_COLUMNS} FROM change_requests ORDER BY id DESC LIMIT {MAX_PAGE}"
                    )))
                    .fetch_all(&self.pool)
                    .await
                }
            }
            .map_err(query_err("listing change requests"))?;
        rows.iter().map(change_row).collect()
    }

    /// A change's transitions, oldest first.
    pub async fn change_transitions(&self, id: &str) -> Result<Vec<ChangeTransition>> {
        let rows = sqlx::query(
            "SELECT from_state, to_state, by_subject, at, comment FROM change_transitions WHERE change_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading change transitions"))?;
        rows.iter()
            .map(|r| {
                let e = || query_err("reading change transitions");
                let from: Option<String> = r.try_get(0).map_err(e())?;
                Ok(ChangeTransition {
                    from: from.as_deref().map(parse).transpose()?,
                    to: parse(&r.try_get::<String, _>(1).map_err(e())?)?,
                    by: r.try_get(2).map_err(e())?,
                    at: r.try_get(3).map_err(e())?,
                    comment: r.try_get(4).map_err(e())?,
                })
            })
            .collect()
    }

    /// Saves a draft's title, files, base and validation; false when the
    /// change is no longer a draft.
    pub async fn save_draft(
        &self,
        id: &str,
        title: &str,
        base_version: &str,
        files: &ChangeFiles,
        validation: &Value,
    ) -> Result<bool> {
        let done = sqlx::query("UPDATE change_requests SET title = $1, base_version = $2, files = $3, validation = $4, updated_at = $5 WHERE id = $6 AND state = 'draft'")
            .bind(title)
            .bind(base_version)
            .bind(files_to_json(files))
            .bind(validation.to_string())
            .bind(timestamp_now())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(query_err("saving a change request"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves a change from `from` to `to` and records who, when and why,
    /// in one transaction; false (and nothing written) when it was not in
    /// `from` any more: someone else moved it first.
    pub async fn move_change(
        &self,
        id: &str,
        from: ChangeState,
        to: ChangeState,
        by: &str,
        comment: Option<&str>,
        set: MoveSet<'_>,
    ) -> Result<bool> {
        let now = timestamp_now();
        let mut tx = self.begin_write().await?;
        let mut sql = String::from(
            "UPDATE change_requests SET state = $1, updated_at = $2, claimed_by = NULL, claimed_until = NULL",
        );
        let mut binds: Vec<Option<String>> = vec![Some(to.as_str().into()), Some(now.clone())];
        let mut set_column = |sql: &mut String, column: &str, value: Option<String>| {
            binds.push(value);
            sql.push_str(&format!(", {column} = ${}", binds.len()));
        };
        if let Some(at) = set.activate_at {
            set_column(&mut sql, "activate_at", Some(at.into()));
        }
        if let Some(a) = set.activation_id {
            set_column(&mut sql, "activation_id", Some(a.into()));
        }
        if let Some(v) = set.base_version {
            set_column(&mut sql, "base_version", Some(v.into()));
        }
        if let Some(v) = set.validation {
            set_column(&mut sql, "validation", Some(v.to_string()));
        }
        binds.push(Some(id.into()));
        binds.push(Some(from.as_str().into()));
        sql.push_str(&format!(
            " WHERE id = ${} AND state = ${}",
            binds.len() - 1,
            binds.len()
        ));
        // Only placeholders are formatted into the text; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        let done = q
            .execute(&mut *tx)
            .await
            .map_err(query_err("moving a change request"))?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        self.insert_transition(&mut tx, id, Some(from), to, by, &now, comment)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks a change emergency (an admin's rollback without a second pair
    /// of eyes).
    pub async fn mark_emergency(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE change_requests SET emergency = 1 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(query_err("marking an emergency change"))?;
        Ok(())
    }

    /// Scheduled changes due at `now` that no node holds: each is leased
    /// to `node` until `until` by a conditional update, so across nodes
    /// sharing a database one node fires each. A node that dies holding
    /// one lets its lease run out and another takes it.
    pub async fn claim_due_changes(&self, now: &str, node: &str, until: &str) -> Result<Vec<ChangeRecord>> {
        let due = sqlx::query(
            "SELECT id FROM change_requests WHERE state = 'scheduled' AND activate_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY activate_at, id LIMIT 20",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("finding due changes"))?;
        let mut claimed = Vec::new();
        for row in due {
            let id: String = row.try_get(0).map_err(query_err("finding due changes"))?;
            let done = sqlx::query(
                "UPDATE change_requests SET claimed_by = $1, claimed_until = $2 WHERE id = $3 AND state = 'scheduled' AND (claimed_until IS NULL OR claimed_until < $4)",
            )
            .bind(node)
            .bind(until)
            .bind(&id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(query_err("claiming a due change"))?;
            if done.rows_affected() == 1
                && let Some(c) = self.change(&id).await?
            {
                claimed.push(c);
            }
        }
        Ok(claimed)
    }

    // ---- impact jobs ----

    pub async fn insert_impact(&self, job: &ImpactJob) -> Result<()> {
        sqlx::query("INSERT INTO change_impacts (id, change_id, state, request, progress, requested_by, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&job.id)
            .bind(&job.change_id)
            .bind(job.state.as_str())
            .bind(job.request.to_string())
            .bind(job.progress.to_string())
            .bind(&job.requested_by)
            .bind(&job.started_at)
            .bind(&job.started_at)
            .execute(&self.pool)
            .await
            .map_err(query_err("storing an impact job"))?;
        Ok(())
    }

    /// A running job's progress, and that it is alive at `at`.
    pub async fn impact_progress(&self, id: &str, progress: &Value, at: &str) -> Result<()> {
        sqlx::query("UPDATE change_impacts SET progress = $1, heartbeat_at = $3 WHERE id = $2 AND state = 'running'")
            .bind(progress.to_string())
            .bind(id)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(query_err("recording an impact job's progress"))?;
        Ok(())
    }

    /// Says a running job is alive at `at`.
    pub async fn impact_heartbeat(&self, id: &str, at: &str) -> Result<()> {
        sqlx::query("UPDATE change_impacts SET heartbeat_at = $1 WHERE id = $2 AND state = 'running'")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(query_err("recording an impact job's heartbeat"))?;
        Ok(())
    }

    /// Takes the running jobs whose last heartbeat is before `stale` (their
    /// node stopped): each counts one more restart, its progress starts
    /// over, and it is the caller's to run again. Across nodes, each job
    /// goes to one of them. `at` is now.
    pub async fn claim_stale_impacts(&self, stale: &str, at: &str) -> Result<Vec<ImpactJob>> {
        let rows = sqlx::query(
            "SELECT id FROM change_impacts WHERE state = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < $1) ORDER BY id",
        )
        .bind(stale)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading impact jobs"))?;
        let mut claimed = Vec::new();
        for row in rows {
            let id: String = row.try_get(0).map_err(query_err("reading impact jobs"))?;
            let done = sqlx::query(
                "UPDATE change_impacts SET heartbeat_at = $1, restarts = restarts + 1, progress = $2 WHERE id = $3 AND state = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < $4)",
            )
            .bind(at)
            .bind("{}")
            .bind(&id)
            .bind(stale)
            .execute(&self.pool)
            .await
            .map_err(query_err("claiming an impact job"))?;
            if done.rows_affected() == 1
                && let Some(job) = self.impact(&id).await?
            {
                claimed.push(job);
            }
        }
        Ok(claimed)
    }

    /// Ends a job: its result, or why it failed.
    pub async fn finish_impact(
        &self,
        id: &str,
        progress: &Value,
        outcome: std::result::Result<&Value, &str>,
    ) -> Result<()> {
        let (state, result, error) = match outcome {
            Ok(r) => (ImpactState::Done, Some(r.to_string()), None),
            Err(e) => (ImpactState::Failed, None, Some(e.to_string())),
        };
        sqlx::query("UPDATE change_impacts SET state = $1, progress = $2, result = $3, error = $4, finished_at = $5 WHERE id = $6")
            .bind(state.as_str())
            .bind(progress.to_string())
            .bind(result)
            .bind(error)
            .bind(timestamp_now())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(query_err("finishing an impact job"))?;
        Ok(())
    }

    pub async fn impact(&self, id: &str) -> Result<Option<ImpactJob>> {
        let row = sqlx::query("SELECT id, change_id, state, request, progress, result, error, requested_by, started_at, finished_at, restarts FROM change_impacts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading an impact job"))?;
        let Some(r) = row else { return Ok(None) };
        let e = || query_err("reading an impact job");
        let json = |i: usize| -> Result<Value> {
            let text: String = r.try_get(i).map_err(e())?;
            Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
        };
        let result: Option<String> = r.try_get(5).map_err(e())?;
        Ok(Some(ImpactJob {
            id: r.try_get(0).map_err(e())?,
            change_id: r.try_get(1).map_err(e())?,
            state: parse(&r.try_get::<String, _>(2).map_err(e())?)?,
            request: json(3)?,
            progress: json(4)?,
            result: result.map(|t| serde_json::from_str(&t).unwrap_or(Value::Null)),
            error: r.try_get(6).map_err(e())?,
            requested_by: r.try_get(7).map_err(e())?,
            started_at: r.try_get(8).map_err(e())?,
            finished_at: r.try_get(9).map_err(e())?,
            restarts: r.try_get(10).map_err(e())?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_between_two_packs_holds_what_differs() {
        let base = PackSource::from_texts([("a.yaml", "a"), ("b.yaml", "b"), ("c.yaml", "c")]);
        let next = PackSource::from_texts([("a.yaml", "a"), ("b.yaml", "B"), ("d.yaml", "d")]);
        let files = pack_changes(&base, &next);
        assert_eq!(
            files,
            ChangeFiles::from([
                ("b.yaml".into(), Some(b"B".to_vec())),
                ("c.yaml".into(), None),
                ("d.yaml".into(), Some(b"d".to_vec())),
            ])
        );
        let back = files_from_json("chg_x", &files_to_json(&files)).unwrap();
        assert_eq!(back, files);
    }
}
