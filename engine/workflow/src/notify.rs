//! Notifications: rendered into the outbox inside the deal's transaction.

use dealrules_store::{Conn, Deal, OutboxRow, OutboxState};
use serde_json::{Value as Json, json};

use crate::cx::Cx;
use crate::error::WorkflowError;

/// Renders a notification into the outbox; a template that does not
/// render is a failed action on the deal's history.
pub(crate) async fn notify(
    cx: &Cx<'_>,
    conn: &mut Conn,
    deal: &Deal,
    template: &str,
    to: &str,
    extra: Json,
) -> Result<(), WorkflowError> {
    let mut context = tera::Context::new();
    context.insert("deal", deal);
    context.insert("recipient", to);
    if let Some(extra) = extra.as_object() {
        for (k, v) in extra {
            context.insert(k, v);
        }
    }
    match cx.wf.templates.render(template, &context) {
        Ok(body) => {
            let row = OutboxRow {
                id: cx.wf.store.new_id(),
                deal_id: Some(deal.id.clone()),
                template: template.into(),
                recipient: to.into(),
                body,
                state: OutboxState::Pending,
                attempts: 0,
                next_attempt_at: cx.now.clone(),
                last_error: None,
                created_at: cx.now.clone(),
                sent_at: None,
            };
            cx.wf.store.insert_outbox(conn, &row).await?;
            cx.history(
                conn,
                &deal.id,
                "action",
                json!({ "action": "notify", "template": template, "to": to, "outbox": row.id }),
            )
            .await
        }
        Err(e) => {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            cx.history(
                conn,
                &deal.id,
                "action_failed",
                json!({ "action": "notify", "template": template, "error": msg }),
            )
            .await
        }
    }
}
