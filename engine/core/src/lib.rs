//! The dealrules evaluation core: a compiled, immutable pack snapshot and
//! pure, deterministic decisions over it. No IO happens here: the caller
//! gives the pack's files and the decision's input and time.
//!
//! ```
//! use dealrules_core::Snapshot;
//! use dealrules_model::PackSource;
//! use dealrules_expr::Value;
//! let pack = PackSource::from_texts([("approvals.yaml", r#"
//! apiVersion: dealrules/v1
//! kind: ApprovalPolicy
//! metadata: { name: discounts }
//! spec:
//!   levels: [auto, manager, director]
//!   rules:
//!     - { id: small, when: "deal.discount_pct <= 10", level: auto }
//!     - { id: mid,   when: "deal.discount_pct <= 20", level: manager }
//!     - { id: rest,  level: director }
//! "#)]);
//! let snapshot = Snapshot::load(pack).unwrap();
//! let input = Value::from_json_str(r#"{"deal": {"discount_pct": 15}}"#).unwrap();
//! let decision = snapshot.decide("discounts", &input, "2026-11-23T00:00:00Z").unwrap();
//! let json = serde_json::to_value(&decision).unwrap();
//! assert_eq!(json["level"], "manager");
//! assert_eq!(json["chain"], serde_json::json!(["manager"]));
//! ```
//!
//! Core concepts:
//! - [`Snapshot`]: a whole pack, validated and compiled; swapped, never edited.
//! - [`Snapshot::decide`]: one decision by policy name; the same JSON for the
//!   CLI's `eval` and the HTTP API's `decide`.
//! - [`Decision`]: per kind, with a trace of what matched and why.
//! - [`Snapshot::run_tests`]: the pack's own policy tests, with rule coverage.
#![forbid(unsafe_code)]

pub mod approval;
pub mod context;
pub mod error;
pub mod funnel;
pub mod table;
pub mod testing;
pub mod validate;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use dealrules_expr::{ExprEngine, Interest, Limits, Script, Value};
use dealrules_model::{load_pack_partial, suggest, Diagnostic, Kind, Pack, PackErrors, PackSource, Spec};
use serde::Serialize;

pub use approval::{ApprovalDecision, ApprovalPolicy};
pub use error::DecideError;
pub use funnel::{Funnel, MoveDecision};
pub use table::{DecisionTable, TableDecision};
pub use testing::{PolicyCoverage, TestOutcome, TestReport};

use context::DocCompiler;

/// A whole pack, validated and compiled, ready to decide. Immutable: a
/// reload builds a new one and swaps it in.
pub struct Snapshot {
    pub version: Arc<str>,
    pub pack: Pack,
    engine: Arc<ExprEngine>,
    tables: HashMap<String, DecisionTable>,
    approvals: HashMap<String, ApprovalPolicy>,
    funnels: HashMap<String, Funnel>,
    scripts: BTreeMap<String, Script>,
    kinds_by_name: HashMap<String, Vec<Kind>>,
    /// Per decidable policy, `Kind/name` -> the input fields it reads.
    interests: HashMap<(Kind, String), Interest>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("version", &self.version).finish_non_exhaustive()
    }
}

/// One decision, as `dealrules eval` prints it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Decision {
    Table(TableDecision),
    Approval(ApprovalDecision),
    Move(MoveDecision),
}

/// A loaded policy, for listings.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyInfo {
    pub kind: Kind,
    pub name: String,
    pub version: Arc<str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub file: String,
    /// Whether `decide` evaluates this kind in this version.
    pub decidable: bool,
}

impl Snapshot {
    /// Loads and compiles a pack with the default limits.
    pub fn load(source: PackSource) -> Result<Snapshot, PackErrors> {
        Snapshot::load_with(source, Limits::default())
    }

    /// Loads and compiles a pack. Every error of every file is reported in
    /// one run: documents that parse are checked even when others do not.
    pub fn load_with(source: PackSource, limits: Limits) -> Result<Snapshot, PackErrors> {
        Snapshot::load_with_engine(source, ExprEngine::new(limits))
    }

    /// Loads and compiles a pack on a given expression engine.
    pub fn load_with_engine(source: PackSource, engine: ExprEngine) -> Result<Snapshot, PackErrors> {
        let (pack, diags) = load_pack_partial(source);
        Snapshot::build(pack, engine, diags)
    }

    /// Compiles a parsed pack; every error of every document is reported.
    pub fn compile(pack: Pack, limits: Limits) -> Result<Snapshot, PackErrors> {
        Snapshot::build(pack, ExprEngine::new(limits), Vec::new())
    }

    fn build(pack: Pack, engine: ExprEngine, mut diags: Vec<Diagnostic>) -> Result<Snapshot, PackErrors> {
        let engine = Arc::new(engine);
        let mut scripts = BTreeMap::new();
        for (path, text) in &pack.scripts {
            match engine.compile_script(text) {
                Ok(s) => {
                    scripts.insert(path.clone(), s);
                }
                Err(e) => diags.push(Diagnostic::new(path, dealrules_model::Pos::new(e.line, e.col), format!("bad script: {}", e.message))),
            }
        }
        let mut tables = HashMap::new();
        let mut approvals = HashMap::new();
        let mut funnels = HashMap::new();
        for doc in &pack.documents {
            let mut cx = DocCompiler { doc, engine: &engine, diags: &mut diags };
            let name = doc.metadata.name.clone();
            match &doc.spec {
                Spec::DecisionTable(spec) => {
                    if let Some(t) = table::compile(doc, spec, &mut cx) {
                        tables.insert(name, t);
                    }
                }
                Spec::ApprovalPolicy(spec) => {
                    if let Some(a) = approval::compile(doc, spec, &mut cx) {
                        approvals.insert(name, a);
                    }
                }
                Spec::Funnel(spec) => {
                    if let Some(f) = funnel::compile(doc, spec, &pack, &mut cx) {
                        funnels.insert(name, f);
                    }
                }
                Spec::IncentivePlan(spec) => validate::incentive_plan(doc, spec, &pack, &mut cx),
                Spec::Targets(spec) => validate::targets(spec, &mut cx),
                Spec::Plugin(spec) => validate::plugin(doc, spec, &pack, &mut cx),
            }
        }
        let mut kinds_by_name: HashMap<String, Vec<Kind>> = HashMap::new();
        for d in &pack.documents {
            kinds_by_name.entry(d.metadata.name.clone()).or_default().push(d.kind);
        }
        let mut interests = HashMap::new();
        for (name, t) in &tables {
            interests.insert((Kind::DecisionTable, name.clone()), t.interest());
        }
        for (name, a) in &approvals {
            interests.insert((Kind::ApprovalPolicy, name.clone()), a.interest());
        }
        let snapshot = Snapshot {
            interests,
            version: pack.version.as_str().into(),
            pack,
            engine,
            tables,
            approvals,
            funnels,
            scripts,
            kinds_by_name,
        };
        diags.extend(testing::check_references(&snapshot));
        if diags.is_empty() { Ok(snapshot) } else { Err(PackErrors::sorted(diags)) }
    }

    pub fn engine(&self) -> &ExprEngine {
        &self.engine
    }

    pub fn policies(&self) -> Vec<PolicyInfo> {
        self.pack
            .documents
            .iter()
            .map(|d| PolicyInfo {
                kind: d.kind,
                name: d.metadata.name.clone(),
                version: self.version.clone(),
                description: d.metadata.description.clone(),
                file: d.file.clone(),
                decidable: matches!(d.kind, Kind::DecisionTable | Kind::ApprovalPolicy | Kind::Funnel),
            })
            .collect()
    }

    /// Finds a policy by `name` or `Kind/name`.
    pub fn resolve<'a>(&self, policy: &'a str) -> Result<(Kind, &'a str), DecideError> {
        if let Some((kind, name)) = policy.split_once('/') {
            let k = Kind::parse(kind).ok_or_else(|| DecideError::UnknownPolicy {
                name: policy.to_string(),
                hint: suggest(kind, Kind::ALL.iter().map(|k| k.as_str())),
            })?;
            return match self.pack.find(k, name) {
                Some(_) => Ok((k, name)),
                None => Err(self.unknown(name)),
            };
        }
        match self.kinds_by_name.get(policy).map(Vec::as_slice) {
            Some([k]) => Ok((*k, policy)),
            Some(ks) if !ks.is_empty() => Err(DecideError::AmbiguousPolicy {
                name: policy.to_string(),
                kinds: ks.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "),
            }),
            _ => Err(self.unknown(policy)),
        }
    }

    fn unknown(&self, name: &str) -> DecideError {
        DecideError::UnknownPolicy { name: name.to_string(), hint: suggest(name, self.kinds_by_name.keys().map(String::as_str)) }
    }

    /// One decision. `now` is the evaluation time (ISO-8601) unless the
    /// input pins its own `now`.
    pub fn decide(&self, policy: &str, input: &Value, now: &str) -> Result<Decision, DecideError> {
        let (kind, name) = self.resolve(policy)?;
        match kind {
            Kind::DecisionTable => Ok(Decision::Table(self.tables[name].decide(&self.version, input, now)?)),
            Kind::ApprovalPolicy => Ok(Decision::Approval(self.approvals[name].decide(&self.version, input, now)?)),
            Kind::Funnel => {
                let approvals = |policy: &str, input: &Value| -> Result<serde_json::Value, String> {
                    let a = self.approvals.get(policy).ok_or_else(|| format!("no ApprovalPolicy `{policy}`"))?;
                    let d = a.decide(&self.version, input, now).map_err(|e| e.to_string())?;
                    Ok(serde_json::json!({ "level": d.level, "chain": d.chain, "rule": d.rule, "auto_approved": d.auto_approved, "approvers": d.approvers }))
                };
                Ok(Decision::Move(self.funnels[name].check_move(&self.version, input, now, &approvals)?))
            }
            other => Err(DecideError::Unsupported { kind: other.to_string(), policy: name.to_string() }),
        }
    }

    /// Decides from JSON text; the input's numbers are read exactly, and
    /// only the fields the policy can read are built (the rest is checked
    /// as JSON and skipped). Same result as [`Snapshot::decide`].
    pub fn decide_json(&self, policy: &str, input: &str, now: &str) -> Result<Decision, DecideError> {
        let (kind, name) = self.resolve(policy)?;
        let interest = self.interests.get(&(kind, name.to_string())).unwrap_or(&Interest::All);
        let input = dealrules_expr::json::parse_projected(input, interest)
            .map_err(|e| DecideError::BadInput(format!("input is not valid JSON: {e}")))?;
        self.decide(policy, &input, now)
    }

    pub fn approval_policy(&self, name: &str) -> Option<&ApprovalPolicy> {
        self.approvals.get(name)
    }

    pub fn decision_table(&self, name: &str) -> Option<&DecisionTable> {
        self.tables.get(name)
    }

    /// Drops every table's row index so tables are scanned row by row.
    /// For benchmarks and for tests that compare both ways.
    #[doc(hidden)]
    pub fn disable_table_indexes(&mut self) {
        for t in self.tables.values_mut() {
            t.disable_index();
        }
    }

    pub fn funnel(&self, name: &str) -> Option<&Funnel> {
        self.funnels.get(name)
    }

    /// Runs a pack script's `evaluate(input)`.
    pub fn run_script(&self, path: &str, input: &Value) -> Result<Value, DecideError> {
        let script = self.scripts.get(path).ok_or_else(|| DecideError::UnknownPolicy { name: path.to_string(), hint: String::new() })?;
        script.run(input).map_err(|error| DecideError::Eval { policy: path.to_string(), at: "evaluate".into(), error })
    }
}
