//! Backtests: the current pack and a candidate decide the same inputs, and
//! the report says what a change would change before it is activated.

use dealrules_expr::Value;
use serde::Serialize;
use serde_json::Value as Json;

use crate::Snapshot;

/// One input to replay: `{"policy", "input", "id"?}`.
#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    pub policy: String,
    pub input: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub id: String,
    pub policy: String,
    /// Top-level result fields that differ (`level`, `chain`, `statements`...).
    pub fields: Vec<String>,
    pub before: Json,
    pub after: Json,
}

#[derive(Debug, Clone, Serialize)]
pub struct BacktestReport {
    pub current: String,
    pub candidate: String,
    pub cases: usize,
    pub changed: usize,
    pub unchanged: usize,
    pub changes: Vec<Change>,
}

/// A decision as compared: its JSON without what always differs between
/// packs (the version) or describes the road rather than the answer (trace).
fn outcome(s: &Snapshot, c: &Case, now: &str) -> Json {
    match s.decide(&c.policy, &c.input, now) {
        Ok(d) => {
            let mut v = serde_json::to_value(&d).unwrap_or(Json::Null);
            if let Some(o) = v.as_object_mut() {
                o.remove("version");
                o.remove("trace");
                o.remove("skipped");
            }
            v
        }
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    }
}

/// Reads cases from a JSON array or JSON lines.
pub fn parse_cases(text: &str) -> Result<Vec<Case>, String> {
    let trimmed = text.trim_start();
    let items: Vec<Value> = if trimmed.starts_with('[') {
        match Value::from_json_str(text).map_err(|e| e.to_string())? {
            Value::List(l) => l.to_vec(),
            other => return Err(format!("expected a list of cases, got {}", other.type_name())),
        }
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| Value::from_json_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
            .collect::<Result<_, _>>()?
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let policy = item
                .get("policy")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("case {}: needs `policy`", i + 1))?
                .to_string();
            let input = item
                .get("input")
                .cloned()
                .ok_or_else(|| format!("case {}: needs `input`", i + 1))?;
            let id = item
                .get("id")
                .map(|v| v.to_string())
                .unwrap_or_else(|| format!("#{}", i + 1));
            Ok(Case { id, policy, input })
        })
        .collect()
}

/// One case decided on both packs at `now`: what differs, or `None` when
/// the answers are the same.
pub fn compare(current: &Snapshot, candidate: &Snapshot, c: &Case, now: &str) -> Option<Change> {
    let (before, after) = (outcome(current, c, now), outcome(candidate, c, now));
    if before == after {
        return None;
    }
    let mut fields: Vec<String> = match (&before, &after) {
        (Json::Object(b), Json::Object(a)) => b
            .keys()
            .chain(a.keys())
            .filter(|k| b.get(*k) != a.get(*k))
            .cloned()
            .collect(),
        _ => vec![],
    };
    fields.sort();
    fields.dedup();
    Some(Change {
        id: c.id.clone(),
        policy: c.policy.clone(),
        fields,
        before,
        after,
    })
}

pub fn backtest(current: &Snapshot, candidate: &Snapshot, cases: &[Case], now: &str) -> BacktestReport {
    let changes: Vec<Change> = cases
        .iter()
        .filter_map(|c| compare(current, candidate, c, now))
        .collect();
    BacktestReport {
        current: current.version.to_string(),
        candidate: candidate.version.to_string(),
        cases: cases.len(),
        changed: changes.len(),
        unchanged: cases.len() - changes.len(),
        changes,
    }
}
