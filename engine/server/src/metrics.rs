//! The Prometheus metrics of `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::decision_log::LogCounters;

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
