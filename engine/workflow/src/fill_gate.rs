//! The fills of kept credits this process is making (see
//! `measured.rs`): one owner, so a report and the fill started when a pack
//! version goes live share one fill instead of making it twice.

use std::collections::HashMap;
use std::sync::Arc;

use dealrules_core::measure::progress::Credited;

/// A fill being stored: its id and what its maker credited.
pub(crate) type BeingStored = (String, Arc<Vec<Credited>>);

/// The fills of kept credits being made by this process, so that a report
/// (or the fill started when a pack version goes live) arriving while one
/// is made waits for it rather than making it again. Across nodes sharing
/// a PostgreSQL database the fill's row lock does the same (see
/// `measured::kept_credits`).
#[derive(Default)]
pub struct FillGate {
    making: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Fills whose credits are being stored, by key: the fill's id and the
    /// credits its maker read, for the reports that ask meanwhile.
    storing: std::sync::Mutex<HashMap<String, BeingStored>>,
    made: std::sync::atomic::AtomicU64,
    /// Fills whose credits are being stored, or whose dropped fills'
    /// credits are being deleted after (the task a maker leaves behind).
    behind: Arc<std::sync::atomic::AtomicUsize>,
}

/// One task a fill's maker left running, counted while it runs.
pub(crate) struct Behind(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Behind {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl FillGate {
    /// How many fills this process has made (read and credited whole).
    pub fn made(&self) -> u64 {
        self.made.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many tasks fills left running (storing credits, then deleting
    /// those of the fills they replaced): none once everything made is
    /// stored. What a benchmark waits for to measure one thing at a time.
    pub fn working_behind(&self) -> usize {
        self.behind.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Counts a task left running until the guard is dropped.
    pub(crate) fn leave_behind(&self) -> Behind {
        self.behind.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Behind(self.behind.clone())
    }

    pub(crate) fn count_made(&self) {
        self.made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn storing_of(&self, key: &str) -> Option<BeingStored> {
        let storing = self.storing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        storing.get(key).cloned()
    }

    pub(crate) fn set_storing(&self, key: &str, kept: Option<BeingStored>) {
        let mut storing = self.storing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match kept {
            Some(k) => storing.insert(key.to_string(), k),
            None => storing.remove(key),
        };
    }

    pub(crate) fn lock_of(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut making = self.making.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Locks no one holds or waits for are let go.
        making.retain(|_, l| Arc::strong_count(l) > 1);
        making.entry(key.to_string()).or_default().clone()
    }
}
