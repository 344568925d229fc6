//! Several policies over one input: `POST /v1/decide` with
//! `{"policies": ["a", "b"], "input": {...}}` and `dealrules eval A B`.
//! The input is read and parsed once; each policy then decides as it
//! would alone, and one policy failing does not stop the others.

use dealrules_expr::input_shape::Shaped;
use dealrules_expr::{Interest, Value};
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::{DecideError, Decision, Snapshot};

/// At most this many policies in one request.
pub const MAX_POLICIES: usize = 64;

/// Each policy's result, in the order asked.
#[derive(Debug)]
pub struct ManyDecisions<'a> {
    pub results: Vec<(String, Result<Decision<'a>, DecideError>)>,
}

impl ManyDecisions<'_> {
    /// Whether every policy decided.
    pub fn all_decided(&self) -> bool {
        self.results.iter().all(|(_, r)| r.is_ok())
    }
}

/// The HTTP status a failed decision answers with on its own (and in its
/// `error` entry): 404 for an unknown policy, 400 for bad input or an
/// ambiguous name, 422 for everything else.
pub fn status_of(e: &DecideError) -> u16 {
    match e {
        DecideError::UnknownPolicy { .. } => 404,
        DecideError::BadInput(_) | DecideError::AmbiguousPolicy { .. } => 400,
        _ => 422,
    }
}

struct ErrorEntry<'e>(&'e DecideError);

impl Serialize for ErrorEntry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(
            "error",
            &serde_json::json!({ "status": status_of(self.0), "detail": self.0.to_string() }),
        )?;
        m.end()
    }
}

struct Results<'r, 'a>(&'r [(String, Result<Decision<'a>, DecideError>)]);

impl Serialize for Results<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, r) in self.0 {
            match r {
                Ok(d) => m.serialize_entry(name, d)?,
                Err(e) => m.serialize_entry(name, &ErrorEntry(e))?,
            }
        }
        m.end()
    }
}

/// `{"results": {"a": {...}, "b": {"error": {"status": 422, "detail": "..."}}}}`
impl Serialize for ManyDecisions<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("results", &Results(&self.results))?;
        m.end()
    }
}

fn check_names(policies: &[&str]) -> Result<(), DecideError> {
    if policies.is_empty() {
        return Err(DecideError::BadInput("`policies` must name at least one policy".into()));
    }
    if policies.len() > MAX_POLICIES {
        return Err(DecideError::BadInput(format!(
            "`policies` names {} policies; at most {MAX_POLICIES} in one request",
            policies.len()
        )));
    }
    for (i, p) in policies.iter().enumerate() {
        if policies[..i].contains(p) {
            return Err(DecideError::BadInput(format!(
                "policy `{p}` is named twice in `policies`"
            )));
        }
    }
    Ok(())
}

impl Snapshot {
    /// Decides every policy in `policies` over one parsed input. An error
    /// here is about the request as a whole (no policies, too many, one
    /// named twice, an input that is not an object); a policy that cannot
    /// decide has its error in its own entry.
    pub fn decide_many(&self, policies: &[&str], input: &Value, now: &str) -> Result<ManyDecisions<'_>, DecideError> {
        check_names(policies)?;
        if input.as_map().is_none() {
            return Err(DecideError::BadInput(format!(
                "the input must be a JSON object, got {}",
                input.type_name()
            )));
        }
        Ok(ManyDecisions {
            results: policies
                .iter()
                .map(|p| (p.to_string(), self.decide(p, input, now)))
                .collect(),
        })
    }

    /// [`Snapshot::decide_many`] from the input's JSON text: checked
    /// (depth, size, duplicate keys) and parsed once for all policies.
    pub fn decide_many_json(
        &self,
        policies: &[&str],
        input: &str,
        now: &str,
    ) -> Result<ManyDecisions<'_>, DecideError> {
        check_names(policies)?;
        let bad = |e: dealrules_expr::json::JsonError| DecideError::BadInput(format!("input is not valid JSON: {e}"));
        let shaped = Shaped::check(input).map_err(bad)?;
        // Only the fields some of the policies read are built; an unknown
        // policy reads nothing (its entry says it is unknown).
        let mut reads = Interest::default();
        reads.add_path(&["now"]);
        reads.add_path(&[crate::context::WHY_NOT]);
        for p in policies {
            if let Ok((entry, _)) = self.entry(p) {
                reads.merge(&Snapshot::interest_of(entry));
            }
        }
        let input = dealrules_expr::json::parse_projected(shaped.as_str(), &reads).map_err(bad)?;
        self.decide_many(policies, &input, now)
    }

    /// A whole `POST /v1/decide` body, `{"policies": [...], "input": {...}}`
    /// (no other keys), read once.
    pub fn decide_request_json(&self, body: &str, now: &str) -> Result<ManyDecisions<'_>, DecideError> {
        let body = parse_checked(body)?;
        let bad = |m: String| DecideError::BadInput(m);
        let map = body
            .as_map()
            .ok_or_else(|| bad(format!("the request must be a JSON object, got {}", body.type_name())))?;
        if let Some((k, _)) = map.iter().find(|(k, _)| !matches!(k.as_str(), "policies" | "input")) {
            return Err(bad(format!(
                "unknown key `{k}` in the request; expected `policies` and `input`"
            )));
        }
        let names = match map.get("policies") {
            Some(Value::List(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .ok_or_else(|| bad(format!("`policies` must list names, found {}", v.type_name())))
                })
                .collect::<Result<Vec<&str>, _>>()?,
            Some(other) => {
                return Err(bad(format!(
                    "`policies` must be a list of names, got {}",
                    other.type_name()
                )));
            }
            None => return Err(bad("the request needs `policies`, a list of policy names".into())),
        };
        let input = map
            .get("input")
            .ok_or_else(|| bad("the request needs `input`, the facts to decide on".into()))?;
        self.decide_many(&names, input, now)
    }
}

fn parse_checked(text: &str) -> Result<Value, DecideError> {
    let bad = |e: dealrules_expr::json::JsonError| DecideError::BadInput(format!("input is not valid JSON: {e}"));
    let shaped = Shaped::check(text).map_err(bad)?;
    Value::from_json_str(shaped.as_str()).map_err(|e| DecideError::BadInput(format!("input is not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use dealrules_model::PackSource;
    use serde_json::json;

    use super::*;

    const NOW: &str = "2026-11-23T00:00:00Z";

    fn snapshot() -> Snapshot {
        let approvals = r#"apiVersion: dealrules/v1
kind: ApprovalPolicy
metadata: { name: discount-approvals }
spec:
  levels: [auto, manager]
  rules:
    - { id: small, when: "deal.discount_pct <= 10", level: auto }
    - { id: rest, level: manager }
"#;
        let calc = r#"apiVersion: dealrules/v1
kind: Calculation
metadata: { name: commission }
spec:
  steps:
    net: "deal.amount * (1 - deal.discount_pct / 100)"
    commission: "round(net * deal.rate, 2)"
"#;
        Snapshot::load(PackSource::from_texts([("a.yaml", approvals), ("c.yaml", calc)])).unwrap()
    }

    fn json_of(m: &ManyDecisions) -> serde_json::Value {
        serde_json::to_value(m).unwrap()
    }

    #[test]
    fn every_policy_decides_over_the_one_input_as_it_would_alone() {
        let s = snapshot();
        let input = r#"{"deal": {"amount": 50000, "discount_pct": 12.5, "rate": 0.08}}"#;
        let many = s
            .decide_many_json(&["discount-approvals", "commission"], input, NOW)
            .unwrap();
        assert!(many.all_decided());
        let got = json_of(&many);
        for p in ["discount-approvals", "commission"] {
            let alone = serde_json::to_value(s.decide_json(p, input, NOW).unwrap()).unwrap();
            assert_eq!(got["results"][p], alone, "{p}");
        }
        assert_eq!(got["results"]["discount-approvals"]["level"], "manager");
        assert_eq!(got["results"]["commission"]["outputs"]["commission"], "3500.00");
        // the results keep the order asked
        let keys: Vec<&String> = got["results"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["discount-approvals", "commission"]);
    }

    #[test]
    fn one_failing_policy_is_an_error_entry_and_the_others_still_decide() {
        let s = snapshot();
        let input = r#"{"deal": {"amount": 50000, "discount_pct": 5}}"#;
        let many = s
            .decide_many_json(&["commission", "discount-approvals", "no-such-policy"], input, NOW)
            .unwrap();
        assert!(!many.all_decided());
        let got = json_of(&many);
        assert_eq!(
            got["results"]["commission"],
            json!({"error": {"status": 422, "detail": "commission: step `commission`: deal.rate is missing"}})
        );
        assert_eq!(got["results"]["discount-approvals"]["level"], "auto");
        assert_eq!(got["results"]["no-such-policy"]["error"]["status"], 404);
    }

    #[test]
    fn the_request_body_is_read_once_with_its_two_keys() {
        let s = snapshot();
        let body = r#"{"policies": ["discount-approvals"], "input": {"deal": {"discount_pct": 3}}}"#;
        let got = json_of(&s.decide_request_json(body, NOW).unwrap());
        assert_eq!(got["results"]["discount-approvals"]["level"], "auto");
        for (body, fragment) in [
            (r#"{"policies": [], "input": {}}"#, "at least one policy"),
            (r#"{"policies": ["a", "a"], "input": {}}"#, "policy `a` is named twice"),
            (r#"{"policies": "a", "input": {}}"#, "must be a list of names"),
            (r#"{"policies": [1], "input": {}}"#, "must list names"),
            (r#"{"policies": ["a"]}"#, "needs `input`"),
            (r#"{"input": {}}"#, "needs `policies`"),
            (
                r#"{"policies": ["a"], "input": [1]}"#,
                "the input must be a JSON object",
            ),
            (
                r#"{"policies": ["a"], "input": {}, "inputs": {}}"#,
                "unknown key `inputs`",
            ),
            (r#"{"policies": ["a"], "input": {"x": 1, "x": 2}}"#, "not valid JSON"),
            (r#"[1]"#, "the request must be a JSON object"),
        ] {
            let err = s.decide_request_json(body, NOW).unwrap_err();
            assert!(matches!(err, DecideError::BadInput(_)), "{body}: {err:?}");
            assert!(err.to_string().contains(fragment), "{body}: {err}");
        }
        let too_many: Vec<String> = (0..=MAX_POLICIES).map(|i| format!("p{i}")).collect();
        let names: Vec<&str> = too_many.iter().map(String::as_str).collect();
        assert!(
            s.decide_many_json(&names, "{}", NOW)
                .unwrap_err()
                .to_string()
                .contains("at most 64")
        );
    }
}
