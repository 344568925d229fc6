//! How far the incentive runs computing on this node have got (kept in
//! memory: another node shows a run without it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// How far a run computing on this node has got: deals read of the
/// deals the store holds (times the run's plans), then computing.
#[derive(Debug, Default)]
pub struct RunProgress {
    pub read: AtomicU64,
    pub total: AtomicU64,
    pub computing: AtomicBool,
}

/// The runs computing on this node, by id.
pub type ProgressBoard = Mutex<HashMap<String, Arc<RunProgress>>>;

/// A running run's progress, as `GET /v1/incentives/runs/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// `reading` (deals from the store) or `computing` (the statements).
    pub phase: &'static str,
    /// Deals read so far.
    pub processed: u64,
    /// Deals to read: the deals the store holds, once per plan.
    pub total: u64,
}
