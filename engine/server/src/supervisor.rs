//! Background work under one supervisor: each worker (timers, the webhook,
//! the decision log writer, token refresh, pruning, following other nodes,
//! the activation owner) runs as a task that is restarted with backoff when
//! it fails or panics, stopped on shutdown, and shown in `/v1/status` with
//! its state, restarts and last error.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A worker that ran this long before failing starts its backoff again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkerState {
    Running,
    /// Failed; waiting out its backoff before it runs again.
    Restarting,
    /// Shut down, or done.
    Stopped,
}

/// A worker as `/v1/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WorkerStatus {
    pub name: String,
    pub state: WorkerState,
    /// Times it failed and was started again.
    pub restarts: u64,
    /// Why it last failed.
    pub last_error: Option<String>,
}

/// What a worker's run ends with: `Ok` when it has nothing more to do (or
/// was told to stop), the reason when it failed.
pub type WorkerResult = Result<(), String>;

struct Inner {
    stop: watch::Sender<bool>,
    workers: Mutex<Vec<WorkerStatus>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    first_backoff: Duration,
    max_backoff: Duration,
}

impl Inner {
    fn set(&self, index: usize, change: impl FnOnce(&mut WorkerStatus)) {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = workers.get_mut(index) {
            change(w);
        }
    }
}

#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Supervisor::with_backoff(Duration::from_millis(500), Duration::from_secs(60))
    }
}

impl Supervisor {
    /// Restarts wait `first`, then twice as long each time, up to `max`.
    pub fn with_backoff(first: Duration, max: Duration) -> Supervisor {
        Supervisor {
            inner: Arc::new(Inner {
                stop: watch::channel(false).0,
                workers: Mutex::new(Vec::new()),
                tasks: Mutex::new(Vec::new()),
                first_backoff: first,
                max_backoff: max,
            }),
        }
    }

    /// Runs `work()` as worker `name` until shutdown: a run that fails or
    /// panics is started again after the backoff; a run that returns `Ok`
    /// stops the worker.
    pub fn spawn<F, Fut>(&self, name: &str, mut work: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = WorkerResult> + Send + 'static,
    {
        let inner = self.inner.clone();
        let index = {
            let mut workers = inner.workers.lock().unwrap_or_else(|p| p.into_inner());
            workers.push(WorkerStatus {
                name: name.to_string(),
                state: WorkerState::Running,
                restarts: 0,
                last_error: None,
            });
            workers.len() - 1
        };
        let name = name.to_string();
        let mut stop = inner.stop.subscribe();
        let supervised = inner.clone();
        let task = tokio::spawn(async move {
            let inner = supervised;
            let mut backoff = inner.first_backoff;
            loop {
                if *stop.borrow() {
                    break;
                }
                let started = Instant::now();
                let run = tokio::spawn(work());
                let abort = run.abort_handle();
                let ended = tokio::select! {
                    ended = run => ended,
                    _ = stop.wait_for(|s| *s) => {
                        abort.abort();
                        break;
                    }
                };
                let error = match ended {
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => e,
                    Err(e) if e.is_panic() => format!("panicked: {}", panic_text(e.into_panic())),
                    Err(e) => e.to_string(),
                };
                if started.elapsed() >= HEALTHY_RUN {
                    backoff = inner.first_backoff;
                }
                tracing::warn!(worker = %name, error = %error, retry_in_ms = backoff.as_millis() as u64, "worker failed; restarting");
                inner.set(index, |w| {
                    w.state = WorkerState::Restarting;
                    w.restarts += 1;
                    w.last_error = Some(error);
                });
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
                backoff = (backoff * 2).min(inner.max_backoff);
                inner.set(index, |w| w.state = WorkerState::Running);
            }
            inner.set(index, |w| w.state = WorkerState::Stopped);
        });
        self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()).push(task);
    }

    /// Every worker, in the order they started.
    pub fn status(&self) -> Vec<WorkerStatus> {
        self.inner.workers.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops every worker and waits until they have.
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        let tasks = std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => s.to_string(),
            Err(_) => "a panic".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn quick() -> Supervisor {
        Supervisor::with_backoff(Duration::from_millis(5), Duration::from_millis(20))
    }

    async fn until(s: &Supervisor, done: impl Fn(&[WorkerStatus]) -> bool) -> Vec<WorkerStatus> {
        for _ in 0..500 {
            let status = s.status();
            if done(&status) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("never: {:?}", s.status());
    }

    #[tokio::test]
    async fn a_failing_worker_is_restarted_and_its_status_says_so() {
        let s = quick();
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        s.spawn("flaky", move || {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                match run {
                    0 => Err("the store is not answering".to_string()),
                    1 => panic!("a bug"),
                    // Then it works, and keeps working.
                    _ => std::future::pending().await,
                }
            }
        });
        let status = until(&s, |w| w[0].restarts == 2 && w[0].state == WorkerState::Running).await;
        assert_eq!(status[0].name, "flaky");
        assert_eq!(status[0].last_error.as_deref(), Some("panicked: a bug"));
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        s.shutdown().await;
        let status = s.status();
        assert_eq!(status[0].state, WorkerState::Stopped);
        assert_eq!(status[0].restarts, 2);
    }

    #[tokio::test]
    async fn shutdown_stops_a_worker_waiting_out_its_backoff() {
        let s = Supervisor::with_backoff(Duration::from_secs(3600), Duration::from_secs(3600));
        s.spawn("broken", || async { Err::<(), _>("no".to_string()) });
        until(&s, |w| w[0].state == WorkerState::Restarting).await;
        tokio::time::timeout(Duration::from_secs(5), s.shutdown())
            .await
            .unwrap();
        assert_eq!(s.status()[0].state, WorkerState::Stopped);
        assert_eq!(s.status()[0].last_error.as_deref(), Some("no"));
    }

    #[tokio::test]
    async fn backoff_doubles_up_to_its_limit() {
        let s = Supervisor::with_backoff(Duration::from_millis(10), Duration::from_millis(40));
        let times = Arc::new(Mutex::new(Vec::new()));
        let seen = times.clone();
        s.spawn("failing", move || {
            seen.lock().unwrap().push(Instant::now());
            async { Err::<(), _>("down".to_string()) }
        });
        until(&s, |w| w[0].restarts >= 5).await;
        s.shutdown().await;
        let times = times.lock().unwrap();
        let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
        // 10, 20, 40, 40 ms at least: never quicker than the backoff.
        for (gap, least) in gaps.iter().zip([10, 20, 40, 40]) {
            assert!(*gap >= Duration::from_millis(least), "{gaps:?}");
        }
    }
}
