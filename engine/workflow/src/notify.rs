//! Notifications: rendered into the outbox inside the deal's transaction.

use dealrules_store::{Conn, Deal, OutboxRow, OutboxState, People};
use serde_json::{Value as Json, json};

use crate::cx::Cx;
use crate::error::WorkflowError;

/// Locales notifications are written in besides English.
const LOCALES: &[&str] = &["zh-CN"];

/// The template for the recipient: `NAME.LOCALE` when the recipient is a
/// person whose roster entry (in force today) has a `locale` attribute
/// with such a variant (`zh-CN`, or `zh` and `zh-Hans` for it), else
/// `NAME`. Group recipients (`role:...`) read English.
pub(crate) async fn localized(
    people: &People,
    templates: &tera::Tera,
    conn: &mut Conn,
    template: &str,
    to: &str,
    now: &str,
) -> Result<String, WorkflowError> {
    if to.starts_with("role:") || to.is_empty() {
        return Ok(template.to_string());
    }
    let today = now.get(..10).unwrap_or(now);
    let locale = people
        .person_on_in(conn, to, today)
        .await?
        .and_then(|p| p.attributes.get("locale").and_then(|l| l.as_str()).map(str::to_string));
    let Some(locale) = locale else {
        return Ok(template.to_string());
    };
    let wanted = match locale.as_str() {
        "zh" | "zh-Hans" | "zh-CN" | "zh_CN" => "zh-CN",
        other => other,
    };
    let variant = format!("{template}.{wanted}");
    if LOCALES.contains(&wanted) && templates.get_template_names().any(|n| n == variant) {
        Ok(variant)
    } else {
        Ok(template.to_string())
    }
}

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
    let chosen = localized(&cx.people, cx.templates, conn, template, to, &cx.now).await?;
    match cx.templates.render(&chosen, &context) {
        Ok(body) => {
            let row = OutboxRow {
                id: cx.deals.new_id(),
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
            cx.outbox.insert_outbox(conn, &row).await?;
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
