//! Hot reload: a change in the rules folder builds a whole new snapshot off
//! the request path, validates it and runs the pack's policy tests; only
//! then is it swapped in. A failing change keeps the last good pack and
//! says why in the status.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dealrules_core::Snapshot;
use dealrules_model::PackSource;
use notify::{RecursiveMode, Watcher};

use crate::state::{now, AppState};

/// Loads, compiles and tests a pack; every reason it cannot serve.
pub fn build(dir: &Path) -> Result<Snapshot, Vec<String>> {
    let source = PackSource::from_dir(dir).map_err(|e| vec![format!("{}: cannot read the pack: {e}", dir.display())])?;
    let snapshot = Snapshot::load(source).map_err(|e| e.0.iter().map(|d| d.to_string()).collect::<Vec<_>>())?;
    let report = snapshot.run_tests(&now());
    if !report.ok() {
        return Err(report
            .tests
            .iter()
            .filter_map(|t| t.failure.as_ref().map(|f| format!("{}:{}: policy test `{}` failed: {f}", t.file, t.line, t.name)))
            .collect());
    }
    Ok(snapshot)
}

/// Rebuilds from the rules folder and swaps the snapshot in when it is good.
pub async fn reload(state: &Arc<AppState>) -> bool {
    let dir = state.rules_dir.clone();
    let built = tokio::task::spawn_blocking(move || build(&dir)).await.unwrap_or_else(|e| Err(vec![format!("reload task failed: {e}")]));
    let mut status = state.status.write().unwrap_or_else(|p| p.into_inner());
    status.last_reload_at = Some(now());
    match built {
        Ok(snapshot) => {
            let changed = snapshot.version.as_ref() != status.version;
            if changed {
                status.version = snapshot.version.to_string();
                status.activated_at = now();
                state.snapshot.store(Arc::new(snapshot));
            }
            status.last_reload_errors = None;
            status.reloads += 1;
            state.metrics.reload(true);
            true
        }
        Err(errors) => {
            eprintln!("reload refused, keeping {}:\n  {}", status.version, errors.join("\n  "));
            status.last_reload_errors = Some(errors);
            status.failed_reloads += 1;
            state.metrics.reload(false);
            false
        }
    }
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
