//! What a change to a deal needs around it.

use std::sync::Arc;

use dealrules_core::Snapshot;
use dealrules_store::{Conn, Deals, HistoryEntry, Outbox, People, TimerKind, TimerRow, TimerState};
use serde_json::Value as Json;

use crate::clock::Clock;
use crate::error::WorkflowError;
use crate::pool::LongWork;
use crate::runtime::Workflow;

/// One change to a deal: what it may touch (the deal's aggregate, the
/// outbox it renders notifications into, the roster it reads their locale
/// from), the pack it runs on, its time and who makes it.
pub(crate) struct Cx<'a> {
    /// The deal's rows, history, approvals and timers; its write
    /// transaction (`begin_write`) and ids.
    pub deals: Deals,
    /// Notifications rendered by the change.
    pub outbox: Outbox,
    /// The roster, for a recipient's locale.
    pub people: People,
    pub templates: &'a tera::Tera,
    pub clock: &'a Clock,
    /// Where plugin actions run.
    pub long_work: &'a LongWork,
    pub snapshot: &'a Arc<Snapshot>,
    /// The runtime clock's now, for everything one change writes.
    pub now: String,
    pub actor: String,
}

impl<'a> Cx<'a> {
    pub fn new(wf: &'a Workflow, snapshot: &'a Arc<Snapshot>, actor: impl Into<String>) -> Cx<'a> {
        Cx {
            deals: wf.store.deals(),
            outbox: wf.store.outbox(),
            people: wf.store.people(),
            templates: &wf.templates,
            clock: &wf.clock,
            long_work: &wf.long_work,
            snapshot,
            now: wf.clock.text(),
            actor: actor.into(),
        }
    }

    pub fn version(&self) -> &str {
        &self.snapshot.version
    }

    /// Writes an entry of the deal's history.
    pub async fn history(&self, conn: &mut Conn, deal: &str, kind: &str, detail: Json) -> Result<(), WorkflowError> {
        let e = HistoryEntry {
            id: self.deals.new_id(),
            at: self.now.clone(),
            kind: kind.into(),
            detail,
            version: self.version().into(),
            actor: self.actor.clone(),
        };
        self.deals.insert_history_at(conn, deal, &e).await?;
        Ok(())
    }
}

impl Cx<'_> {
    /// A timer due at `due`, scheduled under the pack version in force.
    pub fn scheduled(&self, deal: &str, kind: TimerKind, name: &str, due: chrono::DateTime<chrono::Utc>) -> TimerRow {
        TimerRow {
            id: self.deals.new_id(),
            deal_id: deal.to_string(),
            kind,
            name: name.into(),
            stage: None,
            approval_id: None,
            due_at: dealrules_store::timestamp(due),
            every_ms: None,
            state: TimerState::Scheduled,
            fired_at: None,
            fired_by: None,
            version: self.version().into(),
        }
    }
}
