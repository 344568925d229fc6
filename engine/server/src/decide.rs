//! One decision, as `POST /v1/decide/{policy}` and the console's "try it"
//! both make it.

use std::sync::Arc;

use dealrules_core::DecideError;
use dealrules_store::DecisionRecord;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// One decision as `POST /v1/decide/{policy}` makes it (the console's "try
/// it" too): shape check, the snapshot the request started on, metrics and
/// the decision log; the decision as JSON text.
pub async fn decide_for(
    state: &Arc<AppState>,
    who: &crate::auth::Principal,
    policy: String,
    body: String,
) -> Result<String, ApiError> {
    // Depth, size and duplicate keys over the whole body, before anything
    // (the decision log included) keeps it.
    let shaped = dealrules_expr::input_shape::Shaped::check(&body)
        .map_err(|e| ApiError::BadRequest(format!("input is not valid JSON: {e}")))?;
    // The request finishes on the snapshot it started with, whatever a
    // reload swaps in meanwhile.
    let snapshot = state.snapshot.load_full();
    tracing::Span::current()
        .record("policy", policy.as_str())
        .record("version", &*snapshot.version);
    let started = std::time::Instant::now();
    let now = state.clock.text();
    let result = if snapshot.may_run_long(&policy) {
        // Plugins and plans run off the async workers (see `long_work`);
        // the text is checked again there, a trifle beside a plugin call.
        let (snapshot, policy, body, now) = (snapshot.clone(), policy.clone(), body.clone(), now.clone());
        state
            .long_work
            .run(move || {
                snapshot
                    .decide_json(&policy, &body, &now)
                    .map(|d| serde_json::to_string(&d))
            })
            .await?
    } else {
        snapshot
            .decide_shaped(&policy, shaped, &now)
            .map(|d| serde_json::to_string(&d))
    };
    // Only known policies get a series of their own.
    let label = match &result {
        Err(DecideError::UnknownPolicy { .. }) => "(unknown)",
        _ => policy.as_str(),
    };
    state
        .metrics
        .decision(label, matches!(result, Ok(Ok(_))), started.elapsed().as_secs_f64());
    let answer = match result {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => Err(ApiError::Internal(e.to_string())),
        Err(e) => Err(ApiError::from(e)),
    };
    if state.log.is_on() {
        let (outcome, logged) = match &answer {
            Ok(text) => ("ok", text.clone()),
            Err(e) => ("error", json!({ "error": e.to_string() }).to_string()),
        };
        state
            .log
            .record(DecisionRecord::new(
                &state.store,
                &now,
                &policy,
                &snapshot.version,
                outcome,
                &who.subject,
                &body,
                &logged,
            ))
            .await;
    }
    answer
}
