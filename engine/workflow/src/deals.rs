//! Deals: created in their funnel's initial stage, changed by events (field
//! updates and move requests the funnel checks), shown with their
//! approvals, timers and history.

use std::sync::Arc;

use dealrules_core::{Decision, PlannedAction, Snapshot};
use dealrules_expr::Value;
use dealrules_store::{Approval, Conn, Deal, Deals, HistoryEntry, TimerKind, TimerRow, TimerState};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use crate::actions::run_action;
use crate::cx::Cx;
use crate::error::{WorkflowError, internal};
use crate::facts::facts;
use crate::runtime::{Actor, Workflow};

/// Codes of the answers kept under an idempotency key (as first stored:
/// they read as the HTTP statuses of the answers).
const APPLIED: i64 = 200;
const REFUSED: i64 = 409;

#[derive(Debug, Deserialize)]
pub struct NewDeal {
    pub id: String,
    pub funnel: String,
    pub owner: String,
    #[serde(default = "empty_object")]
    pub fields: Json,
    /// Facts beside the deal that policies read: `rep` (with `manager`), `customer`, ...
    #[serde(default = "empty_object")]
    pub context: Json,
}

fn empty_object() -> Json {
    Json::Object(Map::new())
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// Field changes; `null` removes a field.
    Update { fields: Json },
    /// A move request.
    Move { to: String },
}

/// The client's key for an event, and what the request's text hashes to:
/// a retry with the key returns the first answer and changes nothing.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub request_hash: String,
}

/// A deal as the API shows it.
#[derive(Debug, Serialize)]
pub struct DealView {
    #[serde(flatten)]
    pub deal: Deal,
    pub approvals: Vec<Approval>,
    pub history: Vec<HistoryEntry>,
    /// Scheduled timers.
    pub timers: Vec<TimerView>,
}

#[derive(Debug, Serialize)]
pub struct TimerView {
    pub id: String,
    pub kind: TimerKind,
    pub name: String,
    pub due_at: String,
    pub state: TimerState,
}

impl From<&TimerRow> for TimerView {
    fn from(t: &TimerRow) -> Self {
        TimerView {
            id: t.id.clone(),
            kind: t.kind,
            name: t.name.clone(),
            due_at: t.due_at.clone(),
            state: t.state,
        }
    }
}

/// The deal as the API shows it, read inside a transaction (after its
/// changes, before its commit).
async fn view_in(deals: &Deals, conn: &mut Conn, id: &str) -> Result<DealView, WorkflowError> {
    let deal = deals
        .lock_deal(conn, id)
        .await?
        .ok_or_else(|| WorkflowError::NoDeal(id.into()))?;
    let approvals = deals.deal_approvals(conn, id).await?;
    let history = deals.history_in(conn, id).await?;
    let timers = deals.deal_timers(conn, id).await?.iter().map(TimerView::from).collect();
    Ok(DealView {
        deal,
        approvals,
        history,
        timers,
    })
}

/// A deal with its approvals, scheduled timers and whole history.
pub async fn deal_view(deals: &Deals, id: &str) -> Result<DealView, WorkflowError> {
    let deal = deals.deal(id).await?.ok_or_else(|| WorkflowError::NoDeal(id.into()))?;
    let approvals = deals.approvals(None, Some(id)).await?;
    let history = deals.history(id).await?;
    let timers = deals
        .timers_of(id)
        .await?
        .iter()
        .filter(|t| t.state == TimerState::Scheduled)
        .map(TimerView::from)
        .collect();
    Ok(DealView {
        deal,
        approvals,
        history,
        timers,
    })
}

impl Workflow {
    /// Creates a deal in its funnel's initial stage.
    pub async fn create_deal(
        &self,
        snapshot: &Arc<Snapshot>,
        who: &Actor,
        req: NewDeal,
    ) -> Result<DealView, WorkflowError> {
        if req.id.trim().is_empty() || req.id.chars().count() > 200 {
            return Err(WorkflowError::Invalid(
                "a deal needs an id of 1 to 200 characters".into(),
            ));
        }
        if !req.fields.is_object() || !req.context.is_object() {
            return Err(WorkflowError::Invalid("`fields` and `context` must be objects".into()));
        }
        let funnel = snapshot
            .funnel(&req.funnel)
            .ok_or_else(|| WorkflowError::Unprocessable(format!("the active pack has no Funnel `{}`", req.funnel)))?;
        let cx = Cx::new(self, snapshot, who.subject.clone());
        let deal = Deal {
            id: req.id.clone(),
            funnel: req.funnel.clone(),
            owner: req.owner.clone(),
            stage: funnel.initial.to_string(),
            fields: req.fields,
            context: req.context,
            stage_entered_at: cx.now.clone(),
            created_at: cx.now.clone(),
            updated_at: cx.now.clone(),
            revision: 1,
        };
        let mut tx = cx.deals.begin_write().await?;
        if !cx.deals.insert_deal(&mut tx, &deal).await? {
            return Err(WorkflowError::DealExists(deal.id));
        }
        cx.history(
            &mut tx,
            &deal.id,
            "created",
            json!({ "funnel": deal.funnel, "stage": deal.stage, "owner": deal.owner }),
        )
        .await?;
        let mut deal = deal;
        enter_stage(&cx, &mut tx, &mut deal, None).await?;
        tx.commit().await?;
        deal_view(&cx.deals, &req.id).await
    }

    /// Applies an event to a deal: the deal after it, as JSON text (what a
    /// retry with the same key answers). A refused move is
    /// [`WorkflowError::MoveRefused`], kept under the key as well.
    pub async fn apply_event(
        &self,
        snapshot: &Arc<Snapshot>,
        who: &Actor,
        deal_id: &str,
        event: Event,
        key: Option<&Idempotency>,
    ) -> Result<String, WorkflowError> {
        let cx = Cx::new(self, snapshot, who.subject.clone());
        let mut tx = cx.deals.begin_write().await?;
        let mut deal = cx
            .deals
            .lock_deal(&mut tx, deal_id)
            .await?
            .ok_or_else(|| WorkflowError::NoDeal(deal_id.into()))?;
        if let Some(k) = key
            && let Some((hash, code, answer)) = cx.deals.idempotent(&mut tx, deal_id, &k.key).await?
        {
            if hash != k.request_hash {
                return Err(WorkflowError::Unprocessable(format!(
                    "Idempotency-Key `{}` was used for a different request on this deal",
                    k.key
                )));
            }
            return remembered(deal_id, code, answer);
        }
        let refused = match event {
            Event::Update { fields } => {
                let changes = fields
                    .as_object()
                    .ok_or_else(|| WorkflowError::Invalid("`fields` must be an object".into()))?;
                let current = deal
                    .fields
                    .as_object_mut()
                    .ok_or_else(|| internal("stored fields are not an object"))?;
                let mut changed = Map::new();
                for (k, v) in changes {
                    if v.is_null() {
                        if current.remove(k).is_some() {
                            changed.insert(k.clone(), Json::Null);
                        }
                    } else if current.get(k) != Some(v) {
                        current.insert(k.clone(), v.clone());
                        changed.insert(k.clone(), v.clone());
                    }
                }
                deal.updated_at = cx.now.clone();
                deal.revision += 1;
                cx.deals.update_deal(&mut tx, &deal).await?;
                cx.history(&mut tx, deal_id, "update", json!({ "fields": changed }))
                    .await?;
                None
            }
            Event::Move { to } => move_deal(&cx, &mut tx, &mut deal, &to).await?,
        };
        // The answer is the deal as it now is, read in the same transaction,
        // and remembered under the key before the commit: one commit per event.
        let (code, answer) = match &refused {
            Some(reasons) => (REFUSED, json!({ "reasons": reasons }).to_string()),
            None => (
                APPLIED,
                serde_json::to_string(&view_in(&cx.deals, &mut tx, deal_id).await?).map_err(internal)?,
            ),
        };
        if let Some(k) = key {
            cx.deals
                .remember(&mut tx, deal_id, &k.key, &k.request_hash, code, &answer)
                .await?;
        }
        tx.commit().await?;
        match refused {
            Some(reasons) => Err(move_refused(deal_id, reasons)),
            None => Ok(answer),
        }
    }
}

fn move_refused(deal: &str, reasons: Vec<Json>) -> WorkflowError {
    WorkflowError::MoveRefused {
        deal: deal.into(),
        summary: reasons
            .iter()
            .filter_map(|r| r["message"].as_str())
            .collect::<Vec<_>>()
            .join("; "),
        reasons,
    }
}

/// The answer kept under an idempotency key, again.
fn remembered(deal: &str, code: i64, answer: String) -> Result<String, WorkflowError> {
    if code != REFUSED {
        return Ok(answer);
    }
    // A refusal keeps its reasons (older answers kept the whole problem
    // document, which has them too).
    let reasons = serde_json::from_str::<Json>(&answer)
        .ok()
        .and_then(|v| v.get("reasons").and_then(Json::as_array).cloned())
        .unwrap_or_default();
    Err(move_refused(deal, reasons))
}

/// Checks and applies a move; the refusal reasons when it is refused.
async fn move_deal(
    cx: &Cx<'_>,
    conn: &mut Conn,
    deal: &mut Deal,
    to: &str,
) -> Result<Option<Vec<Json>>, WorkflowError> {
    let approvals = cx.deals.deal_approvals(conn, &deal.id).await?;
    let mut input = facts(deal, &approvals);
    input["move"] = json!(to);
    let decided = cx
        .snapshot
        .decide(&deal.funnel, &Value::from_json(&input), &cx.now)
        .map_err(|e| match e {
            dealrules_core::DecideError::BadInput(m) => WorkflowError::Conflict(m),
            other => WorkflowError::Decide(other),
        })?;
    let Decision::Move(m) = decided else {
        return Err(WorkflowError::Unprocessable(format!(
            "`{}` is not a Funnel",
            deal.funnel
        )));
    };
    if !m.allowed {
        let reasons = m
            .reasons
            .iter()
            .map(|r| serde_json::to_value(r).unwrap_or(Json::Null))
            .collect::<Vec<_>>();
        cx.history(conn, &deal.id, "refused", json!({ "to": to, "reasons": reasons }))
            .await?;
        return Ok(Some(reasons));
    }
    let from = deal.stage.clone();
    deal.stage = m.to.to_string();
    deal.stage_entered_at = cx.now.clone();
    deal.updated_at = cx.now.clone();
    deal.revision += 1;
    cx.deals.update_deal(conn, deal).await?;
    cx.history(
        conn,
        &deal.id,
        "move",
        json!({ "from": from, "to": deal.stage, "transition": m.transition }),
    )
    .await?;
    // Timers of the stage left no longer apply.
    for t in cx.deals.deal_timers(conn, &deal.id).await? {
        if t.kind == TimerKind::Funnel
            && t.stage.as_deref() == Some(from.as_str())
            && cx
                .deals
                .set_timer_state(conn, &t.id, TimerState::Cancelled, &cx.now, None)
                .await?
        {
            cx.history(
                conn,
                &deal.id,
                "cancelled",
                json!({ "timer": t.name, "reason": format!("the deal left `{from}`") }),
            )
            .await?;
        }
    }
    enter_stage(cx, conn, deal, Some(&m.actions)).await?;
    Ok(None)
}

/// Runs the stage's `on_enter` actions (planned by the core's move check,
/// or planned here for a new deal's first stage) and schedules its timers.
async fn enter_stage(
    cx: &Cx<'_>,
    conn: &mut Conn,
    deal: &mut Deal,
    planned: Option<&[PlannedAction]>,
) -> Result<(), WorkflowError> {
    let funnel = cx
        .snapshot
        .funnel(&deal.funnel)
        .ok_or_else(|| internal("funnel vanished"))?;
    let stage_index = funnel.stage(&deal.stage).ok_or_else(|| internal("stage vanished"))?;
    if let Some(actions) = planned {
        for a in actions {
            run_action(cx, conn, deal, a).await?;
        }
    } else if !funnel.stages[stage_index].on_enter.is_empty() {
        cx.history(
            conn,
            &deal.id,
            "action_failed",
            json!({ "error": "actions on the initial stage run only on moves into it" }),
        )
        .await?;
    }
    for timer in &funnel.timers {
        if !timer.stages.contains(&stage_index) {
            continue;
        }
        let Some(wait) = timer.after.or(timer.every) else {
            continue;
        };
        let due = cx.clock.now() + chrono::Duration::from_std(wait).map_err(internal)?;
        let mut row = cx.scheduled(&deal.id, TimerKind::Funnel, &timer.id, due);
        row.stage = Some(deal.stage.clone());
        row.every_ms = timer.every.map(|e| e.as_millis() as i64);
        cx.deals.insert_timer(conn, &row).await?;
    }
    Ok(())
}
