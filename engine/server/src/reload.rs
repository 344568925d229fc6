//! Activation: a pack, from the watched rules folder, an upload or a
//! rollback, becomes active only through one gate. A whole new snapshot is
//! built off the request path, validated, and the pack's policy tests run;
//! then the pack is stored with who activated it and when; only then is it
//! swapped in. A failing pack keeps the last good one and says why in the
//! status.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dealrules_core::Snapshot;
use dealrules_model::PackSource;
use dealrules_store::{Activation, ActivationSource};
use notify::{RecursiveMode, Watcher};
use serde::Serialize;

use crate::state::{AppState, now};

/// What validating a pack found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Validation {
    pub valid: bool,
    pub version: String,
    /// `file:line:col: message`, one per problem.
    pub errors: Vec<String>,
    pub tests_passed: usize,
    pub tests_failed: usize,
    /// `Kind/name` of each policy.
    pub policies: Vec<String>,
}

/// Loads, compiles and tests a pack: the snapshot, or every reason it
/// cannot serve.
pub fn validate(source: PackSource) -> (Option<Snapshot>, Validation) {
    let version = source.version();
    let mut v = Validation {
        valid: false,
        version,
        errors: vec![],
        tests_passed: 0,
        tests_failed: 0,
        policies: vec![],
    };
    let mut snapshot = match Snapshot::load(source) {
        Ok(s) => s,
        Err(e) => {
            v.errors = e.0.iter().map(|d| d.to_string()).collect();
            return (None, v);
        }
    };
    // Plugins are compiled (or read from the cache) before the tests run,
    // so the pack's tests exercise them.
    if let Err(errors) =
        dealrules_plugin_host::attach(&mut snapshot, dealrules_plugin_host::default_cache_dir().as_deref())
    {
        v.errors = errors;
        return (None, v);
    }
    v.policies = snapshot.pack.documents.iter().map(|d| d.label()).collect();
    let report = snapshot.run_tests(&now());
    for t in &report.tests {
        match &t.failure {
            None => v.tests_passed += 1,
            Some(f) => {
                v.tests_failed += 1;
                v.errors
                    .push(format!("{}:{}: policy test `{}` failed: {f}", t.file, t.line, t.name));
            }
        }
    }
    v.valid = v.errors.is_empty();
    (v.valid.then_some(snapshot), v)
}

pub fn build_source(source: PackSource) -> Result<Snapshot, Vec<String>> {
    match validate(source) {
        (Some(s), _) => Ok(s),
        (None, v) => Err(v.errors),
    }
}

/// Reads a rules folder and builds it.
pub fn build(dir: &Path) -> Result<Snapshot, Vec<String>> {
    build_source(read_dir(dir)?)
}

pub fn read_dir(dir: &Path) -> Result<PackSource, Vec<String>> {
    PackSource::from_dir(dir).map_err(|e| vec![format!("{}: cannot read the pack: {e}", dir.display())])
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

/// The one gate: validate and test off the request path, store, swap.
pub async fn activate(
    state: &Arc<AppState>,
    source: PackSource,
    by: &str,
    from: ActivationSource,
    comment: Option<&str>,
) -> Outcome {
    let _one_at_a_time = state.activating.lock().await;
    let version = source.version();
    if *state.snapshot.load().version == *version {
        let mut status = state.status.write().unwrap_or_else(|p| p.into_inner());
        status.last_reload_at = Some(now());
        status.last_reload_errors = None;
        return Outcome::Unchanged(version);
    }
    let stored = source.clone();
    let built = tokio::task::spawn_blocking(move || validate(source)).await;
    let (snapshot, validation) = match built {
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
    let refuse = |validation: Validation| {
        let mut status = state.status.write().unwrap_or_else(|p| p.into_inner());
        tracing::warn!(version = %validation.version, source = from.as_str(), keeping = %status.version, errors = ?validation.errors, "activation refused; the active pack keeps serving");
        status.last_reload_at = Some(now());
        status.last_reload_errors = Some(validation.errors.clone());
        status.failed_reloads += 1;
        state.metrics.reload(false);
        Outcome::Refused(validation)
    };
    let Some(snapshot) = snapshot else {
        return refuse(validation);
    };
    // Stored before it answers anything, so every decision it makes can be
    // replayed on exactly these files.
    let activation = match state.store.activate(&stored, by, from, comment).await {
        Ok(a) => a,
        Err(e) => {
            let mut v = validation;
            v.valid = false;
            v.errors.push(format!(
                "the pack is valid but could not be stored, so it was not activated: {e}"
            ));
            return refuse(v);
        }
    };
    state.snapshot.store(Arc::new(snapshot));
    {
        let mut status = state.status.write().unwrap_or_else(|p| p.into_inner());
        status.version = activation.version.clone();
        status.activated_at = activation.activated_at.clone();
        status.activated_by = activation.activated_by.clone();
        status.source = activation.source;
        status.last_reload_at = Some(now());
        status.last_reload_errors = None;
        status.reloads += 1;
    }
    state.metrics.reload(true);
    after_activation(state, &activation.version).await;
    Outcome::Activated(activation)
}

/// Tells other nodes, and cancels timers the new pack no longer has.
async fn after_activation(state: &Arc<AppState>, version: &str) {
    if let Err(e) = state.store.notify_activation(version).await {
        tracing::warn!(error = %e, "telling other nodes of the activation failed");
    }
    let state = state.clone();
    tokio::spawn(async move {
        let snapshot = state.snapshot.load_full();
        if let Err(e) = state.workflow.reconcile_timers(&snapshot).await {
            tracing::error!(error = %e, "reconciling timers with the new pack failed");
        }
    });
}

/// Serves the latest stored activation when another node (or this one's
/// older self) made it: several nodes on one database agree on the pack.
pub async fn follow(state: &Arc<AppState>) -> Result<(), String> {
    let Some(latest) = state.store.latest_activation(None).await.map_err(|e| e.to_string())? else {
        return Ok(());
    };
    if *state.snapshot.load().version == *latest.version {
        return Ok(());
    }
    let _one_at_a_time = state.activating.lock().await;
    if *state.snapshot.load().version == *latest.version {
        return Ok(());
    }
    let Some(snapshot) = stored_snapshot(&state.store, &latest.version).await else {
        return Err(format!(
            "activation {} names pack {}, which does not build here",
            latest.id, latest.version
        ));
    };
    state.snapshot.store(Arc::new(snapshot));
    {
        let mut status = state.status.write().unwrap_or_else(|p| p.into_inner());
        status.version = latest.version.clone();
        status.activated_at = latest.activated_at.clone();
        status.activated_by = latest.activated_by.clone();
        status.source = latest.source;
        status.last_reload_at = Some(now());
        status.reloads += 1;
    }
    state.metrics.reload(true);
    let state = state.clone();
    tokio::spawn(async move {
        let snapshot = state.snapshot.load_full();
        if let Err(e) = state.workflow.reconcile_timers(&snapshot).await {
            tracing::error!(error = %e, "reconciling timers with the new pack failed");
        }
    });
    Ok(())
}

/// Rebuilds from the rules folder and activates it when it is good.
pub async fn reload(state: &Arc<AppState>) -> bool {
    let dir = state.rules_dir.clone();
    let source = match tokio::task::spawn_blocking(move || read_dir(&dir)).await {
        Ok(Ok(s)) => s,
        Ok(Err(errors)) => {
            let mut status = state.status.write().unwrap_or_else(|p| p.into_inner());
            status.last_reload_at = Some(now());
            status.last_reload_errors = Some(errors);
            status.failed_reloads += 1;
            state.metrics.reload(false);
            return false;
        }
        Err(e) => {
            tracing::error!(error = %e, "reading the rules folder failed");
            return false;
        }
    };
    !matches!(
        activate(state, source, "directory", ActivationSource::Directory, None).await,
        Outcome::Refused(_)
    )
}

/// Watches the rules folder; changes within `debounce` of each other make
/// one reload.
pub fn watch(state: Arc<AppState>, debounce: Duration) -> notify::Result<notify::RecommendedWatcher> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&state.rules_dir, RecursiveMode::Recursive)?;
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Let a burst of writes (an editor saving, a git checkout) settle.
            tokio::time::sleep(debounce).await;
            while rx.try_recv().is_ok() {}
            reload(&state).await;
        }
    });
    Ok(watcher)
}

/// Which pack a starting server serves, and how it came to be active.
///
/// The latest intent wins: when the rules folder holds what was last
/// activated from it and an admin has since uploaded or rolled back, the
/// stored activation is served; when the folder changed since (a deploy),
/// the folder is activated. A folder that does not build falls back to the
/// last stored activation, with the errors shown in the status.
pub async fn startup(
    store: &dealrules_store::Store,
    dir: &Path,
) -> Result<(Snapshot, Option<Activation>, Option<Vec<String>>), String> {
    let dir_source = read_dir(dir);
    let latest = store.latest_activation(None).await.map_err(|e| e.to_string())?;
    let last_from_dir = store
        .latest_activation(Some(ActivationSource::Directory.as_str()))
        .await
        .map_err(|e| e.to_string())?;
    let dir_version = dir_source.as_ref().ok().map(PackSource::version);
    if let Some(latest) = &latest {
        let dir_unchanged = dir_version.is_some() && last_from_dir.as_ref().map(|a| &a.version) == dir_version.as_ref();
        if latest.source != ActivationSource::Directory
            && dir_unchanged
            && let Some(snapshot) = stored_snapshot(store, &latest.version).await
        {
            return Ok((snapshot, Some(latest.clone()), None));
        }
    }
    let built = match dir_source {
        Ok(source) => {
            let kept = source.clone();
            tokio::task::spawn_blocking(move || build_source(source))
                .await
                .map_err(|e| e.to_string())?
                .map(|s| (s, kept))
        }
        Err(e) => Err(e),
    };
    match built {
        Ok((snapshot, source)) => {
            let activation = match &latest {
                Some(a) if a.version == *snapshot.version => a.clone(),
                _ => store
                    .activate(&source, "directory", ActivationSource::Directory, None)
                    .await
                    .map_err(|e| e.to_string())?,
            };
            Ok((snapshot, Some(activation), None))
        }
        Err(errors) => {
            let fallback = match &latest {
                Some(a) => stored_snapshot(store, &a.version).await.map(|s| (s, a.clone())),
                None => None,
            };
            match fallback {
                Some((snapshot, a)) => {
                    tracing::warn!(folder = %dir.display(), serving = %a.version, errors = ?errors, "the rules folder cannot serve; serving the last activated version");
                    Ok((snapshot, Some(a), Some(errors)))
                }
                None => Err(format!(
                    "the pack in {} cannot serve:\n{}",
                    dir.display(),
                    errors.join("\n")
                )),
            }
        }
    }
}

async fn stored_snapshot(store: &dealrules_store::Store, version: &str) -> Option<Snapshot> {
    let source = store.pack(version).await.ok().flatten()?;
    tokio::task::spawn_blocking(move || build_source(source).ok())
        .await
        .ok()
        .flatten()
}
