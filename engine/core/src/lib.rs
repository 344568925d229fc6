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

mod answer_text;
pub mod approval;
pub mod backtest;
pub mod calculation;
pub mod context;
pub mod error;
pub mod funnel;
pub mod incentive;
pub mod measure;
pub mod money;
pub mod multi;
pub mod period;
pub mod plan_input;
pub mod table;
pub mod targets;
pub mod testing;
pub mod validate;

use dealrules_expr::input_shape::Shaped;
use std::collections::BTreeMap;
use std::sync::Arc;

use dealrules_expr::{ExprEngine, Limits, Map, Script, Value};
use dealrules_model::{Diagnostic, Kind, Pack, PackErrors, PackSource, Spec, load_pack_partial, suggest};
use rustc_hash::FxHashMap;
use serde::Serialize;
use smallvec::SmallVec;

pub use approval::{ApprovalDecision, ApprovalPolicy};
pub use calculation::{Calculation, CalculationDecision};
pub use error::{DecideError, PluginCallError, PluginFailure};
pub use funnel::{Funnel, MoveDecision, PlannedAction, PlannedApproval, PlannedApprover, Reason, Unevaluated};
pub use multi::{DecideRequest, ManyDecisions, status_of};
pub use table::{DecisionTable, TableDecision};
pub use testing::{PolicyCoverage, TestOutcome, TestReport};

use context::{DocCompiler, Input};

/// Runs a pack's plugins (the plugin host implements it; the core stays
/// free of WebAssembly).
pub trait PluginRuntime: Send + Sync {
    /// Calls `plugin.function` with the facts; the plugin sees only what
    /// its manifest's `inputs:` name.
    fn call(&self, plugin: &str, function: &str, facts: &serde_json::Value) -> Result<PluginCall, PluginCallError>;
}

/// A plugin call's answer and cost, for the decision trace.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PluginCall {
    pub value: serde_json::Value,
    pub fuel_used: u64,
    pub micros: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
}

/// A whole pack, validated and compiled, ready to decide. Immutable: a
/// reload builds a new one and swaps it in.
pub struct Snapshot {
    pub version: Arc<str>,
    pub pack: Pack,
    engine: Arc<ExprEngine>,
    /// Every policy document, compiled where this version evaluates it.
    entries: Vec<Entry>,
    /// Policy name -> its entries (one per kind that uses the name).
    by_name: FxHashMap<String, SmallVec<[usize; 1]>>,
    scripts: BTreeMap<String, Script>,
    /// The pack's plugins, once a host has loaded them.
    plugins: Option<Arc<dyn PluginRuntime>>,
}

struct Entry {
    kind: Kind,
    name: String,
    compiled: Compiled,
    /// Plugins called before the policy's expressions: (as, plugin, function).
    plugin_facts: Vec<(String, String, String)>,
}

// One per policy, built once when a pack loads: the size of the largest
// variant costs nothing per decision.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Compiled {
    Table(DecisionTable),
    Calculation(Calculation),
    Approval(ApprovalPolicy),
    Funnel(Funnel),
    /// The versions of one plan (one, or several by `effective` range).
    Plan(incentive::PlanVersions),
    Targets(targets::Targets),
    /// Validated, run by the plugin host (Plugin manifests).
    NotDecidable,
    /// Has errors (reported); kept so references to it are not reported
    /// again. A snapshot with one is never handed out.
    Broken,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// One decision, as `dealrules eval` prints it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Decision<'a> {
    Table(Box<TableDecision<'a>>),
    Calculation(Box<CalculationDecision<'a>>),
    Approval(Box<ApprovalDecision<'a>>),
    Move(Box<MoveDecision>),
    Plan(Box<incentive::PlanDecision<'a>>),
    Targets(Box<targets::TargetsDecision<'a>>),
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
                Err(e) => diags.push(Diagnostic::new(
                    path,
                    dealrules_model::Pos::new(e.line, e.col),
                    format!("bad script: {}", e.message),
                )),
            }
        }
        let mut entries: Vec<Entry> = Vec::new();
        let mut by_name: FxHashMap<String, SmallVec<[usize; 1]>> = FxHashMap::default();
        for doc in &pack.documents {
            let mut cx = DocCompiler {
                doc,
                engine: &engine,
                diags: &mut diags,
            };
            let compiled = match &doc.spec {
                Spec::DecisionTable(spec) => table::compile(doc, spec, &mut cx).map(Compiled::Table),
                Spec::Calculation(spec) => calculation::compile(doc, spec, &mut cx).map(Compiled::Calculation),
                Spec::ApprovalPolicy(spec) => approval::compile(doc, spec, &mut cx).map(Compiled::Approval),
                Spec::Funnel(spec) => funnel::compile(doc, spec, &pack, &mut cx).map(Compiled::Funnel),
                Spec::IncentivePlan(spec) => incentive::compile(doc, spec, &pack, &mut cx)
                    .map(|p| Compiled::Plan(incentive::PlanVersions::new(p))),
                Spec::Targets(spec) => {
                    let before = cx.diags.len();
                    validate::targets(spec, &mut cx);
                    (cx.diags.len() == before)
                        .then(|| Compiled::Targets(targets::Targets::new(&doc.metadata.name, spec)))
                }
                Spec::Plugin(spec) => {
                    validate::plugin(doc, spec, &pack, &mut cx);
                    Some(Compiled::NotDecidable)
                }
            };
            let facts = match &doc.spec {
                Spec::DecisionTable(spec) => spec.plugins.as_slice(),
                Spec::ApprovalPolicy(spec) => spec.plugins.as_slice(),
                _ => &[],
            };
            let mut cx = DocCompiler {
                doc,
                engine: &engine,
                diags: &mut diags,
            };
            validate::plugin_facts(facts, &pack, &mut cx);
            let plugin_facts = facts
                .iter()
                .map(|f| (f.name.clone(), f.plugin.clone(), f.function.clone()))
                .collect();
            let compiled = compiled.unwrap_or(Compiled::Broken);
            // A later version of a plan joins the entry of the first one.
            if doc.kind == Kind::IncentivePlan
                && let Some(&first) = by_name
                    .get(&doc.metadata.name)
                    .and_then(|ids| ids.iter().find(|&&i| entries[i].kind == Kind::IncentivePlan))
            {
                match (&mut entries[first].compiled, compiled) {
                    (Compiled::Plan(versions), Compiled::Plan(mut more)) => {
                        if let Err(message) = versions.add(&mut more) {
                            let mut cx = DocCompiler {
                                doc,
                                engine: &engine,
                                diags: &mut diags,
                            };
                            cx.error("spec", message);
                        }
                    }
                    (slot, _) => *slot = Compiled::Broken,
                }
                continue;
            }
            by_name
                .entry(doc.metadata.name.clone())
                .or_default()
                .push(entries.len());
            entries.push(Entry {
                kind: doc.kind,
                name: doc.metadata.name.clone(),
                compiled,
                plugin_facts,
            });
        }
        for (kind, name) in &pack.broken {
            by_name.entry(name.clone()).or_default().push(entries.len());
            entries.push(Entry {
                kind: *kind,
                name: name.clone(),
                compiled: Compiled::Broken,
                plugin_facts: Vec::new(),
            });
        }
        let snapshot = Snapshot {
            version: pack.version.as_str().into(),
            pack,
            engine,
            entries,
            by_name,
            scripts,
            plugins: None,
        };
        diags.extend(testing::check_references(&snapshot));
        if diags.is_empty() {
            Ok(snapshot)
        } else {
            Err(PackErrors::sorted(diags))
        }
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
                decidable: d.kind != Kind::Plugin,
            })
            .collect()
    }

    /// Finds a policy by `name` or `Kind/name`.
    pub fn resolve<'a>(&self, policy: &'a str) -> Result<(Kind, &'a str), DecideError> {
        let (entry, name) = self.entry(policy)?;
        Ok((entry.kind, name))
    }

    fn entry<'a>(&self, policy: &'a str) -> Result<(&Entry, &'a str), DecideError> {
        // Most calls name one policy by its name alone: one hash look-up.
        // (Names never hold `/`, so `Kind/name` never matches here.)
        if let Some(&[i]) = self.by_name.get(policy).map(|ids| ids.as_slice()) {
            return Ok((&self.entries[i], policy));
        }
        let (kind, name) = match policy.split_once('/') {
            Some((kind, name)) => {
                let k = Kind::parse(kind).ok_or_else(|| DecideError::UnknownPolicy {
                    name: policy.to_string(),
                    hint: suggest(kind, Kind::ALL.iter().map(|k| k.as_str())),
                })?;
                (Some(k), name)
            }
            None => (None, policy),
        };
        let ids = self.by_name.get(name).map(|v| v.as_slice()).unwrap_or(&[]);
        let mut found = ids
            .iter()
            .map(|&i| &self.entries[i])
            .filter(|e| kind.is_none_or(|k| e.kind == k));
        match (found.next(), found.next()) {
            (Some(e), None) => Ok((e, name)),
            (Some(_), Some(_)) => Err(DecideError::AmbiguousPolicy {
                name: name.to_string(),
                kinds: ids
                    .iter()
                    .map(|&i| self.entries[i].kind.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
            (None, _) => Err(DecideError::UnknownPolicy {
                name: name.to_string(),
                hint: suggest(name, self.by_name.keys().map(String::as_str)),
            }),
        }
    }

    /// One decision. `now` is the evaluation time (ISO-8601) unless the
    /// input pins its own `now`.
    pub fn decide(&self, policy: &str, input: &Value, now: &str) -> Result<Decision<'_>, DecideError> {
        let (entry, name) = self.entry(policy)?;
        self.decide_entry(entry, name, Input::Parsed(input), now)
    }

    fn decide_entry<'s>(
        &'s self,
        entry: &'s Entry,
        name: &str,
        input: Input,
        now: &str,
    ) -> Result<Decision<'s>, DecideError> {
        if !entry.plugin_facts.is_empty() {
            return self.decide_with_plugins(entry, name, input, now);
        }
        self.decide_compiled(entry, name, input, now)
    }

    /// Calls the policy's plugins with the facts, puts their answers under
    /// `plugins.<as>`, decides, and records each call (fuel, time) in the
    /// decision.
    fn decide_with_plugins<'s>(
        &'s self,
        entry: &'s Entry,
        name: &str,
        input: Input,
        now: &str,
    ) -> Result<Decision<'s>, DecideError> {
        let base = Self::parsed(input)?.into_owned();
        let facts = base.to_json();
        let mut answers = Map::default();
        let mut calls = Vec::new();
        for (as_name, plugin, function) in &entry.plugin_facts {
            let call = self
                .call_plugin(plugin, function, &facts)
                .map_err(|error| DecideError::Plugin {
                    policy: name.to_string(),
                    at: format!("plugins.{as_name}"),
                    error,
                })?;
            answers.insert(as_name.as_str(), Value::from_json(&call.value));
            calls.push(serde_json::json!({ "as": as_name, "plugin": plugin, "function": function, "answer": call.value, "fuel_used": call.fuel_used, "micros": call.micros }));
        }
        let mut with = match base {
            Value::Map(m) => (*m).clone(),
            _ => return Err(DecideError::BadInput("the input must be an object".into())),
        };
        with.insert("plugins", Value::map(answers));
        let input = Value::map(with);
        let mut decision = self.decide_compiled(entry, name, Input::Parsed(&input), now)?;
        match &mut decision {
            Decision::Table(t) => t.plugins = calls,
            Decision::Approval(a) => a.plugins = calls,
            _ => {}
        }
        Ok(decision)
    }

    fn decide_compiled<'s>(
        &'s self,
        entry: &'s Entry,
        name: &str,
        input: Input,
        now: &str,
    ) -> Result<Decision<'s>, DecideError> {
        match &entry.compiled {
            Compiled::Table(t) => Ok(Decision::Table(Box::new(t.decide(&self.version, input, now)?))),
            Compiled::Calculation(c) => Ok(Decision::Calculation(Box::new(c.decide(&self.version, input, now)?))),
            Compiled::Approval(a) => Ok(Decision::Approval(Box::new(a.decide(&self.version, input, now)?))),
            Compiled::Funnel(f) => {
                let parsed;
                let input = match input {
                    Input::Parsed(v) => v,
                    Input::Json(text) => {
                        parsed = Self::parse_checked(text)?;
                        &parsed
                    }
                };
                let approvals = |policy: &str, input: &Value| self.plan_approval(policy, input, now);
                Ok(Decision::Move(Box::new(f.check_move(
                    &self.version,
                    input,
                    now,
                    &approvals,
                )?)))
            }
            Compiled::Plan(p) => Ok(Decision::Plan(Box::new(p.decide(
                &self.version,
                self,
                &*Self::parsed(input)?,
                now,
            )?))),
            Compiled::Targets(t) => Ok(Decision::Targets(Box::new(
                t.decide(&self.version, &*Self::parsed(input)?)?,
            ))),
            Compiled::NotDecidable | Compiled::Broken => Err(DecideError::Unsupported {
                kind: entry.kind.to_string(),
                policy: name.to_string(),
            }),
        }
    }

    /// Decides from JSON text; the input's numbers are read exactly, and
    /// only the fields the policy can read are built (the rest is checked
    /// as JSON and skipped). Same result as [`Snapshot::decide`].
    pub fn decide_json(&self, policy: &str, input: &str, now: &str) -> Result<Decision<'_>, DecideError> {
        let (entry, name) = self.entry(policy)?;
        // The whole body's shape (depth, size, duplicate keys, fields no
        // policy reads included) is checked by whichever path reads the
        // text: while reading, on the slot path; first, on the others.
        self.decide_entry(entry, name, Input::Json(input), now)
    }

    /// As [`Snapshot::decide_json`], for text a caller checked before
    /// keeping it anywhere (a server checks before it logs anything).
    pub fn decide_shaped(&self, policy: &str, input: Shaped<'_>, now: &str) -> Result<Decision<'_>, DecideError> {
        self.decide_json(policy, input.as_str(), now)
    }

    fn parsed(input: Input<'_>) -> Result<std::borrow::Cow<'_, Value>, DecideError> {
        match input {
            Input::Parsed(v) => Ok(std::borrow::Cow::Borrowed(v)),
            Input::Json(text) => Self::parse_checked(text).map(std::borrow::Cow::Owned),
        }
    }

    /// JSON text to a value, once its shape passes (`input_shape::check`).
    fn parse_checked(text: &str) -> Result<Value, DecideError> {
        let bad_json =
            |e: dealrules_expr::json::JsonError| DecideError::BadInput(format!("input is not valid JSON: {e}"));
        dealrules_expr::input_shape::check(text).map_err(bad_json)?;
        Value::from_json_str(text).map_err(bad_json)
    }

    pub(crate) fn entries_of(&self, kind: Kind) -> impl Iterator<Item = (&str, &Compiled)> {
        self.entries
            .iter()
            .filter(move |e| e.kind == kind)
            .map(|e| (e.name.as_str(), &e.compiled))
    }

    fn compiled(&self, kind: Kind, name: &str) -> Option<&Compiled> {
        let ids = self.by_name.get(name)?;
        ids.iter()
            .map(|&i| &self.entries[i])
            .find(|e| e.kind == kind)
            .map(|e| &e.compiled)
    }

    pub fn approval_policy(&self, name: &str) -> Option<&ApprovalPolicy> {
        match self.compiled(Kind::ApprovalPolicy, name)? {
            Compiled::Approval(a) => Some(a),
            _ => None,
        }
    }

    pub fn calculation(&self, name: &str) -> Option<&Calculation> {
        match self.compiled(Kind::Calculation, name)? {
            Compiled::Calculation(c) => Some(c),
            _ => None,
        }
    }

    pub fn decision_table(&self, name: &str) -> Option<&DecisionTable> {
        match self.compiled(Kind::DecisionTable, name)? {
            Compiled::Table(t) => Some(t),
            _ => None,
        }
    }

    /// A compiled policy's summary for admins (kind-specific), if it has one.
    pub fn summary(&self, kind: Kind, name: &str) -> Option<serde_json::Value> {
        match self.compiled(kind, name)? {
            Compiled::Table(t) => Some(t.summary()),
            Compiled::Calculation(c) => Some(c.summary()),
            Compiled::Approval(a) => Some(a.summary()),
            Compiled::Funnel(f) => Some(f.summary()),
            _ => None,
        }
    }

    /// Drops every table's row index so tables are scanned row by row.
    /// For benchmarks and for tests that compare both ways.
    #[doc(hidden)]
    pub fn disable_table_indexes(&mut self) {
        for e in &mut self.entries {
            if let Compiled::Table(t) = &mut e.compiled {
                t.disable_index();
            }
        }
    }

    pub fn funnel(&self, name: &str) -> Option<&Funnel> {
        match self.compiled(Kind::Funnel, name)? {
            Compiled::Funnel(f) => Some(f),
            _ => None,
        }
    }

    /// What a funnel timer's actions would do for a deal (see
    /// [`Funnel::plan_timer`]); approval actions are decided here.
    pub fn plan_timer(
        &self,
        funnel: &str,
        timer: &str,
        input: &Value,
        now: &str,
    ) -> Result<Vec<funnel::PlannedAction>, DecideError> {
        let f = self.funnel(funnel).ok_or_else(|| DecideError::UnknownPolicy {
            name: funnel.to_string(),
            hint: String::new(),
        })?;
        let approvals = |policy: &str, input: &Value| self.plan_approval(policy, input, now);
        f.plan_timer(timer, input, now, &approvals)
    }

    /// What an `approval:` action of a funnel plans: the policy's decision
    /// for the deal, or why it cannot decide.
    fn plan_approval(&self, policy: &str, input: &Value, now: &str) -> Result<funnel::PlannedApproval, String> {
        let a = self
            .approval_policy(policy)
            .ok_or_else(|| format!("no ApprovalPolicy `{policy}`"))?;
        let d = a
            .decide(&self.version, Input::Parsed(input), now)
            .map_err(|e| e.to_string())?;
        Ok(funnel::PlannedApproval::from(&d))
    }

    /// Gives the snapshot its loaded plugins.
    pub fn attach_plugins(&mut self, runtime: Arc<dyn PluginRuntime>) {
        self.plugins = Some(runtime);
    }

    /// Whether the pack has Plugin manifests (which a host must load).
    pub fn has_plugins(&self) -> bool {
        self.pack.documents.iter().any(|d| d.kind == Kind::Plugin)
    }

    /// Whether deciding `policy` can take long: it calls plugins (each up to
    /// its deadline) or is an IncentivePlan (a whole period of deals). A
    /// server runs such decisions on a bounded pool, off the threads that
    /// answer everything else. Unknown policies answer false (they fail fast).
    pub fn may_run_long(&self, policy: &str) -> bool {
        match self.entry(policy) {
            Ok((e, _)) => !e.plugin_facts.is_empty() || e.kind == Kind::IncentivePlan,
            Err(_) => false,
        }
    }

    /// Calls a plugin; an error names the plugin.
    pub fn call_plugin(
        &self,
        plugin: &str,
        function: &str,
        facts: &serde_json::Value,
    ) -> Result<PluginCall, PluginCallError> {
        match &self.plugins {
            Some(p) => p.call(plugin, function, facts),
            None => Err(PluginCallError {
                kind: PluginFailure::NotLoaded,
                message: format!("plugin `{plugin}` cannot run: no plugin host is attached to this pack"),
            }),
        }
    }

    /// Runs a pack script's `evaluate(input)`.
    pub fn run_script(&self, path: &str, input: &Value) -> Result<Value, DecideError> {
        let script = self.scripts.get(path).ok_or_else(|| DecideError::UnknownPolicy {
            name: path.to_string(),
            hint: String::new(),
        })?;
        script.run(input).map_err(|error| DecideError::Eval {
            policy: path.to_string(),
            at: "evaluate".into(),
            error,
        })
    }
}
