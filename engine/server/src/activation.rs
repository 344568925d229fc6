//! The one owner of the active pack. Every way a pack becomes active — the
//! watched folder changed, an upload, a rollback, another node's
//! activation, the server's start — is an event for one task, which gates
//! (builds, validates and tests the pack off the request path), stores,
//! swaps the snapshot and records the status, one event at a time. A
//! failing pack keeps the last good one and says why in the status.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;
use dealrules_core::Snapshot;
use dealrules_model::PackSource;
use dealrules_store::{Activation, ActivationSource, Packs};
use dealrules_workflow::Workflow;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::reload::{Validation, read_dir, stored_snapshot, validate};
use crate::supervisor::Supervisor;

#[derive(Debug, Clone, Serialize, Default, utoipa::ToSchema)]
pub struct ReloadStatus {
    /// The active pack version.
    pub version: String,
    /// When the active pack was activated (RFC 3339).
    pub activated_at: String,
    /// Who activated it: a token's subject, or `directory`.
    pub activated_by: String,
    /// Where it came from: `directory` (the watched rules folder),
    /// `upload`, `rollback` or `change` (an approved change request).
    #[schema(value_type = crate::schemas::ActivationSource)]
    pub source: ActivationSource,
    /// The last reload attempt, good or bad.
    pub last_reload_at: Option<String>,
    /// Why the last reload was refused (`file:line:col: message` lines);
    /// `None` when it succeeded.
    pub last_reload_errors: Option<Vec<String>>,
    pub reloads: u64,
    pub failed_reloads: u64,
    /// The rules folder being watched.
    pub rules_dir: String,
    /// The database, without its password.
    pub store: String,
    pub decision_log: bool,
    /// The background workers: state, restarts, last error.
    pub workers: Vec<crate::supervisor::WorkerStatus>,
}

/// How an activation ended.
#[derive(Debug)]
pub enum Outcome {
    Activated(Activation),
    /// The pack is the one already active; nothing was recorded.
    Unchanged(String),
    /// Why the pack was not activated.
    Refused(Validation),
}

/// What asks for an activation.
#[derive(Debug)]
pub enum Event {
    /// The watched rules folder changed: activate what it now holds.
    FolderChanged,
    /// A pack uploaded, rolled back to, or approved in a change request
    /// (`change`) by `by`.
    Pack {
        source: PackSource,
        by: String,
        from: ActivationSource,
        comment: Option<String>,
        change: Option<String>,
    },
    /// Another node (or the CLI) may have activated a pack in the shared
    /// store: serve it too.
    Follow,
    /// The server started on its pack; the folder's errors when it could
    /// not serve the folder.
    Started { errors: Option<Vec<String>> },
}

/// Why following another node's activation failed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Store(#[from] dealrules_store::StoreError),
    #[error("activation {activation} names pack {version}, which does not build here")]
    DoesNotBuild { activation: String, version: String },
    #[error("the activation owner has stopped")]
    Stopped,
}

/// What an event came to.
#[derive(Debug)]
enum Answer {
    Outcome(Outcome),
    Followed(Result<(), FollowError>),
    Recorded,
}

struct Job {
    event: Event,
    reply: oneshot::Sender<Answer>,
}

/// The handle every part holds to ask for activations.
#[derive(Clone)]
pub struct Activations {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Activations {
    async fn ask(&self, event: Event) -> Option<Answer> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { event, reply }).ok()?;
        answer.await.ok()
    }

    /// Activates a pack through the gate.
    pub async fn activate(
        &self,
        source: PackSource,
        by: &str,
        from: ActivationSource,
        comment: Option<&str>,
    ) -> Outcome {
        self.activate_change(source, by, from, comment, None).await
    }

    /// Activates a pack through the gate, recording the change request it
    /// came from.
    pub async fn activate_change(
        &self,
        source: PackSource,
        by: &str,
        from: ActivationSource,
        comment: Option<&str>,
        change: Option<&str>,
    ) -> Outcome {
        let version = source.version();
        let event = Event::Pack {
            source,
            by: by.into(),
            from,
            comment: comment.map(str::to_string),
            change: change.map(str::to_string),
        };
        match self.ask(event).await {
            Some(Answer::Outcome(o)) => o,
            _ => stopped(version),
        }
    }

    /// Rebuilds from the rules folder and activates it when it is good;
    /// false when it was refused.
    pub async fn folder_changed(&self) -> bool {
        !matches!(
            self.ask(Event::FolderChanged).await,
            Some(Answer::Outcome(Outcome::Refused(_))) | None
        )
    }

    /// Serves the latest stored activation when another node made it.
    pub async fn follow(&self) -> Result<(), FollowError> {
        match self.ask(Event::Follow).await {
            Some(Answer::Followed(r)) => r,
            _ => Err(FollowError::Stopped),
        }
    }

    /// Records how the server started: the folder's errors when the last
    /// activated version serves instead.
    pub async fn started(&self, errors: Option<Vec<String>>) {
        self.ask(Event::Started { errors }).await;
    }
}

fn stopped(version: String) -> Outcome {
    Outcome::Refused(Validation {
        valid: false,
        version,
        errors: vec!["the activation owner has stopped".into()],
        tests_passed: 0,
        tests_failed: 0,
        policies: vec![],
    })
}

/// The task that owns the active pack, and what it changes.
pub(crate) struct Owner {
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub status: Arc<RwLock<ReloadStatus>>,
    pub metrics: Arc<Metrics>,
    /// Pack versions and activations: the only aggregate the owner writes.
    pub packs: Packs,
    /// Reconciles timers with a new pack.
    pub workflow: Arc<Workflow>,
    pub rules_dir: PathBuf,
}

/// What the status records of an event.
enum Record<'a> {
    Swapped(&'a Activation),
    Unchanged,
    Refused(Vec<String>),
    Started(Option<Vec<String>>),
}

impl Owner {
    /// Starts the owner, as the supervisor's worker `activation`; it
    /// ends when every handle is dropped.
    pub fn start(self, workers: &Supervisor) -> Activations {
        let (jobs, queue) = mpsc::unbounded_channel::<Job>();
        // A restarted owner goes on with the same queue.
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        let owner = Arc::new(self);
        workers.spawn("activation", move || {
            let (owner, queue) = (owner.clone(), queue.clone());
            async move {
                let mut queue = queue.lock().await;
                while let Some(job) = queue.recv().await {
                    let answer = owner.handle(job.event).await;
                    let _ = job.reply.send(answer);
                }
                Ok(())
            }
        });
        Activations { jobs }
    }

    async fn handle(&self, event: Event) -> Answer {
        match event {
            Event::Pack {
                source,
                by,
                from,
                comment,
                change,
            } => Answer::Outcome(
                self.activate(source, &by, from, comment.as_deref(), change.as_deref())
                    .await,
            ),
            Event::FolderChanged => {
                let dir = self.rules_dir.clone();
                match tokio::task::spawn_blocking(move || read_dir(&dir)).await {
                    Ok(Ok(source)) => Answer::Outcome(
                        self.activate(source, "directory", ActivationSource::Directory, None, None)
                            .await,
                    ),
                    Ok(Err(errors)) => {
                        self.record(Record::Refused(errors.clone()));
                        Answer::Outcome(Outcome::Refused(Validation {
                            valid: false,
                            version: String::new(),
                            errors,
                            tests_passed: 0,
                            tests_failed: 0,
                            policies: vec![],
                        }))
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reading the rules folder failed");
                        Answer::Outcome(stopped(String::new()))
                    }
                }
            }
            Event::Follow => Answer::Followed(self.follow().await),
            Event::Started { errors } => {
                self.record(Record::Started(errors));
                Answer::Recorded
            }
        }
    }

    /// The gate: validate and test off the request path, store, swap.
    async fn activate(
        &self,
        source: PackSource,
        by: &str,
        from: ActivationSource,
        comment: Option<&str>,
        change: Option<&str>,
    ) -> Outcome {
        let version = source.version();
        if *self.snapshot.load().version == *version {
            self.record(Record::Unchanged);
            return Outcome::Unchanged(version);
        }
        let stored = source.clone();
        let built = tokio::task::spawn_blocking(move || validate(source)).await;
        let (snapshot, mut validation) = match built {
            Ok(pair) => pair,
            Err(e) => (
                None,
                Validation {
                    valid: false,
                    version: version.clone(),
                    errors: vec![format!("the build task failed: {e}")],
                    tests_passed: 0,
                    tests_failed: 0,
                    policies: vec![],
                },
            ),
        };
        let Some(snapshot) = snapshot else {
            return self.refuse(from, validation);
        };
        // Stored before it answers anything, so every decision it makes can be
        // replayed on exactly these files.
        let activation = match self.packs.activate_from(&stored, by, from, comment, change).await {
            Ok(a) => a,
            Err(e) => {
                validation.valid = false;
                validation.errors.push(format!(
                    "the pack is valid but could not be stored, so it was not activated: {e}"
                ));
                return self.refuse(from, validation);
            }
        };
        self.swap(snapshot, &activation);
        // Other nodes follow.
        if let Err(e) = self.packs.notify_activation(&activation.version).await {
            tracing::warn!(error = %e, "telling other nodes of the activation failed");
        }
        Outcome::Activated(activation)
    }

    fn refuse(&self, from: ActivationSource, validation: Validation) -> Outcome {
        tracing::warn!(version = %validation.version, source = from.as_str(), keeping = %self.snapshot.load().version, errors = ?validation.errors, "activation refused; the active pack keeps serving");
        self.record(Record::Refused(validation.errors.clone()));
        Outcome::Refused(validation)
    }

    /// Serves the latest stored activation when another node (or this
    /// one's older self) made it: several nodes on one database agree on
    /// the pack.
    async fn follow(&self) -> Result<(), FollowError> {
        let Some(latest) = self.packs.latest_activation(None).await? else {
            return Ok(());
        };
        if *self.snapshot.load().version == *latest.version {
            return Ok(());
        }
        let Some(snapshot) = stored_snapshot(&self.packs, &latest.version).await else {
            return Err(FollowError::DoesNotBuild {
                activation: latest.id,
                version: latest.version,
            });
        };
        self.swap(snapshot, &latest);
        Ok(())
    }

    /// The one place the active snapshot changes: swapped whole (requests
    /// finish on the one they started with), recorded, the timers the new
    /// pack no longer has cancelled, and the kept credits of the current
    /// periods made (see `Workflow::fill_current_credits`).
    fn swap(&self, snapshot: Snapshot, activation: &Activation) {
        let snapshot = Arc::new(snapshot);
        self.snapshot.store(snapshot.clone());
        self.record(Record::Swapped(activation));
        let workflow = self.workflow.clone();
        tokio::spawn(async move {
            if let Err(e) = workflow.reconcile_timers(&snapshot).await {
                tracing::error!(error = %e, "reconciling timers with the new pack failed");
            }
            // The kept credits of the current periods, made now rather than
            // by the first report that asks (which waits for this one).
            if let Err(e) = workflow.fill_current_credits(&snapshot).await {
                tracing::warn!(error = %e, "filling kept credits for the new pack failed; reports will fill them");
            }
        });
    }

    /// The one place the status is written.
    fn record(&self, what: Record<'_>) {
        let mut status = self.status.write().unwrap_or_else(|p| p.into_inner());
        let now = dealrules_store::timestamp_now();
        match what {
            Record::Swapped(a) => {
                status.version = a.version.clone();
                status.activated_at = a.activated_at.clone();
                status.activated_by = a.activated_by.clone();
                status.source = a.source;
                status.last_reload_at = Some(now);
                status.last_reload_errors = None;
                status.reloads += 1;
                self.metrics.reload(true);
            }
            Record::Unchanged => {
                status.last_reload_at = Some(now);
                status.last_reload_errors = None;
            }
            Record::Refused(errors) => {
                status.last_reload_at = Some(now);
                status.last_reload_errors = Some(errors);
                status.failed_reloads += 1;
                self.metrics.reload(false);
            }
            Record::Started(errors) => status.last_reload_errors = errors,
        }
    }
}
