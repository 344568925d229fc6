//! Decisions as `POST /v1/decide/{policy}`, `POST /v1/decide` (several
//! policies over one input) and the console's "try it" make them.

use std::sync::Arc;

use dealrules_core::{DecideError, DecideRequest, Snapshot};
use dealrules_expr::input_shape::Shaped;
use dealrules_store::DecisionRecord;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

fn shape(input: &str) -> Result<Shaped<'_>, ApiError> {
    Shaped::check(input).map_err(|e| ApiError::BadRequest(format!("input is not valid JSON: {e}")))
}

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
    let shaped = shape(&body)?;
    // The request finishes on the snapshot it started with, whatever a
    // reload swaps in meanwhile.
    let snapshot = state.snapshot.load_full();
    tracing::Span::current()
        .record("policy", policy.as_str())
        .record("version", &*snapshot.version);
    let now = state.clock.text();
    decide_one(state, who, &snapshot, &policy, shaped, &now).await
}

/// `POST /v1/decide`: every policy the body names over its one input, read
/// and shape-checked once, on one snapshot and one `now`; each policy is
/// decided, counted and logged as its own decide would be. A request that
/// is malformed as a whole (no policies, one named twice, an input that is
/// not an object) is an error; a policy that cannot decide is an `error`
/// entry (`{"status", "detail"}`) and the others still decide.
pub async fn decide_several(
    state: &Arc<AppState>,
    who: &crate::auth::Principal,
    body: String,
) -> Result<String, ApiError> {
    // The input's shape was checked with the body's.
    let request = DecideRequest::parse(&body)?;
    let snapshot = state.snapshot.load_full();
    tracing::Span::current()
        .record("policy", request.policies.join(",").as_str())
        .record("version", &*snapshot.version);
    let now = state.clock.text();
    let mut answer = String::from("{\"results\":{");
    for (i, policy) in request.policies.iter().enumerate() {
        if i > 0 {
            answer.push(',');
        }
        answer.push_str(&serde_json::to_string(policy).map_err(|e| ApiError::Internal(e.to_string()))?);
        answer.push(':');
        match decide_one(state, who, &snapshot, policy, request.input, &now).await {
            Ok(decision) => answer.push_str(&decision),
            Err(e) => {
                if let ApiError::Internal(detail) = &e {
                    tracing::error!(policy = %policy, %detail, "a policy of a several-policy decide failed");
                }
                let entry = json!({ "error": { "status": e.status().as_u16(), "detail": e.to_string() } });
                answer.push_str(&entry.to_string());
            }
        }
    }
    answer.push_str("}}");
    Ok(answer)
}

/// One policy over a shape-checked input on a given snapshot and `now`:
/// plugins and plans off the async workers, metrics, the decision log.
async fn decide_one(
    state: &Arc<AppState>,
    who: &crate::auth::Principal,
    snapshot: &Arc<Snapshot>,
    policy: &str,
    input: Shaped<'_>,
    now: &str,
) -> Result<String, ApiError> {
    let body = input.as_str();
    let started = std::time::Instant::now();
    let result = if snapshot.may_run_long(policy) {
        // Plugins and plans run off the async workers (see `long_work`);
        // the text is checked again there, a trifle beside a plugin call.
        let (snapshot, policy, body, now) = (snapshot.clone(), policy.to_string(), body.to_string(), now.to_string());
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
            .decide_shaped(policy, input, now)
            .map(|d| serde_json::to_string(&d))
    };
    // Only known policies get a series of their own.
    let label = match &result {
        Err(DecideError::UnknownPolicy { .. }) => "(unknown)",
        _ => policy,
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
                now,
                policy,
                &snapshot.version,
                outcome,
                &who.subject,
                body,
                &logged,
            ))
            .await;
    }
    answer
}
