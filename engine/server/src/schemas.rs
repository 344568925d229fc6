//! The OpenAPI schemas of what the API shows from the store and the
//! workflow runtime, which know nothing of OpenAPI. Only the document reads
//! these types; the API tests check every answer against them, so they
//! cannot drift from what is served.
#![allow(dead_code)]

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use utoipa::ToSchema;

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Serialize, ToSchema)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
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

text_enum! {
    /// Where a change request stands: `draft` (its author edits it),
    /// `submitted` (waiting for an approver), `approved` (on its way to
    /// active), `scheduled` (approved, activating at `activate_at`),
    /// `active` (its pack was activated), `rejected`, `cancelled`.
    ChangeState { Draft, Submitted, Approved, Scheduled, Active, Rejected, Cancelled }
}
text_enum! {
    /// What a change request is: an edit of files, or a rollback to a
    /// stored version.
    ChangeKind { Change, Rollback }
}
text_enum! {
    /// Where an impact job stands.
    ImpactState { Running, Done, Failed }
}
text_enum! {
    RunState {
        /// Computing, off the request path.
        Running,
        Draft,
        Approved,
        Published,
        /// Final: its statements never change; later changes are adjustments.
        Locked,
        Failed,
        /// A later run of the same plan and period took its place.
        Replaced,
    }
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

/// A run as stored (without its input, which can be large).
#[derive(Serialize, ToSchema)]
pub struct Run {
    pub id: String,
    pub plan: String,
    pub period: String,
    pub state: RunState,
    pub pack_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Statements computed.
    pub reps: i64,
    /// What the statements pay, added up (a decimal string).
    pub total: String,
    pub started_by: String,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_at: Option<String>,
    /// Why a failed run failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One version of a person, in force from `valid_from` (inclusive) to
/// `valid_to` (exclusive; `None`: still in force).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// What plans read beside the fields above: `quota`, `csat`, ...
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Json,
    pub valid_from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<String>,
}

/// What an import did.
#[derive(Serialize, ToSchema)]
pub struct ImportCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// One move of a change request.
#[derive(Serialize, ToSchema)]
pub struct ChangeTransition {
    /// `None` for its creation.
    pub from: Option<ChangeState>,
    pub to: ChangeState,
    pub by: String,
    pub at: String,
    pub comment: Option<String>,
}

/// What to measure.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImpactRequest {
    /// Replay the decisions logged on or after this time (RFC 3339 or
    /// YYYY-MM-DD); left out, no decisions are replayed.
    #[serde(default)]
    pub decisions_since: Option<String>,
    /// ... and before this one.
    #[serde(default)]
    pub decisions_until: Option<String>,
    /// Recompute every incentive plan's statements for these periods
    /// (`2026-Q4`, `2026-11`, `2026`).
    #[serde(default)]
    pub incentive_periods: Vec<String>,
    /// List at most this many changed decisions, refused moves and
    /// cancelled timers each (default 100); all are counted.
    #[serde(default)]
    pub examples: Option<usize>,
}

/// How far a job has come.
#[derive(Serialize, ToSchema)]
pub struct ImpactProgress {
    /// `decisions`, `incentives`, `funnels` or `done`.
    pub phase: String,
    pub decisions_replayed: u64,
    /// Decisions in the range, counted when the job started.
    pub decisions_total: u64,
    /// Plan and period pairs recomputed, of `incentives_total`.
    pub incentives_done: u64,
    pub incentives_total: u64,
    pub deals_checked: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Impact {
    pub active_version: String,
    pub candidate_version: String,
    pub decisions: DecisionImpact,
    pub incentives: Vec<PlanImpact>,
    pub funnels: FunnelImpact,
}

#[derive(Serialize, ToSchema)]
pub struct DecisionImpact {
    pub replayed: u64,
    pub changed: u64,
    pub by_policy: Vec<PolicyCount>,
    /// The first changed decisions (oldest first), up to `examples`.
    pub examples: Vec<ChangedDecision>,
}

#[derive(Serialize, ToSchema)]
pub struct PolicyCount {
    pub policy: String,
    pub replayed: u64,
    pub changed: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ChangedDecision {
    /// The decision log id.
    pub id: String,
    pub policy: String,
    pub decided_at: String,
    #[schema(value_type = Object)]
    pub input: Json,
    /// The active pack's answer (without version and trace).
    #[schema(value_type = Object)]
    pub before: Json,
    /// The candidate's answer.
    #[schema(value_type = Object)]
    pub after: Json,
    /// Top-level fields that differ.
    pub fields: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PlanImpact {
    pub plan: String,
    pub period: String,
    pub currency: String,
    pub reps: u64,
    pub reps_changed: u64,
    pub total_before: String,
    pub total_after: String,
    pub delta: String,
    /// Every rep with a statement on either side, by rep id.
    pub by_rep: Vec<RepDelta>,
}

#[derive(Serialize, ToSchema)]
pub struct RepDelta {
    pub rep: String,
    pub before: String,
    pub after: String,
    pub delta: String,
}

#[derive(Serialize, ToSchema)]
pub struct FunnelImpact {
    /// Open deals (not in a terminal stage) checked.
    pub open_deals: u64,
    /// Moves the active pack allows and the candidate refuses, counted.
    pub refused: u64,
    pub refused_moves: Vec<RefusedMove>,
    /// Scheduled timers the candidate would cancel, counted.
    pub cancelled: u64,
    pub cancelled_timers: Vec<CancelledTimer>,
}

#[derive(Serialize, ToSchema)]
pub struct RefusedMove {
    pub deal: String,
    pub funnel: String,
    pub stage: String,
    pub to: String,
    /// Why the candidate refuses it.
    #[schema(value_type = Vec<Object>)]
    pub reasons: Vec<Json>,
}

#[derive(Serialize, ToSchema)]
pub struct CancelledTimer {
    pub deal: String,
    pub timer: String,
    pub stage: Option<String>,
    pub due_at: String,
    pub reason: String,
}
