//! Decisions that can take long (plugin calls, each up to its deadline;
//! incentive plans over a period of deals) run here, on a bounded pool of
//! blocking threads, never on the async workers that answer health checks
//! and every other request. A storm of spinning plugins fills this pool and
//! its queue, then gets a quick 503 with Retry-After; nothing else waits.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::WorkflowError;

/// Long decisions running at once.
pub const RUNNING: usize = 8;
/// Long decisions waiting for a thread, beyond which callers get 503.
pub const QUEUED: usize = 64;

pub struct LongWork {
    /// Held while a decision runs.
    running: Arc<Semaphore>,
    /// Held while a decision runs or waits: its size bounds the queue.
    admitted: Arc<Semaphore>,
}

impl Default for LongWork {
    fn default() -> Self {
        LongWork::new(RUNNING, QUEUED)
    }
}

impl LongWork {
    pub fn new(running: usize, queued: usize) -> LongWork {
        LongWork {
            running: Arc::new(Semaphore::new(running)),
            admitted: Arc::new(Semaphore::new(running + queued)),
        }
    }

    /// Runs `work` on a blocking thread once one of the pool's places is
    /// free; 503 at once when the queue is full.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, WorkflowError> {
        let Ok(admitted) = self.admitted.clone().try_acquire_owned() else {
            return Err(WorkflowError::Busy(
                "too many long-running decisions (plugin calls, incentive plans) are waiting; try again shortly".into(),
            ));
        };
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| WorkflowError::Internal(e.to_string()))?;
        let out = tokio::task::spawn_blocking(move || {
            let out = work();
            drop(running);
            drop(admitted);
            out
        })
        .await
        .map_err(|e| WorkflowError::Internal(format!("a long decision failed: {e}")))?;
        Ok(out)
    }

    /// Places free now (for the status page and tests).
    pub fn free(&self) -> usize {
        self.running.available_permits()
    }
}
