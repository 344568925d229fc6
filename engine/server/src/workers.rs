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
                match crate::workflow::fire_due_timers(&state, 100).await {
                    Ok(100) => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::error!(error = ?e, "firing due timers failed");
                        break;
                    }
                }
            }
        }
    });
}

/// Delivery: POST each pending notification to `url` as JSON, with the
/// notification's id as `Idempotency-Key` (delivery is at least once);
/// failures are tried again after 2, 4, 8, ... seconds (at most an hour
/// apart), 8 times in all.
pub fn webhook(state: Arc<AppState>, url: String) {
    tokio::spawn(async move {
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<Full<Bytes>>();
        let mut every = tokio::time::interval(Duration::from_millis(500));
        loop {
            every.tick().await;
            let now = state.clock.now();
            let Ok(due) = state.store.due_outbox(&dealrules_store::timestamp(now), 50).await else {
                continue;
            };
            for n in due {
                let lease = dealrules_store::timestamp(now + chrono::Duration::seconds(60));
                if !state
                    .store
                    .claim_outbox(&n.id, &n.next_attempt_at, &lease)
                    .await
                    .unwrap_or(false)
                {
                    continue;
                }
                let body = serde_json::json!({ "id": n.id, "deal": n.deal_id, "template": n.template, "recipient": n.recipient, "body": n.body, "created_at": n.created_at });
                let request = hyper::Request::post(&url)
                    .header("content-type", "application/json")
                    .header("idempotency-key", &n.id)
                    .body(Full::new(Bytes::from(body.to_string())));
                let result = match request {
                    Ok(req) => match tokio::time::timeout(Duration::from_secs(10), client.request(req)).await {
                        Ok(Ok(res)) if res.status().is_success() => {
                            let _ = res.into_body().collect().await;
                            Ok(())
                        }
                        Ok(Ok(res)) => Err(format!("the webhook answered {}", res.status())),
                        Ok(Err(e)) => Err(format!("cannot reach the webhook: {e}")),
                        Err(_) => Err("the webhook did not answer within 10 s".to_string()),
                    },
                    Err(e) => Err(format!("bad webhook URL: {e}")),
                };
                let outcome = match &result {
                    Ok(()) => state.store.outbox_attempt(&n.id, true, None, None).await,
                    Err(e) => {
                        let attempts = n.attempts + 1;
                        let next = (attempts < 8).then(|| {
                            dealrules_store::timestamp(
                                state.clock.now() + chrono::Duration::seconds((1i64 << attempts).min(3600)),
                            )
                        });
                        state.store.outbox_attempt(&n.id, false, Some(e), next.as_deref()).await
                    }
                };
                if let Err(e) = outcome {
                    tracing::error!(error = %e, "delivering the outbox failed");
                }
            }
        }
    });
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
            if let Err(e) = crate::reload::follow(&state).await {
                tracing::warn!(error = %e, "following another node's activation failed");
            }
        }
    });
}
