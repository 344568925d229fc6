//! The OpenAPI schemas of what the API shows from the store and the
//! workflow runtime, which know nothing of OpenAPI. Only the document reads
//! these types; the API tests check every answer against them, so they
//! cannot drift from what is served.
#![allow(dead_code)]

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use utoipa::ToSchema;

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Serialize, ToSchema)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($variant),+
        }
    };
}

text_enum! {
    /// `directory` (the watched rules folder), `upload`, `rollback` or
    /// `change` (an approved change request, named by `change_id`).
    ActivationSource { Directory, Upload, Rollback, Change }
}
text_enum! {
    ApprovalState { Pending, Approved, Rejected, Recalled }
}
text_enum! {
    /// `waiting` for the levels before it, then `pending` with its approver.
    StepState { Waiting, Pending, Approved, Rejected, Skipped }
}
text_enum! {
    TimerKind { Funnel, Remind, Escalate }
}
text_enum! {
    TimerState { Scheduled, Fired, Cancelled }
}

/// A token as stored: never the token nor its hash.
#[derive(Serialize, ToSchema)]
pub struct TokenRecord {
    pub id: String,
    pub role: String,
    pub subject: String,
    pub groups: Vec<String>,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub record: TokenRecord,
    /// The token itself, shown this once.
    pub token: String,
}

#[derive(Serialize, ToSchema)]
pub struct Activation {
    pub id: String,
    pub version: String,
    pub activated_at: String,
    pub activated_by: String,
    pub source: ActivationSource,
    pub comment: Option<String>,
    /// The change request it came from, when it came from one.
    pub change_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PackInfo {
    pub version: String,
    pub files: i64,
    pub bytes: i64,
    pub stored_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct Deal {
    pub id: String,
    pub funnel: String,
    pub owner: String,
    pub stage: String,
    /// The deal's fields (amount, close_date, ...).
    #[schema(value_type = Object)]
    pub fields: Json,
    /// Facts beside the deal that policies read: `rep`, `customer`, ...
    #[schema(value_type = Object)]
    pub context: Json,
    pub stage_entered_at: String,
    pub created_at: String,
    pub updated_at: String,
    pub revision: i64,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryEntry {
    pub id: String,
    pub at: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = Object)]
    pub detail: Json,
    /// The pack version in force.
    pub version: String,
    /// A token's subject, or `timer`.
    pub actor: String,
}

#[derive(Serialize, ToSchema)]
pub struct ApprovalStep {
    pub level: String,
    /// A user id, or `role:NAME`.
    pub approver: String,
    pub state: StepState,
    pub decided_by: Option<String>,
    pub comment: Option<String>,
    pub decided_at: Option<String>,
    /// Decided by an admin who was not the approver.
    #[serde(default)]
    pub overridden: bool,
    /// Decided by a delegate of the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegate_of: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Approval {
    pub id: String,
    pub deal: String,
    pub policy: String,
    pub level: String,
    pub state: ApprovalState,
    pub submitter: String,
    /// The decision and the values its rules tested (for smart re-approval).
    #[schema(value_type = Object)]
    pub basis: Json,
    pub steps: Vec<ApprovalStep>,
    pub version: String,
    pub created_at: String,
    pub decided_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Delegation {
    pub id: String,
    pub from_user: String,
    pub to_user: String,
    pub starts_on: String,
    pub ends_on: String,
    pub created_by: String,
    pub created_at: String,
}

#[derive(Deserialize, ToSchema)]
pub struct NewDeal {
    pub id: String,
    pub funnel: String,
    pub owner: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: Json,
    /// Facts beside the deal that policies read: `rep` (with `manager`), `customer`, ...
    #[serde(default)]
    #[schema(value_type = Object)]
    pub context: Json,
}

#[derive(Deserialize, ToSchema)]
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
#[derive(Serialize, ToSchema)]
pub struct DealView {
    #[serde(flatten)]
    pub deal: Deal,
    pub approvals: Vec<Approval>,
    pub history: Vec<HistoryEntry>,
    /// Scheduled timers.
    pub timers: Vec<TimerView>,
}

#[derive(Serialize, ToSchema)]
pub struct TimerView {
    pub id: String,
    pub kind: TimerKind,
    pub name: String,
    pub due_at: String,
    pub state: TimerState,
}

#[derive(ToSchema)]
pub struct Pipeline {
    pub total: String,
    pub weighted: String,
    pub groups: Vec<PipelineGroup>,
}

#[derive(ToSchema)]
pub struct PipelineGroup {
    pub key: String,
    pub count: usize,
    pub amount: String,
    pub weighted: String,
}

/// `POST /v1/decide`: several policies over one input.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideSeveral {
    /// Policy names (or Kind/name), each at most once; one to 64.
    #[schema(min_items = 1, max_items = 64)]
    pub policies: Vec<String>,
    /// The facts, as `POST /v1/decide/{policy}` takes them.
    #[schema(value_type = Object)]
    pub input: Json,
}
