//! The store: what must outlive a `dealrules serve` process, one module per
//! aggregate: tokens ([`TokenRecord`], hashed), pack versions and their
//! activations (whole, for rollback and replay; who, when, from where), the
//! decision log, deals with their approvals and timers (changed in one
//! [`WriteTx`]), and the notification outbox.
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
//! store.decisions().log_decisions(&[DecisionRecord::new(&store, &at, "discount-approvals", "sha256:0123456789ab", "ok", "crm", "{}", "{}")]).await.unwrap();
//! let found = store.decisions().decisions(&DecisionQuery { policy: Some("discount-approvals".into()), ..Default::default() }).await.unwrap();
//! assert_eq!(found.len(), 1);
//! # });
//! ```
#![forbid(unsafe_code)]

mod activations;
mod analytics;
mod changes;
pub mod credits;
mod deal_import;
mod decisions;
mod outbox;
mod packs;
pub mod people;
mod placeholders;
mod runs;
pub mod scratch;
mod sessions;
mod states;
pub mod summaries;
mod tokens;
mod workflow;

pub use activations::{Activation, PackInfo};
pub use analytics::TrailEntry;
pub use changes::{ChangeFiles, ChangeRecord, ChangeTransition, ImpactJob, MoveSet, pack_changes};
pub use decisions::{DecisionQuery, DecisionRecord};
pub use outbox::OutboxRow;
pub use sessions::SessionRecord;
pub use tokens::TokenRecord;

pub use states::{
    ActivationSource, ApprovalState, ChangeKind, ChangeState, ImpactState, OutboxState, StepState, TimerKind,
    TimerState,
};

pub use workflow::{Approval, ApprovalStep, Deal, Delegation, HistoryEntry, TimerRow, WriteTx};

/// A connection inside a [`WriteTx`]: what the functions that must run in
/// one transaction take, so their callers need no database driver.
pub type Conn = sqlx::AnyConnection;

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};

pub use packs::{pack_from_json, pack_to_json};

pub use deal_import::ImportCounts;
pub use people::Person;
pub use runs::{Run, RunQuery, RunState, StatementRow};

/// The schema, embedded in the binary: applied in order on open.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "store", include_str!("../migrations/0001_store.sql")),
    (2, "workflow", include_str!("../migrations/0002_workflow.sql")),
    (3, "incentives", include_str!("../migrations/0003_incentives.sql")),
    (
        4,
        "console_sessions",
        include_str!("../migrations/0004_console_sessions.sql"),
    ),
    (
        6,
        "change_requests",
        include_str!("../migrations/0006_change_requests.sql"),
    ),
    (
        7,
        "targets_measured",
        include_str!("../migrations/0007_targets_measured.sql"),
    ),
    (
        10,
        "measured_summaries",
        include_str!("../migrations/0010_measured_summaries.sql"),
    ),
    (11, "run_parts", include_str!("../migrations/0011_run_parts.sql")),
    (
        12,
        "credit_summaries",
        include_str!("../migrations/0012_credit_summaries.sql"),
    ),
    (
        13,
        "credit_fill_basis",
        include_str!("../migrations/0013_credit_fill_basis.sql"),
    ),
    (
        14,
        "import_indexes",
        include_str!("../migrations/0014_import_indexes.sql"),
    ),
    (15, "credit_reads", include_str!("../migrations/0015_credit_reads.sql")),
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

/// The open database: the pool, the schema applied, and the handles, one
/// per aggregate. Cloning it is cheap (one shared [`Db`]).
///
/// Callers take the handle of what they touch (`store.deals()`,
/// `store.decisions()`, ...) rather than the whole store; each handle is a
/// cheap `Clone` holding the same pool. What every handle shares (the
/// pool, ids, write transactions) is on [`Db`], which each dereferences to.
#[derive(Clone)]
pub struct Store {
    db: Arc<Db>,
}

/// What every handle shares: the pool, the backend, the id generator and
/// the write turn.
pub struct Db {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    url: String,
    /// The URL as given (with its password), for extra connections.
    pub(crate) connect_url: String,
    /// SQLite: this process's writers take turns (see `begin_write`).
    pub(crate) write_lock: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
    ids: Mutex<ulid::Generator>,
}

impl std::ops::Deref for Store {
    type Target = Db;
    fn deref(&self) -> &Db {
        &self.db
    }
}

/// Declares the handle of one aggregate: a cheap `Clone` of the shared
/// [`Db`], with the aggregate's methods (in its module) on it.
macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $accessor:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            db: Arc<Db>,
        }

        impl std::ops::Deref for $name {
            type Target = Db;
            fn deref(&self) -> &Db {
                &self.db
            }
        }

        impl Store {
            $(#[$doc])*
            pub fn $accessor(&self) -> $name {
                $name { db: self.db.clone() }
            }
        }
    };
}

handle! {
    /// API tokens, stored hashed ([`TokenRecord`]).
    Tokens, tokens
}
handle! {
    /// The admin console's sign-in sessions ([`SessionRecord`]).
    Sessions, sessions
}
handle! {
    /// Pack versions (whole, for rollback and replay) and their
    /// activations ([`Activation`], [`PackInfo`]).
    Packs, packs
}
handle! {
    /// The decision log ([`DecisionRecord`]): written, read, counted, pruned.
    Decisions, decisions
}
handle! {
    /// Deals with their history, approvals, delegations and timers
    /// ([`Deal`], [`Approval`], [`TimerRow`]), changed together in one
    /// [`WriteTx`]; bulk imports of deals.
    Deals, deals
}
handle! {
    /// The notification outbox ([`OutboxRow`]) and its delivery attempts.
    Outbox, outbox
}
handle! {
    /// The roster: effective-dated people ([`Person`]).
    People, people
}
handle! {
    /// Incentive runs and their statements ([`Run`], [`StatementRow`]).
    Runs, runs
}
handle! {
    /// Change requests, their transitions, the lease on scheduled ones,
    /// impact jobs ([`ChangeRecord`], [`ImpactJob`]).
    Changes, changes
}
handle! {
    /// Reads for funnel analytics (deals' stage trails) and the pace
    /// checks of targets with their alerts ([`TrailEntry`]).
    Analytics, analytics
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
        let db = Db {
            pool,
            backend,
            url: shown,
            connect_url: url.to_string(),
            write_lock: (backend == Backend::Sqlite).then(Default::default),
            ids: Mutex::new(ulid::Generator::new()),
        };
        db.migrate().await?;
        let store = Store { db: Arc::new(db) };
        store.ensure_measured_summaries().await?;
        Ok(store)
    }
}

impl Db {
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
