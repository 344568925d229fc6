//! The store: what must outlive a `dealrules serve` process. Tokens (hashed),
//! every pack version that was activated (whole, for rollback and replay),
//! the activations (who, when, from where), and the decision log.
//!
//! One code path and one set of migrations serve SQLite (the default,
//! `sqlite://dealrules.db`, created on first open) and PostgreSQL
//! (`postgres://...`, which several nodes may share), through sqlx's `Any`
//! driver. The schema uses only what both read alike: TEXT and BIGINT,
//! ids made here (time-ordered ULIDs), times as RFC 3339 UTC text with
//! milliseconds, which sorts the way it reads.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use dealrules_store::{Store, DecisionRecord, DecisionQuery};
//! let store = Store::open("sqlite::memory:").await.unwrap();
//! let at = dealrules_store::timestamp_now();
//! store.log_decisions(&[DecisionRecord::new(&store, &at, "discount-approvals", "sha256:0123456789ab", "ok", "crm", "{}", "{}")]).await.unwrap();
//! let found = store.decisions(&DecisionQuery { policy: Some("discount-approvals".into()), ..Default::default() }).await.unwrap();
//! assert_eq!(found.len(), 1);
//! # });
//! ```
#![forbid(unsafe_code)]

mod deal_import;
mod packs;
pub mod people;
mod runs;
pub mod scratch;
mod states;
mod workflow;

pub use states::{ActivationSource, ApprovalState, OutboxState, StepState, TimerKind, TimerState};

pub use workflow::{Approval, ApprovalStep, Deal, Delegation, HistoryEntry, OutboxRow, TimerRow, WriteTx};

/// A connection inside a [`WriteTx`]: what the functions that must run in
/// one transaction take, so their callers need no database driver.
pub type Conn = sqlx::AnyConnection;

use std::borrow::Cow;
use std::sync::Mutex;

use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, Row};

pub use packs::{pack_from_json, pack_to_json};

pub use deal_import::ImportCounts;
pub use people::Person;
pub use runs::{Run, RunQuery, RunState, StatementRow};

/// The schema, embedded in the binary: applied in order on open.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "store", include_str!("../migrations/0001_store.sql")),
    (2, "workflow", include_str!("../migrations/0002_workflow.sql")),
    (3, "incentives", include_str!("../migrations/0003_incentives.sql")),
];

/// Largest page `decisions` returns.
pub const MAX_PAGE: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{url}: {message}")]
    Open { url: String, message: String },
    #[error("{url}: applying the schema: {message}")]
    Migrate { url: String, message: String },
    #[error("{what}: {source}")]
    Query { what: &'static str, source: sqlx::Error },
    #[error("stored pack {version} cannot be read: {message}")]
    DamagedPack { version: String, message: String },
    #[error("{0}")]
    BadArgument(String),
}

impl StoreError {
    /// The database is not answering (down, unreachable, out of
    /// connections): the request may succeed later, so callers answer 503
    /// with Retry-After rather than 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Query { source, .. } => unavailable(source),
            _ => false,
        }
    }
}

/// Whether a sqlx error means the database is not answering, not that the
/// query was wrong.
pub fn unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
    )
}

pub(crate) type Result<T> = std::result::Result<T, StoreError>;

pub(crate) fn query_err(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    url: String,
    /// The URL as given (with its password), for extra connections.
    pub(crate) connect_url: String,
    /// SQLite: this process's writers take turns (see `begin_write`).
    pub(crate) write_lock: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
    ids: Mutex<ulid::Generator>,
}

/// A token as stored: its hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TokenRecord {
    pub id: String,
    #[serde(skip)]
    pub token_hash: String,
    pub role: String,
    pub subject: String,
    pub groups: Vec<String>,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Activation {
    pub id: String,
    pub version: String,
    pub activated_at: String,
    pub activated_by: String,
    pub source: ActivationSource,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PackInfo {
    pub version: String,
    pub files: i64,
    pub bytes: i64,
    pub stored_at: String,
}

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
        store: &Store,
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

/// Now, as the store writes times.
pub fn timestamp_now() -> String {
    timestamp(chrono::Utc::now())
}

pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Reads a time a client gave (RFC 3339 with any offset, or a date meaning
/// its midnight UTC) into the store's form, so text comparison is time
/// comparison.
pub fn normalize_time(s: &str) -> Result<String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(timestamp(t.with_timezone(&chrono::Utc)));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(timestamp(d.and_time(chrono::NaiveTime::MIN).and_utc()));
    }
    Err(StoreError::BadArgument(format!(
        "`{s}` is not a time: give RFC 3339 (2026-11-23T09:00:00Z) or a date (2026-11-23)"
    )))
}

/// The URL with any password replaced, for messages and status pages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &userinfo[..colon], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Store {
    /// Opens (and for SQLite, creates) the database and applies the schema.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let shown = redact(url);
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Open {
                url: shown,
                message: "the database URL must start with sqlite: or postgres://".into(),
            });
        };
        let mut connect = url.to_string();
        if backend == Backend::Sqlite && !url.contains("mode=") && !url.contains(":memory:") {
            // Created on first start, as the spec asks.
            connect.push(if url.contains('?') { '&' } else { '?' });
            connect.push_str("mode=rwc");
        }
        let mut options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            // A database that is not there should say so quickly: requests
            // answer 503 with Retry-After instead of hanging.
            .acquire_timeout(std::time::Duration::from_millis(1500));
        if backend == Backend::Sqlite {
            // WAL (readers do not block the writer) with sqlx's default
            // synchronous=FULL: an acknowledged commit survives a crash.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(&mut *conn, "PRAGMA journal_mode = WAL").await?;
                    Ok(())
                })
            });
        }
        if url.contains(":memory:") {
            // Each SQLite connection to :memory: is its own database: keep one.
            options = options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let pool = options.connect(&connect).await.map_err(|e| StoreError::Open {
            url: shown.clone(),
            message: e.to_string(),
        })?;
        let store = Store {
            pool,
            backend,
            url: shown,
            connect_url: url.to_string(),
            write_lock: (backend == Backend::Sqlite).then(Default::default),
            ids: Mutex::new(ulid::Generator::new()),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let migrations: Vec<Migration> = MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(*sql),
                    false,
                )
            })
            .collect();
        let migrator = Migrator {
            migrations: Cow::Owned(migrations),
            ..Migrator::DEFAULT
        };
        migrator.run(&self.pool).await.map_err(|e| StoreError::Migrate {
            url: self.url.clone(),
            message: e.to_string(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A new time-ordered id.
    pub fn new_id(&self) -> String {
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        // The generator fails only when 2^80 ids are made in one millisecond.
        ids.generate().unwrap_or_else(|_| ulid::Ulid::new()).to_string()
    }

    /// Is the database answering?
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(query_err("checking the database"))?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- tokens ----

    /// Stores a token by its hash (hex of SHA-256).
    pub async fn add_token(
        &self,
        token_hash: &str,
        role: &str,
        subject: &str,
        groups: &[String],
        created_by: &str,
    ) -> Result<TokenRecord> {
        let record = TokenRecord {
            id: format!("tok_{}", self.new_id().to_lowercase()),
            token_hash: token_hash.to_string(),
            role: role.to_string(),
            subject: subject.to_string(),
            groups: groups.to_vec(),
            created_at: timestamp_now(),
            created_by: created_by.to_string(),
            revoked_at: None,
        };
        let groups_json = serde_json::to_string(&record.groups).map_err(|e| StoreError::BadArgument(e.to_string()))?;
        sqlx::query("INSERT INTO tokens (id, token_hash, role, subject, groups, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&record.id)
            .bind(&record.token_hash)
            .bind(&record.role)
            .bind(&record.subject)
            .bind(groups_json)
            .bind(&record.created_at)
            .bind(&record.created_by)
            .execute(&self.pool)
            .await
            .map_err(query_err("storing a token"))?;
        Ok(record)
    }

    /// Tokens not revoked, oldest first.
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query("SELECT id, token_hash, role, subject, groups, created_at, created_by, revoked_at FROM tokens WHERE revoked_at IS NULL ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("reading tokens"))?;
        rows.iter().map(token_row).collect()
    }

    /// Revokes a token by id; false when there was no such live token.
    pub async fn revoke_token(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(timestamp_now())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(query_err("revoking a token"))?;
        Ok(done.rows_affected() == 1)
    }

    // ---- packs and activations ----

    /// Stores a pack's files under its version (once; storing it again is a
    /// no-op).
    pub async fn put_pack(&self, source: &dealrules_model::PackSource) -> Result<String> {
        let version = source.version();
        let content = pack_to_json(source);
        let bytes: usize = source.files.values().map(Vec::len).sum();
        let sql = match self.backend {
            Backend::Sqlite => {
                "INSERT OR IGNORE INTO packs (version, content, files, bytes, stored_at) VALUES ($1, $2, $3, $4, $5)"
            }
            Backend::Postgres => {
                "INSERT INTO packs (version, content, files, bytes, stored_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (version) DO NOTHING"
            }
        };
        sqlx::query(sql)
            .bind(&version)
            .bind(content)
            .bind(source.files.len() as i64)
            .bind(bytes as i64)
            .bind(timestamp_now())
            .execute(&self.pool)
            .await
            .map_err(query_err("storing a pack"))?;
        Ok(version)
    }

    /// A stored pack's files.
    pub async fn pack(&self, version: &str) -> Result<Option<dealrules_model::PackSource>> {
        let row = sqlx::query("SELECT content FROM packs WHERE version = $1")
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading a pack"))?;
        let Some(row) = row else { return Ok(None) };
        let content: String = row.try_get(0).map_err(query_err("reading a pack"))?;
        let source = pack_from_json(&content).map_err(|message| StoreError::DamagedPack {
            version: version.into(),
            message,
        })?;
        if source.version() != version {
            return Err(StoreError::DamagedPack {
                version: version.into(),
                message: format!("its files hash to {}", source.version()),
            });
        }
        Ok(Some(source))
    }

    /// Stored versions, newest first.
    pub async fn packs(&self) -> Result<Vec<PackInfo>> {
        let rows = sqlx::query("SELECT version, files, bytes, stored_at FROM packs ORDER BY stored_at DESC, version")
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing packs"))?;
        rows.iter()
            .map(|r| {
                Ok(PackInfo {
                    version: r.try_get(0).map_err(query_err("listing packs"))?,
                    files: r.try_get(1).map_err(query_err("listing packs"))?,
                    bytes: r.try_get(2).map_err(query_err("listing packs"))?,
                    stored_at: r.try_get(3).map_err(query_err("listing packs"))?,
                })
            })
            .collect()
    }

    /// Stores the pack (if new) and records that it was activated.
    pub async fn activate(
        &self,
        source: &dealrules_model::PackSource,
        by: &str,
        from: impl TryInto<ActivationSource, Error: std::fmt::Display>,
        comment: Option<&str>,
    ) -> Result<Activation> {
        let from = from.try_into().map_err(|e| StoreError::BadArgument(e.to_string()))?;
        let version = self.put_pack(source).await?;
        let activation = Activation {
            id: self.new_id(),
            version,
            activated_at: timestamp_now(),
            activated_by: by.into(),
            source: from,
            comment: comment.map(str::to_string),
        };
        sqlx::query("INSERT INTO activations (id, version, activated_at, activated_by, source, comment) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&activation.id)
            .bind(&activation.version)
            .bind(&activation.activated_at)
            .bind(&activation.activated_by)
            .bind(activation.source.as_str())
            .bind(activation.comment.clone())
            .execute(&self.pool)
            .await
            .map_err(query_err("recording an activation"))?;
        Ok(activation)
    }

    /// Activations, newest first.
    pub async fn activations(&self, limit: u32) -> Result<Vec<Activation>> {
        let rows = sqlx::query("SELECT id, version, activated_at, activated_by, source, comment FROM activations ORDER BY id DESC LIMIT $1")
            .bind(i64::from(limit.clamp(1, MAX_PAGE)))
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing activations"))?;
        rows.iter().map(activation_row).collect()
    }

    /// The latest activation, and the latest from the rules folder.
    pub async fn latest_activation(&self, source: Option<&str>) -> Result<Option<Activation>> {
        let row = match source {
            None => sqlx::query("SELECT id, version, activated_at, activated_by, source, comment FROM activations ORDER BY id DESC LIMIT 1").fetch_optional(&self.pool).await,
            Some(s) => sqlx::query("SELECT id, version, activated_at, activated_by, source, comment FROM activations WHERE source = $1 ORDER BY id DESC LIMIT 1")
                .bind(s)
                .fetch_optional(&self.pool)
                .await,
        }
        .map_err(query_err("reading the latest activation"))?;
        row.as_ref().map(activation_row).transpose()
    }

    /// Finds a stored version by its full name or an unambiguous prefix of
    /// at least 6 hex digits (`sha256:` may be left off).
    pub async fn resolve_version(&self, wanted: &str) -> Result<Option<String>> {
        let wanted = wanted.trim();
        let full = if wanted.starts_with("sha256:") {
            wanted.to_string()
        } else {
            format!("sha256:{wanted}")
        };
        let hex = &full["sha256:".len()..];
        if hex.len() < 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::BadArgument(format!(
                "`{wanted}` is not a pack version: give sha256:<hex>, at least 6 hex digits"
            )));
        }
        let rows = sqlx::query("SELECT version FROM packs WHERE version LIKE $1 ORDER BY version LIMIT 2")
            .bind(format!("{}%", full.to_lowercase()))
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("finding a pack"))?;
        match rows.len() {
            0 => Ok(None),
            1 => Ok(Some(rows[0].try_get(0).map_err(query_err("finding a pack"))?)),
            _ => Err(StoreError::BadArgument(format!(
                "`{wanted}` names more than one stored version; give more digits"
            ))),
        }
    }

    // ---- the decision log ----

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
            for i in 0..chunk.len() {
                let b = i * 8;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8
                ));
            }
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

    pub async fn count_decisions(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM decision_log")
            .fetch_one(&self.pool)
            .await
            .map_err(query_err("counting the decision log"))?;
        row.try_get(0).map_err(query_err("counting the decision log"))
    }
}

fn token_row(r: &AnyRow) -> Result<TokenRecord> {
    let e = query_err("reading tokens");
    let groups: String = r.try_get(4).map_err(query_err("reading tokens"))?;
    Ok(TokenRecord {
        id: r.try_get(0).map_err(query_err("reading tokens"))?,
        token_hash: r.try_get(1).map_err(query_err("reading tokens"))?,
        role: r.try_get(2).map_err(query_err("reading tokens"))?,
        subject: r.try_get(3).map_err(query_err("reading tokens"))?,
        groups: serde_json::from_str(&groups).map_err(|x| e(sqlx::Error::Decode(Box::new(x))))?,
        created_at: r.try_get(5).map_err(query_err("reading tokens"))?,
        created_by: r.try_get(6).map_err(query_err("reading tokens"))?,
        revoked_at: r.try_get(7).map_err(query_err("reading tokens"))?,
    })
}

fn activation_row(r: &AnyRow) -> Result<Activation> {
    let get = |i: usize| r.try_get::<String, _>(i).map_err(query_err("reading activations"));
    Ok(Activation {
        id: get(0)?,
        version: get(1)?,
        activated_at: get(2)?,
        activated_by: get(3)?,
        source: get(4)?.parse().map_err(|e: String| StoreError::Query {
            what: "reading activations",
            source: sqlx::Error::Decode(e.into()),
        })?,
        comment: r.try_get(5).map_err(query_err("reading activations"))?,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact("postgres://app:hunter2@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(redact("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact("sqlite://dealrules.db"), "sqlite://dealrules.db");
    }

    #[test]
    fn times_normalize_to_utc_millis() {
        assert_eq!(
            normalize_time("2026-11-23T10:00:00+01:00").unwrap(),
            "2026-11-23T09:00:00.000Z"
        );
        assert_eq!(normalize_time("2026-11-23").unwrap(), "2026-11-23T00:00:00.000Z");
        assert!(normalize_time("yesterday").is_err());
    }
}
