//! The runtime's clock.

use std::sync::atomic::{AtomicI64, Ordering};

/// The system clock moved by an offset (`--clock-offset`, for drills and
/// tests that must not wait 14 days; tests in the process move it with
/// [`Clock::advance`]). A server has one: decisions, timers and deal
/// history read it.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn with_offset(offset: chrono::Duration) -> Clock {
        Clock {
            offset_ms: AtomicI64::new(offset.num_milliseconds()),
        }
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.offset_ms.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Now as stored: RFC 3339 UTC with milliseconds.
    pub fn text(&self) -> String {
        dealrules_store::timestamp(self.now())
    }
}
