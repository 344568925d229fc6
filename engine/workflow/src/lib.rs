//! The workflow runtime: deals moving through the active Funnel, approval
//! requests opened by the `approval:` action, actions run on entering a
//! stage, durable timers, the notification outbox and its delivery.
//!
//! Every change to a deal happens in one write transaction that first
//! locks the deal's row: the check, the new stage, the history, the
//! approval request, the timers and the notifications are stored together
//! or not at all, and two requests on one deal queue. The checks themselves
//! are the pure core's ([`dealrules_core::Snapshot`]); the rows are the
//! store's. Nothing here speaks HTTP: the server maps [`WorkflowError`] to
//! its answers.
//!
//! Core concepts:
//! - [`Workflow`]: the runtime's parts (store, clock, templates, the pool
//!   for long work); every operation takes the snapshot it runs on.
//! - [`Clock`]: the one clock of a server, moved by an offset for drills.
//! - [`delivery`]: the outbox's delivery loop, over any [`delivery::Deliver`].
#![forbid(unsafe_code)]

mod actions;
mod approvals;
mod clock;
mod cx;
mod deals;
pub mod delivery;
pub mod demo;
mod error;
mod facts;
mod fill_gate;
pub mod impact;
pub mod imports;
pub mod incentive_runs;
pub mod measured;
mod notify;
pub mod period_parts;
mod pipeline;
mod pool;
pub mod run_progress;
mod runtime;
pub mod spreadsheet;
pub mod statement_docs;
pub mod target_import;
pub mod timers;

pub use timers::cancel_reason;

pub use approvals::{Verdict, approval_requests, delegate, inbox};
pub use clock::Clock;
pub use deals::{DealView, Event, Idempotency, NewDeal, TimerView, deal_view};
pub use error::WorkflowError;
pub use pipeline::{Pipeline, PipelineGroup, pipeline};
pub use pool::{LongWork, QUEUED, RUNNING};
pub use runtime::{Actor, Workflow, notification_templates};

pub type Result<T, E = WorkflowError> = std::result::Result<T, E>;
