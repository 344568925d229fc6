//! Decisions that can take long (plugin calls, each up to its deadline;
//! incentive plans over a period of deals) run on a bounded pool of
//! blocking threads, never on the async workers that answer health checks
//! and every other request. A storm of spinning plugins fills this pool and
//! its queue, then gets a quick 503 with Retry-After; nothing else waits.
//!
//! The pool is the workflow runtime's ([`dealrules_workflow::LongWork`]):
//! decisions and the workflow's plugin actions share it.

use std::sync::Arc;

use crate::error::ApiError;

pub use dealrules_workflow::{QUEUED, RUNNING};

#[derive(Clone, Default)]
pub struct LongWork {
    pool: Arc<dealrules_workflow::LongWork>,
}

impl LongWork {
    pub fn new(running: usize, queued: usize) -> LongWork {
        LongWork {
            pool: Arc::new(dealrules_workflow::LongWork::new(running, queued)),
        }
    }

    /// Runs `work` on a blocking thread once one of the pool's places is
    /// free; 503 at once when the queue is full.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
        Ok(self.pool.run(work).await?)
    }

    /// Places free now (for the status page and tests).
    pub fn free(&self) -> usize {
        self.pool.free()
    }

    /// The pool itself, to share with the workflow runtime.
    pub fn pool(&self) -> Arc<dealrules_workflow::LongWork> {
        self.pool.clone()
    }
}
