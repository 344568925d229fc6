//! The actions a stage or a timer runs, as the core planned them.

use dealrules_core::PlannedAction;
use dealrules_expr::Value;
use dealrules_store::{Conn, Deal};
use serde_json::{Value as Json, json};

use crate::approvals::open_approval;
use crate::cx::Cx;
use crate::error::{WorkflowError, internal};
use crate::facts::facts;
use crate::notify::notify;

/// One action; a failure is written on the deal's history and does not
/// undo the move.
pub(crate) async fn run_action(
    cx: &Cx<'_>,
    conn: &mut Conn,
    deal: &mut Deal,
    a: &PlannedAction,
) -> Result<(), WorkflowError> {
    if let Some(e) = a.error() {
        return cx
            .history(
                conn,
                &deal.id,
                "action_failed",
                json!({ "action": a.kind(), "detail": a.detail(), "error": e }),
            )
            .await;
    }
    match a {
        PlannedAction::Approval {
            policy,
            decision: Ok(decision),
        } => open_approval(cx, conn, deal, policy, decision).await,
        PlannedAction::Notify { template, to: Ok(to) } => {
            let to = match to {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            notify(cx, conn, deal, template, &to, json!({})).await
        }
        PlannedAction::Set { fields: set, .. } => {
            let fields = deal
                .fields
                .as_object_mut()
                .ok_or_else(|| internal("stored fields are not an object"))?;
            for (k, v) in set {
                fields.insert(k.clone(), v.clone());
            }
            cx.deals.update_deal(conn, deal).await?;
            cx.history(conn, &deal.id, "action", json!({ "action": "set", "fields": set }))
                .await
        }
        PlannedAction::Script { script: path } => {
            let path: &str = path;
            let approvals = cx.deals.deal_approvals(conn, &deal.id).await?;
            let mut input = facts(deal, &approvals);
            input["now"] = json!(cx.now);
            match cx.snapshot.run_script(path, &Value::from_json(&input)) {
                Ok(out) => {
                    cx.history(
                        conn,
                        &deal.id,
                        "action",
                        json!({ "action": "script", "script": path, "result": out.to_json() }),
                    )
                    .await
                }
                Err(e) => {
                    cx.history(
                        conn,
                        &deal.id,
                        "action_failed",
                        json!({ "action": "script", "script": path, "error": e.to_string() }),
                    )
                    .await
                }
            }
        }
        PlannedAction::Plugin { plugin: name, function } => {
            let name: &str = name;
            let function = function.as_deref().unwrap_or("run");
            let approvals = cx.deals.deal_approvals(conn, &deal.id).await?;
            let facts = facts(deal, &approvals);
            // Bounded by the plugin's deadline, and run on the long-work
            // pool so a spinning plugin never holds an async worker.
            let (snapshot, plugin, f) = (cx.snapshot.clone(), name.to_string(), function.to_string());
            let called = cx
                .long_work
                .run(move || snapshot.call_plugin(&plugin, &f, &facts))
                .await?;
            match called {
                Ok(out) => cx.history(conn, &deal.id, "action", json!({ "action": "plugin", "plugin": name, "function": function, "result": out.value, "fuel_used": out.fuel_used, "micros": out.micros })).await,
                Err(e) => cx.history(conn, &deal.id, "action_failed", json!({ "action": "plugin", "plugin": name, "function": function, "error": e.to_string(), "kind": e.kind })).await,
            }
        }
        // An action with an error was written above.
        PlannedAction::Approval { decision: Err(_), .. } | PlannedAction::Notify { to: Err(_), .. } => Ok(()),
    }
}
