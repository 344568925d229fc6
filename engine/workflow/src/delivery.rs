//! Delivery of the outbox: each pending notification is handed to a
//! [`Deliver`] (the server's webhook client) with its id as the
//! idempotency key (delivery is at least once); failures are tried again
//! after 2, 4, 8, ... seconds (at most an hour apart), 8 times in all.

use std::future::Future;

use dealrules_store::{Outbox, OutboxRow};

use crate::clock::Clock;
use crate::error::WorkflowError;

/// Attempts before a notification is given up.
pub const ATTEMPTS: i64 = 8;

/// Where notifications go.
pub trait Deliver: Send + Sync {
    /// Delivers one notification (`body`, JSON); the error says why not.
    fn deliver(&self, id: &str, body: String) -> impl Future<Output = Result<(), String>> + Send;
}

/// A notification as delivered.
pub fn payload(n: &OutboxRow) -> String {
    serde_json::json!({ "id": n.id, "deal": n.deal_id, "template": n.template, "recipient": n.recipient, "body": n.body, "created_at": n.created_at }).to_string()
}

/// One round: claims up to `limit` due notifications (each for a minute,
/// so another node does not send it meanwhile), delivers them and
/// records each attempt. Returns how many were delivered.
pub async fn deliver_due(
    outbox: &Outbox,
    clock: &Clock,
    to: &impl Deliver,
    limit: i64,
) -> Result<usize, WorkflowError> {
    let now = clock.now();
    let due = outbox.due_outbox(&dealrules_store::timestamp(now), limit).await?;
    let mut delivered = 0;
    for n in due {
        let lease = dealrules_store::timestamp(now + chrono::Duration::seconds(60));
        if !outbox.claim_outbox(&n.id, &n.next_attempt_at, &lease).await? {
            continue;
        }
        match to.deliver(&n.id, payload(&n)).await {
            Ok(()) => {
                outbox.outbox_attempt(&n.id, true, None, None).await?;
                delivered += 1;
            }
            Err(e) => {
                let attempts = n.attempts + 1;
                let next = (attempts < ATTEMPTS).then(|| {
                    dealrules_store::timestamp(clock.now() + chrono::Duration::seconds((1i64 << attempts).min(3600)))
                });
                outbox.outbox_attempt(&n.id, false, Some(&e), next.as_deref()).await?;
            }
        }
    }
    Ok(delivered)
}
