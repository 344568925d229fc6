//! What every request shares: the active snapshot (swapped whole on reload),
//! the reload status, the tokens and the counters.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;
use axum::extract::FromRef;
use dealrules_core::Snapshot;

use crate::activation::{Activations, Owner, ReloadStatus};
use crate::auth::{TokenBook, Tokens};
use crate::decision_log::DecisionLog;
use crate::error::ServeError;
use crate::metrics::Metrics;
use crate::supervisor::Supervisor;
use dealrules_store::{ActivationSource, Store};
use dealrules_workflow::{Clock, Workflow};

pub struct AppState {
    /// The active pack; only the activation owner swaps it.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub rules_dir: PathBuf,
    /// Written only by the activation owner.
    pub status: Arc<RwLock<ReloadStatus>>,
    pub tokens: Tokens,
    pub metrics: Arc<Metrics>,
    pub store: Arc<Store>,
    pub log: DecisionLog,
    /// Where every activation goes (see [`crate::activation`]).
    pub activations: Activations,
    /// Background work (see [`crate::supervisor`]).
    pub workers: Supervisor,
    /// The server's one clock: decisions and the workflow read it.
    pub clock: Arc<Clock>,
    /// Where decisions that can take long run (see [`crate::long_work`]).
    pub long_work: crate::long_work::LongWork,
    /// Deals, approvals, timers and the outbox.
    pub workflow: Arc<Workflow>,
    /// Approving a change request needs an admin other than its author
    /// (`--four-eyes off` turns this off for a team of one).
    pub four_eyes: bool,
}

/// How a server state is put together.
pub struct Setup {
    pub snapshot: Snapshot,
    /// How the snapshot came to be active.
    pub activation: Option<dealrules_store::Activation>,
    pub rules_dir: PathBuf,
    pub store: Arc<Store>,
    /// Tokens that are not in the store (`DEALRULES_ADMIN_TOKEN`).
    pub fixed_tokens: TokenBook,
    pub decision_log: bool,
    pub clock: Clock,
    /// See [`AppState::four_eyes`].
    pub four_eyes: bool,
}

impl AppState {
    /// Loads the stored tokens and starts the decision log writer.
    pub async fn start(setup: Setup) -> Result<Arc<AppState>, ServeError> {
        let metrics = Arc::new(Metrics::default());
        let workers = Supervisor::default();
        let log = if setup.decision_log {
            DecisionLog::start(setup.store.decisions(), metrics.log.clone(), &workers)
        } else {
            DecisionLog::off()
        };
        let tokens = Tokens::new(setup.fixed_tokens);
        tokens.refresh(&setup.store.tokens()).await?;
        let (activated_at, activated_by, source) = match &setup.activation {
            Some(a) => (a.activated_at.clone(), a.activated_by.clone(), a.source),
            None => (
                dealrules_store::timestamp_now(),
                "directory".into(),
                ActivationSource::Directory,
            ),
        };
        let status = ReloadStatus {
            version: setup.snapshot.version.to_string(),
            activated_at,
            activated_by,
            source,
            rules_dir: setup.rules_dir.display().to_string(),
            store: setup.store.url().to_string(),
            decision_log: log.is_on(),
            ..Default::default()
        };
        let clock = Arc::new(setup.clock);
        let long_work = crate::long_work::LongWork::default();
        let workflow = Workflow::new(
            setup.store.clone(),
            clock.clone(),
            long_work.pool(),
            format!("{}-{}", hostname(), std::process::id()),
        )?;
        let workflow = Arc::new(workflow);
        let snapshot = Arc::new(ArcSwap::from_pointee(setup.snapshot));
        let status = Arc::new(RwLock::new(status));
        let activations = Owner {
            snapshot: snapshot.clone(),
            status: status.clone(),
            metrics: metrics.clone(),
            packs: setup.store.packs(),
            workflow: workflow.clone(),
            rules_dir: setup.rules_dir.clone(),
        }
        .start(&workers);
        Ok(Arc::new(AppState {
            snapshot,
            rules_dir: setup.rules_dir,
            status,
            tokens,
            metrics,
            store: setup.store,
            log,
            activations,
            workers,
            clock,
            long_work,
            workflow,
            four_eyes: setup.four_eyes,
        }))
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into())
}

/// The active pack, as a handler that reads only it takes it
/// (`State(active): State<Active>`); `load_full` for the whole request.
#[derive(Clone)]
pub struct Active(pub Arc<ArcSwap<Snapshot>>);

impl std::ops::Deref for Active {
    type Target = ArcSwap<Snapshot>;
    fn deref(&self) -> &ArcSwap<Snapshot> {
        &self.0
    }
}

// Handlers take the parts they need (`State<Arc<Store>>`, ...), not the
// whole state.
impl FromRef<Arc<AppState>> for Active {
    fn from_ref(s: &Arc<AppState>) -> Active {
        Active(s.snapshot.clone())
    }
}

/// The store, as a handler that needs only it takes it.
#[derive(Clone)]
pub struct StoreHandle(pub Arc<Store>);

impl std::ops::Deref for StoreHandle {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.0
    }
}

impl FromRef<Arc<AppState>> for StoreHandle {
    fn from_ref(s: &Arc<AppState>) -> StoreHandle {
        StoreHandle(s.store.clone())
    }
}

/// Declares a handler's view of one aggregate of the store: a sub-state
/// holding only that handle (`State(packs): State<PackStore>`).
macro_rules! store_part {
    ($(#[$doc:meta])* $name:ident($handle:ty) = $accessor:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(pub $handle);

        impl std::ops::Deref for $name {
            type Target = $handle;
            fn deref(&self) -> &$handle {
                &self.0
            }
        }

        impl FromRef<Arc<AppState>> for $name {
            fn from_ref(s: &Arc<AppState>) -> $name {
                $name(s.store.$accessor())
            }
        }
    };
}

store_part! {
    /// Pack versions and their activations.
    PackStore(dealrules_store::Packs) = packs
}
store_part! {
    /// API tokens.
    TokenStore(dealrules_store::Tokens) = tokens
}
store_part! {
    /// The decision log.
    DecisionStore(dealrules_store::Decisions) = decisions
}
store_part! {
    /// Deals with their approvals, delegations, history and timers.
    DealStore(dealrules_store::Deals) = deals
}
store_part! {
    /// The notification outbox.
    OutboxStore(dealrules_store::Outbox) = outbox
}
store_part! {
    /// The roster.
    PeopleStore(dealrules_store::People) = people
}

/// The server's one clock, as a handler that reads the time takes it.
#[derive(Clone)]
pub struct ClockHandle(pub Arc<Clock>);

impl std::ops::Deref for ClockHandle {
    type Target = Clock;
    fn deref(&self) -> &Clock {
        &self.0
    }
}

impl FromRef<Arc<AppState>> for ClockHandle {
    fn from_ref(s: &Arc<AppState>) -> ClockHandle {
        ClockHandle(s.clock.clone())
    }
}

/// The workflow runtime, as a handler that needs only it takes it.
#[derive(Clone)]
pub struct WorkflowHandle(pub Arc<Workflow>);

impl std::ops::Deref for WorkflowHandle {
    type Target = Workflow;
    fn deref(&self) -> &Workflow {
        &self.0
    }
}

impl FromRef<Arc<AppState>> for WorkflowHandle {
    fn from_ref(s: &Arc<AppState>) -> WorkflowHandle {
        WorkflowHandle(s.workflow.clone())
    }
}

impl FromRef<Arc<AppState>> for Activations {
    fn from_ref(s: &Arc<AppState>) -> Activations {
        s.activations.clone()
    }
}
