//! What the runtime's operations share.

use std::sync::Arc;

use dealrules_store::Store;

use crate::clock::Clock;
use crate::error::WorkflowError;
use crate::pool::LongWork;

/// Who asks: a token's subject, whether they are an admin (who may decide
/// any step, as an override), and the groups (roles) they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub subject: String,
    pub admin: bool,
    pub groups: Vec<String>,
}

/// The workflow runtime's parts. Every operation takes the snapshot it
/// runs on: a request finishes on the pack it started with.
///
/// Its methods are the operations that span aggregates: a change to a deal
/// (its rows, history, approvals and timers, the notifications it renders
/// into the outbox, the roster it reads for their locale, in one
/// transaction), firing timers, incentive runs, reports and pace checks.
/// What touches one aggregate is a function over that handle instead
/// ([`crate::deal_view`], [`crate::approval_requests`], [`crate::inbox`],
/// [`crate::delegate`], [`crate::pipeline`], [`crate::delivery::deliver_due`]).
pub struct Workflow {
    /// The whole store, for the operations above.
    pub store: Arc<Store>,
    /// The server's one clock.
    pub clock: Arc<Clock>,
    /// Notification templates.
    pub templates: tera::Tera,
    /// This process, as timers record who fired them.
    pub node: String,
    /// Where plugin calls run, off the async workers.
    pub long_work: Arc<LongWork>,
    /// How far the incentive runs computing on this node have got.
    pub run_progress: crate::run_progress::ProgressBoard,
    /// The fills of kept credits this process is making.
    pub credit_fills: Arc<crate::fill_gate::FillGate>,
}

impl Workflow {
    pub fn new(
        store: Arc<Store>,
        clock: Arc<Clock>,
        long_work: Arc<LongWork>,
        node: String,
    ) -> Result<Workflow, WorkflowError> {
        Ok(Workflow {
            store,
            clock,
            templates: notification_templates()?,
            node,
            long_work,
            run_progress: Default::default(),
            credit_fills: Default::default(),
        })
    }
}

/// The notification templates of `templates/notifications/`, embedded:
/// each by its name, and its Simplified Chinese variant as `NAME.zh-CN`.
pub fn notification_templates() -> Result<tera::Tera, WorkflowError> {
    let mut t = tera::Tera::default();
    t.autoescape_on(vec![]);
    // Each template in English and in Simplified Chinese (`NAME.zh-CN`),
    // chosen by the recipient's locale (see `notify`).
    macro_rules! both {
        ($($name:literal),*) => {
            [$(
                ($name, include_str!(concat!("../../../templates/notifications/", $name, ".tera"))),
                (concat!($name, ".zh-CN"), include_str!(concat!("../../../templates/notifications/", $name, ".zh-CN.tera"))),
            )*]
        };
    }
    let files = both!(
        "proposal-sent",
        "stale-deal",
        "customer-revisit",
        "approval-requested",
        "approval-reminder",
        "approval-escalated",
        "pace-behind"
    );
    t.add_raw_templates(files)
        .map_err(|e| WorkflowError::Internal(format!("notification templates: {e}")))?;
    Ok(t)
}
