//! The decision log, written off the request path: a request hands its
//! record to a bounded queue and goes on; one writer task takes whatever
//! has queued up (up to a batch) and writes it in one transaction. Under
//! load the batches grow, so logging does not bound throughput; when the
//! queue is full a request waits for room rather than lose a record.

use std::sync::Arc;
use std::time::Duration;

use dealrules_store::{DecisionRecord, Decisions};
use tokio::sync::{mpsc, oneshot};

use crate::supervisor::{Supervisor, WorkerResult};

/// Records waiting to be written, at most.
pub const QUEUE: usize = 65_536;
/// Records written in one transaction, at most.
pub const BATCH: usize = 2_000;

enum Msg {
    Record(DecisionRecord),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct DecisionLog {
    tx: Option<mpsc::Sender<Msg>>,
}

/// What the writer counts, for `/metrics`.
#[derive(Clone, Default)]
pub struct LogCounters {
    pub written: prometheus_client::metrics::counter::Counter,
    pub failed: prometheus_client::metrics::counter::Counter,
    pub batches: prometheus_client::metrics::counter::Counter,
}

impl DecisionLog {
    /// No log: records are dropped where they are made.
    pub fn off() -> DecisionLog {
        DecisionLog { tx: None }
    }

    pub fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    /// Starts the writer, as the supervisor's worker `decision-log`.
    pub fn start(log: Decisions, counters: LogCounters, workers: &Supervisor) -> DecisionLog {
        let (tx, rx) = mpsc::channel(QUEUE);
        // A restarted writer goes on with the same queue.
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        workers.spawn("decision-log", move || {
            writer(log.clone(), rx.clone(), counters.clone())
        });
        DecisionLog { tx: Some(tx) }
    }

    /// Queues a record; waits only when the queue is full.
    pub async fn record(&self, record: DecisionRecord) {
        if let Some(tx) = &self.tx
            && let Err(mpsc::error::TrySendError::Full(msg)) = tx.try_send(Msg::Record(record))
        {
            let _ = tx.send(msg).await;
        }
    }

    /// Returns once every record queued before the call is written (or
    /// failed for good).
    pub async fn flush(&self) {
        if let Some(tx) = &self.tx {
            let (done, wait) = oneshot::channel();
            if tx.send(Msg::Flush(done)).await.is_ok() {
                let _ = wait.await;
            }
        }
    }
}

async fn writer(
    log: Decisions,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Msg>>>,
    counters: LogCounters,
) -> WorkerResult {
    let mut rx = rx.lock().await;
    let mut batch = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(r) => batch.push(r),
                Msg::Flush(done) => flushes.push(done),
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            write(&log, &batch, &counters).await;
            batch.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
    Ok(())
}

/// Writes a batch, trying again with backoff when the database is busy or
/// away; a batch that still fails is counted and reported, not retried
/// forever (the requests it logs were answered long ago).
async fn write(log: &Decisions, batch: &[DecisionRecord], counters: &LogCounters) {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=5 {
        match log.log_decisions(batch).await {
            Ok(()) => {
                counters.written.inc_by(batch.len() as u64);
                counters.batches.inc();
                return;
            }
            Err(e) if attempt == 5 => {
                tracing::error!(records = batch.len(), error = %e, "decision log: records could not be written");
                counters.failed.inc_by(batch.len() as u64);
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 3;
            }
        }
    }
}

/// Deletes what is older than `keep`, now and every hour (the
/// supervisor's worker `decision-log-pruning`).
pub fn prune_every_hour(log: Decisions, keep: Duration, workers: &Supervisor) {
    workers.spawn("decision-log-pruning", move || prune(log.clone(), keep));
}

async fn prune(log: Decisions, keep: Duration) -> WorkerResult {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        let Some(cut) = chrono::Utc::now().checked_sub_signed(keep) else {
            continue;
        };
        match log.prune_decisions(&dealrules_store::timestamp(cut)).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(records = n, before = %dealrules_store::timestamp(cut), "decision log: old records removed")
            }
            Err(e) => return Err(format!("decision log: pruning failed: {e}")),
        }
    }
}
