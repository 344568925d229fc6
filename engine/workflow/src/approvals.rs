//! Approval requests: opened by the `approval:` action, decided step by
//! step by approvers, their delegates or admins, recalled by the
//! submitter; SLA timers remind and escalate.

use std::sync::Arc;

use dealrules_core::{PlannedApproval, Snapshot};
use dealrules_store::{
    Approval, ApprovalState, ApprovalStep, Conn, Deal, Deals, Delegation, StepState, TimerKind, TimerState,
};
use serde_json::json;

use crate::clock::Clock;
use crate::cx::Cx;
use crate::error::{WorkflowError, internal};
use crate::facts::{facts, tested_values};
use crate::notify::notify;
use crate::runtime::{Actor, Workflow};

/// An approver's answer to the pending step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

impl std::str::FromStr for Verdict {
    type Err = WorkflowError;
    fn from_str(s: &str) -> Result<Verdict, WorkflowError> {
        match s {
            "approve" => Ok(Verdict::Approve),
            "reject" => Ok(Verdict::Reject),
            other => Err(WorkflowError::Invalid(format!(
                "`{other}` is not a decision: approve or reject"
            ))),
        }
    }
}

/// Opens an approval request from the policy's decision (planned by the
/// core): auto-approved at the first level, skipped when an earlier
/// approval of the same policy tested the same values (smart
/// re-approval), else a step per level of the chain.
pub(crate) async fn open_approval(
    cx: &Cx<'_>,
    conn: &mut Conn,
    deal: &Deal,
    policy: &str,
    decision: &PlannedApproval,
) -> Result<(), WorkflowError> {
    let policy = policy.to_string();
    let previous = cx.deals.deal_approvals(conn, &deal.id).await?;
    let tested = tested_values(cx.snapshot, &policy, &facts(deal, &previous));
    let basis = json!({ "level": decision.level, "chain": decision.chain, "rule": decision.rule, "tested": tested });
    // Still pending for the same policy: it stays the open request.
    if let Some(open) = previous
        .iter()
        .rev()
        .find(|a| a.policy == policy && a.state == ApprovalState::Pending)
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
        id: format!("apr_{}", cx.deals.new_id().to_lowercase()),
        deal: deal.id.clone(),
        policy: policy.clone(),
        level: decision.level.clone(),
        state: ApprovalState::Pending,
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
        .find(|p| p.policy == policy && p.state == ApprovalState::Approved && p.basis == basis);
    if decision.auto_approved {
        a.state = ApprovalState::Approved;
        a.decided_at = Some(cx.now.clone());
        cx.deals.insert_approval(conn, &a).await?;
        return cx
            .history(
                conn,
                &deal.id,
                "approval",
                json!({ "approval": a.id, "policy": policy, "event": "auto-approved", "level": a.level }),
            )
            .await;
    }
    for (i, level) in decision.chain.iter().enumerate() {
        let approver = decision
            .approvers
            .iter()
            .find(|x| x.level == *level)
            .and_then(|x| x.approver.clone());
        let state = if reused.is_some() {
            StepState::Skipped
        } else if i == 0 {
            StepState::Pending
        } else {
            StepState::Waiting
        };
        a.steps.push(ApprovalStep {
            level: level.clone(),
            // An approver the deal does not name goes to admins, who may decide any step.
            approver: approver.unwrap_or_else(|| "role:admin".into()),
            state,
            decided_by: None,
            comment: None,
            decided_at: None,
            overridden: false,
            delegate_of: None,
        });
    }
    if let Some(prior) = reused {
        a.state = ApprovalState::Approved;
        a.decided_at = Some(cx.now.clone());
        cx.deals.insert_approval(conn, &a).await?;
        return cx.history(conn, &deal.id, "approval", json!({ "approval": a.id, "policy": policy, "event": "re-approval skipped", "reason": format!("the values the rules tested are those approved in {}", prior.id) })).await;
    }
    cx.deals.insert_approval(conn, &a).await?;
    cx.history(
        conn,
        &deal.id,
        "approval",
        json!({ "approval": a.id, "policy": policy, "event": "requested", "level": a.level, "chain": decision.chain }),
    )
    .await?;
    step_opened(cx, conn, deal, &a, 0).await
}

/// A step became pending: tell its approver and start its SLA timers.
async fn step_opened(
    cx: &Cx<'_>,
    conn: &mut Conn,
    deal: &Deal,
    a: &Approval,
    step: usize,
) -> Result<(), WorkflowError> {
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
    for (kind, after) in [
        (TimerKind::Remind, sla.remind_after),
        (TimerKind::Escalate, sla.escalate_after),
    ] {
        let Some(after) = after else { continue };
        let wait = dealrules_model::duration::parse_duration(&after.0).map_err(internal)?;
        let mut row = cx.scheduled(
            &deal.id,
            kind,
            &a.policy,
            cx.clock.now() + chrono::Duration::from_std(wait).map_err(internal)?,
        );
        row.approval_id = Some(a.id.clone());
        cx.deals.insert_timer(conn, &row).await?;
    }
    Ok(())
}

async fn cancel_sla_timers(cx: &Cx<'_>, conn: &mut Conn, deal: &str, approval: &str) -> Result<(), WorkflowError> {
    for t in cx.deals.deal_timers(conn, deal).await? {
        if t.approval_id.as_deref() == Some(approval) {
            cx.deals
                .set_timer_state(conn, &t.id, TimerState::Cancelled, &cx.now, None)
                .await?;
        }
    }
    Ok(())
}

/// May `who` decide `step` today: as the approver, a member of its role, a
/// delegate of the approver, or an admin (an override).
fn may_decide(who: &Actor, step: &ApprovalStep, delegations: &[Delegation]) -> Option<(bool, Option<String>)> {
    if who.subject == step.approver || who.groups.contains(&step.approver) {
        return Some((false, None));
    }
    if let Some(d) = delegations
        .iter()
        .find(|d| d.to_user == who.subject && (d.from_user == step.approver))
    {
        return Some((false, Some(d.from_user.clone())));
    }
    who.admin.then_some((true, None))
}

/// Why `who` is a party to the request (its deal's owner, its submitter),
/// if they are.
fn own_request(who: &Actor, deal: &Deal, a: &Approval) -> Option<&'static str> {
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
fn allows_self_approval(snapshot: &Snapshot, policy: &str) -> bool {
    snapshot.pack.documents.iter().any(|d| match &d.spec {
        dealrules_model::Spec::ApprovalPolicy(spec) => d.metadata.name == policy && spec.allow_self_approval,
        _ => false,
    })
}

impl Workflow {
    /// Approves or rejects the pending step of approval `id`.
    pub async fn decide_approval(
        &self,
        snapshot: &Arc<Snapshot>,
        who: &Actor,
        id: &str,
        verdict: Verdict,
        comment: Option<String>,
    ) -> Result<Approval, WorkflowError> {
        let approve = verdict == Verdict::Approve;
        let cx = Cx::new(self, snapshot, who.subject.clone());
        let mut tx = cx.deals.begin_write().await?;
        let found = cx
            .deals
            .approval(&mut tx, id)
            .await?
            .ok_or_else(|| WorkflowError::NoApproval(id.into()))?;
        // Lock the deal: every change to a deal and its approvals queues on it.
        let deal = cx
            .deals
            .lock_deal(&mut tx, &found.deal)
            .await?
            .ok_or_else(|| internal("approval without deal"))?;
        let mut a = cx
            .deals
            .approval(&mut tx, id)
            .await?
            .ok_or_else(|| WorkflowError::NoApproval(id.into()))?;
        if a.state != ApprovalState::Pending {
            return Err(WorkflowError::Conflict(format!(
                "approval `{id}` is {}, not pending",
                a.state
            )));
        }
        let step = a
            .steps
            .iter()
            .position(|s| s.state == StepState::Pending)
            .ok_or_else(|| WorkflowError::Conflict(format!("approval `{id}` has no pending step")))?;
        let day = &cx.now[..10];
        let delegations = cx.deals.delegations_on(&mut tx, day).await?;
        let (overridden, delegate_of) = may_decide(who, &a.steps[step], &delegations).ok_or_else(|| {
            WorkflowError::Forbidden(format!(
                "step `{}` of approval `{id}` is for {}, not {}",
                a.steps[step].level, a.steps[step].approver, who.subject
            ))
        })?;
        if let Some(why) = own_request(who, &deal, &a)
            && !allows_self_approval(snapshot, &a.policy)
        {
            return Err(WorkflowError::Forbidden(format!(
                "segregation of duties: {} {why}, so cannot decide step `{}` of approval `{id}`; another approver for {} or an admin must",
                who.subject, a.steps[step].level, a.steps[step].approver
            )));
        }
        {
            let s = &mut a.steps[step];
            s.state = if approve {
                StepState::Approved
            } else {
                StepState::Rejected
            };
            s.decided_by = Some(who.subject.clone());
            s.comment = comment.clone();
            s.decided_at = Some(cx.now.clone());
            s.overridden = overridden;
            s.delegate_of = delegate_of.clone();
        }
        cancel_sla_timers(&cx, &mut tx, &deal.id, &a.id).await?;
        let next = a.steps.iter().position(|s| s.state == StepState::Waiting);
        match (approve, next) {
            (true, Some(n)) => a.steps[n].state = StepState::Pending,
            (true, None) => {
                a.state = ApprovalState::Approved;
                a.decided_at = Some(cx.now.clone());
            }
            (false, _) => {
                a.state = ApprovalState::Rejected;
                a.decided_at = Some(cx.now.clone());
                for s in a.steps.iter_mut().filter(|s| s.state == StepState::Waiting) {
                    s.state = StepState::Skipped;
                }
            }
        }
        cx.deals.update_approval(&mut tx, &a).await?;
        cx.history(
            &mut tx,
            &deal.id,
            "approval",
            json!({ "approval": a.id, "policy": a.policy, "event": if approve { "approved" } else { "rejected" }, "level": a.steps[step].level,
                    "by": who.subject, "comment": comment, "override": overridden, "delegate_of": delegate_of, "state": a.state }),
        )
        .await?;
        if let (true, Some(n)) = (approve, next) {
            step_opened(&cx, &mut tx, &deal, &a, n).await?;
        }
        tx.commit().await?;
        Ok(a)
    }

    /// The submitter (or an admin) takes a pending request back.
    pub async fn recall_approval(
        &self,
        snapshot: &Arc<Snapshot>,
        who: &Actor,
        id: &str,
    ) -> Result<Approval, WorkflowError> {
        let cx = Cx::new(self, snapshot, who.subject.clone());
        let mut tx = cx.deals.begin_write().await?;
        let found = cx
            .deals
            .approval(&mut tx, id)
            .await?
            .ok_or_else(|| WorkflowError::NoApproval(id.into()))?;
        cx.deals.lock_deal(&mut tx, &found.deal).await?;
        let mut a = cx
            .deals
            .approval(&mut tx, id)
            .await?
            .ok_or_else(|| WorkflowError::NoApproval(id.into()))?;
        if a.submitter != who.subject && !who.admin {
            return Err(WorkflowError::Forbidden(format!(
                "only the submitter ({}) may recall approval `{id}`",
                a.submitter
            )));
        }
        if a.state != ApprovalState::Pending {
            return Err(WorkflowError::Conflict(format!(
                "approval `{id}` is {}, not pending",
                a.state
            )));
        }
        a.state = ApprovalState::Recalled;
        a.decided_at = Some(cx.now.clone());
        for s in a
            .steps
            .iter_mut()
            .filter(|s| matches!(s.state, StepState::Pending | StepState::Waiting))
        {
            s.state = StepState::Skipped;
        }
        cx.deals.update_approval(&mut tx, &a).await?;
        cancel_sla_timers(&cx, &mut tx, &a.deal, &a.id).await?;
        cx.history(
            &mut tx,
            &a.deal,
            "approval",
            json!({ "approval": a.id, "policy": a.policy, "event": "recalled", "by": who.subject }),
        )
        .await?;
        tx.commit().await?;
        Ok(a)
    }
}

/// Approval requests by state and deal, oldest first.
pub async fn approval_requests(
    deals: &Deals,
    state: Option<&str>,
    deal: Option<&str>,
) -> Result<Vec<Approval>, WorkflowError> {
    let state = state
        .map(|s| {
            s.parse::<ApprovalState>().map_err(|_| {
                WorkflowError::Invalid(format!("`{s}` is not a state: pending, approved, rejected or recalled"))
            })
        })
        .transpose()?;
    Ok(deals.approvals(state, deal).await?)
}

/// The pending requests whose pending step `who` may decide today (as
/// its approver, a member of its role, a delegate, or an admin), oldest
/// first: an approver's inbox, as of `clock`'s today. The same rule
/// [`Workflow::decide_approval`] applies.
pub async fn inbox(deals: &Deals, clock: &Clock, who: &Actor) -> Result<Vec<Approval>, WorkflowError> {
    let now = clock.text();
    let delegations = deals.delegations_in_force(&now[..10]).await?;
    let pending = deals.approvals(Some(ApprovalState::Pending), None).await?;
    Ok(pending
        .into_iter()
        .filter(|a| {
            a.steps
                .iter()
                .find(|s| s.state == StepState::Pending)
                .is_some_and(|s| may_decide(who, s, &delegations).is_some())
        })
        .collect())
}

/// Delegates `from`'s approvals to `to` for the days `starts` to `ends`
/// (YYYY-MM-DD); `from` is the actor unless an admin names another.
pub async fn delegate(
    deals: &Deals,
    who: &Actor,
    from: Option<&str>,
    to: &str,
    starts: &str,
    ends: &str,
) -> Result<Delegation, WorkflowError> {
    let from = from.unwrap_or(&who.subject).to_string();
    if from != who.subject && !who.admin {
        return Err(WorkflowError::Forbidden(format!(
            "only {from} or an admin may delegate {from}'s approvals"
        )));
    }
    let day = |s: &str| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| WorkflowError::Invalid(format!("`{s}` is not a date (YYYY-MM-DD)")))
    };
    let (starts, ends) = (day(starts)?, day(ends)?);
    if ends < starts || to.trim().is_empty() || to == from {
        // Well-formed but contradictory.
        return Err(WorkflowError::Unprocessable(
            "a delegation needs another user and a range that ends on or after it starts".into(),
        ));
    }
    Ok(deals
        .add_delegation(&from, to, &starts.to_string(), &ends.to_string(), &who.subject)
        .await?)
}

/// Used by timers: the SLA timer of a pending step fired.
pub(crate) async fn sla_timer_fired(
    cx: &Cx<'_>,
    conn: &mut Conn,
    deal: &Deal,
    t: &dealrules_store::TimerRow,
) -> Result<(), WorkflowError> {
    let Some(approval_id) = &t.approval_id else {
        return Ok(());
    };
    let Some(a) = cx.deals.approval(conn, approval_id).await? else {
        return Ok(());
    };
    let Some(step) = a.steps.iter().find(|s| s.state == StepState::Pending) else {
        return Ok(());
    };
    if a.state != ApprovalState::Pending {
        return Ok(());
    }
    let (template, to) = if t.kind == TimerKind::Remind {
        ("approval-reminder", step.approver.clone())
    } else {
        // Escalation goes to whoever approves the next level, or to admins.
        let next = a
            .steps
            .iter()
            .skip_while(|s| s.state != StepState::Pending)
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
