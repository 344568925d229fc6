//! Durable timers: funnel timers of a stage, and the SLA timers of an
//! approval step. Fired in batches, each batch one transaction.

use std::sync::Arc;

use dealrules_core::Snapshot;
use dealrules_expr::Value;
use dealrules_store::{Conn, Deal, TimerKind, TimerRow, TimerState};
use serde_json::json;

use crate::actions::run_action;
use crate::approvals::sla_timer_fired;
use crate::cx::Cx;
use crate::error::{WorkflowError, internal};
use crate::facts::facts;
use crate::runtime::Workflow;

/// The funnel timers `deal` schedules on entering its current stage, due
/// from `now`: what a move or a new deal schedules, for deals that enter
/// a stage another way (an import). None when the active pack has no
/// such funnel or stage.
pub fn stage_timers(
    snapshot: &Snapshot,
    deal: &Deal,
    now: chrono::DateTime<chrono::Utc>,
    new_id: &dyn Fn() -> String,
) -> Vec<TimerRow> {
    let Some(funnel) = snapshot.funnel(&deal.funnel) else {
        return Vec::new();
    };
    let Some(stage) = funnel.stage(&deal.stage) else {
        return Vec::new();
    };
    funnel
        .timers
        .iter()
        .filter(|t| t.stages.contains(&stage))
        .filter_map(|t| {
            let wait = chrono::Duration::from_std(t.after.or(t.every)?).ok()?;
            Some(TimerRow {
                id: new_id(),
                deal_id: deal.id.clone(),
                kind: TimerKind::Funnel,
                name: t.id.to_string(),
                stage: Some(deal.stage.clone()),
                approval_id: None,
                due_at: dealrules_store::timestamp(now.checked_add_signed(wait)?),
                every_ms: t.every.map(|e| e.as_millis() as i64),
                state: TimerState::Scheduled,
                fired_at: None,
                fired_by: None,
                version: snapshot.version.to_string(),
            })
        })
        .collect()
}

impl Workflow {
    /// Fires the timers that are due, in batches, each batch one
    /// transaction: a node that dies mid-batch fires nothing of it, and its
    /// rows go to another node. Returns how many fired.
    pub async fn fire_due_timers(&self, snapshot: &Arc<Snapshot>, limit: i64) -> Result<usize, WorkflowError> {
        let cx = Cx::new(self, snapshot, "timer");
        let mut tx = cx.deals.begin_write().await?;
        let due = cx.deals.claim_due_timers(&mut tx, &cx.now, limit).await?;
        let mut fired = 0;
        for t in &due {
            let Some(mut deal) = cx.deals.lock_deal(&mut tx, &t.deal_id).await? else {
                cx.deals
                    .set_timer_state(&mut tx, &t.id, TimerState::Cancelled, &cx.now, Some(&self.node))
                    .await?;
                continue;
            };
            if !cx
                .deals
                .set_timer_state(&mut tx, &t.id, TimerState::Fired, &cx.now, Some(&self.node))
                .await?
            {
                continue;
            }
            fired += 1;
            match t.kind {
                TimerKind::Funnel => fire_funnel_timer(&cx, &mut tx, &mut deal, t).await?,
                TimerKind::Remind | TimerKind::Escalate => sla_timer_fired(&cx, &mut tx, &deal, t).await?,
            }
        }
        tx.commit().await?;
        Ok(fired)
    }

    /// After a pack change: cancels scheduled funnel timers the new pack no
    /// longer has, or whose stage it no longer lists, and says so on the deal.
    pub async fn reconcile_timers(&self, snapshot: &Arc<Snapshot>) -> Result<usize, WorkflowError> {
        let cx = Cx::new(self, snapshot, "pack change");
        let mut cancelled = 0;
        for t in cx
            .deals
            .scheduled_timers()
            .await?
            .into_iter()
            .filter(|t| t.kind == TimerKind::Funnel)
        {
            let Some(deal) = cx.deals.deal(&t.deal_id).await? else {
                continue;
            };
            let reason = cancel_reason(snapshot, &deal.funnel, &t);
            if let Some(reason) = reason {
                let mut tx = cx.deals.begin_write().await?;
                if cx
                    .deals
                    .set_timer_state(&mut tx, &t.id, TimerState::Cancelled, &cx.now, Some(&self.node))
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
                tx.commit().await?;
            }
        }
        Ok(cancelled)
    }
}

async fn fire_funnel_timer(cx: &Cx<'_>, conn: &mut Conn, deal: &mut Deal, t: &TimerRow) -> Result<(), WorkflowError> {
    let funnel = cx.snapshot.funnel(&deal.funnel);
    if funnel
        .and_then(|f| f.timers.iter().find(|d| *d.id == *t.name))
        .is_none()
    {
        return cx
            .history(
                conn,
                &deal.id,
                "cancelled",
                json!({ "timer": t.name, "reason": "the active pack no longer has this timer" }),
            )
            .await;
    }
    cx.history(
        conn,
        &deal.id,
        "timer",
        json!({ "timer": t.name, "due_at": t.due_at, "stage": deal.stage }),
    )
    .await?;
    // The core plans the actions with the deal's facts, as for a move.
    let approvals = cx.deals.deal_approvals(conn, &deal.id).await?;
    let input = Value::from_json(&facts(deal, &approvals));
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
        let now = cx.clock.now();
        while due <= now {
            due += step;
        }
        let next = TimerRow {
            id: cx.deals.new_id(),
            due_at: dealrules_store::timestamp(due),
            state: TimerState::Scheduled,
            fired_at: None,
            fired_by: None,
            version: cx.version().into(),
            ..t.clone()
        };
        cx.deals.insert_timer(conn, &next).await?;
    }
    Ok(())
}

/// Why a scheduled funnel timer would be cancelled under `snapshot` (its
/// funnel, timer or stage is gone, or the timer no longer runs in the
/// stage); `None` when it still runs. The impact of a change reads it too.
pub fn cancel_reason(snapshot: &Snapshot, funnel: &str, t: &TimerRow) -> Option<String> {
    match snapshot.funnel(funnel) {
        None => Some(format!("the active pack has no Funnel `{funnel}`")),
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
    }
}
