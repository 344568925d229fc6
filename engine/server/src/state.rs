//! What every request shares: the active snapshot (swapped whole on reload),
//! the reload status, the tokens and the counters.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use arc_swap::ArcSwap;
use dealrules_core::Snapshot;
use serde::Serialize;

use crate::auth::TokenBook;

#[derive(Debug, Clone, Serialize, Default)]
pub struct ReloadStatus {
    /// The active pack version.
    pub version: String,
    /// When the active pack was activated (RFC 3339).
    pub activated_at: String,
    /// The last reload attempt, good or bad.
    pub last_reload_at: Option<String>,
    /// Why the last reload was refused (`file:line:col: message` lines);
    /// `None` when it succeeded.
    pub last_reload_errors: Option<Vec<String>>,
    pub reloads: u64,
    pub failed_reloads: u64,
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
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("dealrules");
        let decisions = Family::<DecisionLabels, Counter>::default();
        // 10 µs to about 160 ms.
        let latency = Family::<DecisionLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.00001, 2.0, 15)));
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register("decisions", "Decisions made, by policy and outcome (ok, rejected: the decision failed)", decisions.clone());
        registry.register("decision_seconds", "Time to decide, request body to response body", latency.clone());
        registry.register("reloads", "Pack reloads, by outcome (ok, refused)", reloads.clone());
        Metrics { registry, decisions, latency, reloads }
    }
}

impl Metrics {
    pub fn decision(&self, policy: &str, ok: bool, seconds: f64) {
        let labels = DecisionLabels { policy: policy.to_string(), outcome: if ok { "ok" } else { "rejected" } };
        self.decisions.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    pub fn reload(&self, ok: bool) {
        self.reloads.get_or_create(&ReloadLabels { outcome: if ok { "ok" } else { "refused" } }).inc();
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
    pub tokens: TokenBook,
    pub metrics: Metrics,
}

impl AppState {
    pub fn new(snapshot: Snapshot, rules_dir: PathBuf, tokens: TokenBook) -> Arc<AppState> {
        let status = ReloadStatus { version: snapshot.version.to_string(), activated_at: now(), ..Default::default() };
        Arc::new(AppState { snapshot: ArcSwap::from_pointee(snapshot), rules_dir, status: RwLock::new(status), tokens, metrics: Metrics::default() })
    }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
