//! Calculation: named steps evaluated in order, each an expression over the
//! facts and the steps before it (section 3, "Computed outputs and the
//! Calculation kind"). The result carries every step's value, the trace a
//! person checks by hand; numbers are decimal strings, exactly as computed.

use std::sync::Arc;

use dealrules_expr::{Expr, Interest, SlotPlan, Value};
use dealrules_model::{CalculationSpec, Document, suggest};
use serde::ser::{Serialize, SerializeMap, Serializer};
use smallvec::SmallVec;

use crate::context::{BASE_LOCALS, DocCompiler, Facts, Input, base_locals, bind_all};
use crate::error::DecideError;

#[derive(Debug)]
pub struct Calculation {
    pub name: Arc<str>,
    steps: Vec<(Arc<str>, Expr)>,
    /// Indices of the steps shown under `outputs`.
    outputs: Vec<usize>,
    vars: Value,
    plan: Option<SlotPlan>,
    interest: Interest,
}

/// The outcome of a calculation: every step's value, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct CalculationDecision<'a> {
    pub policy: &'a str,
    pub version: &'a str,
    pub steps: Vec<(&'a str, Value)>,
    /// Indices into `steps` of what the result shows under `outputs`.
    outputs: &'a [usize],
}

impl CalculationDecision<'_> {
    /// The value of step `name`.
    pub fn step(&self, name: &str) -> Option<&Value> {
        self.steps.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The outputs the policy shows, in its order.
    pub fn outputs(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.outputs.iter().map(|&i| (self.steps[i].0, &self.steps[i].1))
    }
}

/// A value with its numbers as decimal text, every digit kept (`"2864.00"`).
struct Exact<'a>(&'a Value);

impl Serialize for Exact<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Num(d) => s.collect_str(d),
            Value::List(items) => s.collect_seq(items.iter().map(Exact)),
            Value::Map(m) => s.collect_map(m.iter().map(|(k, v)| (k.as_str(), Exact(v)))),
            other => other.serialize(s),
        }
    }
}

impl Serialize for CalculationDecision<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("policy", self.policy)?;
        m.serialize_entry("kind", "Calculation")?;
        m.serialize_entry("version", self.version)?;
        let outputs: Vec<(&str, Exact)> = self.outputs().map(|(k, v)| (k, Exact(v))).collect();
        m.serialize_entry("outputs", &Pairs(&outputs))?;
        let steps: Vec<(&str, Exact)> = self.steps.iter().map(|(k, v)| (*k, Exact(v))).collect();
        m.serialize_entry("steps", &Pairs(&steps))?;
        m.end()
    }
}

struct Pairs<'a, 'b>(&'b [(&'a str, Exact<'a>)]);

impl Serialize for Pairs<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (*k, v)))
    }
}

/// A step name is a name an expression can read: a letter or `_`, then
/// letters, digits or `_`.
fn valid_step_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn compile(doc: &Document, spec: &CalculationSpec, cx: &mut DocCompiler) -> Option<Calculation> {
    let before = cx.diags.len();
    if spec.steps.is_empty() {
        cx.error("spec.steps", "a calculation needs at least one step");
    }
    let names: Vec<&str> = spec.steps.keys().map(String::as_str).collect();
    let mut steps = Vec::with_capacity(names.len());
    for (i, (name, src)) in spec.steps.iter().enumerate() {
        let path = format!("spec.steps.{name}");
        if BASE_LOCALS.contains(&name.as_str()) {
            cx.error(
                &path,
                format!("`{name}` is a reserved name; call the step something else"),
            );
            continue;
        }
        if !valid_step_name(name) {
            cx.error(
                &path,
                format!("step name `{name}` must be a letter or `_` followed by letters, digits or `_`"),
            );
            continue;
        }
        // A step sees the steps above it; reading one below is an error,
        // not a silent read of an input field of that name.
        let locals: Vec<&str> = BASE_LOCALS.iter().copied().chain(names[..i].iter().copied()).collect();
        let Some(e) = cx.expr(&path, src, &locals) else {
            continue;
        };
        let mut reads = Interest::default();
        e.collect_interest(&mut reads);
        if let Some(later) = names[i + 1..].iter().find(|n| reads.field(n).is_some()) {
            cx.error(
                &path,
                format!("step `{name}` reads `{later}`, which comes after it; steps run in the order written"),
            );
        }
        steps.push((Arc::<str>::from(name.as_str()), e));
    }
    let outputs = match &spec.outputs {
        None => (0..spec.steps.len()).collect(),
        Some(list) => {
            let mut out = Vec::with_capacity(list.len());
            for (i, o) in list.iter().enumerate() {
                match spec.steps.get_index_of(o) {
                    Some(at) if !out.contains(&at) => out.push(at),
                    Some(_) => cx.error(&format!("spec.outputs[{i}]"), format!("output `{o}` is listed twice")),
                    None => cx.error(
                        &format!("spec.outputs[{i}]"),
                        format!(
                            "`{o}` is not a step of this calculation{}",
                            suggest(o, names.iter().copied())
                        ),
                    ),
                }
            }
            out
        }
    };
    if cx.diags.len() != before {
        return None;
    }
    let mut calc = Calculation {
        name: doc.metadata.name.as_str().into(),
        steps,
        outputs,
        vars: base_locals(&spec.vars).swap_remove(0),
        plan: None,
        interest: Interest::All,
    };
    let mut interest = Interest::default();
    interest.add_path(&["now"]);
    calc.steps.iter().for_each(|(_, e)| e.collect_interest(&mut interest));
    calc.interest = interest;
    let mut exprs: Vec<&mut Expr> = calc.steps.iter_mut().map(|(_, e)| e).collect();
    calc.plan = bind_all(&mut exprs);
    Some(calc)
}

impl Calculation {
    pub fn step_names(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().map(|(n, _)| &**n)
    }

    /// What an admin sees of the compiled calculation.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "steps": self.steps.iter().map(|(n, _)| &**n).collect::<Vec<_>>(),
            "outputs": self.outputs.iter().map(|&i| &*self.steps[i].0).collect::<Vec<_>>(),
            "steps_compiled_ahead_of_time": self.steps.iter().filter(|(_, e)| e.is_compiled()).count(),
            "reads_input_through_slots": self.plan.is_some(),
        })
    }

    pub fn decide<'a>(
        &'a self,
        version: &'a str,
        input: Input,
        now: &str,
    ) -> Result<CalculationDecision<'a>, DecideError> {
        // On the stack for calculations of up to eight steps.
        let mut locals: SmallVec<[Value; 10]> = SmallVec::with_capacity(BASE_LOCALS.len() + self.steps.len());
        locals.push(self.vars.clone());
        locals.push(Value::Null);
        let mut facts = Facts::default();
        facts.load(self.plan.as_ref(), &self.interest, input)?;
        facts.set_now(self.plan.as_ref(), now, &mut locals)?;
        for (name, e) in &self.steps {
            let v = e.eval(&facts.env(&locals)).map_err(|error| DecideError::Eval {
                policy: self.name.to_string(),
                at: format!("step `{name}`"),
                error,
            })?;
            locals.push(v);
        }
        let values = locals.drain(BASE_LOCALS.len()..);
        Ok(CalculationDecision {
            policy: &self.name,
            version,
            steps: self.steps.iter().map(|(n, _)| &**n).zip(values).collect(),
            outputs: &self.outputs,
        })
    }
}
