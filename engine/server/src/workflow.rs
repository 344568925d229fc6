//! The workflow runtime: deals moving through the active Funnel, approval
//! requests opened by the `approval:` action, actions run on entering a
//! stage, durable timers and the notification outbox.
//!
//! Every change to a deal happens in one write transaction that first
//! locks the deal's row: the check, the new stage, the history, the
//! approval request, the timers and the notifications are stored together
//! or not at all, and two requests on one deal queue. The checks themselves
//! are the pure core's ([`dealrules_core::Snapshot`]).

use std::sync::Arc;

use dealrules_core::{Decision, Snapshot};
use dealrules_expr::Value;
use dealrules_store::{Approval, ApprovalStep, Deal, HistoryEntry, OutboxRow, Store, TimerRow};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use sqlx::AnyConnection;

use crate::auth::{Principal, Role};
use crate::error::ApiError;
use crate::state::AppState;

/// The runtime's clock: the system clock moved by an offset
/// (`--clock-offset`, for drills and tests that must not wait 14 days;
/// tests in the process move it with [`Clock::advance`]).
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: std::sync::atomic::AtomicI64,
}

impl Clock {
    pub fn with_offset(offset: chrono::Duration) -> Clock {
        Clock {
            offset_ms: std::sync::atomic::AtomicI64::new(offset.num_milliseconds()),
        }
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), std::sync::atomic::Ordering::SeqCst);
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(std::sync::atomic::Ordering::SeqCst))
    }

    pub fn text(&self) -> String {
        dealrules_store::timestamp(self.now())
    }
}

/// The notification templates of `templates/notifications/`, embedded.
pub fn notification_templates() -> Result<tera::Tera, String> {
    let mut t = tera::Tera::default();
    t.autoescape_on(vec![]);
    let files: [(&str, &str); 6] = [
        (
            "proposal-sent",
            include_str!("../../../templates/notifications/proposal-sent.tera"),
        ),
        (
            "stale-deal",
            include_str!("../../../templates/notifications/stale-deal.tera"),
        ),
        (
            "customer-revisit",
            include_str!("../../../templates/notifications/customer-revisit.tera"),
        ),
        (
            "approval-requested",
            include_str!("../../../templates/notifications/approval-requested.tera"),
        ),
        (
            "approval-reminder",
            include_str!("../../../templates/notifications/approval-reminder.tera"),
        ),
        (
            "approval-escalated",
            include_str!("../../../templates/notifications/approval-escalated.tera"),
        ),
    ];
    t.add_raw_templates(files)
        .map_err(|e| format!("notification templates: {e}"))?;
    Ok(t)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewDeal {
    pub id: String,
    pub funnel: String,
    pub owner: String,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub fields: Json,
    /// Facts beside the deal that policies read: `rep` (with `manager`), `customer`, ...
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub context: Json,
}

fn empty_object() -> Json {
    Json::Object(Map::new())
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// Field changes; `null` removes a field.
    Update {
        #[schema(value_type = Object)]
        fields: Json,
    },
    /// A move request.
    Move { to: String },
}

/// A deal as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DealView {
    #[serde(flatten)]
    pub deal: Deal,
    pub approvals: Vec<Approval>,
    pub history: Vec<HistoryEntry>,
    /// Scheduled timers.
    pub timers: Vec<TimerView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TimerView {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub due_at: String,
    pub state: String,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

impl From<&TimerRow> for TimerView {
    fn from(t: &TimerRow) -> Self {
        TimerView {
            id: t.id.clone(),
            kind: t.kind.clone(),
            name: t.name.clone(),
            due_at: t.due_at.clone(),
            state: t.state.clone(),
        }
    }
}

pub async fn view(store: &Store, id: &str) -> Result<DealView, ApiError> {
    let deal = store
        .deal(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no deal `{id}`")))?;
    let approvals = store.approvals(None, Some(id)).await?;
    let history = store.history(id).await?;
    let timers = store
        .timers_of(id)
        .await?
        .iter()
        .filter(|t| t.state == "scheduled")
        .map(TimerView::from)
        .collect();
    Ok(DealView {
        deal,
        approvals,
        history,
        timers,
    })
}

/// The deal as the API shows it, read inside a transaction (after its
/// changes, before its commit).
async fn view_in(store: &Store, conn: &mut AnyConnection, id: &str) -> Result<DealView, ApiError> {
    let deal = store
        .lock_deal(conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no deal `{id}`")))?;
    let approvals = store.deal_approvals(conn, id).await?;
    let history = store.history_in(conn, id).await?;
    let timers = store.deal_timers(conn, id).await?.iter().map(TimerView::from).collect();
    Ok(DealView {
        deal,
        approvals,
        history,
        timers,
    })
}

/// What a change to a deal needs around it.
struct Cx<'a> {
    state: &'a AppState,
    snapshot: &'a Arc<Snapshot>,
    now: String,
    actor: String,
}

impl Cx<'_> {
    fn version(&self) -> &str {
        &self.snapshot.version
    }

    async fn history(&self, conn: &mut AnyConnection, deal: &str, kind: &str, detail: Json) -> Result<(), ApiError> {
        let e = HistoryEntry {
            id: self.state.store.new_id(),
            at: self.now.clone(),
            kind: kind.into(),
            detail,
            version: self.version().into(),
            actor: self.actor.clone(),
        };
        self.state.store.insert_history_at(conn, deal, &e).await?;
        Ok(())
    }
}

/// The facts a deal's policies read: its context (`rep`, `customer`, ...)
/// and `deal` (its fields with id, owner, stage, funnel and the latest
/// approval per policy).
fn facts(deal: &Deal, approvals: &[Approval]) -> Json {
    let mut d = deal.fields.as_object().cloned().unwrap_or_default();
    d.insert("id".into(), json!(deal.id));
    d.insert("owner".into(), json!(deal.owner));
    d.insert("stage".into(), json!(deal.stage));
    d.insert("funnel".into(), json!(deal.funnel));
    d.insert(
        "approvals".into(),
        Json::Array(
            latest_approvals(approvals)
                .iter()
                .map(|a| json!({ "id": a.id, "policy": a.policy, "state": a.state }))
                .collect(),
        ),
    );
    let mut facts = deal.context.as_object().cloned().unwrap_or_default();
    let rep = facts.entry("rep").or_insert_with(|| json!({}));
    if let Some(r) = rep.as_object_mut() {
        r.entry("id").or_insert_with(|| json!(deal.owner));
    }
    facts.insert("deal".into(), Json::Object(d));
    Json::Object(facts)
}

/// The latest request per policy, leaving out recalled ones: an older
/// rejection does not block a deal that was resubmitted.
fn latest_approvals(approvals: &[Approval]) -> Vec<&Approval> {
    let mut latest: Vec<&Approval> = Vec::new();
    for a in approvals.iter().filter(|a| a.state != "recalled") {
        match latest.iter_mut().find(|l| l.policy == a.policy) {
            Some(l) => *l = a,
            None => latest.push(a),
        }
    }
    latest
}

// ---- creating deals and applying events ----

pub async fn create_deal(state: &Arc<AppState>, who: &Principal, req: NewDeal) -> Result<DealView, ApiError> {
    if req.id.trim().is_empty() || req.id.chars().count() > 200 {
        return Err(ApiError::BadRequest("a deal needs an id of 1 to 200 characters".into()));
    }
    if !req.fields.is_object() || !req.context.is_object() {
        return Err(ApiError::BadRequest("`fields` and `context` must be objects".into()));
    }
    let snapshot = state.snapshot.load_full();
    let funnel = snapshot
        .funnel(&req.funnel)
        .ok_or_else(|| ApiError::Unprocessable(format!("the active pack has no Funnel `{}`", req.funnel)))?;
    let cx = Cx {
        state,
        snapshot: &snapshot,
        now: state.clock.text(),
        actor: who.subject.clone(),
    };
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
    let mut tx = state.store.begin_write().await?;
    if !state.store.insert_deal(&mut tx, &deal).await? {
        return Err(ApiError::Conflict(format!("deal `{}` exists", deal.id)));
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
    tx.commit().await.map_err(ApiError::from_sqlx)?;
    view(&state.store, &req.id).await
}

/// Applies an event; with an idempotency key, a retry returns the first
/// answer and changes nothing. `Ok((status, body))`.
pub async fn apply_event(
    state: &Arc<AppState>,
    who: &Principal,
    deal_id: &str,
    key: Option<&str>,
    body: &[u8],
) -> Result<(u16, String), ApiError> {
    let event: Event = crate::error::read_json(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "expected {{\"type\": \"update\", \"fields\": {{...}}}} or {{\"type\": \"move\", \"to\": \"stage\"}}: {e}"
        ))
    })?;
    if let Some(k) = key
        && (k.is_empty() || k.chars().count() > 200)
    {
        return Err(ApiError::BadRequest(
            "Idempotency-Key must have 1 to 200 characters".into(),
        ));
    }
    let request_hash = hex::encode(crate::auth::hash_token(&String::from_utf8_lossy(body)));
    let snapshot = state.snapshot.load_full();
    let cx = Cx {
        state,
        snapshot: &snapshot,
        now: state.clock.text(),
        actor: who.subject.clone(),
    };
    let mut tx = state.store.begin_write().await?;
    let mut deal = state
        .store
        .lock_deal(&mut tx, deal_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no deal `{deal_id}`")))?;
    if let Some(k) = key
        && let Some((hash, status, response)) = state.store.idempotent(&mut tx, deal_id, k).await?
    {
        if hash != request_hash {
            return Err(ApiError::Unprocessable(format!(
                "Idempotency-Key `{k}` was used for a different request on this deal"
            )));
        }
        return Ok((status as u16, response));
    }
    let outcome = match event {
        Event::Update { fields } => {
            let changes = fields
                .as_object()
                .ok_or_else(|| ApiError::BadRequest("`fields` must be an object".into()))?;
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
            state.store.update_deal(&mut tx, &deal).await?;
            cx.history(&mut tx, deal_id, "update", json!({ "fields": changed }))
                .await?;
            None
        }
        Event::Move { to } => move_deal(&cx, &mut tx, &mut deal, &to).await?,
    };
    let (status, response) = match outcome {
        Some(reasons) => {
            let problem = json!({
                "type": "about:blank", "title": "Conflict", "status": 409,
                "detail": format!("deal `{deal_id}` cannot move: {}", reasons.iter().filter_map(|r| r["message"].as_str()).collect::<Vec<_>>().join("; ")),
                "reasons": reasons,
            });
            (409u16, problem.to_string())
        }
        None => (200u16, String::new()),
    };
    // The answer is the deal as it now is, read in the same transaction,
    // and remembered under the key before the commit: one commit per event.
    let response = if status == 409 {
        response
    } else {
        serde_json::to_string(&view_in(&state.store, &mut tx, deal_id).await?).map_err(internal)?
    };
    if let Some(k) = key {
        state
            .store
            .remember(&mut tx, deal_id, k, &request_hash, status as i64, &response)
            .await?;
    }
    tx.commit().await.map_err(ApiError::from_sqlx)?;
    Ok((status, response))
}

/// Checks and applies a move; the refusal reasons when it is refused.
async fn move_deal(
    cx: &Cx<'_>,
    conn: &mut AnyConnection,
    deal: &mut Deal,
    to: &str,
) -> Result<Option<Vec<Json>>, ApiError> {
    let approvals = cx.state.store.deal_approvals(conn, &deal.id).await?;
    let mut input = facts(deal, &approvals);
    input["move"] = json!(to);
    let decided = cx
        .snapshot
        .decide(&deal.funnel, &Value::from_json(&input), &cx.now)
        .map_err(|e| match e {
            dealrules_core::DecideError::BadInput(m) => ApiError::Conflict(m),
            other => ApiError::from(other),
        })?;
    let Decision::Move(m) = decided else {
        return Err(ApiError::Unprocessable(format!("`{}` is not a Funnel", deal.funnel)));
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
    cx.state.store.update_deal(conn, deal).await?;
    cx.history(
        conn,
        &deal.id,
        "move",
        json!({ "from": from, "to": deal.stage, "transition": m.transition }),
    )
    .await?;
    // Timers of the stage left no longer apply.
    for t in cx.state.store.deal_timers(conn, &deal.id).await? {
        if t.kind == "funnel"
            && t.stage.as_deref() == Some(from.as_str())
            && cx
                .state
                .store
                .set_timer_state(conn, &t.id, "cancelled", &cx.now, None)
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
    conn: &mut AnyConnection,
    deal: &mut Deal,
    planned: Option<&[dealrules_core::PlannedAction]>,
) -> Result<(), ApiError> {
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
        let due = cx.state.clock.now() + chrono::Duration::from_std(wait).map_err(internal)?;
        let mut row = scheduled(cx, &deal.id, "funnel", &timer.id, due);
        row.stage = Some(deal.stage.clone());
        row.every_ms = timer.every.map(|e| e.as_millis() as i64);
        cx.state.store.insert_timer(conn, &row).await?;
    }
    Ok(())
}

/// A timer due at `due`, scheduled under the pack version in force.
fn scheduled(cx: &Cx<'_>, deal: &str, kind: &str, name: &str, due: chrono::DateTime<chrono::Utc>) -> TimerRow {
    TimerRow {
        id: cx.state.store.new_id(),
        deal_id: deal.to_string(),
        kind: kind.into(),
        name: name.into(),
        stage: None,
        approval_id: None,
        due_at: dealrules_store::timestamp(due),
        every_ms: None,
        state: "scheduled".into(),
        fired_at: None,
        fired_by: None,
        version: cx.version().into(),
    }
}

/// One action; a failure is written on the deal's history and does not
/// undo the move.
async fn run_action(
    cx: &Cx<'_>,
    conn: &mut AnyConnection,
    deal: &mut Deal,
    a: &dealrules_core::PlannedAction,
) -> Result<(), ApiError> {
    if let Some(e) = &a.error {
        return cx
            .history(
                conn,
                &deal.id,
                "action_failed",
                json!({ "action": a.kind, "detail": a.detail, "error": e }),
            )
            .await;
    }
    match a.kind {
        "approval" => open_approval(cx, conn, deal, &a.detail).await,
        "notify" => {
            let template = a.detail["template"].as_str().unwrap_or_default().to_string();
            let to = match &a.detail["to"] {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            notify(cx, conn, deal, &template, &to, json!({})).await
        }
        "set" => {
            let fields = deal
                .fields
                .as_object_mut()
                .ok_or_else(|| internal("stored fields are not an object"))?;
            if let Some(set) = a.detail.as_object() {
                for (k, v) in set {
                    fields.insert(k.clone(), v.clone());
                }
            }
            cx.state.store.update_deal(conn, deal).await?;
            cx.history(conn, &deal.id, "action", json!({ "action": "set", "fields": a.detail }))
                .await
        }
        "script" => {
            let path = a.detail["script"].as_str().unwrap_or_default();
            let approvals = cx.state.store.deal_approvals(conn, &deal.id).await?;
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
        "plugin" => {
            let name = a.detail["plugin"].as_str().unwrap_or_default();
            let function = a.detail["function"].as_str().unwrap_or("run");
            let approvals = cx.state.store.deal_approvals(conn, &deal.id).await?;
            let facts = facts(deal, &approvals);
            // Bounded by the plugin's deadline, and run on the long-work
            // pool so a spinning plugin never holds an async worker.
            let (snapshot, plugin, f) = (cx.snapshot.clone(), name.to_string(), function.to_string());
            let called = cx
                .state
                .long_work
                .run(move || snapshot.call_plugin(&plugin, &f, &facts))
                .await?;
            match called {
                Ok(out) => cx.history(conn, &deal.id, "action", json!({ "action": "plugin", "plugin": name, "function": function, "result": out.value, "fuel_used": out.fuel_used, "micros": out.micros })).await,
                Err(e) => cx.history(conn, &deal.id, "action_failed", json!({ "action": "plugin", "plugin": name, "function": function, "error": e })).await,
            }
        }
        other => {
            cx.history(
                conn,
                &deal.id,
                "action_failed",
                json!({ "action": other, "error": "unknown action" }),
            )
            .await
        }
    }
}

/// Renders a notification into the outbox; a template that does not
/// render is a failed action on the deal's history.
async fn notify(
    cx: &Cx<'_>,
    conn: &mut AnyConnection,
    deal: &Deal,
    template: &str,
    to: &str,
    extra: Json,
) -> Result<(), ApiError> {
    let mut context = tera::Context::new();
    context.insert("deal", deal);
    context.insert("recipient", to);
    if let Some(extra) = extra.as_object() {
        for (k, v) in extra {
            context.insert(k, v);
        }
    }
    match cx.state.templates.render(template, &context) {
        Ok(body) => {
            let row = OutboxRow {
                id: cx.state.store.new_id(),
                deal_id: Some(deal.id.clone()),
                template: template.into(),
                recipient: to.into(),
                body,
                state: "pending".into(),
                attempts: 0,
                next_attempt_at: cx.now.clone(),
                last_error: None,
                created_at: cx.now.clone(),
                sent_at: None,
            };
            cx.state.store.insert_outbox(conn, &row).await?;
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

// ---- approvals ----

/// Opens an approval request from the policy's decision (planned by the
/// core): auto-approved at the first level, skipped when an earlier
/// approval of the same policy tested the same values (smart
/// re-approval), else a step per level of the chain.
async fn open_approval(cx: &Cx<'_>, conn: &mut AnyConnection, deal: &Deal, detail: &Json) -> Result<(), ApiError> {
    let policy = detail["policy"].as_str().unwrap_or_default().to_string();
    let decision = &detail["decision"];
    let previous = cx.state.store.deal_approvals(conn, &deal.id).await?;
    let tested = tested_values(cx.snapshot, &policy, &facts(deal, &previous));
    let basis =
        json!({ "level": decision["level"], "chain": decision["chain"], "rule": decision["rule"], "tested": tested });
    // Still pending for the same policy: it stays the open request.
    if let Some(open) = previous
        .iter()
        .rev()
        .find(|a| a.policy == policy && a.state == "pending")
    {
        return cx
            .history(
                conn,
                &deal.id,
                "approval",
                json!({ "approval": open.id, "policy": policy, "event": "still pending" }),
            )
            .await;
    }
    let mut a = Approval {
        id: format!("apr_{}", cx.state.store.new_id().to_lowercase()),
        deal: deal.id.clone(),
        policy: policy.clone(),
        level: decision["level"].as_str().unwrap_or_default().to_string(),
        state: "pending".into(),
        submitter: cx.actor.clone(),
        basis: basis.clone(),
        steps: Vec::new(),
        version: cx.version().into(),
        created_at: cx.now.clone(),
        decided_at: None,
    };
    let reused = previous
        .iter()
        .rev()
        .find(|p| p.policy == policy && p.state == "approved" && p.basis == basis);
    if decision["auto_approved"] == json!(true) {
        a.state = "approved".into();
        a.decided_at = Some(cx.now.clone());
        cx.state.store.insert_approval(conn, &a).await?;
        return cx
            .history(
                conn,
                &deal.id,
                "approval",
                json!({ "approval": a.id, "policy": policy, "event": "auto-approved", "level": a.level }),
            )
            .await;
    }
    let approvers = decision["approvers"].as_array().cloned().unwrap_or_default();
    for (i, level) in decision["chain"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let level = level.as_str().unwrap_or_default().to_string();
        let approver = approvers
            .iter()
            .find(|x| x["level"] == json!(level))
            .and_then(|x| x["approver"].as_str())
            .map(str::to_string);
        let state = if reused.is_some() {
            "skipped"
        } else if i == 0 {
            "pending"
        } else {
            "waiting"
        };
        a.steps.push(ApprovalStep {
            level,
            // An approver the deal does not name goes to admins, who may decide any step.
            approver: approver.unwrap_or_else(|| "role:admin".into()),
            state: state.into(),
            decided_by: None,
            comment: None,
            decided_at: None,
            overridden: false,
            delegate_of: None,
        });
    }
    if let Some(prior) = reused {
        a.state = "approved".into();
        a.decided_at = Some(cx.now.clone());
        cx.state.store.insert_approval(conn, &a).await?;
        return cx.history(conn, &deal.id, "approval", json!({ "approval": a.id, "policy": policy, "event": "re-approval skipped", "reason": format!("the values the rules tested are those approved in {}", prior.id) })).await;
    }
    cx.state.store.insert_approval(conn, &a).await?;
    cx.history(conn, &deal.id, "approval", json!({ "approval": a.id, "policy": policy, "event": "requested", "level": a.level, "chain": decision["chain"] })).await?;
    step_opened(cx, conn, deal, &a, 0).await
}

/// The values a policy's rules read, from the facts: what smart
/// re-approval compares.
fn tested_values(snapshot: &Snapshot, policy: &str, facts: &Json) -> Json {
    match snapshot.approval_policy(policy) {
        Some(p) => {
            let interest = p.interest();
            dealrules_expr::json::parse_projected(&facts.to_string(), &interest)
                .map(|v| strip_now(v.to_json()))
                .unwrap_or(Json::Null)
        }
        None => Json::Null,
    }
}

fn strip_now(mut v: Json) -> Json {
    if let Some(m) = v.as_object_mut() {
        m.remove("now");
    }
    v
}

/// A step became pending: tell its approver and start its SLA timers.
async fn step_opened(
    cx: &Cx<'_>,
    conn: &mut AnyConnection,
    deal: &Deal,
    a: &Approval,
    step: usize,
) -> Result<(), ApiError> {
    let s = &a.steps[step];
    notify(
        cx,
        conn,
        deal,
        "approval-requested",
        &s.approver,
        json!({ "approval": a, "step": s }),
    )
    .await?;
    let sla = cx
        .snapshot
        .pack
        .find(dealrules_model::Kind::ApprovalPolicy, &a.policy)
        .and_then(|d| match &d.spec {
            dealrules_model::Spec::ApprovalPolicy(p) => p.sla.clone(),
            _ => None,
        });
    let Some(sla) = sla else { return Ok(()) };
    for (kind, after) in [("remind", sla.remind_after), ("escalate", sla.escalate_after)] {
        let Some(after) = after else { continue };
        let wait = dealrules_model::duration::parse_duration(&after.0).map_err(internal)?;
        let mut row = scheduled(
            cx,
            &deal.id,
            kind,
            &a.policy,
            cx.state.clock.now() + chrono::Duration::from_std(wait).map_err(internal)?,
        );
        row.approval_id = Some(a.id.clone());
        cx.state.store.insert_timer(conn, &row).await?;
    }
    Ok(())
}

async fn cancel_sla_timers(cx: &Cx<'_>, conn: &mut AnyConnection, deal: &str, approval: &str) -> Result<(), ApiError> {
    for t in cx.state.store.deal_timers(conn, deal).await? {
        if t.approval_id.as_deref() == Some(approval) {
            cx.state
                .store
                .set_timer_state(conn, &t.id, "cancelled", &cx.now, None)
                .await?;
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ApprovalDecisionRequest {
    /// approve | reject
    pub decision: String,
    #[serde(default)]
    pub comment: Option<String>,
}

/// May `who` decide `step` today: as the approver, a member of its role, a
/// delegate of the approver, or an admin (an override).
fn may_decide(
    who: &Principal,
    step: &ApprovalStep,
    delegations: &[dealrules_store::Delegation],
) -> Option<(bool, Option<String>)> {
    if who.subject == step.approver || who.groups.contains(&step.approver) {
        return Some((false, None));
    }
    if let Some(d) = delegations
        .iter()
        .find(|d| d.to_user == who.subject && (d.from_user == step.approver))
    {
        return Some((false, Some(d.from_user.clone())));
    }
    (who.role == Role::Admin).then_some((true, None))
}

/// Why `who` is a party to the request (its deal's owner, its submitter),
/// if they are.
fn own_request(who: &Principal, deal: &Deal, a: &Approval) -> Option<&'static str> {
    if who.subject == deal.owner {
        Some("owns the deal")
    } else if who.subject == a.submitter {
        Some("submitted the request")
    } else {
        None
    }
}

/// Whether the approval policy lets parties decide their own requests
/// (`allow_self_approval: true`); no by default, and no when the active
/// pack no longer has the policy.
fn allows_self_approval(snapshot: &dealrules_core::Snapshot, policy: &str) -> bool {
    snapshot.pack.documents.iter().any(|d| match &d.spec {
        dealrules_model::Spec::ApprovalPolicy(spec) => d.metadata.name == policy && spec.allow_self_approval,
        _ => false,
    })
}

pub async fn decide_approval(
    state: &Arc<AppState>,
    who: &Principal,
    id: &str,
    req: ApprovalDecisionRequest,
) -> Result<Approval, ApiError> {
    let approve = match req.decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            return Err(ApiError::BadRequest(format!(
                "`{other}` is not a decision: approve or reject"
            )));
        }
    };
    let snapshot = state.snapshot.load_full();
    let cx = Cx {
        state,
        snapshot: &snapshot,
        now: state.clock.text(),
        actor: who.subject.clone(),
    };
    let mut tx = state.store.begin_write().await?;
    let found = state
        .store
        .approval(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no approval `{id}`")))?;
    // Lock the deal: every change to a deal and its approvals queues on it.
    let deal = state
        .store
        .lock_deal(&mut tx, &found.deal)
        .await?
        .ok_or_else(|| internal("approval without deal"))?;
    let mut a = state
        .store
        .approval(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no approval `{id}`")))?;
    if a.state != "pending" {
        return Err(ApiError::Conflict(format!(
            "approval `{id}` is {}, not pending",
            a.state
        )));
    }
    let step = a
        .steps
        .iter()
        .position(|s| s.state == "pending")
        .ok_or_else(|| ApiError::Conflict(format!("approval `{id}` has no pending step")))?;
    let day = &cx.now[..10];
    let delegations = state.store.delegations_on(&mut tx, day).await?;
    let (overridden, delegate_of) = may_decide(who, &a.steps[step], &delegations).ok_or_else(|| {
        ApiError::Forbidden(format!(
            "step `{}` of approval `{id}` is for {}, not {}",
            a.steps[step].level, a.steps[step].approver, who.subject
        ))
    })?;
    if let Some(why) = own_request(who, &deal, &a)
        && !allows_self_approval(&snapshot, &a.policy)
    {
        return Err(ApiError::Forbidden(format!(
            "segregation of duties: {} {why}, so cannot decide step `{}` of approval `{id}`; another approver for {} or an admin must",
            who.subject, a.steps[step].level, a.steps[step].approver
        )));
    }
    {
        let s = &mut a.steps[step];
        s.state = if approve { "approved" } else { "rejected" }.into();
        s.decided_by = Some(who.subject.clone());
        s.comment = req.comment.clone();
        s.decided_at = Some(cx.now.clone());
        s.overridden = overridden;
        s.delegate_of = delegate_of.clone();
    }
    cancel_sla_timers(&cx, &mut tx, &deal.id, &a.id).await?;
    let next = a.steps.iter().position(|s| s.state == "waiting");
    match (approve, next) {
        (true, Some(n)) => a.steps[n].state = "pending".into(),
        (true, None) => {
            a.state = "approved".into();
            a.decided_at = Some(cx.now.clone());
        }
        (false, _) => {
            a.state = "rejected".into();
            a.decided_at = Some(cx.now.clone());
            for s in a.steps.iter_mut().filter(|s| s.state == "waiting") {
                s.state = "skipped".into();
            }
        }
    }
    state.store.update_approval(&mut tx, &a).await?;
    cx.history(
        &mut tx,
        &deal.id,
        "approval",
        json!({ "approval": a.id, "policy": a.policy, "event": if approve { "approved" } else { "rejected" }, "level": a.steps[step].level,
                "by": who.subject, "comment": req.comment, "override": overridden, "delegate_of": delegate_of, "state": a.state }),
    )
    .await?;
    if let (true, Some(n)) = (approve, next) {
        step_opened(&cx, &mut tx, &deal, &a, n).await?;
    }
    tx.commit().await.map_err(ApiError::from_sqlx)?;
    Ok(a)
}

/// The submitter (or an admin) takes a pending request back.
pub async fn recall_approval(state: &Arc<AppState>, who: &Principal, id: &str) -> Result<Approval, ApiError> {
    let snapshot = state.snapshot.load_full();
    let cx = Cx {
        state,
        snapshot: &snapshot,
        now: state.clock.text(),
        actor: who.subject.clone(),
    };
    let mut tx = state.store.begin_write().await?;
    let found = state
        .store
        .approval(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no approval `{id}`")))?;
    state.store.lock_deal(&mut tx, &found.deal).await?;
    let mut a = state
        .store
        .approval(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no approval `{id}`")))?;
    if a.submitter != who.subject && who.role != Role::Admin {
        return Err(ApiError::Forbidden(format!(
            "only the submitter ({}) may recall approval `{id}`",
            a.submitter
        )));
    }
    if a.state != "pending" {
        return Err(ApiError::Conflict(format!(
            "approval `{id}` is {}, not pending",
            a.state
        )));
    }
    a.state = "recalled".into();
    a.decided_at = Some(cx.now.clone());
    for s in a
        .steps
        .iter_mut()
        .filter(|s| s.state == "pending" || s.state == "waiting")
    {
        s.state = "skipped".into();
    }
    state.store.update_approval(&mut tx, &a).await?;
    cancel_sla_timers(&cx, &mut tx, &a.deal, &a.id).await?;
    cx.history(
        &mut tx,
        &a.deal,
        "approval",
        json!({ "approval": a.id, "policy": a.policy, "event": "recalled", "by": who.subject }),
    )
    .await?;
    tx.commit().await.map_err(ApiError::from_sqlx)?;
    Ok(a)
}

// ---- timers ----

/// Fires the timers that are due, in batches, each batch one transaction:
/// a node that dies mid-batch fires nothing of it, and its rows go to
/// another node. Returns how many fired.
pub async fn fire_due_timers(state: &Arc<AppState>, limit: i64) -> Result<usize, ApiError> {
    let snapshot = state.snapshot.load_full();
    let cx = Cx {
        state,
        snapshot: &snapshot,
        now: state.clock.text(),
        actor: "timer".into(),
    };
    let mut tx = state.store.begin_write().await?;
    let due = state.store.claim_due_timers(&mut tx, &cx.now, limit).await?;
    let mut fired = 0;
    for t in &due {
        let Some(mut deal) = state.store.lock_deal(&mut tx, &t.deal_id).await? else {
            state
                .store
                .set_timer_state(&mut tx, &t.id, "cancelled", &cx.now, Some(&state.node))
                .await?;
            continue;
        };
        if !state
            .store
            .set_timer_state(&mut tx, &t.id, "fired", &cx.now, Some(&state.node))
            .await?
        {
            continue;
        }
        fired += 1;
        match t.kind.as_str() {
            "funnel" => fire_funnel_timer(&cx, &mut tx, &mut deal, t).await?,
            "remind" | "escalate" => fire_sla_timer(&cx, &mut tx, &deal, t).await?,
            other => {
                cx.history(
                    &mut tx,
                    &deal.id,
                    "action_failed",
                    json!({ "timer": t.name, "error": format!("unknown timer kind `{other}`") }),
                )
                .await?
            }
        }
    }
    tx.commit().await.map_err(ApiError::from_sqlx)?;
    Ok(fired)
}

async fn fire_funnel_timer(
    cx: &Cx<'_>,
    conn: &mut AnyConnection,
    deal: &mut Deal,
    t: &TimerRow,
) -> Result<(), ApiError> {
    let funnel = cx.snapshot.funnel(&deal.funnel);
    let def = funnel.and_then(|f| f.timers.iter().find(|d| *d.id == *t.name));
    let (Some(funnel), Some(def)) = (funnel, def) else {
        return cx
            .history(
                conn,
                &deal.id,
                "cancelled",
                json!({ "timer": t.name, "reason": "the active pack no longer has this timer" }),
            )
            .await;
    };
    cx.history(
        conn,
        &deal.id,
        "timer",
        json!({ "timer": t.name, "due_at": t.due_at, "stage": deal.stage }),
    )
    .await?;
    // The core plans the actions with the deal's facts, as for a move.
    let approvals = cx.state.store.deal_approvals(conn, &deal.id).await?;
    let input = Value::from_json(&facts(deal, &approvals));
    let _ = (funnel, def);
    match cx.snapshot.plan_timer(&deal.funnel, &t.name, &input, &cx.now) {
        Ok(actions) => {
            for action in &actions {
                run_action(cx, conn, deal, action).await?;
            }
        }
        Err(e) => {
            cx.history(
                conn,
                &deal.id,
                "action_failed",
                json!({ "timer": t.name, "error": e.to_string() }),
            )
            .await?
        }
    }
    if let Some(every) = t.every_ms {
        // The next time after now: a node that was down for several periods
        // fires once, not once per missed period.
        let step = chrono::Duration::milliseconds(every.max(1000));
        let mut due = chrono::DateTime::parse_from_rfc3339(&t.due_at)
            .map_err(internal)?
            .with_timezone(&chrono::Utc)
            + step;
        let now = cx.state.clock.now();
        while due <= now {
            due += step;
        }
        let next = TimerRow {
            id: cx.state.store.new_id(),
            due_at: dealrules_store::timestamp(due),
            state: "scheduled".into(),
            fired_at: None,
            fired_by: None,
            version: cx.version().into(),
            ..t.clone()
        };
        cx.state.store.insert_timer(conn, &next).await?;
    }
    Ok(())
}

async fn fire_sla_timer(cx: &Cx<'_>, conn: &mut AnyConnection, deal: &Deal, t: &TimerRow) -> Result<(), ApiError> {
    let Some(approval_id) = &t.approval_id else {
        return Ok(());
    };
    let Some(a) = cx.state.store.approval(conn, approval_id).await? else {
        return Ok(());
    };
    let Some(step) = a.steps.iter().find(|s| s.state == "pending") else {
        return Ok(());
    };
    if a.state != "pending" {
        return Ok(());
    }
    let (template, to) = if t.kind == "remind" {
        ("approval-reminder", step.approver.clone())
    } else {
        // Escalation goes to whoever approves the next level, or to admins.
        let next = a
            .steps
            .iter()
            .skip_while(|s| s.state != "pending")
            .nth(1)
            .map(|s| s.approver.clone());
        ("approval-escalated", next.unwrap_or_else(|| "role:admin".into()))
    };
    cx.history(
        conn,
        &deal.id,
        "timer",
        json!({ "timer": t.kind, "approval": a.id, "level": step.level, "to": to }),
    )
    .await?;
    notify(cx, conn, deal, template, &to, json!({ "approval": a, "step": step })).await
}

/// After a pack change: cancels scheduled funnel timers the new pack no
/// longer has, or whose stage it no longer lists, and says so on the deal.
pub async fn reconcile_timers(state: &Arc<AppState>) -> Result<usize, ApiError> {
    let snapshot = state.snapshot.load_full();
    let cx = Cx {
        state,
        snapshot: &snapshot,
        now: state.clock.text(),
        actor: "pack change".into(),
    };
    let mut cancelled = 0;
    for t in state
        .store
        .scheduled_timers()
        .await?
        .into_iter()
        .filter(|t| t.kind == "funnel")
    {
        let Some(deal) = state.store.deal(&t.deal_id).await? else {
            continue;
        };
        let reason = match snapshot.funnel(&deal.funnel) {
            None => Some(format!("the active pack has no Funnel `{}`", deal.funnel)),
            Some(f) => match (
                f.timers.iter().find(|d| *d.id == *t.name),
                t.stage.as_deref().and_then(|s| f.stage(s)),
            ) {
                (None, _) => Some(format!("the active pack has no timer `{}`", t.name)),
                (_, None) => Some(format!(
                    "the active pack has no stage `{}`",
                    t.stage.clone().unwrap_or_default()
                )),
                (Some(d), Some(s)) if !d.stages.contains(&s) => Some(format!(
                    "timer `{}` no longer runs in `{}`",
                    t.name,
                    t.stage.clone().unwrap_or_default()
                )),
                _ => None,
            },
        };
        if let Some(reason) = reason {
            let mut tx = state.store.begin_write().await?;
            if state
                .store
                .set_timer_state(&mut tx, &t.id, "cancelled", &cx.now, Some(&state.node))
                .await?
            {
                cx.history(
                    &mut tx,
                    &deal.id,
                    "cancelled",
                    json!({ "timer": t.name, "reason": reason }),
                )
                .await?;
                cancelled += 1;
            }
            tx.commit().await.map_err(ApiError::from_sqlx)?;
        }
    }
    Ok(cancelled)
}

// ---- the pipeline ----

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Pipeline {
    pub total: String,
    pub weighted: String,
    pub groups: Vec<PipelineGroup>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PipelineGroup {
    pub key: String,
    pub count: usize,
    pub amount: String,
    pub weighted: String,
}

/// The weighted pipeline of open deals (not in a terminal stage): amount x
/// the stage's probability, by stage, owner or period (the quarter of
/// `close_date`).
pub async fn pipeline(state: &Arc<AppState>, by: &str) -> Result<Pipeline, ApiError> {
    use rust_decimal::Decimal;
    if !["stage", "owner", "period"].contains(&by) {
        return Err(ApiError::BadRequest(format!(
            "`by` is stage, owner or period, not `{by}`"
        )));
    }
    let snapshot = state.snapshot.load_full();
    let mut groups: Vec<(String, usize, Decimal, Decimal)> = Vec::new();
    let (mut total, mut weighted) = (Decimal::ZERO, Decimal::ZERO);
    for deal in state.store.deals().await? {
        let Some(f) = snapshot.funnel(&deal.funnel) else {
            continue;
        };
        let Some(stage) = f.stage(&deal.stage).map(|i| &f.stages[i]) else {
            continue;
        };
        if stage.terminal {
            continue;
        }
        let amount = match &deal.fields["amount"] {
            Json::Number(n) => n.to_string().parse::<Decimal>().unwrap_or_default(),
            Json::String(s) => s.parse::<Decimal>().unwrap_or_default(),
            _ => Decimal::ZERO,
        };
        let w = amount * stage.probability;
        let key = match by {
            "stage" => deal.stage.clone(),
            "owner" => deal.owner.clone(),
            _ => deal.fields["close_date"]
                .as_str()
                .and_then(quarter_of)
                .unwrap_or_else(|| "(no close date)".into()),
        };
        total += amount;
        weighted += w;
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => {
                g.1 += 1;
                g.2 += amount;
                g.3 += w;
            }
            None => groups.push((key, 1, amount, w)),
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    let money = |d: Decimal| {
        format!(
            "{:.2}",
            d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        )
    };
    Ok(Pipeline {
        total: money(total),
        weighted: money(weighted),
        groups: groups
            .into_iter()
            .map(|(key, count, amount, w)| PipelineGroup {
                key,
                count,
                amount: money(amount),
                weighted: money(w),
            })
            .collect(),
    })
}

fn quarter_of(date: &str) -> Option<String> {
    let d = chrono::NaiveDate::parse_from_str(date.get(..10)?, "%Y-%m-%d").ok()?;
    use chrono::Datelike;
    Some(format!("{}-Q{}", d.year(), (d.month() - 1) / 3 + 1))
}
