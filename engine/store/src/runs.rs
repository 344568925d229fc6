//! Incentive runs and the statements they computed. A run moves
//! `running -> draft -> approved -> published -> locked` (or `failed`); a
//! new run of a period replaces its runs that are not locked (their state
//! becomes `replaced`, their statements stay for the record). A run keeps
//! the pack version and the input it read, so any statement can be
//! recomputed exactly.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::{Result, Runs, StoreError, query_err};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Computing, off the request path.
    Running,
    Draft,
    Approved,
    Published,
    /// Final: its statements never change; later changes are adjustments.
    Locked,
    Failed,
    /// A later run of the same plan and period took its place.
    Replaced,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Draft => "draft",
            RunState::Approved => "approved",
            RunState::Published => "published",
            RunState::Locked => "locked",
            RunState::Failed => "failed",
            RunState::Replaced => "replaced",
        }
    }
}

impl std::str::FromStr for RunState {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<RunState, String> {
        Ok(match s {
            "running" => RunState::Running,
            "draft" => RunState::Draft,
            "approved" => RunState::Approved,
            "published" => RunState::Published,
            "locked" => RunState::Locked,
            "failed" => RunState::Failed,
            "replaced" => RunState::Replaced,
            other => {
                return Err(format!(
                    "`{other}` is not a run state (running, draft, approved, published, locked, failed, replaced)"
                ));
            }
        })
    }
}

/// A run as stored (without its input, which can be large).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub id: String,
    pub plan: String,
    pub period: String,
    pub state: RunState,
    pub pack_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Statements computed.
    pub reps: i64,
    /// What the statements pay, added up (a decimal string).
    pub total: String,
    pub started_by: String,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_at: Option<String>,
    /// Why a failed run failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One rep's statement in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementRow {
    pub run_id: String,
    pub rep: String,
    pub plan: String,
    pub period: String,
    /// What is paid (a decimal string).
    pub total: String,
    /// The statement (JSON text).
    pub body: String,
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    pub plan: Option<String>,
    pub period: Option<String>,
    pub state: Option<RunState>,
}

const RUN_COLUMNS: &str = "id, plan, period, state, pack_version, currency, reps, total, started_by, started_at, finished_at, approved_by, approved_at, published_by, published_at, locked_by, locked_at, error";

fn run_row(r: &AnyRow) -> Result<Run> {
    let e = || query_err("reading a run");
    let state: String = r.try_get(3).map_err(e())?;
    Ok(Run {
        id: r.try_get(0).map_err(e())?,
        plan: r.try_get(1).map_err(e())?,
        period: r.try_get(2).map_err(e())?,
        state: state.parse().map_err(|m: String| StoreError::Query {
            what: "reading a run",
            source: sqlx::Error::Decode(m.into()),
        })?,
        pack_version: r.try_get(4).map_err(e())?,
        currency: r.try_get(5).map_err(e())?,
        reps: r.try_get(6).map_err(e())?,
        total: r.try_get(7).map_err(e())?,
        started_by: r.try_get(8).map_err(e())?,
        started_at: r.try_get(9).map_err(e())?,
        finished_at: r.try_get(10).map_err(e())?,
        approved_by: r.try_get(11).map_err(e())?,
        approved_at: r.try_get(12).map_err(e())?,
        published_by: r.try_get(13).map_err(e())?,
        published_at: r.try_get(14).map_err(e())?,
        locked_by: r.try_get(15).map_err(e())?,
        locked_at: r.try_get(16).map_err(e())?,
        error: r.try_get(17).map_err(e())?,
    })
}

fn statement_row(r: &AnyRow) -> Result<StatementRow> {
    let s = |i: usize| r.try_get::<String, _>(i).map_err(query_err("reading a statement"));
    Ok(StatementRow {
        run_id: s(0)?,
        rep: s(1)?,
        plan: s(2)?,
        period: s(3)?,
        total: s(4)?,
        body: s(5)?,
    })
}

impl Runs {
    /// Records a run that has started (state `running`).
    pub async fn insert_run(&self, run: &Run) -> Result<()> {
        sqlx::query("INSERT INTO incentive_runs (id, plan, period, state, pack_version, currency, reps, total, started_by, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(&run.id)
            .bind(&run.plan)
            .bind(&run.period)
            .bind(run.state.as_str())
            .bind(&run.pack_version)
            .bind(run.currency.clone())
            .bind(run.reps)
            .bind(&run.total)
            .bind(&run.started_by)
            .bind(&run.started_at)
            .execute(&self.pool)
            .await
            .map_err(query_err("recording a run"))?;
        Ok(())
    }

    /// Stores a run's statements and input and makes it the period's draft,
    /// replacing the period's other runs that are not locked; one
    /// transaction. False (nothing stored) when the period was locked
    /// meanwhile or the run is no longer running.
    ///
    /// A run that stored its statements and inputs part by part while it
    /// ran ([`Store::add_run_part`]) passes no statements and no input;
    /// `reps` is how many statements it has in all.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_run(
        &self,
        run_id: &str,
        statements: &[StatementRow],
        reps: i64,
        currency: &str,
        total: &str,
        input: Option<&str>,
        at: &str,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let Some(run) = self.run_in(&mut tx, run_id).await? else {
            return Ok(false);
        };
        if run.state != RunState::Running || self.locked_run_in(&mut tx, &run.plan, &run.period).await?.is_some() {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE incentive_runs SET state = 'replaced' WHERE plan = $1 AND period = $2 AND id <> $3 AND state IN ('draft', 'approved', 'published', 'failed')",
        )
        .bind(&run.plan)
        .bind(&run.period)
        .bind(run_id)
        .execute(&mut *tx)
        .await
        .map_err(query_err("replacing a run"))?;
        self.insert_statements(&mut tx, statements).await?;
        sqlx::query("UPDATE incentive_runs SET state = 'draft', currency = $2, reps = $3, total = $4, input = $5, finished_at = $6 WHERE id = $1")
            .bind(run_id)
            .bind(currency)
            .bind(reps)
            .bind(total)
            .bind(input)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(query_err("finishing a run"))?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_statements(&self, conn: &mut sqlx::AnyConnection, statements: &[StatementRow]) -> Result<()> {
        for chunk in statements.chunks(1000) {
            let mut sql = String::from("INSERT INTO statements (run_id, rep, plan, period, total, body) VALUES ");
            crate::placeholders::push_rows(&mut sql, self.backend, chunk.len(), 6);
            // Only placeholders are formatted into the text; every value is bound.
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for s in chunk {
                q = q
                    .bind(&s.run_id)
                    .bind(&s.rep)
                    .bind(&s.plan)
                    .bind(&s.period)
                    .bind(&s.total)
                    .bind(&s.body);
            }
            q.execute(&mut *conn).await.map_err(query_err("storing statements"))?;
        }
        Ok(())
    }

    /// Stores one part of a running run: the statements it decided (a rep
    /// an earlier part decided is decided again: its statement is
    /// replaced) and the input it read; one transaction. False (nothing
    /// stored) when the run is no longer running.
    pub async fn add_run_part(
        &self,
        run_id: &str,
        part: i64,
        reps: &[String],
        input: &str,
        statements: &[StatementRow],
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if self.run_in(&mut tx, run_id).await?.map(|r| r.state) != Some(RunState::Running) {
            return Ok(false);
        }
        for chunk in statements.chunks(500) {
            let mut sql = String::from("DELETE FROM statements WHERE run_id = ");
            crate::placeholders::push_list(&mut sql, self.backend, 1, 1);
            sql.push_str(" AND rep IN (");
            crate::placeholders::push_list(&mut sql, self.backend, 2, chunk.len());
            sql.push(')');
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(run_id);
            for s in chunk {
                q = q.bind(&s.rep);
            }
            q.execute(&mut *tx).await.map_err(query_err("replacing statements"))?;
        }
        self.insert_statements(&mut tx, statements).await?;
        let reps = serde_json::to_string(reps).map_err(|e| StoreError::BadArgument(e.to_string()))?;
        sqlx::query("INSERT INTO run_inputs (run_id, part, reps, input) VALUES ($1, $2, $3, $4)")
            .bind(run_id)
            .bind(part)
            .bind(reps)
            .bind(input)
            .execute(&mut *tx)
            .await
            .map_err(query_err("storing a run's input"))?;
        tx.commit().await?;
        Ok(true)
    }

    /// How many statements a run has stored, and their sum is the caller's.
    pub async fn count_statements(&self, run_id: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM statements WHERE run_id = $1")
            .bind(run_id)
            .fetch_one(&self.pool)
            .await
            .map_err(query_err("counting statements"))?;
        row.try_get(0).map_err(query_err("counting statements"))
    }

    /// Part `part` of a run's input: the reps it decided and the input
    /// (JSON text); `None` past the last part.
    pub async fn run_input_part(&self, run_id: &str, part: i64) -> Result<Option<(Vec<String>, String)>> {
        let row = sqlx::query("SELECT reps, input FROM run_inputs WHERE run_id = $1 AND part = $2")
            .bind(run_id)
            .bind(part)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading a run's input"))?;
        let Some(row) = row else { return Ok(None) };
        let reps: String = row.try_get(0).map_err(query_err("reading a run's input"))?;
        let input: String = row.try_get(1).map_err(query_err("reading a run's input"))?;
        let reps = serde_json::from_str(&reps).map_err(|e| StoreError::Query {
            what: "reading a run's input",
            source: sqlx::Error::Decode(Box::new(e)),
        })?;
        Ok(Some((reps, input)))
    }

    /// Marks a running run failed, saying why; what it stored part by part
    /// goes.
    pub async fn fail_run(&self, run_id: &str, error: &str, at: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let failed = sqlx::query("UPDATE incentive_runs SET state = 'failed', error = $2, finished_at = $3 WHERE id = $1 AND state = 'running'")
            .bind(run_id)
            .bind(error)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(query_err("recording a failed run"))?
            .rows_affected();
        if failed > 0 {
            for table in ["statements", "run_inputs"] {
                sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE run_id = $1")))
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("recording a failed run"))?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn run(&self, id: &str) -> Result<Option<Run>> {
        let mut conn = self.pool.acquire().await.map_err(query_err("reading a run"))?;
        self.run_in(&mut conn, id).await
    }

    async fn run_in(&self, conn: &mut sqlx::AnyConnection, id: &str) -> Result<Option<Run>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM incentive_runs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(query_err("reading a run"))?;
        row.as_ref().map(run_row).transpose()
    }

    /// The locked run of a plan's period, if it is locked.
    pub async fn locked_run(&self, plan: &str, period: &str) -> Result<Option<Run>> {
        let mut conn = self.pool.acquire().await.map_err(query_err("reading a run"))?;
        self.locked_run_in(&mut conn, plan, period).await
    }

    async fn locked_run_in(&self, conn: &mut sqlx::AnyConnection, plan: &str, period: &str) -> Result<Option<Run>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM incentive_runs WHERE plan = $1 AND period = $2 AND state = 'locked' ORDER BY id DESC LIMIT 1"
        )))
        .bind(plan)
        .bind(period)
        .fetch_optional(&mut *conn)
        .await
        .map_err(query_err("reading a run"))?;
        row.as_ref().map(run_row).transpose()
    }

    /// The input a finished run read (JSON text).
    pub async fn run_input(&self, id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT input FROM incentive_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading a run"))?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>(0))
            .transpose()
            .map_err(query_err("reading a run"))?
            .flatten())
    }

    /// Runs, newest first.
    pub async fn runs(&self, query: &RunQuery) -> Result<Vec<Run>> {
        let mut sql = format!("SELECT {RUN_COLUMNS} FROM incentive_runs WHERE 1 = 1");
        let mut binds = Vec::new();
        for (column, value) in [
            ("plan", query.plan.clone()),
            ("period", query.period.clone()),
            ("state", query.state.map(|s| s.as_str().to_string())),
        ] {
            if let Some(v) = value {
                binds.push(v);
                sql.push_str(&format!(" AND {column} = ${}", binds.len()));
            }
        }
        sql.push_str(" ORDER BY id DESC LIMIT 1000");
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(query_err("listing runs"))?;
        rows.iter().map(run_row).collect()
    }

    /// Moves a run from `from` to `to`, recording who and when in the
    /// columns of `to`; false when the run was not in `from`.
    pub async fn move_run(&self, id: &str, from: RunState, to: RunState, by: &str, at: &str) -> Result<bool> {
        let (who, when) = match to {
            RunState::Approved => ("approved_by", "approved_at"),
            RunState::Published => ("published_by", "published_at"),
            RunState::Locked => ("locked_by", "locked_at"),
            other => {
                return Err(StoreError::BadArgument(format!(
                    "a run is not moved to {} by hand",
                    other.as_str()
                )));
            }
        };
        let done = sqlx::query(AssertSqlSafe(format!(
            "UPDATE incentive_runs SET state = $1, {who} = $2, {when} = $3 WHERE id = $4 AND state = $5"
        )))
        .bind(to.as_str())
        .bind(by)
        .bind(at)
        .bind(id)
        .bind(from.as_str())
        .execute(&self.pool)
        .await
        .map_err(query_err("moving a run"))?;
        Ok(done.rows_affected() == 1)
    }

    /// A run's statements, by rep.
    pub async fn run_statements(&self, run_id: &str) -> Result<Vec<StatementRow>> {
        let rows =
            sqlx::query("SELECT run_id, rep, plan, period, total, body FROM statements WHERE run_id = $1 ORDER BY rep")
                .bind(run_id)
                .fetch_all(&self.pool)
                .await
                .map_err(query_err("reading statements"))?;
        rows.iter().map(statement_row).collect()
    }

    /// A rep's statements for a period from runs in `states`, by plan.
    pub async fn statements_of(
        &self,
        rep: &str,
        period: &str,
        states: &[RunState],
    ) -> Result<Vec<(Run, StatementRow)>> {
        let marks: Vec<String> = (0..states.len()).map(|i| format!("${}", i + 3)).collect();
        let cols: Vec<String> = RUN_COLUMNS.split(", ").map(|c| format!("r.{c}")).collect();
        let sql = format!(
            "SELECT {}, s.run_id, s.rep, s.plan, s.period, s.total, s.body FROM statements s JOIN incentive_runs r ON r.id = s.run_id WHERE s.rep = $1 AND s.period = $2 AND r.state IN ({}) ORDER BY s.plan, r.id DESC",
            cols.join(", "),
            marks.join(", ")
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(rep).bind(period);
        for s in states {
            q = q.bind(s.as_str());
        }
        let rows = q.fetch_all(&self.pool).await.map_err(query_err("reading statements"))?;
        let n = RUN_COLUMNS.split(", ").count();
        rows.iter()
            .map(|r| {
                let run = run_row(r)?;
                let s = |i: usize| r.try_get::<String, _>(n + i).map_err(query_err("reading a statement"));
                Ok((
                    run,
                    StatementRow {
                        run_id: s(0)?,
                        rep: s(1)?,
                        plan: s(2)?,
                        period: s(3)?,
                        total: s(4)?,
                        body: s(5)?,
                    },
                ))
            })
            .collect()
    }

    /// The statements a new run of `plan` for `period` builds on (draw
    /// carry, clawbacks): for each earlier period (labels of one kind sort
    /// as they read), those of its latest approved, published or locked
    /// run, oldest period first.
    pub async fn earlier_statements(&self, plan: &str, period: &str) -> Result<Vec<String>> {
        self.earlier_statements_of(plan, period, None).await
    }

    /// As [`Store::earlier_statements`], only those of `reps` when given.
    pub async fn earlier_statements_of(
        &self,
        plan: &str,
        period: &str,
        reps: Option<&[String]>,
    ) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT period, id FROM incentive_runs WHERE plan = $1 AND period < $2 AND LENGTH(period) = $3 AND state IN ('approved', 'published', 'locked') ORDER BY period, id DESC",
        )
        .bind(plan)
        .bind(period)
        .bind(period.len() as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading runs"))?;
        let mut out = Vec::new();
        let mut seen: Option<String> = None;
        for row in rows {
            let p: String = row.try_get(0).map_err(query_err("reading runs"))?;
            let id: String = row.try_get(1).map_err(query_err("reading runs"))?;
            if seen.as_deref() == Some(p.as_str()) {
                continue;
            }
            seen = Some(p);
            match reps {
                None => out.extend(self.run_statements(&id).await?.into_iter().map(|s| s.body)),
                Some(reps) => {
                    for chunk in reps.chunks(500) {
                        let mut sql = String::from("SELECT body FROM statements WHERE run_id = ");
                        crate::placeholders::push_list(&mut sql, self.backend, 1, 1);
                        sql.push_str(" AND rep IN (");
                        crate::placeholders::push_list(&mut sql, self.backend, 2, chunk.len());
                        sql.push_str(") ORDER BY rep");
                        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(&id);
                        for r in chunk {
                            q = q.bind(r);
                        }
                        for row in q.fetch_all(&self.pool).await.map_err(query_err("reading statements"))? {
                            out.push(row.try_get(0).map_err(query_err("reading statements"))?);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}
