//! Change requests: how an admin changes the rules without touching the
//! server's files. A change holds whole files against a base pack version;
//! every save builds the candidate (base plus the change) through the same
//! gate an activation uses and answers with its errors, its tests and a
//! unified diff per file. It moves draft -> submitted -> approved ->
//! active (or scheduled -> active), or is rejected or cancelled; every
//! move is stored with who, when and a comment.
//!
//! - **Four eyes.** Approving needs an admin other than the author, unless
//!   the server runs with `--four-eyes off`.
//! - **Rebase.** A change whose base is no longer the active version is
//!   carried forward onto it when none of its files changed since its
//!   base; otherwise the files that did are named and it is refused.
//! - **Activation.** Through the one activation owner, as source `change`
//!   (or `rollback`), with the change's id on the activation; a scheduled
//!   change is fired by the `scheduled-changes` worker of whichever node
//!   leases it first.
//! - **Impact.** A job off the request path, polled (see
//!   [`dealrules_workflow::impact`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use dealrules_core::Snapshot;
use dealrules_model::PackSource;
use dealrules_store::{
    ActivationSource, ChangeFiles, ChangeKind, ChangeRecord, ChangeState, ChangeTransition, ImpactJob, ImpactState,
    MoveSet, pack_changes,
};
use dealrules_workflow::impact::{ImpactProgress, ImpactRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::activation::Outcome;
use crate::auth::{Principal, Role, require};
use crate::error::ApiError;
use crate::extract::{Admin, Caller, Expected, JsonBody, Viewer};
use crate::reload::{Validation, validate};
use crate::state::AppState;

/// The subject that fires scheduled changes.
pub const SCHEDULER: &str = "scheduler";

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(create_change, list_changes))
        .routes(routes!(get_change, edit_change))
        .routes(routes!(submit))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(cancel))
        .routes(routes!(rollback_change))
        .routes(routes!(start_impact))
        .routes(routes!(impact_job))
}

// ---- shapes ----

/// A new change: a title and the files it changes (path -> whole new
/// text; `null` deletes the file).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChange {
    pub title: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub files: BTreeMap<String, Option<String>>,
}

impl Expected for NewChange {
    const EXPECTED: &'static str = r#"expected {"title", "files": {"path": "text" or null}}"#;
}

/// An edit of a draft: files merge into what it holds (a text equal to
/// the base's drops the file from the change); `rebase: true` moves the
/// base to the active version, the change's files winning.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditChange {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub files: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub rebase: bool,
}

/// A move's comment.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    #[serde(default)]
    pub comment: Option<String>,
}

/// An approval: its comment and, optionally, when it activates (RFC
/// 3339); left out or past, at once.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub activate_at: Option<String>,
}

/// A rollback to a stored version, as a change. `emergency: true`
/// activates it at once on this admin's word alone, recorded as such.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackChange {
    pub version: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub emergency: bool,
}

impl Expected for RollbackChange {
    const EXPECTED: &'static str = r#"expected {"version", "title", "comment", "emergency"}"#;
}

/// What the gate found in the candidate (base plus the change).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangeValidation {
    pub valid: bool,
    /// The candidate pack's version.
    pub version: String,
    /// `file:line:col: message`, one per problem (failed tests included).
    pub errors: Vec<String>,
    pub tests: TestCounts,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TestCounts {
    pub passed: usize,
    pub failed: usize,
}

impl From<&Validation> for ChangeValidation {
    fn from(v: &Validation) -> ChangeValidation {
        ChangeValidation {
            valid: v.valid,
            version: v.version.clone(),
            errors: v.errors.clone(),
            tests: TestCounts {
                passed: v.tests_passed,
                failed: v.tests_failed,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Added,
    Modified,
    Deleted,
}

/// One file of a change against its base.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileDiff {
    pub path: String,
    pub status: FileStatus,
    /// Unified diff, base (`a/`) to change (`b/`); empty for a binary file.
    pub diff: String,
    /// The file's whole new text; `null` when deleted or not text.
    pub text: Option<String>,
}

/// A change request with its diff, validation and transitions.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangeView {
    pub id: String,
    #[schema(value_type = crate::schemas::ChangeKind)]
    pub kind: ChangeKind,
    pub title: String,
    #[schema(value_type = crate::schemas::ChangeState)]
    pub state: ChangeState,
    pub author: String,
    pub base_version: String,
    /// The version active now.
    pub active_version: String,
    /// Files the change touches that changed in the active pack since its
    /// base: it cannot be carried forward until they are resolved
    /// (edit with `rebase: true`).
    pub conflicts: Vec<String>,
    pub diff: Vec<FileDiff>,
    pub validation: ChangeValidation,
    pub activate_at: Option<String>,
    /// An emergency rollback, activated without a second admin.
    pub emergency: bool,
    /// The activation it made.
    pub activation_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[schema(value_type = Vec<crate::schemas::ChangeTransition>)]
    pub transitions: Vec<ChangeTransition>,
}

/// A change request in a listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangeSummary {
    pub id: String,
    #[schema(value_type = crate::schemas::ChangeKind)]
    pub kind: ChangeKind,
    pub title: String,
    #[schema(value_type = crate::schemas::ChangeState)]
    pub state: ChangeState,
    pub author: String,
    pub base_version: String,
    /// The paths it changes.
    pub files: Vec<String>,
    pub valid: bool,
    pub activate_at: Option<String>,
    pub emergency: bool,
    pub activation_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeList {
    pub changes: Vec<ChangeSummary>,
}

/// An impact job: its progress, then its result (or why it failed).
#[derive(Debug, Serialize, ToSchema)]
pub struct ImpactJobView {
    pub id: String,
    pub change_id: String,
    #[schema(value_type = crate::schemas::ImpactState)]
    pub state: ImpactState,
    #[schema(value_type = Object)]
    pub request: Value,
    #[schema(value_type = crate::schemas::ImpactProgress)]
    pub progress: Value,
    #[schema(value_type = Option<crate::schemas::Impact>)]
    pub result: Option<Value>,
    pub error: Option<String>,
    pub requested_by: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// How often the job started again from the beginning because the
    /// node running it stopped (it then runs on the pack active at the
    /// restart).
    pub restarts: i64,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// draft | submitted | approved | scheduled | active | rejected | cancelled
    state: Option<String>,
}

// ---- the candidate, the diff, the rebase ----

/// Base plus the change.
fn apply(base: &PackSource, files: &ChangeFiles) -> PackSource {
    let mut out = base.clone();
    for (path, content) in files {
        match content {
            Some(bytes) => {
                out.files.insert(path.clone(), bytes.clone());
            }
            None => {
                out.files.remove(path);
            }
        }
    }
    out
}

fn diff_of(base: &PackSource, files: &ChangeFiles) -> Vec<FileDiff> {
    files
        .iter()
        .map(|(path, content)| {
            let before = base.files.get(path);
            let status = match (before, content) {
                (None, _) => FileStatus::Added,
                (Some(_), None) => FileStatus::Deleted,
                (Some(_), Some(_)) => FileStatus::Modified,
            };
            let as_text = |b: Option<&Vec<u8>>| b.map(|b| std::str::from_utf8(b).map(str::to_string));
            let (old, new) = (as_text(before), as_text(content.as_ref()));
            let diff = match (&old, &new) {
                (Some(Err(_)), _) | (_, Some(Err(_))) => String::new(),
                _ => {
                    let old = old.clone().and_then(Result::ok).unwrap_or_default();
                    let new = new.clone().and_then(Result::ok).unwrap_or_default();
                    similar::TextDiff::from_lines(&old, &new)
                        .unified_diff()
                        .context_radius(3)
                        .header(&format!("a/{path}"), &format!("b/{path}"))
                        .to_string()
                }
            };
            FileDiff {
                path: path.clone(),
                status,
                diff,
                text: new.and_then(Result::ok),
            }
        })
        .collect()
}

async fn stored_pack(state: &AppState, version: &str) -> Result<PackSource, ApiError> {
    state
        .store
        .packs()
        .pack(version)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("pack {version} is not stored")))
}

/// Where a change stands against the active pack.
enum Rebase {
    /// Its base is the active version.
    Current { base: PackSource },
    /// None of its files changed since its base: it moves onto the active.
    Forward { active: PackSource, version: String },
    /// These files changed since its base, and it changes them too.
    Conflicts(Vec<String>),
}

async fn rebase(state: &AppState, c: &ChangeRecord) -> Result<Rebase, ApiError> {
    let active = state.snapshot.load().version.to_string();
    let base = stored_pack(state, &c.base_version).await?;
    if active == c.base_version {
        return Ok(Rebase::Current { base });
    }
    let now = stored_pack(state, &active).await?;
    let conflicts: Vec<String> = pack_changes(&base, &now)
        .into_keys()
        .filter(|p| c.files.contains_key(p))
        .collect();
    if conflicts.is_empty() {
        Ok(Rebase::Forward {
            active: now,
            version: active,
        })
    } else {
        Ok(Rebase::Conflicts(conflicts))
    }
}

fn conflict(c: &ChangeRecord, files: Vec<String>) -> ApiError {
    let mut extra = serde_json::Map::new();
    extra.insert("conflicts".into(), json!(files));
    ApiError::ConflictWith {
        detail: format!(
            "change {} is based on {}, and since then the active pack changed {}, which it changes too: edit them against the active version and save with \"rebase\": true",
            c.id,
            c.base_version,
            files.join(", ")
        ),
        extra,
    }
}

/// The candidate as it would activate now: carried forward when it can be.
/// The pack, the base it stands on, and the gate's verdict.
async fn candidate(
    state: &AppState,
    c: &ChangeRecord,
) -> Result<(PackSource, String, Option<Snapshot>, Validation), ApiError> {
    let (base, base_version) = match rebase(state, c).await? {
        Rebase::Current { base } => (base, c.base_version.clone()),
        Rebase::Forward { active, version } => (active, version),
        Rebase::Conflicts(files) => return Err(conflict(c, files)),
    };
    let source = apply(&base, &c.files);
    let (snapshot, validation) = gate(source.clone()).await?;
    Ok((source, base_version, snapshot, validation))
}

async fn gate(source: PackSource) -> Result<(Option<Snapshot>, Validation), ApiError> {
    tokio::task::spawn_blocking(move || validate(source))
        .await
        .map_err(|e| ApiError::Internal(format!("the build task failed: {e}")))
}

fn invalid(v: &Validation) -> ApiError {
    let mut extra = serde_json::Map::new();
    extra.insert("errors".into(), json!(v.errors));
    ApiError::UnprocessableWith {
        detail: format!(
            "the change does not pass: {} error{}, {} test{} failed",
            v.errors.len(),
            if v.errors.len() == 1 { "" } else { "s" },
            v.tests_failed,
            if v.tests_failed == 1 { "" } else { "s" }
        ),
        extra,
    }
}

async fn view(state: &AppState, c: ChangeRecord) -> Result<ChangeView, ApiError> {
    let base = stored_pack(state, &c.base_version).await?;
    let active_version = state.snapshot.load().version.to_string();
    let conflicts = match c.state {
        ChangeState::Draft | ChangeState::Submitted | ChangeState::Scheduled => match rebase(state, &c).await? {
            Rebase::Conflicts(files) => files,
            _ => vec![],
        },
        _ => vec![],
    };
    let transitions = state.store.changes().change_transitions(&c.id).await?;
    let validation = serde_json::from_value(c.validation.clone()).unwrap_or(ChangeValidation {
        valid: false,
        version: String::new(),
        errors: vec!["not validated".into()],
        tests: TestCounts { passed: 0, failed: 0 },
    });
    Ok(ChangeView {
        diff: diff_of(&base, &c.files),
        id: c.id,
        kind: c.kind,
        title: c.title,
        state: c.state,
        author: c.author,
        base_version: c.base_version,
        active_version,
        conflicts,
        validation,
        activate_at: c.activate_at,
        emergency: c.emergency,
        activation_id: c.activation_id,
        created_at: c.created_at,
        updated_at: c.updated_at,
        transitions,
    })
}

fn summary(c: ChangeRecord) -> ChangeSummary {
    ChangeSummary {
        valid: c.validation.get("valid").and_then(Value::as_bool).unwrap_or(false),
        files: c.files.keys().cloned().collect(),
        id: c.id,
        kind: c.kind,
        title: c.title,
        state: c.state,
        author: c.author,
        base_version: c.base_version,
        activate_at: c.activate_at,
        emergency: c.emergency,
        activation_id: c.activation_id,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

async fn load(state: &AppState, id: &str) -> Result<ChangeRecord, ApiError> {
    state
        .store
        .changes()
        .change(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no change request `{id}`")))
}

fn title_of(title: &str) -> Result<String, ApiError> {
    let t = title.trim();
    if t.is_empty() || t.chars().count() > 200 {
        return Err(ApiError::BadRequest("`title` must be 1 to 200 characters".into()));
    }
    Ok(t.to_string())
}

fn comment_of(comment: Option<String>) -> Result<Option<String>, ApiError> {
    match comment {
        Some(c) if c.chars().count() > 2000 => Err(ApiError::BadRequest("`comment` is at most 2000 characters".into())),
        Some(c) if c.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Merges edits into a change's files against its base.
fn merge(base: &PackSource, files: &mut ChangeFiles, edits: BTreeMap<String, Option<String>>) -> Result<(), ApiError> {
    for (raw, content) in edits {
        let path = crate::upload::safe_path(&raw).map_err(|e| ApiError::BadRequest(format!("`{raw}`: {e}")))?;
        match content {
            Some(text) if base.files.get(&path).map(Vec::as_slice) == Some(text.as_bytes()) => {
                files.remove(&path);
            }
            Some(text) => {
                files.insert(path, Some(text.into_bytes()));
            }
            None if base.files.contains_key(&path) => {
                files.insert(path, None);
            }
            None => {
                files.remove(&path);
            }
        }
    }
    if files.len() > crate::upload::MAX_FILES {
        return Err(ApiError::BadRequest(format!(
            "a change holds at most {} files",
            crate::upload::MAX_FILES
        )));
    }
    Ok(())
}

/// An empty body is an empty request; anything else must be the JSON.
fn body_or_default<T: serde::de::DeserializeOwned + Default>(body: &[u8], expected: &str) -> Result<T, ApiError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Ok(T::default()),
        // serde would read a list as the struct's fields in order.
        Some(b'{') => {}
        Some(_) => return Err(ApiError::BadRequest(format!("expected {expected}: a JSON object"))),
    }
    crate::error::read_json(body).map_err(|e| ApiError::BadRequest(format!("expected {expected}: {e}")))
}

/// Moves a change from `from` to `to`, recording who and why; 409 when
/// someone else moved it first.
async fn move_or_refuse(
    state: &AppState,
    id: &str,
    from: ChangeState,
    to: ChangeState,
    by: &str,
    comment: Option<&str>,
    set: MoveSet<'_>,
) -> Result<(), ApiError> {
    if state
        .store
        .changes()
        .move_change(id, from, to, by, comment, set)
        .await?
    {
        Ok(())
    } else {
        Err(moved_by_someone_else(id))
    }
}

fn moved_by_someone_else(id: &str) -> ApiError {
    ApiError::Conflict(format!(
        "change {id} was moved by someone else meanwhile; read it again"
    ))
}

fn wrong_state(c: &ChangeRecord, action: &str, needs: &str) -> ApiError {
    ApiError::Conflict(format!(
        "change {} is {}; only a {needs} change can be {action}",
        c.id, c.state
    ))
}

// ---- routes ----

/// Opens a change request (a draft) against the active version.
///
/// The candidate (active pack plus these files) is validated and its tests
/// run; the answer has the errors, the test counts and the diff.
#[utoipa::path(post, path = "/v1/changes", tag = "changes", request_body = NewChange,
    responses((status = 201, description = "The draft, validated", body = ChangeView), (status = 400, description = "Not a change")),
    extensions(("x-required-role" = json!("admin"))))]
async fn create_change(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    JsonBody { value: req, .. }: JsonBody<NewChange>,
) -> Result<(StatusCode, Json<ChangeView>), ApiError> {
    Ok((StatusCode::CREATED, Json(open_change(&state, &who, req).await?)))
}

/// Opens a draft against the active version: `POST /v1/changes` and the console.
pub(crate) async fn open_change(state: &AppState, who: &Principal, req: NewChange) -> Result<ChangeView, ApiError> {
    require(who, Role::Admin)?;
    let title = title_of(&req.title)?;
    let base_version = state.snapshot.load().version.to_string();
    let base = stored_pack(state, &base_version).await?;
    let mut files = ChangeFiles::new();
    merge(&base, &mut files, req.files)?;
    let (_, validation) = gate(apply(&base, &files)).await?;
    let now = dealrules_store::timestamp_now();
    let record = ChangeRecord {
        id: format!("chg_{}", state.store.new_id()),
        kind: ChangeKind::Change,
        title,
        state: ChangeState::Draft,
        author: who.subject.clone(),
        base_version,
        files,
        validation: json!(ChangeValidation::from(&validation)),
        activate_at: None,
        emergency: false,
        activation_id: None,
        created_at: now.clone(),
        updated_at: now,
    };
    state.store.changes().insert_change(&record, None).await?;
    tracing::info!(change = %record.id, author = %who.subject, "change request opened");
    view(state, record).await
}

/// Change requests, newest first.
#[utoipa::path(get, path = "/v1/changes", tag = "changes", params(ChangesQuery),
    responses((status = 200, description = "The change requests", body = ChangeList), (status = 400, description = "Not a state")),
    extensions(("x-required-role" = json!("viewer"))))]
async fn list_changes(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Viewer>,
    Query(q): Query<ChangesQuery>,
) -> Result<Json<ChangeList>, ApiError> {
    Ok(Json(change_list(&state, &who, q.state).await?))
}

/// Change requests, newest first, in one state or all: `GET /v1/changes` and the console.
pub(crate) async fn change_list(
    state: &AppState,
    who: &Principal,
    wanted: Option<String>,
) -> Result<ChangeList, ApiError> {
    require(who, Role::Viewer)?;
    let wanted = wanted
        .map(|s| s.parse::<ChangeState>())
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let changes = state
        .store
        .changes()
        .changes(wanted)
        .await?
        .into_iter()
        .map(summary)
        .collect();
    Ok(ChangeList { changes })
}

/// A change request with its diff, validation, conflicts and transitions.
#[utoipa::path(get, path = "/v1/changes/{id}", tag = "changes", params(("id" = String, Path)),
    responses((status = 200, description = "The change", body = ChangeView), (status = 404, description = "No such change")),
    extensions(("x-required-role" = json!("viewer"))))]
async fn get_change(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Viewer>,
    Path(id): Path<String>,
) -> Result<Json<ChangeView>, ApiError> {
    Ok(Json(change_view(&state, &who, &id).await?))
}

/// A change request: `GET /v1/changes/{id}` and the console.
pub(crate) async fn change_view(state: &AppState, who: &Principal, id: &str) -> Result<ChangeView, ApiError> {
    require(who, Role::Viewer)?;
    let c = load(state, id).await?;
    view(state, c).await
}

/// Saves a draft: files merge in, the candidate is validated and tested.
///
/// Only the author edits a draft. `rebase: true` moves its base to the
/// active version (its files win over what changed there).
#[utoipa::path(put, path = "/v1/changes/{id}", tag = "changes", params(("id" = String, Path)), request_body = EditChange,
    responses((status = 200, description = "The draft, validated", body = ChangeView), (status = 400, description = "Not an edit"),
        (status = 403, description = "Not the author"), (status = 404, description = "No such change"), (status = 409, description = "Not a draft")),
    extensions(("x-required-role" = json!("admin"))))]
async fn edit_change(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ChangeView>, ApiError> {
    let req: EditChange = body_or_default(&body, "{\"title\", \"files\", \"rebase\"}")?;
    Ok(Json(save_change(&state, &who, &id, req).await?))
}

/// Saves a draft: `PUT /v1/changes/{id}` and the console.
pub(crate) async fn save_change(
    state: &AppState,
    who: &Principal,
    id: &str,
    req: EditChange,
) -> Result<ChangeView, ApiError> {
    require(who, Role::Admin)?;
    let mut c = load(state, id).await?;
    if c.author != who.subject {
        return Err(ApiError::Forbidden(format!(
            "only {} (its author) edits change {id}",
            c.author
        )));
    }
    if c.state != ChangeState::Draft {
        return Err(wrong_state(&c, "edited", "draft"));
    }
    if let Some(t) = &req.title {
        c.title = title_of(t)?;
    }
    if req.rebase {
        let active = state.snapshot.load().version.to_string();
        if active != c.base_version {
            // Whole files: what the change holds is what it wants; the
            // entries equal to the new base fall away.
            let new_base = stored_pack(state, &active).await?;
            c.files
                .retain(|path, content| new_base.files.get(path) != content.as_ref());
            c.base_version = active;
        }
    }
    let base = stored_pack(state, &c.base_version).await?;
    merge(&base, &mut c.files, req.files)?;
    let (_, validation) = gate(apply(&base, &c.files)).await?;
    c.validation = json!(ChangeValidation::from(&validation));
    if !state
        .store
        .changes()
        .save_draft(&c.id, &c.title, &c.base_version, &c.files, &c.validation)
        .await?
    {
        return Err(moved_by_someone_else(id));
    }
    let c = load(state, id).await?;
    view(state, c).await
}

/// Submits a draft for approval: it must pass (carried forward first when
/// its base is no longer active).
#[utoipa::path(post, path = "/v1/changes/{id}/submit", tag = "changes", params(("id" = String, Path)), request_body = MoveRequest,
    responses((status = 200, description = "Submitted", body = ChangeView), (status = 403, description = "Not the author"), (status = 404, description = "No such change"),
        (status = 409, description = "Not a draft, or files it changes changed since its base"), (status = 422, description = "It does not pass: errors and failed tests")),
    extensions(("x-required-role" = json!("admin"))))]
async fn submit(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ChangeView>, ApiError> {
    let req: MoveRequest = body_or_default(&body, "{\"comment\"}")?;
    Ok(Json(submit_change(&state, &who, &id, req).await?))
}

/// Submits a draft for approval: `POST /v1/changes/{id}/submit` and the console.
pub(crate) async fn submit_change(
    state: &AppState,
    who: &Principal,
    id: &str,
    req: MoveRequest,
) -> Result<ChangeView, ApiError> {
    require(who, Role::Admin)?;
    let comment = comment_of(req.comment)?;
    let c = load(state, id).await?;
    if c.state != ChangeState::Draft {
        return Err(wrong_state(&c, "submitted", "draft"));
    }
    if c.author != who.subject {
        return Err(ApiError::Forbidden(format!(
            "only {} (its author) submits change {id}",
            c.author
        )));
    }
    let (_, base_version, _, validation) = candidate(state, &c).await?;
    if !validation.valid {
        return Err(invalid(&validation));
    }
    let v = json!(ChangeValidation::from(&validation));
    move_or_refuse(
        state,
        id,
        ChangeState::Draft,
        ChangeState::Submitted,
        &who.subject,
        comment.as_deref(),
        MoveSet {
            base_version: Some(&base_version),
            validation: Some(&v),
            ..Default::default()
        },
    )
    .await?;
    let c = load(state, id).await?;
    view(state, c).await
}

/// Approves a submitted change: it activates at once, or at `activate_at`.
///
/// The approver must be an admin other than the author (unless the server
/// runs with `--four-eyes off`). A change whose files changed in the
/// active pack since its base is refused (409, naming them); one that no
/// longer passes is refused (422) and stays submitted.
#[utoipa::path(post, path = "/v1/changes/{id}/approve", tag = "changes", params(("id" = String, Path)), request_body = ApproveRequest,
    responses((status = 200, description = "Approved: active, or scheduled", body = ChangeView), (status = 400, description = "Not a time"),
        (status = 403, description = "The author may not approve their own change"), (status = 404, description = "No such change"),
        (status = 409, description = "Not submitted, or stale: files it changes changed since its base"), (status = 422, description = "It does not pass")),
    extensions(("x-required-role" = json!("admin"))))]
async fn approve(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ChangeView>, ApiError> {
    let req: ApproveRequest = body_or_default(&body, "{\"comment\", \"activate_at\"}")?;
    Ok(Json(approve_change(&state, &who, &id, req).await?))
}

/// Approves a submitted change: `POST /v1/changes/{id}/approve` and the console.
pub(crate) async fn approve_change(
    state: &AppState,
    who: &Principal,
    id: &str,
    req: ApproveRequest,
) -> Result<ChangeView, ApiError> {
    require(who, Role::Admin)?;
    let comment = comment_of(req.comment)?;
    let activate_at = req
        .activate_at
        .as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| dealrules_store::timestamp(t.with_timezone(&chrono::Utc)))
                .map_err(|e| ApiError::BadRequest(format!("`activate_at` must be an RFC 3339 time: {e}")))
        })
        .transpose()?;
    let c = load(state, id).await?;
    if c.state != ChangeState::Submitted {
        return Err(wrong_state(&c, "approved", "submitted"));
    }
    if state.four_eyes && c.author == who.subject {
        return Err(ApiError::Forbidden(format!(
            "four eyes: change {id} needs an admin other than its author {} to approve it",
            c.author
        )));
    }
    let (_, base_version, _, validation) = candidate(state, &c).await?;
    if !validation.valid {
        return Err(invalid(&validation));
    }
    let v = json!(ChangeValidation::from(&validation));
    let later = activate_at.filter(|at| *at > state.clock.text());
    move_or_refuse(
        state,
        id,
        ChangeState::Submitted,
        ChangeState::Approved,
        &who.subject,
        comment.as_deref(),
        MoveSet {
            base_version: Some(&base_version),
            validation: Some(&v),
            ..Default::default()
        },
    )
    .await?;
    match later {
        Some(at) => {
            state
                .store
                .changes()
                .move_change(
                    id,
                    ChangeState::Approved,
                    ChangeState::Scheduled,
                    &who.subject,
                    Some(&format!("activates at {at}")),
                    MoveSet {
                        activate_at: Some(&at),
                        ..Default::default()
                    },
                )
                .await?;
        }
        None => {
            let c = load(state, id).await?;
            if let Err(v) = activate(state, &c, ChangeState::Approved, &who.subject, ChangeState::Submitted).await? {
                return Err(invalid(&v));
            }
        }
    }
    let c = load(state, id).await?;
    view(state, c).await
}

/// Activates a change through the activation owner and moves it from
/// `from` to active; when the gate refuses, back to `fallback` with the
/// reasons, and the validation it failed.
async fn activate(
    state: &AppState,
    c: &ChangeRecord,
    from: ChangeState,
    by: &str,
    fallback: ChangeState,
) -> Result<Result<(), Validation>, ApiError> {
    let (source, base_version) = match rebase(state, c).await? {
        Rebase::Current { base } => (apply(&base, &c.files), c.base_version.clone()),
        Rebase::Forward { active, version } => (apply(&active, &c.files), version),
        Rebase::Conflicts(files) => {
            let why = format!(
                "not activated: since its base the active pack changed {}, which it changes too",
                files.join(", ")
            );
            state
                .store
                .changes()
                .move_change(&c.id, from, fallback, by, Some(&why), MoveSet::default())
                .await?;
            return Err(conflict(c, files));
        }
    };
    let source_kind = match c.kind {
        ChangeKind::Rollback => ActivationSource::Rollback,
        ChangeKind::Change => ActivationSource::Change,
    };
    let outcome = state
        .activations
        .activate_change(source, by, source_kind, Some(&c.title), Some(&c.id))
        .await;
    match outcome {
        Outcome::Activated(a) => {
            state
                .store
                .changes()
                .move_change(
                    &c.id,
                    from,
                    ChangeState::Active,
                    by,
                    Some(&format!("activated as {}", a.version)),
                    MoveSet {
                        activation_id: Some(&a.id),
                        base_version: Some(&base_version),
                        ..Default::default()
                    },
                )
                .await?;
            tracing::info!(change = %c.id, version = %a.version, by, "change activated");
            Ok(Ok(()))
        }
        Outcome::Unchanged(version) => {
            state
                .store
                .changes()
                .move_change(
                    &c.id,
                    from,
                    ChangeState::Active,
                    by,
                    Some(&format!("{version} was already active")),
                    MoveSet {
                        base_version: Some(&base_version),
                        ..Default::default()
                    },
                )
                .await?;
            Ok(Ok(()))
        }
        Outcome::Refused(v) => {
            let why = format!("activation refused: {}", v.errors.join("; "));
            let verdict = json!(ChangeValidation::from(&v));
            state
                .store
                .changes()
                .move_change(
                    &c.id,
                    from,
                    fallback,
                    by,
                    Some(&why),
                    MoveSet {
                        validation: Some(&verdict),
                        ..Default::default()
                    },
                )
                .await?;
            tracing::warn!(change = %c.id, errors = ?v.errors, "change not activated");
            Ok(Err(v))
        }
    }
}

/// Rejects a submitted or scheduled change.
#[utoipa::path(post, path = "/v1/changes/{id}/reject", tag = "changes", params(("id" = String, Path)), request_body = MoveRequest,
    responses((status = 200, description = "Rejected", body = ChangeView), (status = 404, description = "No such change"), (status = 409, description = "Not submitted or scheduled")),
    extensions(("x-required-role" = json!("admin"))))]
async fn reject(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ChangeView>, ApiError> {
    let req: MoveRequest = body_or_default(&body, "{\"comment\"}")?;
    Ok(Json(end_change(&state, &who, &id, req, ChangeState::Rejected).await?))
}

/// Cancels a draft, submitted or scheduled change.
#[utoipa::path(post, path = "/v1/changes/{id}/cancel", tag = "changes", params(("id" = String, Path)), request_body = MoveRequest,
    responses((status = 200, description = "Cancelled", body = ChangeView), (status = 404, description = "No such change"), (status = 409, description = "Already active, rejected or cancelled")),
    extensions(("x-required-role" = json!("admin"))))]
async fn cancel(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ChangeView>, ApiError> {
    let req: MoveRequest = body_or_default(&body, "{\"comment\"}")?;
    Ok(Json(end_change(&state, &who, &id, req, ChangeState::Cancelled).await?))
}

/// Rejects or cancels a change: `POST /v1/changes/{id}/reject|cancel` and the console.
pub(crate) async fn end_change(
    state: &AppState,
    who: &Principal,
    id: &str,
    req: MoveRequest,
    to: ChangeState,
) -> Result<ChangeView, ApiError> {
    require(who, Role::Admin)?;
    let comment = comment_of(req.comment)?;
    let c = load(state, id).await?;
    let allowed: &[ChangeState] = match to {
        ChangeState::Rejected => &[ChangeState::Submitted, ChangeState::Scheduled],
        _ => &[ChangeState::Draft, ChangeState::Submitted, ChangeState::Scheduled],
    };
    if !allowed.contains(&c.state) {
        let needs = allowed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or ");
        let action = if to == ChangeState::Rejected {
            "rejected"
        } else {
            "cancelled"
        };
        return Err(wrong_state(&c, action, &needs));
    }
    move_or_refuse(
        state,
        id,
        c.state,
        to,
        &who.subject,
        comment.as_deref(),
        MoveSet::default(),
    )
    .await?;
    let c = load(state, id).await?;
    view(state, c).await
}

/// Opens a rollback to a stored version as a change request.
///
/// The change holds the files that differ between the active pack and
/// that version. It is submitted for a second admin's approval; with
/// `emergency: true` this admin activates it at once alone, and the change
/// says so.
#[utoipa::path(post, path = "/v1/changes/rollback", tag = "changes", request_body = RollbackChange,
    responses((status = 201, description = "The rollback change: submitted, or active for an emergency", body = ChangeView), (status = 400, description = "Not a version"),
        (status = 404, description = "No such stored version"), (status = 409, description = "That version is active"), (status = 422, description = "That version no longer passes")),
    extensions(("x-required-role" = json!("admin"))))]
async fn rollback_change(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    JsonBody { value: req, .. }: JsonBody<RollbackChange>,
) -> Result<(StatusCode, Json<ChangeView>), ApiError> {
    Ok((StatusCode::CREATED, Json(roll_back(&state, &who, req).await?)))
}

/// Opens a rollback as a change: `POST /v1/changes/rollback` and the console.
pub(crate) async fn roll_back(state: &AppState, who: &Principal, req: RollbackChange) -> Result<ChangeView, ApiError> {
    require(who, Role::Admin)?;
    let comment = comment_of(req.comment)?;
    let version = state
        .store
        .packs()
        .resolve_version(&req.version)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no stored pack version `{}`", req.version)))?;
    let target = stored_pack(state, &version).await?;
    let active_version = state.snapshot.load().version.to_string();
    if version == active_version {
        return Err(ApiError::Conflict(format!("{version} is the active version")));
    }
    let active = stored_pack(state, &active_version).await?;
    let title = match &req.title {
        Some(t) => title_of(t)?,
        None => format!("Roll back to {}", &version[..version.len().min(19)]),
    };
    let (_, validation) = gate(target.clone()).await?;
    if !validation.valid {
        return Err(invalid(&validation));
    }
    let now = dealrules_store::timestamp_now();
    let record = ChangeRecord {
        id: format!("chg_{}", state.store.new_id()),
        kind: ChangeKind::Rollback,
        title,
        state: ChangeState::Draft,
        author: who.subject.clone(),
        base_version: active_version,
        files: pack_changes(&active, &target),
        validation: json!(ChangeValidation::from(&validation)),
        activate_at: None,
        emergency: req.emergency,
        activation_id: None,
        created_at: now.clone(),
        updated_at: now,
    };
    let id = record.id.clone();
    state
        .store
        .changes()
        .insert_change(&record, Some(&format!("rollback to {version}")))
        .await?;
    let by = who.subject.as_str();
    state
        .store
        .changes()
        .move_change(
            &id,
            ChangeState::Draft,
            ChangeState::Submitted,
            by,
            comment.as_deref(),
            MoveSet::default(),
        )
        .await?;
    if req.emergency {
        let why = format!(
            "emergency rollback by {by}: activated without a second admin{}",
            comment.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
        );
        state
            .store
            .changes()
            .move_change(
                &id,
                ChangeState::Submitted,
                ChangeState::Approved,
                by,
                Some(&why),
                MoveSet::default(),
            )
            .await?;
        tracing::warn!(change = %id, by, version = %version, "emergency rollback");
        let c = load(state, &id).await?;
        if let Err(v) = activate(state, &c, ChangeState::Approved, by, ChangeState::Submitted).await? {
            return Err(invalid(&v));
        }
    }
    let c = load(state, &id).await?;
    view(state, c).await
}

// ---- impact ----

/// Measures a change's impact on real history, off the request path.
///
/// Answers 202 with the job; poll `GET /v1/changes/{id}/impact/{job}`
/// for its progress and, when `done`, its result: decisions replayed on
/// both packs, incentive statements recomputed, funnel moves and timers.
#[utoipa::path(post, path = "/v1/changes/{id}/impact", tag = "changes", params(("id" = String, Path)), request_body = crate::schemas::ImpactRequest,
    responses((status = 202, description = "The job, running", body = ImpactJobView), (status = 400, description = "Not an impact request"),
        (status = 404, description = "No such change"), (status = 409, description = "Files it changes changed since its base"), (status = 422, description = "The candidate does not pass")),
    extensions(("x-required-role" = json!("admin"))))]
async fn start_impact(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Admin>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<ImpactJobView>), ApiError> {
    let req: ImpactRequest = body_or_default(
        &body,
        "{\"decisions_since\", \"decisions_until\", \"incentive_periods\", \"examples\"}",
    )?;
    Ok((StatusCode::ACCEPTED, Json(begin_impact(&state, &who, &id, req).await?)))
}

/// Starts an impact job: `POST /v1/changes/{id}/impact` and the console.
pub(crate) async fn begin_impact(
    state: &AppState,
    who: &Principal,
    id: &str,
    req: ImpactRequest,
) -> Result<ImpactJobView, ApiError> {
    require(who, Role::Admin)?;
    for t in req.decisions_since.iter().chain(req.decisions_until.iter()) {
        dealrules_store::normalize_time(t)?;
    }
    if req.incentive_periods.len() > 24 {
        return Err(ApiError::BadRequest("at most 24 `incentive_periods` at once".into()));
    }
    if req
        .examples
        .is_some_and(|n| n > dealrules_workflow::impact::MAX_EXAMPLES)
    {
        return Err(ApiError::BadRequest(format!(
            "`examples` is at most {}",
            dealrules_workflow::impact::MAX_EXAMPLES
        )));
    }
    for p in &req.incentive_periods {
        dealrules_core::plan_input::period_of(p).map_err(ApiError::BadRequest)?;
    }
    let c = load(state, id).await?;
    let (_, _, snapshot, validation) = candidate(state, &c).await?;
    let Some(candidate) = snapshot else {
        return Err(invalid(&validation));
    };
    let job = ImpactJob {
        id: format!("imp_{}", state.store.new_id()),
        change_id: id.to_string(),
        state: ImpactState::Running,
        request: serde_json::to_value(&req).unwrap_or(Value::Null),
        progress: json!(ImpactProgress::default()),
        result: None,
        error: None,
        requested_by: who.subject.clone(),
        started_at: dealrules_store::timestamp_now(),
        finished_at: None,
        restarts: 0,
    };
    state.store.changes().insert_impact(&job).await?;
    let active = state.snapshot.load_full();
    let (store, clock, job_id) = (state.store.clone(), state.clock.clone(), job.id.clone());
    tokio::spawn(async move {
        run_impact(store, clock, job_id, active, Arc::new(candidate), req).await;
    });
    Ok(job_view(job))
}

/// Runs an impact job to its end, writing its progress every half second.
pub async fn run_impact(
    store: Arc<dealrules_store::Store>,
    clock: Arc<dealrules_workflow::Clock>,
    job: String,
    active: Arc<Snapshot>,
    candidate: Arc<Snapshot>,
    request: ImpactRequest,
) {
    let now = clock.text();
    let (progress, mut watching) = tokio::sync::watch::channel(ImpactProgress::default());
    let writer = {
        let (store, job) = (store.clone(), job.clone());
        let clock = clock.clone();
        tokio::spawn(async move {
            let mut alive = tokio::time::interval(IMPACT_HEARTBEAT);
            loop {
                tokio::select! {
                    changed = watching.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let p = json!(*watching.borrow_and_update());
                        if let Err(e) = store.changes().impact_progress(&job, &p, &clock.text()).await {
                            tracing::warn!(job = %job, error = %e, "recording an impact job's progress failed");
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    _ = alive.tick() => {
                        if let Err(e) = store.changes().impact_heartbeat(&job, &clock.text()).await {
                            tracing::warn!(job = %job, error = %e, "recording an impact job's heartbeat failed");
                        }
                    }
                }
            }
        })
    };
    let outcome = dealrules_workflow::impact::measure(&store, active, candidate, &request, &now, &progress).await;
    let last = json!(*progress.borrow());
    drop(progress);
    let _ = writer.await;
    let done = match outcome {
        Ok(impact) => {
            let result = serde_json::to_value(&impact).unwrap_or(Value::Null);
            store.changes().finish_impact(&job, &last, Ok(&result)).await
        }
        Err(e) => {
            tracing::warn!(job = %job, error = %e, "impact job failed");
            store.changes().finish_impact(&job, &last, Err(&e.to_string())).await
        }
    };
    if let Err(e) = done {
        tracing::error!(job = %job, error = %e, "recording an impact job's end failed");
    }
}

fn job_view(j: ImpactJob) -> ImpactJobView {
    ImpactJobView {
        id: j.id,
        change_id: j.change_id,
        state: j.state,
        request: j.request,
        progress: j.progress,
        result: j.result,
        error: j.error,
        requested_by: j.requested_by,
        started_at: j.started_at,
        finished_at: j.finished_at,
        restarts: j.restarts,
    }
}

/// A running job says it is alive this often; one silent for
/// [`IMPACT_STALE`] is taken to have lost its node.
const IMPACT_HEARTBEAT: Duration = Duration::from_secs(5);
/// See [`IMPACT_HEARTBEAT`].
pub const IMPACT_STALE: Duration = Duration::from_secs(30);

/// Starts again the impact jobs whose node stopped while they ran (no
/// heartbeat for [`IMPACT_STALE`]): from the beginning, on the pack active
/// now and the change as it is now; the job counts the restart. A change
/// that no longer builds ends its job failed, saying why.
pub async fn resume_impacts(state: &AppState) -> Result<usize, dealrules_store::StoreError> {
    let stale = dealrules_store::timestamp(
        state.clock.now() - chrono::Duration::from_std(IMPACT_STALE).unwrap_or(chrono::Duration::seconds(30)),
    );
    let jobs = state
        .store
        .changes()
        .claim_stale_impacts(&stale, &state.clock.text())
        .await?;
    let mut resumed = 0;
    for job in jobs {
        tracing::warn!(job = %job.id, change = %job.change_id, restarts = job.restarts, "an impact job lost its node; starting it again");
        let request: Result<ImpactRequest, String> =
            serde_json::from_value(job.request.clone()).map_err(|e| e.to_string());
        let candidate = match request {
            Err(e) => Err(format!("its request no longer reads: {e}")),
            Ok(req) => match load(state, &job.change_id).await {
                Err(e) => Err(format!("its change: {e}")),
                Ok(c) => match candidate(state, &c).await {
                    Ok((_, _, Some(snapshot), _)) => Ok((req, snapshot)),
                    Ok((_, _, None, _)) => Err("the change no longer passes its checks".to_string()),
                    Err(e) => Err(format!("its change: {e}")),
                },
            },
        };
        match candidate {
            Ok((req, snapshot)) => {
                let active = state.snapshot.load_full();
                let (store, clock, id) = (state.store.clone(), state.clock.clone(), job.id.clone());
                tokio::spawn(async move {
                    run_impact(store, clock, id, active, Arc::new(snapshot), req).await;
                });
                resumed += 1;
            }
            Err(why) => {
                let why = format!("the node running the job stopped, and it cannot start again: {why}");
                state
                    .store
                    .changes()
                    .finish_impact(&job.id, &job.progress, Err(why.as_str()))
                    .await?;
            }
        }
    }
    Ok(resumed)
}

/// An impact job: progress while `running`, the result when `done`.
#[utoipa::path(get, path = "/v1/changes/{id}/impact/{job}", tag = "changes", params(("id" = String, Path), ("job" = String, Path)),
    responses((status = 200, description = "The job", body = ImpactJobView), (status = 404, description = "No such job")),
    extensions(("x-required-role" = json!("viewer"))))]
async fn impact_job(
    State(state): State<Arc<AppState>>,
    Caller(who, _): Caller<Viewer>,
    Path((id, job)): Path<(String, String)>,
) -> Result<Json<ImpactJobView>, ApiError> {
    Ok(Json(impact_view(&state, &who, &id, &job).await?))
}

/// An impact job: `GET /v1/changes/{id}/impact/{job}` and the console.
pub(crate) async fn impact_view(
    state: &AppState,
    who: &Principal,
    id: &str,
    job: &str,
) -> Result<ImpactJobView, ApiError> {
    require(who, Role::Viewer)?;
    let j = state
        .store
        .changes()
        .impact(job)
        .await?
        .filter(|j| j.change_id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no impact job `{job}` of change `{id}`")))?;
    Ok(job_view(j))
}

// ---- the scheduler ----

/// Fires the scheduled changes that are due and this node leased: the
/// activation owner activates each (after a rebase when its base moved);
/// one that cannot be activated goes back to draft, saying why.
pub async fn fire_due(state: &AppState, node: &str) -> Result<usize, dealrules_store::StoreError> {
    let now = state.clock.now();
    let lease = dealrules_store::timestamp(now + chrono::Duration::seconds(60));
    let due = state
        .store
        .changes()
        .claim_due_changes(&dealrules_store::timestamp(now), node, &lease)
        .await?;
    let mut fired = 0;
    for c in due {
        // The activation names who approved it.
        let approver = state
            .store
            .changes()
            .change_transitions(&c.id)
            .await?
            .into_iter()
            .rev()
            .find(|t| t.to == ChangeState::Approved)
            .map(|t| t.by)
            .unwrap_or_else(|| SCHEDULER.into());
        match activate(state, &c, ChangeState::Scheduled, &approver, ChangeState::Draft).await {
            Ok(Ok(())) => fired += 1,
            Ok(Err(_)) => {}
            Err(e) => tracing::warn!(change = %c.id, error = %e, "a scheduled change was not activated"),
        }
    }
    Ok(fired)
}
