//! What every request shares: the active snapshot (swapped whole on reload),
//! the reload status, the tokens and the counters.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

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

#[derive(Debug, Default)]
pub struct Counters {
    pub decisions: AtomicU64,
    pub decision_errors: AtomicU64,
    pub reloads: AtomicU64,
    pub failed_reloads: AtomicU64,
}

impl Counters {
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct AppState {
    pub snapshot: ArcSwap<Snapshot>,
    pub rules_dir: PathBuf,
    pub status: RwLock<ReloadStatus>,
    pub tokens: TokenBook,
    pub counters: Counters,
}

impl AppState {
    pub fn new(snapshot: Snapshot, rules_dir: PathBuf, tokens: TokenBook) -> Arc<AppState> {
        let status = ReloadStatus { version: snapshot.version.to_string(), activated_at: now(), ..Default::default() };
        Arc::new(AppState { snapshot: ArcSwap::from_pointee(snapshot), rules_dir, status: RwLock::new(status), tokens, counters: Counters::default() })
    }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
