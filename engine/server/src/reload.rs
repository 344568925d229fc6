//! Building packs: a whole new snapshot from a pack's files, validated and
//! with the pack's policy tests run (the gate [`crate::activation`] puts
//! every activation through), and the pack a starting server serves.

use std::path::Path;

use dealrules_core::Snapshot;
use dealrules_model::PackSource;
use dealrules_store::{Activation, ActivationSource};
use serde::Serialize;

use crate::error::ServeError;

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
    let report = snapshot.run_tests(&dealrules_store::timestamp_now());
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
) -> Result<(Snapshot, Option<Activation>, Option<Vec<String>>), ServeError> {
    let dir_source = read_dir(dir);
    let latest = store.packs().latest_activation(None).await?;
    let last_from_dir = store
        .packs()
        .latest_activation(Some(ActivationSource::Directory.as_str()))
        .await?;
    let dir_version = dir_source.as_ref().ok().map(PackSource::version);
    if let Some(latest) = &latest {
        let dir_unchanged = dir_version.is_some() && last_from_dir.as_ref().map(|a| &a.version) == dir_version.as_ref();
        if latest.source != ActivationSource::Directory
            && dir_unchanged
            && let Some(snapshot) = stored_snapshot(&store.packs(), &latest.version).await
        {
            return Ok((snapshot, Some(latest.clone()), None));
        }
    }
    let built = match dir_source {
        Ok(source) => {
            let kept = source.clone();
            tokio::task::spawn_blocking(move || build_source(source))
                .await?
                .map(|s| (s, kept))
        }
        Err(e) => Err(e),
    };
    match built {
        Ok((snapshot, source)) => {
            let activation = match &latest {
                Some(a) if a.version == *snapshot.version => a.clone(),
                _ => {
                    store
                        .packs()
                        .activate(&source, "directory", ActivationSource::Directory, None)
                        .await?
                }
            };
            Ok((snapshot, Some(activation), None))
        }
        Err(errors) => {
            let fallback = match &latest {
                Some(a) => stored_snapshot(&store.packs(), &a.version)
                    .await
                    .map(|s| (s, a.clone())),
                None => None,
            };
            match fallback {
                Some((snapshot, a)) => {
                    tracing::warn!(folder = %dir.display(), serving = %a.version, errors = ?errors, "the rules folder cannot serve; serving the last activated version");
                    Ok((snapshot, Some(a), Some(errors)))
                }
                None => Err(ServeError::NoPack {
                    dir: dir.display().to_string(),
                    errors,
                }),
            }
        }
    }
}

pub(crate) async fn stored_snapshot(packs: &dealrules_store::Packs, version: &str) -> Option<Snapshot> {
    let source = packs.pack(version).await.ok().flatten()?;
    tokio::task::spawn_blocking(move || build_source(source).ok())
        .await
        .ok()
        .flatten()
}
