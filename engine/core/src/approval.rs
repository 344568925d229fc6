//! ApprovalPolicy: who must approve a deal (section 4 of the policy language).

use std::collections::HashSet;
use std::sync::Arc;

use dealrules_expr::whynot::{PathValues, change_of};
use dealrules_expr::{Env, Expr, Value, WhyNot};
use dealrules_model::{ApprovalHit, ApprovalPolicySpec, ChainMode, Document, suggest};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use smallvec::SmallVec;

use crate::context::{BASE_LOCALS, DocCompiler, Facts, Input, WHY_NOT, base_locals, bind_all};
use crate::error::DecideError;

#[derive(Debug)]
pub struct ApprovalPolicy {
    pub name: Arc<str>,
    levels: Vec<Arc<str>>,
    hit: ApprovalHit,
    rules: Vec<Rule>,
    escalations: Vec<Escalation>,
    chain: ChainMode,
    /// Per level (index): who approves it.
    approvers: Vec<Option<Approver>>,
    vars: Value,
    /// Set when every expression reads slots (see `dealrules_expr::slots`).
    plan: Option<dealrules_expr::SlotPlan>,
    /// The fields read, when the policy runs on parsed input instead.
    interest: dealrules_expr::Interest,
    /// The slot of the input's `why_not`, when the policy reads slots.
    why_not_slot: Option<usize>,
}

#[derive(Debug)]
struct Rule {
    id: Arc<str>,
    when: Option<Expr>,
    level: usize,
}

#[derive(Debug)]
struct Escalation {
    id: Arc<str>,
    when: Expr,
    by: usize,
}

#[derive(Debug)]
enum Approver {
    /// `role:NAME`, or a fixed user id.
    Fixed(Arc<str>),
    /// An expression over the facts, such as `rep.manager`.
    From(Expr, Arc<str>),
}

/// The result of an approval decision, as the CLI and HTTP API return it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalDecision<'a> {
    pub policy: &'a str,
    pub kind: &'static str,
    pub version: &'a str,
    pub level: &'a str,
    pub chain: SmallVec<[&'a str; 4]>,
    pub rule: &'a str,
    pub escalations: SmallVec<[&'a str; 2]>,
    pub auto_approved: bool,
    /// Who approves each level of the chain, in order.
    pub approvers: SmallVec<[ApproverRef<'a>; 4]>,
    pub trace: SmallVec<[TraceStep<'a>; 8]>,
    /// With `"why_not": true`: why each unmatched rule did not match, and
    /// `to_reach`. A decision not asked to explain carries nothing here.
    pub explained: Option<Box<Explained<'a>>>,
    /// The plugin calls the policy made first: answer, fuel, time.
    pub plugins: Vec<serde_json::Value>,
}

impl Serialize for ApprovalDecision<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("policy", self.policy)?;
        m.serialize_entry("kind", self.kind)?;
        m.serialize_entry("version", self.version)?;
        m.serialize_entry("level", self.level)?;
        m.serialize_entry("chain", &self.chain)?;
        m.serialize_entry("rule", self.rule)?;
        m.serialize_entry("escalations", &self.escalations)?;
        m.serialize_entry("auto_approved", &self.auto_approved)?;
        m.serialize_entry("approvers", &self.approvers)?;
        m.serialize_entry("trace", &TraceOut(&self.trace, self.explained.as_deref()))?;
        if let Some(e) = &self.explained {
            m.serialize_entry("to_reach", &e.to_reach)?;
        }
        if !self.plugins.is_empty() {
            m.serialize_entry("plugins", &self.plugins)?;
        }
        m.end()
    }
}

/// What a decision asked with `"why_not": true` adds. Kept apart from the
/// trace so a decision that does not ask pays nothing for it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Explained<'a> {
    /// One per trace step, in order: for a step that did not match, the
    /// parts of its condition that failed, the values they read and what
    /// would pass.
    pub why_not: Vec<Option<Vec<WhyNot>>>,
    /// Approvals: for each level below the one decided, the first rule that
    /// would give it and what must change.
    pub to_reach: Vec<Reach<'a>>,
}

/// A trace as results show it: each step, with its `why_not` when explained.
pub(crate) struct TraceOut<'x, 'a>(pub &'x [TraceStep<'a>], pub Option<&'x Explained<'a>>);

impl Serialize for TraceOut<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (i, step) in self.0.iter().enumerate() {
            match self.1.and_then(|e| e.why_not.get(i)).and_then(Option::as_ref) {
                None => seq.serialize_element(step)?,
                Some(why_not) => seq.serialize_element(
                    &serde_json::json!({ "rule": step.rule, "matched": step.matched, "why_not": why_not }),
                )?,
            }
        }
        seq.end()
    }
}

/// A lower level, the first rule that would give it, and the change to the
/// input that makes the decision give it (checked by deciding again).
#[derive(Debug, Clone, PartialEq)]
pub struct Reach<'a> {
    pub level: &'a str,
    pub rule: Option<&'a str>,
    /// Field path -> the value it must have.
    pub change: Vec<(Arc<str>, Value)>,
    /// Set when no change dealrules can work out reaches the level; says why.
    pub cannot_say: Option<String>,
}

impl Serialize for Reach<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("level", self.level)?;
        if let Some(rule) = self.rule {
            m.serialize_entry("rule", rule)?;
        }
        match &self.cannot_say {
            None => m.serialize_entry("change", &PathValues(&self.change))?,
            Some(reason) => {
                m.serialize_entry("cannot_say", &true)?;
                m.serialize_entry("reason", reason)?;
            }
        }
        m.end()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApproverRef<'a> {
    pub level: &'a str,
    /// The approver's user id or `role:NAME`; null when the input lacks it.
    pub approver: Option<std::borrow::Cow<'a, str>>,
    /// How the policy names the approver (`rep.manager`).
    pub from: &'a str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraceStep<'a> {
    pub rule: &'a str,
    pub matched: bool,
}

/// Compiles an ApprovalPolicy document; `None` when it has errors (recorded).
pub fn compile(doc: &Document, spec: &ApprovalPolicySpec, cx: &mut DocCompiler) -> Option<ApprovalPolicy> {
    let before = cx.diags.len();
    if spec.levels.is_empty() {
        cx.error(
            "spec.levels",
            "at least one level is needed (the first one needs nobody)",
        );
    }
    let mut seen = HashSet::new();
    for (i, l) in spec.levels.iter().enumerate() {
        if !seen.insert(l.as_str()) {
            cx.error(&format!("spec.levels[{i}]"), format!("level `{l}` is listed twice"));
        }
    }
    let level_index = |name: &str| spec.levels.iter().position(|l| l == name);
    let known_levels = || spec.levels.iter().map(String::as_str);
    let mut rules = Vec::new();
    let mut ids = HashSet::new();
    for (i, r) in spec.rules.iter().enumerate() {
        let path = format!("spec.rules[{i}]");
        if !ids.insert(r.id.as_str()) {
            cx.error(&format!("{path}.id"), format!("rule id `{}` is used twice", r.id));
        }
        let level = level_index(&r.level);
        if level.is_none() {
            cx.error(
                &format!("{path}.level"),
                format!(
                    "unknown level `{}` (levels: {}){}",
                    r.level,
                    spec.levels.join(", "),
                    suggest(&r.level, known_levels())
                ),
            );
        }
        let when = r
            .when
            .as_ref()
            .and_then(|w| cx.expr(&format!("{path}.when"), w, &BASE_LOCALS));
        if let Some(level) = level {
            rules.push(Rule {
                id: r.id.as_str().into(),
                when,
                level,
            });
        }
    }
    if spec.rules.is_empty() {
        cx.error("spec.rules", "at least one rule is needed");
    }
    for (i, r) in spec.rules.iter().enumerate() {
        if r.when.is_none() && i + 1 < spec.rules.len() && spec.hit == ApprovalHit::First {
            cx.error(
                &format!("spec.rules[{}]", i + 1),
                format!(
                    "rule `{}` can never be reached: rule `{}` before it has no `when`",
                    spec.rules[i + 1].id,
                    r.id
                ),
            );
        }
    }
    let mut escalations = Vec::new();
    for (i, e) in spec.escalate.iter().enumerate() {
        let path = format!("spec.escalate[{i}]");
        if !ids.insert(e.id.as_str()) {
            cx.error(&format!("{path}.id"), format!("id `{}` is used twice", e.id));
        }
        if e.by == 0 {
            cx.error(&format!("{path}.by"), "`by` must be 1 or more");
        }
        if let Some(when) = cx.expr(&format!("{path}.when"), &e.when, &BASE_LOCALS) {
            escalations.push(Escalation {
                id: e.id.as_str().into(),
                when,
                by: e.by as usize,
            });
        }
    }
    let mut approvers: Vec<Option<Approver>> = spec.levels.iter().map(|_| None).collect();
    for (level, who) in &spec.approvers {
        let path = format!("spec.approvers.{level}");
        match level_index(level) {
            None => cx.error(
                &path,
                format!("unknown level `{level}`{}", suggest(level, known_levels())),
            ),
            Some(0) => cx.error(&path, format!("level `{level}` is the first level, which needs nobody")),
            Some(i) => {
                approvers[i] = if who.starts_with("role:") || !who.contains('.') {
                    Some(Approver::Fixed(who.as_str().into()))
                } else {
                    cx.expr(&path, who, &BASE_LOCALS)
                        .map(|e| Approver::From(e, who.as_str().into()))
                }
            }
        }
    }
    if !spec.approvers.is_empty() {
        for l in spec.levels.iter().skip(1) {
            if !spec.approvers.contains_key(l) {
                cx.error("spec.approvers", format!("level `{l}` has no approver"));
            }
        }
    }
    if let Some(sla) = &spec.sla {
        for (key, d) in [
            ("remind_after", &sla.remind_after),
            ("escalate_after", &sla.escalate_after),
        ] {
            if let Some(d) = d
                && let Err(e) = dealrules_model::duration::parse_duration(&d.0)
            {
                cx.error(&format!("spec.sla.{key}"), e);
            }
        }
    }
    let vars = base_locals(&spec.vars).swap_remove(0);
    if cx.diags.len() != before {
        return None;
    }
    let mut policy = ApprovalPolicy {
        name: doc.metadata.name.as_str().into(),
        levels: spec.levels.iter().map(|l| Arc::from(l.as_str())).collect(),
        hit: spec.hit,
        rules,
        escalations,
        chain: spec.chain,
        approvers,
        vars,
        plan: None,
        interest: dealrules_expr::Interest::All,
        why_not_slot: None,
    };
    policy.interest = policy.interest();
    let mut exprs: Vec<&mut Expr> = Vec::new();
    exprs.extend(policy.rules.iter_mut().filter_map(|r| r.when.as_mut()));
    exprs.extend(policy.escalations.iter_mut().map(|e| &mut e.when));
    exprs.extend(policy.approvers.iter_mut().flatten().filter_map(|a| match a {
        Approver::From(e, _) => Some(e),
        Approver::Fixed(_) => None,
    }));
    policy.plan = bind_all(&mut exprs);
    policy.why_not_slot = policy.plan.as_ref().and_then(|p| p.slot_of(&[WHY_NOT]));
    Some(policy)
}

impl ApprovalPolicy {
    /// What an admin sees of the compiled policy.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "levels": self.levels.iter().map(|l| &**l).collect::<Vec<_>>(),
            "hit": format!("{:?}", self.hit).to_lowercase(),
            "chain": format!("{:?}", self.chain).to_lowercase(),
            "rules": self.rules.iter().map(|r| serde_json::json!({ "id": &*r.id, "level": &*self.levels[r.level], "compiled": r.when.as_ref().is_none_or(|w| w.is_compiled()) })).collect::<Vec<_>>(),
            "escalations": self.escalations.iter().map(|e| serde_json::json!({ "id": &*e.id, "by": e.by, "compiled": e.when.is_compiled() })).collect::<Vec<_>>(),
            "reads_input_through_slots": self.plan.is_some(),
        })
    }

    /// Whether decisions read the input through slots.
    pub fn uses_slots(&self) -> bool {
        self.plan.is_some()
    }

    /// The input fields this policy can read.
    pub fn interest(&self) -> dealrules_expr::Interest {
        let mut acc = dealrules_expr::Interest::default();
        acc.add_path(&["now"]);
        acc.add_path(&[WHY_NOT]);
        // Expressions bound to slots no longer name their paths: the plan does.
        for path in self.plan.iter().flat_map(|p| p.paths()) {
            acc.add_path(&path.iter().map(|k| k.as_str()).collect::<Vec<_>>());
        }
        self.rules
            .iter()
            .filter_map(|r| r.when.as_ref())
            .for_each(|w| w.collect_interest(&mut acc));
        self.escalations.iter().for_each(|e| e.when.collect_interest(&mut acc));
        self.approvers.iter().flatten().for_each(|a| {
            if let Approver::From(e, _) = a {
                e.collect_interest(&mut acc)
            }
        });
        acc
    }

    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .map(|r| &*r.id)
            .chain(self.escalations.iter().map(|e| &*e.id))
    }

    /// Runs the rules, then the escalations, over `env`: the rule that
    /// decides, the level after escalations (capped at the top level) and
    /// the escalations that fired. `seen` gets every rule and escalation
    /// evaluated, in order, and whether it matched.
    fn run<'a>(
        &'a self,
        env: &Env<'_>,
        mut seen: impl FnMut(&'a str, bool),
    ) -> Result<(&'a Rule, usize, SmallVec<[&'a str; 2]>), DecideError> {
        let fail = |at: &str, error| DecideError::Eval {
            policy: self.name.to_string(),
            at: at.to_string(),
            error,
        };
        let mut decided: Option<&Rule> = None;
        for rule in &self.rules {
            let matched = match &rule.when {
                None => true,
                Some(w) => w.eval_bool(env).map_err(|e| fail(&format!("rule `{}`", rule.id), e))?,
            };
            seen(&rule.id, matched);
            if matched {
                match self.hit {
                    ApprovalHit::First => {
                        decided = Some(rule);
                        break;
                    }
                    ApprovalHit::Max => {
                        if decided.is_none_or(|d| rule.level > d.level) {
                            decided = Some(rule);
                        }
                    }
                }
            }
        }
        let rule = decided.ok_or_else(|| DecideError::Policy {
            policy: self.name.to_string(),
            message: "no rule matched this input; add a last rule without `when` as the default".into(),
        })?;
        let mut level = rule.level;
        let mut escalations = SmallVec::new();
        for e in &self.escalations {
            let matched = e
                .when
                .eval_bool(env)
                .map_err(|err| fail(&format!("escalation `{}`", e.id), err))?;
            seen(&e.id, matched);
            if matched {
                level += e.by;
                escalations.push(&*e.id);
            }
        }
        Ok((rule, level.min(self.levels.len() - 1), escalations))
    }

    pub fn decide<'a>(
        &'a self,
        version: &'a str,
        input: Input,
        now: &str,
    ) -> Result<ApprovalDecision<'a>, DecideError> {
        let mut locals = [self.vars.clone(), Value::Null];
        let mut facts = Facts::default();
        facts.load(self.plan.as_ref(), &self.interest, input)?;
        facts.set_now(self.plan.as_ref(), now, &mut locals)?;
        let env = facts.env(&locals);
        let mut trace: SmallVec<[TraceStep<'a>; 8]> = SmallVec::new();
        let (rule, level, escalations) = self.run(&env, |rule, matched| trace.push(TraceStep { rule, matched }))?;
        // Why-not work is asked for, and done once the decision is made.
        let explained = match facts.why_not(self.why_not_slot)? {
            false => None,
            true => Some(self.explained(&facts, &locals, &trace, level)),
        };
        let chain_levels: SmallVec<[usize; 4]> = match (level, self.chain) {
            (0, _) => SmallVec::new(),
            (l, ChainMode::Cumulative) => (1..=l).collect(),
            (l, ChainMode::Single) => smallvec::smallvec![l],
        };
        let approvers = chain_levels
            .iter()
            .filter_map(|&l| {
                let who = self.approvers[l].as_ref()?;
                Some(match who {
                    Approver::Fixed(s) => ApproverRef {
                        level: &self.levels[l],
                        approver: Some(std::borrow::Cow::Borrowed(&**s)),
                        from: s,
                    },
                    Approver::From(e, source) => ApproverRef {
                        level: &self.levels[l],
                        approver: e.eval(&env).ok().and_then(|v| match v {
                            Value::Str(s) => Some(std::borrow::Cow::Owned(s.to_string())),
                            Value::Num(n) => Some(std::borrow::Cow::Owned(n.to_string())),
                            _ => None,
                        }),
                        from: source,
                    },
                })
            })
            .collect();
        Ok(ApprovalDecision {
            plugins: Vec::new(),
            policy: &self.name,
            kind: "ApprovalPolicy",
            version,
            level: &self.levels[level],
            chain: chain_levels.iter().map(|&l| &*self.levels[l]).collect(),
            rule: &rule.id,
            escalations,
            auto_approved: level == 0,
            approvers,
            trace,
            explained,
        })
    }

    /// What `"why_not": true` adds; kept out of line, off the decision path.
    #[cold]
    #[inline(never)]
    fn explained<'a>(
        &'a self,
        facts: &Facts,
        locals: &[Value],
        trace: &[TraceStep<'a>],
        level: usize,
    ) -> Box<Explained<'a>> {
        Box::new(Explained {
            why_not: self.explain(&facts.env(locals), trace),
            to_reach: (0..level).map(|target| self.reach(facts, locals, target)).collect(),
        })
    }

    /// Why each trace step that did not match did not. The trace lists the
    /// rules evaluated, in order, then every escalation.
    fn explain(&self, env: &Env<'_>, trace: &[TraceStep<'_>]) -> Vec<Option<Vec<WhyNot>>> {
        let rules = trace.len() - self.escalations.len();
        let when = |i: usize| {
            if i < rules {
                self.rules[i].when.as_ref()
            } else {
                Some(&self.escalations[i - rules].when)
            }
        };
        trace
            .iter()
            .enumerate()
            .map(|(i, step)| {
                if step.matched {
                    None
                } else {
                    when(i).map(|w| w.why_not(env, true))
                }
            })
            .collect()
    }

    /// The first rule that would give level `target`, and the change that
    /// makes the decision give it: the change that makes the rule match,
    /// plus changes that stop what would still get in the way (an earlier
    /// rule under `hit: first`, a higher one under `hit: max`, an
    /// escalation). Every candidate change is decided again before it is
    /// given, so a change listed here does give the level.
    fn reach<'a>(&'a self, facts: &Facts, locals: &[Value], target: usize) -> Reach<'a> {
        let env = facts.env(locals);
        let mut why = None;
        for (ri, rule) in self.rules.iter().enumerate().filter(|(_, r)| r.level <= target) {
            let start = match &rule.when {
                None => Some(Vec::new()),
                Some(w) => match w.eval_bool(&env) {
                    Ok(true) => Some(Vec::new()),
                    _ => change_of(&w.why_not(&env, true)),
                },
            };
            let Some(mut change) = start else {
                why.get_or_insert_with(|| format!("no change dealrules can work out makes rule `{}` match", rule.id));
                continue;
            };
            // Each round adds at least one field to the change, or stops.
            let mut stuck = None;
            for _ in 0..=self.rules.len() + self.escalations.len() {
                let Some(changed) = facts.changed(self.plan.as_ref(), &change) else {
                    stuck = Some(format!(
                        "the change that makes rule `{}` match cannot be applied to this input",
                        rule.id
                    ));
                    break;
                };
                let env = changed.env(locals);
                let mut evaluated: SmallVec<[(usize, bool); 8]> = SmallVec::new();
                let mut n = 0;
                let (got, level) = match self.run(&env, |_, matched| {
                    evaluated.push((n, matched));
                    n += 1;
                }) {
                    Ok((got, level, _)) => (got, level),
                    Err(e) => {
                        stuck = Some(format!(
                            "with the change that makes rule `{}` match, the decision fails: {e}",
                            rule.id
                        ));
                        break;
                    }
                };
                if level == target && std::ptr::eq(got, rule) {
                    return Reach {
                        level: &self.levels[target],
                        rule: Some(&rule.id),
                        change,
                        cannot_say: None,
                    };
                }
                // What stands in the way, made not to match.
                let rules_seen = evaluated.len() - self.escalations.len();
                let blockers = evaluated.iter().filter(|(_, m)| *m).filter_map(|&(i, _)| {
                    if i < rules_seen {
                        let other = &self.rules[i];
                        let in_the_way = match self.hit {
                            ApprovalHit::First => i < ri,
                            ApprovalHit::Max => other.level > rule.level,
                        };
                        in_the_way.then(|| (format!("rule `{}` would still decide", other.id), other.when.as_ref()))
                    } else {
                        let e = &self.escalations[i - rules_seen];
                        (level > target).then(|| {
                            (
                                format!("escalation `{}` would still lift the level", e.id),
                                Some(&e.when),
                            )
                        })
                    }
                });
                // A field already in the change keeps its value; if that
                // leaves the blocker matching, the next round stops.
                let mut grew = false;
                for (what, when) in blockers {
                    let Some(more) = when.and_then(|w| change_of(&w.why_not(&env, false))) else {
                        stuck = Some(format!("{what}, and dealrules cannot say what change would stop it"));
                        grew = false;
                        break;
                    };
                    for (k, v) in more {
                        if !change.iter().any(|(c, _)| *c == k) {
                            change.push((k, v));
                            grew = true;
                        }
                    }
                }
                if !grew {
                    break;
                }
            }
            why.get_or_insert_with(|| {
                stuck.unwrap_or_else(|| {
                    format!(
                        "no change dealrules can work out makes rule `{}` give this level",
                        rule.id
                    )
                })
            });
        }
        Reach {
            level: &self.levels[target],
            rule: None,
            change: Vec::new(),
            cannot_say: Some(why.unwrap_or_else(|| "no rule gives this level".to_string())),
        }
    }
}
