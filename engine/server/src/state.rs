//! What every request shares: the active snapshot (swapped whole on reload),
//! the reload status, the tokens and the counters.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use arc_swap::ArcSwap;
use dealrules_core::Snapshot;
use serde::Serialize;

use crate::auth::{TokenBook, Tokens};
use crate::decision_log::{DecisionLog, LogCounters};
use dealrules_store::{ActivationSource, Store};
use dealrules_workflow::{Clock, Workflow};

#[derive(Debug, Clone, Serialize, Default, utoipa::ToSchema)]
pub struct ReloadStatus {
    /// The active pack version.
    pub version: String,
    /// When the active pack was activated (RFC 3339).
    pub activated_at: String,
    /// Who activated it: a token's subject, or `directory`.
    pub activated_by: String,
    /// Where it came from: `directory` (the watched rules folder),
    /// `upload` or `rollback`.
    pub source: ActivationSource,
    /// The last reload attempt, good or bad.
    pub last_reload_at: Option<String>,
    /// Why the last reload was refused (`file:line:col: message` lines);
    /// `None` when it succeeded.
    pub last_reload_errors: Option<Vec<String>>,
    pub reloads: u64,
    pub failed_reloads: u64,
    /// The rules folder being watched.
    pub rules_dir: String,
    /// The database, without its password.
    pub store: String,
    pub decision_log: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub policy: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub outcome: &'static str,
}

/// The Prometheus metrics of `/metrics`.
pub struct Metrics {
    pub registry: Registry,
    pub decisions: Family<DecisionLabels, Counter>,
    pub latency: Family<DecisionLabels, Histogram>,
    pub reloads: Family<ReloadLabels, Counter>,
    pub log: LogCounters,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("dealrules");
        let decisions = Family::<DecisionLabels, Counter>::default();
        // 10 µs to about 160 ms.
        let latency = Family::<DecisionLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.00001, 2.0, 15))
        });
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "decisions",
            "Decisions made, by policy and outcome (ok, rejected: the decision failed)",
            decisions.clone(),
        );
        registry.register(
            "decision_seconds",
            "Time to decide, request body to response body",
            latency.clone(),
        );
        registry.register(
            "reloads",
            "Pack reloads and activations, by outcome (ok, refused)",
            reloads.clone(),
        );
        let log = LogCounters::default();
        registry.register(
            "decision_log_written",
            "Decisions written to the decision log",
            log.written.clone(),
        );
        registry.register(
            "decision_log_failed",
            "Decisions the log could not write after retrying",
            log.failed.clone(),
        );
        registry.register(
            "decision_log_batches",
            "Transactions the decision log writer committed",
            log.batches.clone(),
        );
        Metrics {
            registry,
            decisions,
            latency,
            reloads,
            log,
        }
    }
}

impl Metrics {
    pub fn decision(&self, policy: &str, ok: bool, seconds: f64) {
        let labels = DecisionLabels {
            policy: policy.to_string(),
            outcome: if ok { "ok" } else { "rejected" },
        };
        self.decisions.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    pub fn reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&ReloadLabels {
                outcome: if ok { "ok" } else { "refused" },
            })
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

pub struct AppState {
    pub snapshot: ArcSwap<Snapshot>,
    pub rules_dir: PathBuf,
    pub status: RwLock<ReloadStatus>,
    pub tokens: Tokens,
    pub metrics: Metrics,
    pub store: Arc<Store>,
    pub log: DecisionLog,
    /// One activation at a time (a folder reload, an upload, a rollback).
    pub activating: tokio::sync::Mutex<()>,
    /// The server's one clock: decisions and the workflow read it.
    pub clock: Arc<Clock>,
    /// Where decisions that can take long run (see [`crate::long_work`]).
    pub long_work: crate::long_work::LongWork,
    /// Deals, approvals, timers and the outbox.
    pub workflow: Arc<Workflow>,
}

/// How a server state is put together.
pub struct Setup {
    pub snapshot: Snapshot,
    /// How the snapshot came to be active.
    pub activation: Option<dealrules_store::Activation>,
    pub rules_dir: PathBuf,
    pub store: Arc<Store>,
    /// Tokens that are not in the store (`DEALRULES_ADMIN_TOKEN`).
    pub fixed_tokens: TokenBook,
    pub decision_log: bool,
    pub clock: Clock,
}

impl AppState {
    /// Loads the stored tokens and starts the decision log writer.
    pub async fn start(setup: Setup) -> Result<Arc<AppState>, String> {
        let metrics = Metrics::default();
        let log = if setup.decision_log {
            DecisionLog::start(setup.store.clone(), metrics.log.clone())
        } else {
            DecisionLog::off()
        };
        let tokens = Tokens::new(setup.fixed_tokens);
        tokens.refresh(&setup.store).await.map_err(|e| e.to_string())?;
        let (activated_at, activated_by, source) = match &setup.activation {
            Some(a) => (a.activated_at.clone(), a.activated_by.clone(), a.source),
            None => (now(), "directory".into(), ActivationSource::Directory),
        };
        let status = ReloadStatus {
            version: setup.snapshot.version.to_string(),
            activated_at,
            activated_by,
            source,
            rules_dir: setup.rules_dir.display().to_string(),
            store: setup.store.url().to_string(),
            decision_log: log.is_on(),
            ..Default::default()
        };
        let clock = Arc::new(setup.clock);
        let long_work = crate::long_work::LongWork::default();
        let workflow = Workflow::new(
            setup.store.clone(),
            clock.clone(),
            long_work.pool(),
            format!("{}-{}", hostname(), std::process::id()),
        )
        .map_err(|e| e.to_string())?;
        Ok(Arc::new(AppState {
            snapshot: ArcSwap::from_pointee(setup.snapshot),
            rules_dir: setup.rules_dir,
            status: RwLock::new(status),
            tokens,
            metrics,
            store: setup.store,
            log,
            activating: tokio::sync::Mutex::new(()),
            clock,
            long_work,
            workflow: Arc::new(workflow),
        }))
    }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into())
}
