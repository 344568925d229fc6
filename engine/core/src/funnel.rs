//! Funnel: move checks over a deal's stages (section 5).

use std::collections::HashSet;
use std::sync::Arc;

use dealrules_expr::{Expr, Value, WhyNot};
use dealrules_model::{Action, Document, FunnelSpec, Kind, Pack, suggest};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::context::{BASE_LOCALS, DocCompiler, base_locals, facts_of};
use crate::error::DecideError;

#[derive(Debug)]
pub struct Funnel {
    pub name: Arc<str>,
    pub initial: Arc<str>,
    pub stages: Vec<StageDef>,
    transitions: Vec<TransitionDef>,
    pub timers: Vec<TimerDef>,
    vars: Value,
}

#[derive(Debug)]
pub struct StageDef {
    pub id: Arc<str>,
    pub probability: Decimal,
    pub requires: Vec<Arc<str>>,
    pub on_enter: Vec<CompiledAction>,
    pub terminal: bool,
    /// The stage's `sla`, when given (see [`Funnel::sla`]).
    pub sla: Option<std::time::Duration>,
}

#[derive(Debug)]
struct TransitionDef {
    id: Arc<str>,
    /// `None` for `*`.
    from: Option<usize>,
    to: usize,
    when: Option<Expr>,
    requires_approval: bool,
}

#[derive(Debug)]
pub struct TimerDef {
    pub id: Arc<str>,
    pub stages: Vec<usize>,
    pub after: Option<std::time::Duration>,
    pub every: Option<std::time::Duration>,
    pub actions: Vec<CompiledAction>,
}

/// An action with its expressions compiled.
#[derive(Debug)]
pub enum CompiledAction {
    Approval(Arc<str>),
    Notify { template: Arc<str>, to: Expr },
    Set(Vec<(Arc<str>, Expr)>),
    Script(Arc<str>),
    Plugin { name: Arc<str>, function: Option<Arc<str>> },
}

/// Why a move is refused.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Reason {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<Arc<str>>,
    /// For a guard that did not hold: the parts of its `when` that failed,
    /// the values they read and what would pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<Vec<WhyNot>>,
}

/// What entering the target stage (or a timer) would run, evaluated where
/// possible. Shown as `{"type", "detail", "error"}`.
#[derive(Debug, Clone, PartialEq)]
pub enum PlannedAction {
    /// Open an approval request: what the policy decided for the deal, or
    /// why it could not decide.
    Approval {
        policy: Arc<str>,
        decision: Result<PlannedApproval, String>,
    },
    /// Send a notification: the recipient, or the recipient's expression
    /// and why it did not evaluate.
    Notify {
        template: Arc<str>,
        to: Result<serde_json::Value, Unevaluated>,
    },
    /// Set fields of the deal; the fields that evaluated, and why the
    /// others did not.
    Set {
        fields: serde_json::Map<String, serde_json::Value>,
        error: Option<String>,
    },
    /// Run a pack script.
    Script { script: Arc<str> },
    /// Call a plugin's function (`run` when none is named).
    Plugin {
        plugin: Arc<str>,
        function: Option<Arc<str>>,
    },
}

/// An expression that did not evaluate: its source and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unevaluated {
    pub source: String,
    pub error: String,
}

/// What an approval policy decided, as an `approval:` action needs it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlannedApproval {
    pub level: String,
    pub chain: Vec<String>,
    pub rule: String,
    pub auto_approved: bool,
    pub approvers: Vec<PlannedApprover>,
}

/// Who approves a level of the chain.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlannedApprover {
    pub level: String,
    /// A user id or `role:NAME`; `None` when the deal does not name one.
    pub approver: Option<String>,
    /// How the policy names the approver (`rep.manager`).
    pub from: String,
}

impl From<&crate::approval::ApprovalDecision<'_>> for PlannedApproval {
    fn from(d: &crate::approval::ApprovalDecision<'_>) -> Self {
        PlannedApproval {
            level: d.level.into(),
            chain: d.chain.iter().map(|l| l.to_string()).collect(),
            rule: d.rule.into(),
            auto_approved: d.auto_approved,
            approvers: d
                .approvers
                .iter()
                .map(|a| PlannedApprover {
                    level: a.level.into(),
                    approver: a.approver.as_ref().map(|c| c.to_string()),
                    from: a.from.into(),
                })
                .collect(),
        }
    }
}

impl PlannedAction {
    /// `approval`, `notify`, `set`, `script` or `plugin`.
    pub fn kind(&self) -> &'static str {
        match self {
            PlannedAction::Approval { .. } => "approval",
            PlannedAction::Notify { .. } => "notify",
            PlannedAction::Set { .. } => "set",
            PlannedAction::Script { .. } => "script",
            PlannedAction::Plugin { .. } => "plugin",
        }
    }

    /// Why the action cannot run, when it cannot.
    pub fn error(&self) -> Option<&str> {
        match self {
            PlannedAction::Approval { decision: Err(e), .. } => Some(e),
            PlannedAction::Notify { to: Err(u), .. } => Some(&u.error),
            PlannedAction::Set { error, .. } => error.as_deref(),
            _ => None,
        }
    }

    /// What the action does, as shown.
    pub fn detail(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            PlannedAction::Approval { policy, decision } => match decision {
                Ok(d) => json!({ "policy": &**policy, "decision": d }),
                Err(_) => json!({ "policy": &**policy }),
            },
            PlannedAction::Notify { template, to } => match to {
                Ok(to) => json!({ "template": &**template, "to": to }),
                Err(u) => json!({ "template": &**template, "to": u.source }),
            },
            PlannedAction::Set { fields, .. } => serde_json::Value::Object(fields.clone()),
            PlannedAction::Script { script } => json!({ "script": &**script }),
            PlannedAction::Plugin { plugin, function } => {
                json!({ "plugin": &**plugin, "function": function.as_deref() })
            }
        }
    }
}

impl Serialize for PlannedAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let error = self.error();
        let mut m = s.serialize_map(Some(2 + usize::from(error.is_some())))?;
        m.serialize_entry("type", self.kind())?;
        m.serialize_entry("detail", &self.detail())?;
        if let Some(e) = error {
            m.serialize_entry("error", e)?;
        }
        m.end()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MoveDecision {
    pub policy: Arc<str>,
    pub kind: &'static str,
    pub version: Arc<str>,
    pub from: Arc<str>,
    pub to: Arc<str>,
    pub allowed: bool,
    pub reasons: Vec<Reason>,
    /// What entering the target runs; empty when the move is refused.
    pub actions: Vec<PlannedAction>,
    /// The transition used, `from->to`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transition: Option<Arc<str>>,
    pub probability: Decimal,
}

fn compile_actions(actions: &[Action], path: &str, pack: &Pack, cx: &mut DocCompiler) -> Vec<CompiledAction> {
    let mut out = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        let at = format!("{path}[{i}]");
        match a {
            Action::Approval(name) => {
                if !pack.has(Kind::ApprovalPolicy, name) {
                    let known = pack
                        .documents
                        .iter()
                        .filter(|d| d.kind == Kind::ApprovalPolicy)
                        .map(|d| d.metadata.name.as_str());
                    cx.error(
                        &format!("{at}.approval"),
                        format!("no ApprovalPolicy named `{name}`{}", suggest(name, known)),
                    );
                }
                out.push(CompiledAction::Approval(name.as_str().into()));
            }
            Action::Notify(n) => {
                if let Some(to) = cx.expr(&format!("{at}.notify.to"), &n.to, &BASE_LOCALS) {
                    out.push(CompiledAction::Notify {
                        template: n.template.as_str().into(),
                        to,
                    });
                }
            }
            Action::Set(fields) => {
                let mut set = Vec::new();
                for (field, src) in fields {
                    if let Some(e) = cx.expr(&format!("{at}.set.{field}"), src, &BASE_LOCALS) {
                        set.push((Arc::from(field.as_str()), e));
                    }
                }
                out.push(CompiledAction::Set(set));
            }
            Action::Script(file) => {
                if !pack.scripts.contains_key(file) {
                    let known = pack.scripts.keys().map(String::as_str);
                    cx.error(
                        &format!("{at}.script"),
                        format!("no script `{file}` in the pack{}", suggest(file, known)),
                    );
                }
                out.push(CompiledAction::Script(file.as_str().into()));
            }
            Action::Plugin(call) => {
                match pack.find(Kind::Plugin, &call.name) {
                    None if pack.has(Kind::Plugin, &call.name) => {}
                    None => cx.error(&format!("{at}.plugin.name"), format!("no Plugin named `{}`", call.name)),
                    Some(doc) => {
                        if let (Some(f), dealrules_model::Spec::Plugin(p)) = (&call.function, &doc.spec)
                            && !p.exports.contains(f)
                        {
                            cx.error(
                                &format!("{at}.plugin.function"),
                                format!(
                                    "plugin `{}` does not export `{f}` (exports: {})",
                                    call.name,
                                    p.exports.join(", ")
                                ),
                            );
                        }
                    }
                }
                out.push(CompiledAction::Plugin {
                    name: call.name.as_str().into(),
                    function: call.function.as_deref().map(Arc::from),
                });
            }
        }
    }
    out
}

pub fn compile(doc: &Document, spec: &FunnelSpec, pack: &Pack, cx: &mut DocCompiler) -> Option<Funnel> {
    let before = cx.diags.len();
    let mut ids = HashSet::new();
    for (i, s) in spec.stages.iter().enumerate() {
        if !ids.insert(s.id.as_str()) {
            cx.error(
                &format!("spec.stages[{i}].id"),
                format!("stage `{}` is defined twice", s.id),
            );
        }
    }
    let known = || spec.stages.iter().map(|s| s.id.as_str());
    let stage_index = |name: &str| spec.stages.iter().position(|s| s.id == name);
    let unknown_stage = |cx: &mut DocCompiler, path: &str, name: &str| {
        cx.error(path, format!("unknown stage `{name}`{}", suggest(name, known())));
    };
    if stage_index(&spec.initial).is_none() {
        unknown_stage(cx, "spec.initial", &spec.initial);
    }
    let mut stages = Vec::new();
    for (i, s) in spec.stages.iter().enumerate() {
        let path = format!("spec.stages[{i}]");
        let probability = s.probability.unwrap_or(Decimal::ZERO);
        if probability < Decimal::ZERO || probability > Decimal::ONE {
            cx.error(
                &format!("{path}.probability"),
                format!("probability must be between 0 and 1, found {probability}"),
            );
        }
        let on_enter = compile_actions(&s.on_enter, &format!("{path}.on_enter"), pack, cx);
        let sla = s
            .sla
            .as_ref()
            .and_then(|d| match dealrules_model::duration::parse_duration(&d.0) {
                Ok(x) => Some(x),
                Err(e) => {
                    cx.error(&format!("{path}.sla"), e);
                    None
                }
            });
        stages.push(StageDef {
            id: s.id.as_str().into(),
            probability,
            requires: s.requires.iter().map(|r| Arc::from(r.as_str())).collect(),
            on_enter,
            terminal: s.terminal,
            sla,
        });
    }
    let mut transitions = Vec::new();
    let mut pairs = HashSet::new();
    for (i, t) in spec.transitions.iter().enumerate() {
        let path = format!("spec.transitions[{i}]");
        let from = if t.from == "*" {
            Some(None)
        } else {
            match stage_index(&t.from) {
                Some(f) => Some(Some(f)),
                None => {
                    unknown_stage(cx, &format!("{path}.from"), &t.from);
                    None
                }
            }
        };
        let to = stage_index(&t.to);
        if to.is_none() {
            unknown_stage(cx, &format!("{path}.to"), &t.to);
        }
        if !pairs.insert((t.from.as_str(), t.to.as_str())) {
            cx.error(
                &path,
                format!("transition from `{}` to `{}` is defined twice", t.from, t.to),
            );
        }
        let when = t
            .when
            .as_ref()
            .and_then(|w| cx.expr(&format!("{path}.when"), w, &BASE_LOCALS));
        if let (Some(from), Some(to)) = (from, to) {
            transitions.push(TransitionDef {
                id: format!("{}->{}", t.from, t.to).into(),
                from,
                to,
                when,
                requires_approval: t.requires_approval,
            });
        }
    }
    let mut timers = Vec::new();
    let mut timer_ids = HashSet::new();
    for (i, t) in spec.timers.iter().enumerate() {
        let path = format!("spec.timers[{i}]");
        if !timer_ids.insert(t.id.as_str()) {
            cx.error(&format!("{path}.id"), format!("timer `{}` is defined twice", t.id));
        }
        let mut in_stages = Vec::new();
        for (j, s) in t.stages.iter().enumerate() {
            match stage_index(s) {
                Some(x) => in_stages.push(x),
                None => unknown_stage(cx, &format!("{path}.in[{j}]"), s),
            }
        }
        let mut parse = |key: &str, d: &Option<dealrules_model::DurationText>| {
            d.as_ref()
                .and_then(|d| match dealrules_model::duration::parse_duration(&d.0) {
                    Ok(x) => Some(x),
                    Err(e) => {
                        cx.error(&format!("{path}.{key}"), e);
                        None
                    }
                })
        };
        let after = parse("after", &t.after);
        let every = parse("every", &t.every);
        if t.after.is_some() == t.every.is_some() {
            cx.error(
                &path,
                format!("timer `{}` needs exactly one of `after` and `every`", t.id),
            );
        }
        let actions = compile_actions(&t.actions, &format!("{path}.do"), pack, cx);
        timers.push(TimerDef {
            id: t.id.as_str().into(),
            stages: in_stages,
            after,
            every,
            actions,
        });
    }
    (cx.diags.len() == before).then(|| Funnel {
        name: doc.metadata.name.as_str().into(),
        initial: spec.initial.as_str().into(),
        stages,
        transitions,
        timers,
        vars: base_locals(&spec.vars).swap_remove(0),
    })
}

impl Funnel {
    /// How long a deal may stay in stage `index` before it is stalled: the
    /// stage's `sla`, else the earliest `after` of a timer running in it.
    pub fn sla(&self, index: usize) -> Option<std::time::Duration> {
        self.stages.get(index)?.sla.or_else(|| {
            self.timers
                .iter()
                .filter(|t| t.stages.contains(&index))
                .filter_map(|t| t.after)
                .min()
        })
    }

    pub fn stage(&self, id: &str) -> Option<usize> {
        self.stages.iter().position(|s| &*s.id == id)
    }

    /// Whether stage `i` is a won end: terminal, and named `won` or sure
    /// (probability 1). What progress credits without a plan.
    pub fn is_won(&self, i: usize) -> bool {
        self.stages
            .get(i)
            .is_some_and(|s| s.terminal && (&*s.id == "won" || s.probability == Decimal::ONE))
    }

    /// What an admin sees of the compiled funnel.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "initial": &*self.initial,
            "stages": self.stages.iter().map(|s| serde_json::json!({ "id": &*s.id, "probability": s.probability, "terminal": s.terminal, "requires": s.requires.iter().map(|r| &**r).collect::<Vec<_>>(), "on_enter": s.on_enter.len() })).collect::<Vec<_>>(),
            "transitions": self.transitions.iter().map(|t| &*t.id).collect::<Vec<_>>(),
            "timers": self.timers.iter().map(|t| &*t.id).collect::<Vec<_>>(),
        })
    }

    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.transitions.iter().map(|t| &*t.id)
    }

    /// The stages a deal in `stage` may be asked to move to: its own
    /// transitions, and the `*` ones unless the stage is terminal. Empty
    /// for a stage the funnel does not have.
    pub fn moves_from(&self, stage: &str) -> Vec<Arc<str>> {
        let Some(from) = self.stage(stage) else {
            return vec![];
        };
        let mut out: Vec<Arc<str>> = Vec::new();
        for t in &self.transitions {
            let applies = t.from == Some(from) || (t.from.is_none() && !self.stages[from].terminal);
            let to = &self.stages[t.to].id;
            if applies && t.to != from && !out.contains(to) {
                out.push(to.clone());
            }
        }
        out
    }

    /// Checks a move: `{"deal": {..., "stage": "qualified"}, "move": "proposal"}`.
    /// Every reason for a refusal is given, not only the first.
    pub fn check_move(
        &self,
        version: &Arc<str>,
        input: &Value,
        now: &str,
        approvals: &dyn Fn(&str, &Value) -> Result<PlannedApproval, String>,
    ) -> Result<MoveDecision, DecideError> {
        let mut locals = [self.vars.clone(), Value::Null];
        let facts = facts_of(input, now, &mut locals)?;
        let bad = |m: String| DecideError::BadInput(m);
        let deal = facts
            .get("deal")
            .ok_or_else(|| bad("the input needs a `deal`".into()))?;
        let deal_map = deal.as_map().ok_or_else(|| bad("`deal` must be an object".into()))?;
        let target = facts
            .get("move")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("the input needs `move`: the stage to move to".into()))?;
        let current = match deal_map.get("stage") {
            Some(Value::Str(s)) => s.as_str(),
            None | Some(Value::Null) => &self.initial,
            Some(other) => return Err(bad(format!("deal.stage must be text, got {}", other.type_name()))),
        };
        let known = || self.stages.iter().map(|s| &*s.id);
        let from = self.stage(current).ok_or_else(|| {
            bad(format!(
                "the deal is in stage `{current}`, which funnel `{}` does not have{}",
                self.name,
                suggest(current, known())
            ))
        })?;
        let to = self.stage(target).ok_or_else(|| {
            bad(format!(
                "no stage `{target}` in funnel `{}`{}",
                self.name,
                suggest(target, known())
            ))
        })?;
        let env = dealrules_expr::Env::new(facts, &locals);
        let mut reasons = Vec::new();
        let reason = |code, message: String| Reason {
            code,
            message,
            field: None,
            why_not: None,
        };
        if from == to {
            reasons.push(reason("same_stage", format!("the deal is already in `{target}`")));
        }
        let explicit = self.transitions.iter().find(|t| t.from == Some(from) && t.to == to);
        let transition = explicit.or_else(|| {
            (!self.stages[from].terminal)
                .then(|| self.transitions.iter().find(|t| t.from.is_none() && t.to == to))
                .flatten()
        });
        match transition {
            None if from != to => {
                if self.stages[from].terminal {
                    reasons.push(reason(
                        "terminal_stage",
                        format!("`{current}` is a terminal stage; no move to `{target}` is defined from it"),
                    ));
                } else {
                    let allowed: Vec<&str> = self
                        .transitions
                        .iter()
                        .filter(|t| t.from == Some(from) || (t.from.is_none() && !self.stages[from].terminal))
                        .map(|t| &*self.stages[t.to].id)
                        .collect();
                    reasons.push(reason(
                        "no_transition",
                        format!(
                            "no transition from `{current}` to `{target}` (from `{current}` the deal may move to: {})",
                            if allowed.is_empty() {
                                "nowhere".to_string()
                            } else {
                                allowed.join(", ")
                            }
                        ),
                    ));
                }
            }
            None => {}
            Some(t) => {
                if let Some(w) = &t.when {
                    match w.eval_bool(&env) {
                        Ok(true) => {}
                        Ok(false) => reasons.push(Reason {
                            why_not: Some(w.why_not(&env, true)),
                            ..reason("condition", format!("condition not met: {}", w.source()))
                        }),
                        Err(e) => reasons.push(reason(
                            "condition",
                            format!("condition `{}` could not be checked: {e}", w.source()),
                        )),
                    }
                }
                if t.requires_approval {
                    let states: Vec<(String, String)> = match deal_map.get("approvals") {
                        Some(Value::List(items)) => items
                            .iter()
                            .map(|a| {
                                let state = a.get("state").and_then(Value::as_str).unwrap_or("pending").to_string();
                                let id = a
                                    .get("id")
                                    .or_else(|| a.get("policy"))
                                    .map(|v| v.to_string())
                                    .unwrap_or_default();
                                (id, state)
                            })
                            .collect(),
                        _ => Vec::new(),
                    };
                    for (id, state) in states {
                        let label = if id.is_empty() {
                            String::new()
                        } else {
                            format!(" `{id}`")
                        };
                        match state.as_str() {
                            "pending" => {
                                reasons.push(reason("approval_pending", format!("approval{label} is still pending")))
                            }
                            "rejected" => {
                                reasons.push(reason("approval_rejected", format!("approval{label} was rejected")))
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        for field in &self.stages[to].requires {
            if !deal_map.get(field).is_some_and(Value::is_filled) {
                reasons.push(Reason {
                    code: "missing_field",
                    message: format!("`{field}` is required to enter `{target}`"),
                    field: Some(field.clone()),
                    why_not: None,
                });
            }
        }
        // A refused move enters nothing, so it runs nothing.
        let actions = match reasons.is_empty() {
            true => self.stages[to]
                .on_enter
                .iter()
                .map(|a| plan(a, &env, input, approvals))
                .collect(),
            false => Vec::new(),
        };
        Ok(MoveDecision {
            policy: self.name.clone(),
            kind: "Funnel",
            version: version.clone(),
            from: self.stages[from].id.clone(),
            to: self.stages[to].id.clone(),
            allowed: reasons.is_empty(),
            reasons,
            actions,
            transition: transition.map(|t| t.id.clone()),
            probability: self.stages[to].probability,
        })
    }
}

impl Funnel {
    /// What a timer's actions would do for the deal in `input`
    /// (`{"deal": {...}, ...}`), evaluated as a move's `on_enter` is.
    pub fn plan_timer(
        &self,
        timer: &str,
        input: &Value,
        now: &str,
        approvals: &dyn Fn(&str, &Value) -> Result<PlannedApproval, String>,
    ) -> Result<Vec<PlannedAction>, DecideError> {
        let t = self
            .timers
            .iter()
            .find(|t| &*t.id == timer)
            .ok_or_else(|| DecideError::BadInput(format!("funnel `{}` has no timer `{timer}`", self.name)))?;
        let mut locals = [self.vars.clone(), Value::Null];
        let facts = facts_of(input, now, &mut locals)?;
        let env = dealrules_expr::Env::new(facts, &locals);
        Ok(t.actions.iter().map(|a| plan(a, &env, input, approvals)).collect())
    }
}

fn plan(
    a: &CompiledAction,
    env: &dealrules_expr::Env<'_>,
    input: &Value,
    approvals: &dyn Fn(&str, &Value) -> Result<PlannedApproval, String>,
) -> PlannedAction {
    match a {
        CompiledAction::Approval(policy) => PlannedAction::Approval {
            policy: policy.clone(),
            decision: approvals(policy, input),
        },
        CompiledAction::Notify { template, to } => PlannedAction::Notify {
            template: template.clone(),
            to: to.eval(env).map(|v| v.to_json()).map_err(|e| Unevaluated {
                source: to.source().to_string(),
                error: e.to_string(),
            }),
        },
        CompiledAction::Set(fields) => {
            let mut out = serde_json::Map::new();
            let mut errors = Vec::new();
            for (f, e) in fields {
                match e.eval(env) {
                    Ok(v) => {
                        out.insert(f.to_string(), v.to_json());
                    }
                    Err(err) => errors.push(format!("{f}: {err}")),
                }
            }
            PlannedAction::Set {
                fields: out,
                error: (!errors.is_empty()).then(|| errors.join("; ")),
            }
        }
        CompiledAction::Script(file) => PlannedAction::Script { script: file.clone() },
        CompiledAction::Plugin { name, function } => PlannedAction::Plugin {
            plugin: name.clone(),
            function: function.clone(),
        },
    }
}
