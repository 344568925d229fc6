//! What a server does besides answering requests, each a worker of the
//! state's [`Supervisor`](crate::supervisor::Supervisor): fire due timers,
//! deliver notifications to the webhook, follow activations made by other
//! nodes sharing the database, refresh tokens, watch the rules folder.
//! A worker's run ends with an error when something fails; the
//! supervisor starts it again after a backoff.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

use arc_swap::ArcSwap;
use dealrules_core::Snapshot;
use dealrules_store::{Outbox, Packs};
use dealrules_workflow::{Clock, Workflow};

use crate::activation::Activations;
use crate::state::AppState;
use crate::supervisor::{Supervisor, WorkerResult};

/// Fires due timers every `tick`, in batches, until none is due.
pub fn timers(state: Arc<AppState>, tick: Duration) {
    let (active, workflow) = (state.snapshot.clone(), state.workflow.clone());
    state
        .workers
        .spawn("timers", move || fire_timers(active.clone(), workflow.clone(), tick));
}

async fn fire_timers(active: Arc<ArcSwap<Snapshot>>, workflow: Arc<Workflow>, tick: Duration) -> WorkerResult {
    let mut every = tokio::time::interval(tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        loop {
            let snapshot = active.load_full();
            match workflow.fire_due_timers(&snapshot, 100).await {
                Ok(100) => continue,
                Ok(_) => break,
                Err(e) => return Err(format!("firing due timers failed: {e}")),
            }
        }
    }
}

/// The scheduled pace check of every Targets document with a
/// `pace_alert`, looked at every `tick`: the check itself runs once per due
/// time of its schedule across the nodes sharing the database.
pub fn pace_checks(state: Arc<AppState>, tick: Duration) {
    let (active, workflow) = (state.snapshot.clone(), state.workflow.clone());
    state.workers.spawn("pace-checks", move || {
        check_pace(active.clone(), workflow.clone(), tick)
    });
}

async fn check_pace(active: Arc<ArcSwap<Snapshot>>, workflow: Arc<Workflow>, tick: Duration) -> WorkerResult {
    let mut every = tokio::time::interval(tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let snapshot = active.load_full();
        workflow
            .check_pace(&snapshot)
            .await
            .map_err(|e| format!("the pace check failed: {e}"))?;
    }
}

/// Fires scheduled change requests that are due, every `tick`: each node
/// runs this, and a lease in the store gives each change to one of them.
/// The same tick starts again the impact jobs whose node stopped.
pub fn scheduled_changes(state: Arc<AppState>, tick: Duration) {
    let workers = state.workers.clone();
    workers.spawn("scheduled-changes", move || fire_changes(state.clone(), tick));
}

async fn fire_changes(state: Arc<AppState>, tick: Duration) -> WorkerResult {
    let node = state.workflow.node.clone();
    let mut every = tokio::time::interval(tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        crate::changes::fire_due(&state, &node)
            .await
            .map_err(|e| format!("firing scheduled changes failed: {e}"))?;
        crate::changes::resume_impacts(&state)
            .await
            .map_err(|e| format!("resuming impact jobs failed: {e}"))?;
    }
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
pub fn webhook(workers: &Supervisor, outbox: Outbox, clock: Arc<Clock>, url: String) {
    let hook = Arc::new(Webhook::new(url));
    workers.spawn("webhook", move || deliver(outbox.clone(), clock.clone(), hook.clone()));
}

async fn deliver(outbox: Outbox, clock: Arc<Clock>, hook: Arc<Webhook>) -> WorkerResult {
    let mut every = tokio::time::interval(Duration::from_millis(500));
    loop {
        every.tick().await;
        dealrules_workflow::delivery::deliver_due(&outbox, &clock, &*hook, 50)
            .await
            .map_err(|e| format!("delivering the outbox failed: {e}"))?;
    }
}

/// Tokens made or revoked elsewhere (the CLI, another node) take effect.
pub fn tokens_refresh(state: Arc<AppState>, every: Duration) {
    let workers = state.workers.clone();
    workers.spawn("token-refresh", move || refresh_tokens(state.clone(), every));
}

async fn refresh_tokens(state: Arc<AppState>, every: Duration) -> WorkerResult {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        state
            .tokens
            .refresh(&state.store.tokens())
            .await
            .map_err(|e| format!("refreshing tokens failed: {e}"))?;
    }
}

/// Watches the rules folder; changes within `debounce` of each other make
/// one reload, asked of the activation owner.
pub fn watch(state: Arc<AppState>, debounce: Duration) -> notify::Result<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&state.rules_dir, RecursiveMode::Recursive)?;
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let workers = state.workers.clone();
    workers.spawn("rules-folder", move || {
        let (state, rx) = (state.clone(), rx.clone());
        async move {
            let mut rx = rx.lock().await;
            while rx.recv().await.is_some() {
                // Let a burst of writes (an editor saving, a git checkout) settle.
                tokio::time::sleep(debounce).await;
                while rx.try_recv().is_ok() {}
                state.activations.folder_changed().await;
            }
            Ok(())
        }
    });
    Ok(watcher)
}

/// Follows activations made elsewhere (another node, the CLI): polls every
/// 500 ms and, on PostgreSQL, wakes at once on a NOTIFY.
pub fn follow_activations(state: Arc<AppState>) {
    let (packs, activations) = (state.store.packs(), state.activations.clone());
    state
        .workers
        .spawn("follower", move || follow(packs.clone(), activations.clone()));
}

async fn follow(packs: Packs, activations: Activations) -> WorkerResult {
    let mut listener = packs.listen_activations().await.ok().flatten();
    let mut every = tokio::time::interval(Duration::from_millis(500));
    loop {
        match &mut listener {
            Some(l) => tokio::select! {
                _ = every.tick() => {},
                woken = l.recv() => {
                    if woken.is_err() {
                        // The connection went: poll until a restart listens again.
                        listener = None;
                    }
                },
            },
            None => {
                every.tick().await;
            }
        }
        activations
            .follow()
            .await
            .map_err(|e| format!("following another node's activation failed: {e}"))?;
    }
}
