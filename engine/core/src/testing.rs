//! The pack's own policy tests (`tests/*.yaml`) and rule coverage.

use std::collections::{BTreeMap, BTreeSet};

use dealrules_expr::{Value, value::parse_decimal};
use dealrules_model::{Diagnostic, Kind};
use serde::Serialize;
use serde_json::Value as Json;

use crate::{DecideError, Decision, Snapshot};

/// One test's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct TestOutcome {
    pub file: String,
    pub line: usize,
    pub name: String,
    pub policy: String,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// Which rules of a policy the tests matched.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyCoverage {
    pub kind: Kind,
    pub policy: String,
    pub rules: usize,
    pub matched: usize,
    /// Rules no test ever matched.
    pub unmatched: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub version: String,
    pub passed: usize,
    pub failed: usize,
    pub tests: Vec<TestOutcome>,
    pub coverage: Vec<PolicyCoverage>,
}

impl TestReport {
    pub fn ok(&self) -> bool {
        self.failed == 0
    }
}

/// Load-time check: every test names a policy the pack has.
pub(crate) fn check_references(s: &Snapshot) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for doc in &s.pack.tests {
        for (i, t) in doc.tests.tests.iter().enumerate() {
            if let Err(e) = s.resolve(&t.policy) {
                out.push(Diagnostic::new(
                    &doc.file,
                    doc.index.value(&format!("tests[{i}].policy")),
                    format!("test `{}`: {e}", t.name),
                ));
            }
            if t.expect.is_none() && t.expect_error.is_none() {
                out.push(Diagnostic::new(
                    &doc.file,
                    doc.index.value(&format!("tests[{i}]")),
                    format!("test `{}` has neither `expect` nor `expect_error`", t.name),
                ));
            }
        }
    }
    out
}

/// Rule ids a decision matched, for coverage.
fn matched_rules(d: &Decision) -> Vec<String> {
    match d {
        Decision::Table(t) => t
            .trace
            .iter()
            .filter(|s| s.matched)
            .map(|s| s.rule.to_string())
            .collect(),
        Decision::Approval(a) => a
            .trace
            .iter()
            .filter(|s| s.matched)
            .map(|s| s.rule.to_string())
            .collect(),
        Decision::Move(m) => m.transition.iter().map(|t| t.to_string()).collect(),
        Decision::Calculation(_) | Decision::Plan(_) | Decision::Targets(_) => Vec::new(),
    }
}

impl Snapshot {
    /// Runs every policy test of the pack. `now` is the default evaluation
    /// time for tests whose input does not pin one.
    pub fn run_tests(&self, now: &str) -> TestReport {
        let mut tests = Vec::new();
        let mut hit: BTreeMap<(Kind, String), BTreeSet<String>> = BTreeMap::new();
        for doc in &self.pack.tests {
            for (i, t) in doc.tests.tests.iter().enumerate() {
                let line = doc.index.value(&format!("tests[{i}]")).line;
                let input = Value::from_json(&t.input);
                let result = self.decide(&t.policy, &input, now);
                if let (Ok(d), Ok((kind, name))) = (&result, self.resolve(&t.policy)) {
                    hit.entry((kind, name.to_string()))
                        .or_default()
                        .extend(matched_rules(d));
                }
                let failure = judge(&result, t.expect.as_ref(), t.expect_error.as_deref());
                tests.push(TestOutcome {
                    file: doc.file.clone(),
                    line,
                    name: t.name.clone(),
                    policy: t.policy.clone(),
                    passed: failure.is_none(),
                    failure,
                });
            }
        }
        let mut coverage = Vec::new();
        for d in &self.pack.documents {
            let name = &d.metadata.name;
            let rules: Vec<String> = match d.kind {
                Kind::DecisionTable => self
                    .decision_table(name)
                    .map(|t| t.rule_ids().map(String::from).collect()),
                Kind::ApprovalPolicy => self
                    .approval_policy(name)
                    .map(|a| a.rule_ids().map(String::from).collect()),
                Kind::Funnel => self.funnel(name).map(|f| f.rule_ids().map(String::from).collect()),
                _ => None,
            }
            .unwrap_or_default();
            if rules.is_empty() {
                continue;
            }
            let seen = hit.get(&(d.kind, name.clone()));
            let unmatched: Vec<String> = rules
                .iter()
                .filter(|r| seen.is_none_or(|s| !s.contains(*r)))
                .cloned()
                .collect();
            coverage.push(PolicyCoverage {
                kind: d.kind,
                policy: name.clone(),
                rules: rules.len(),
                matched: rules.len() - unmatched.len(),
                unmatched,
            });
        }
        let failed = tests.iter().filter(|t| !t.passed).count();
        TestReport {
            version: self.version.to_string(),
            passed: tests.len() - failed,
            failed,
            tests,
            coverage,
        }
    }
}

fn judge(
    result: &Result<Decision<'_>, DecideError>,
    expect: Option<&Json>,
    expect_error: Option<&str>,
) -> Option<String> {
    match (result, expect_error) {
        (Err(e), Some(fragment)) if e.to_string().contains(fragment) => None,
        (Err(e), Some(fragment)) => Some(format!("expected an error containing {fragment:?}, got: {e}")),
        (Ok(_), Some(fragment)) => Some(format!(
            "expected an error containing {fragment:?}, but the decision succeeded"
        )),
        (Err(e), None) => Some(format!("decision failed: {e}")),
        (Ok(d), None) => {
            let actual = serde_json::to_value(d).unwrap_or(Json::Null);
            expect.and_then(|want| subset(want, &actual, "").err())
        }
    }
}

/// `want` is contained in `got`: objects by key, lists item by item,
/// numbers by decimal value (so `10` matches `10.0`).
pub fn subset(want: &Json, got: &Json, path: &str) -> Result<(), String> {
    let here = if path.is_empty() { "result" } else { path };
    match (want, got) {
        (Json::Object(w), Json::Object(g)) => {
            for (k, wv) in w {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match g.get(k) {
                    Some(gv) => subset(wv, gv, &p)?,
                    None => return Err(format!("{p}: expected {wv}, but the result has no `{k}`")),
                }
            }
            Ok(())
        }
        (Json::Array(w), Json::Array(g)) => {
            if w.len() != g.len() {
                return Err(format!("{here}: expected {want}, got {got}"));
            }
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                subset(wv, gv, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (w, g) => {
            let num = |v: &Json| match v {
                Json::Number(n) => parse_decimal(n.as_str()),
                Json::String(s) => parse_decimal(s),
                _ => None,
            };
            let same = match (w, g) {
                (Json::Number(_), _) | (_, Json::Number(_)) => num(w).is_some() && num(w) == num(g),
                _ => w == g,
            };
            if same {
                Ok(())
            } else {
                Err(format!("{here}: expected {w}, got {g}"))
            }
        }
    }
}
