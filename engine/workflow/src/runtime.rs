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
pub struct Workflow {
    pub store: Arc<Store>,
    /// The server's one clock.
    pub clock: Arc<Clock>,
    /// Notification templates.
    pub templates: tera::Tera,
    /// This process, as timers record who fired them.
    pub node: String,
    /// Where plugin calls run, off the async workers.
    pub long_work: Arc<LongWork>,
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
        })
    }
}

/// The notification templates of `templates/notifications/`, embedded.
pub fn notification_templates() -> Result<tera::Tera, WorkflowError> {
    let mut t = tera::Tera::default();
    t.autoescape_on(vec![]);
    let files: [(&str, &str); 7] = [
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
        (
            "pace-behind",
            include_str!("../../../templates/notifications/pace-behind.tera"),
        ),
    ];
    t.add_raw_templates(files)
        .map_err(|e| WorkflowError::Internal(format!("notification templates: {e}")))?;
    Ok(t)
}
