//! Several policies over one input: `POST /v1/decide` with
//! `{"policies": ["a", "b"], "input": {...}}` and `dealrules eval A B`.
//! The input is read and parsed once; each policy then decides as it
//! would alone, and one policy failing does not stop the others.

use dealrules_expr::Value;
use dealrules_expr::input_shape::Shaped;
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

    /// [`Snapshot::decide_many`] from the input's JSON text, checked once
    /// (depth, size, duplicate keys); each policy then reads only its own
    /// fields from the text, as [`Snapshot::decide_json`] does (building
    /// one value for all policies measured slower than that).
    pub fn decide_many_json(
        &self,
        policies: &[&str],
        input: &str,
        now: &str,
    ) -> Result<ManyDecisions<'_>, DecideError> {
        check_names(policies)?;
        let shaped = Shaped::check(input).map_err(bad_json)?;
        object_only(input)?;
        Ok(self.decide_many_shaped(policies, shaped, now))
    }

    /// Every policy over input text already checked (names and shape).
    fn decide_many_shaped(&self, policies: &[&str], input: Shaped<'_>, now: &str) -> ManyDecisions<'_> {
        ManyDecisions {
            results: policies
                .iter()
                .map(|p| (p.to_string(), self.decide_shaped(p, input, now)))
                .collect(),
        }
    }

    /// A whole `POST /v1/decide` body, `{"policies": [...], "input": {...}}`
    /// (no other keys): checked once, the input's text handed to each
    /// policy as in [`Snapshot::decide_many_json`].
    pub fn decide_request_json(&self, body: &str, now: &str) -> Result<ManyDecisions<'_>, DecideError> {
        let request = DecideRequest::parse(body)?;
        let names: Vec<&str> = request.policies.iter().map(String::as_str).collect();
        Ok(self.decide_many_shaped(&names, request.input, now))
    }
}

/// A `POST /v1/decide` body, read: the policies named (at least one, at
/// most [`MAX_POLICIES`], none twice) and the input's JSON text, an object
/// whose shape (depth, size, duplicate keys) was checked with the body's.
#[derive(Debug)]
pub struct DecideRequest<'a> {
    pub policies: Vec<String>,
    pub input: Shaped<'a>,
}

impl<'a> DecideRequest<'a> {
    /// Reads `{"policies": [...], "input": {...}}` (no other keys); an
    /// error is [`DecideError::BadInput`] saying what the body lacks.
    pub fn parse(body: &'a str) -> Result<Self, DecideError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Request<'a> {
            policies: Option<Vec<String>>,
            #[serde(borrow)]
            input: Option<&'a serde_json::value::RawValue>,
        }
        let checked = Shaped::check(body).map_err(bad_json)?;
        let bad = |m: String| DecideError::BadInput(m);
        if !body.trim_start().starts_with('{') {
            return Err(bad(
                "the request must be a JSON object: {\"policies\": [...], \"input\": {...}}".into(),
            ));
        }
        let request: Request = serde_json::from_str(body).map_err(|e| {
            let msg = e.to_string();
            let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m);
            bad(format!(
                "the request must be {{\"policies\": [...], \"input\": {{...}}}}: {msg}"
            ))
        })?;
        let policies = request
            .policies
            .ok_or_else(|| bad("the request needs `policies`, a list of policy names".into()))?;
        let input = request
            .input
            .ok_or_else(|| bad("the request needs `input`, the facts to decide on".into()))?
            .get();
        check_names(&policies.iter().map(String::as_str).collect::<Vec<_>>())?;
        object_only(input)?;
        // `input` borrows from the body, so it always lies within it.
        let input = checked
            .part(input)
            .ok_or_else(|| bad("the request's input could not be read".into()))?;
        Ok(DecideRequest { policies, input })
    }
}

/// An input must be a JSON object; anything else is named.
fn object_only(input: &str) -> Result<(), DecideError> {
    if input.trim_start().starts_with('{') {
        return Ok(());
    }
    let found = Value::from_json_str(input)
        .map(|v| v.type_name())
        .unwrap_or("not an object");
    Err(DecideError::BadInput(format!(
        "the input must be a JSON object, got {found}"
    )))
}

fn bad_json(e: dealrules_expr::json::JsonError) -> DecideError {
    DecideError::BadInput(format!("input is not valid JSON: {e}"))
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
            (
                r#"{"policies": "a", "input": {}}"#,
                "invalid type: string \"a\", expected a sequence",
            ),
            (
                r#"{"policies": [1], "input": {}}"#,
                "invalid type: integer `1`, expected a string",
            ),
            (r#"{"policies": ["a"]}"#, "needs `input`"),
            (r#"{"input": {}}"#, "needs `policies`"),
            (
                r#"{"policies": ["a"], "input": [1]}"#,
                "the input must be a JSON object",
            ),
            (
                r#"{"policies": ["a"], "input": {}, "inputs": {}}"#,
                "unknown field `inputs`, expected `policies` or `input`",
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
