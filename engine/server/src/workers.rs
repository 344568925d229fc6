//! What a server does besides answering requests: fire due timers, deliver
//! notifications to the webhook, and follow activations made by other
//! nodes sharing the database.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

use crate::state::AppState;

/// Fires due timers every `tick`, in batches, until none is due.
pub fn timers(state: Arc<AppState>, tick: Duration) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(tick);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            loop {
                let snapshot = state.snapshot.load_full();
                match state.workflow.fire_due_timers(&snapshot, 100).await {
                    Ok(100) => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "firing due timers failed");
                        break;
                    }
                }
            }
        }
    });
}

/// The webhook notifications are POSTed to, as JSON, with the
/// notification's id as `Idempotency-Key`.
pub struct Webhook {
    url: String,
    client: hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Webhook {
    pub fn new(url: String) -> Webhook {
        Webhook {
            url,
            client: hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http(),
        }
    }
}

impl dealrules_workflow::delivery::Deliver for Webhook {
    async fn deliver(&self, id: &str, body: String) -> Result<(), String> {
        let request = hyper::Request::post(&self.url)
            .header("content-type", "application/json")
            .header("idempotency-key", id)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("bad webhook URL: {e}"))?;
        match tokio::time::timeout(Duration::from_secs(10), self.client.request(request)).await {
            Ok(Ok(res)) if res.status().is_success() => {
                let _ = res.into_body().collect().await;
                Ok(())
            }
            Ok(Ok(res)) => Err(format!("the webhook answered {}", res.status())),
            Ok(Err(e)) => Err(format!("cannot reach the webhook: {e}")),
            Err(_) => Err("the webhook did not answer within 10 s".to_string()),
        }
    }
}

/// Delivery: every 500 ms, the due notifications go to `url` (see
/// [`dealrules_workflow::delivery`]).
pub fn webhook(state: Arc<AppState>, url: String) {
    tokio::spawn(async move {
        let hook = Webhook::new(url);
        let mut every = tokio::time::interval(Duration::from_millis(500));
        loop {
            every.tick().await;
            if let Err(e) = state.workflow.deliver_due(&hook, 50).await {
                tracing::error!(error = %e, "delivering the outbox failed");
            }
        }
    });
}

/// Watches the rules folder; changes within `debounce` of each other make
/// one reload, asked of the activation owner.
pub fn watch(state: Arc<AppState>, debounce: Duration) -> notify::Result<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&state.rules_dir, RecursiveMode::Recursive)?;
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Let a burst of writes (an editor saving, a git checkout) settle.
            tokio::time::sleep(debounce).await;
            while rx.try_recv().is_ok() {}
            state.activations.folder_changed().await;
        }
    });
    Ok(watcher)
}

/// Follows activations made elsewhere (another node, the CLI): polls every
/// 500 ms and, on PostgreSQL, wakes at once on a NOTIFY.
pub fn follow_activations(state: Arc<AppState>) {
    tokio::spawn(async move {
        let (wake, mut woken) = tokio::sync::mpsc::channel::<()>(1);
        if let Ok(Some(mut listener)) = state.store.listen_activations().await {
            tokio::spawn(async move {
                while listener.recv().await.is_ok() {
                    let _ = wake.try_send(());
                }
            });
        }
        let mut every = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = every.tick() => {},
                _ = woken.recv() => {},
            }
            if let Err(e) = state.activations.follow().await {
                tracing::warn!(error = %e, "following another node's activation failed");
            }
        }
    });
}
