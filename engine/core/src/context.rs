//! What every compiled policy shares: its vars, the names expressions see,
//! and how a decision's input becomes an evaluation environment.

use dealrules_expr::{CompileError, Env, Expr, ExprEngine, Interest, Map, Slot, SlotPlan, Slots, Value};
use dealrules_model::{Diagnostic, Document, Vars};

use crate::error::DecideError;

/// Locals every expression sees, in this order: `vars`, `now`.
pub const BASE_LOCALS: [&str; 2] = ["vars", "now"];

/// The input key that asks a table or approval decision to say why each
/// unmatched rule did not match (`"why_not": true`). Off by default: see
/// "Why not" in `docs/decisions.md`.
pub const WHY_NOT: &str = "why_not";

/// Compiles expressions of one document, gathering diagnostics.
pub struct DocCompiler<'a> {
    pub doc: &'a Document,
    pub engine: &'a ExprEngine,
    pub diags: &'a mut Vec<Diagnostic>,
}

impl DocCompiler<'_> {
    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        self.diags.push(self.doc.error_at(path, message));
    }

    /// Compiles the expression at `path`; on error records it with the
    /// position inside the expression and returns `None`.
    pub fn expr(&mut self, path: &str, source: &str, locals: &[&str]) -> Option<Expr> {
        match self.engine.compile(source, locals) {
            Ok(e) => Some(e),
            Err(CompileError { message, line, col }) => {
                self.diags
                    .push(self.doc.error_in(path, line, col, format!("bad expression: {message}")));
                None
            }
        }
    }
}

/// The locals a policy's expressions see, before any of its own.
pub fn base_locals(vars: &Vars) -> Vec<Value> {
    let vars = Value::map(
        vars.iter()
            .map(|(k, v)| (k.as_str().into(), Value::from_json(v)))
            .collect::<Map>(),
    );
    vec![vars, Value::Null]
}

fn as_object(input: &Value) -> Result<&Map, DecideError> {
    input
        .as_map()
        .ok_or_else(|| DecideError::BadInput(format!("the input must be a JSON object, got {}", input.type_name())))
}

/// The `now` local: the input's own `now` (which must be text, read or
/// not), or the caller's; null when no expression reads it.
fn now_local(own: Option<&Value>, now: &str, needed: bool) -> Result<Value, DecideError> {
    Ok(match own {
        Some(Value::Str(s)) if needed => Value::Str(s.clone()),
        Some(Value::Str(_)) => Value::Null,
        Some(other) => {
            return Err(DecideError::BadInput(format!(
                "`now` must be an ISO-8601 text, got {}",
                other.type_name()
            )));
        }
        None if needed => Value::str(now),
        None => Value::Null,
    })
}

/// The input's top-level facts, and `now` (the input's own, or the caller's).
pub fn facts_of<'v>(input: &'v Value, now: &str, locals: &mut [Value]) -> Result<&'v Map, DecideError> {
    let facts = as_object(input)?;
    locals[1] = now_local(facts.get("now"), now, true)?;
    Ok(facts)
}

/// A decision's input, parsed or as JSON text.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Parsed(&'a Value),
    Json(&'a str),
}

/// The facts of one decision: a parsed input, or the slots of a policy
/// whose expressions were bound to a [`SlotPlan`].
// Made once per decision on the stack and read in place; boxing the slots
// would add an allocation to every decision for no gain.
#[allow(clippy::large_enum_variant)]
pub enum Facts {
    Map(Value),
    Slots(Slots),
}

impl Default for Facts {
    /// No facts yet: empty slots, ready for [`Facts::load`].
    fn default() -> Self {
        Facts::Slots(Slots::new())
    }
}

impl Facts {
    /// Reads the input the way the policy wants it, in place: a decision
    /// makes its facts once on its stack and they never move (the slots
    /// are a few hundred bytes, moved twice per decision when returned).
    pub fn load(&mut self, plan: Option<&SlotPlan>, interest: &Interest, input: Input) -> Result<(), DecideError> {
        let bad_json =
            |e: dealrules_expr::json::JsonError| DecideError::BadInput(format!("input is not valid JSON: {e}"));
        match (plan, input) {
            (Some(plan), Input::Parsed(v)) => plan.fill_from_value(v, self.slots_mut()).map_err(DecideError::BadInput),
            (Some(plan), Input::Json(text)) => {
                // The slot walk checks the shape of the whole text as it
                // reads it (`SlotPlan::fill_from_json`).
                plan.fill_from_json(text, self.slots_mut()).map_err(|e| match e {
                    Ok(msg) => DecideError::BadInput(msg),
                    Err(e) => bad_json(e),
                })
            }
            (None, Input::Parsed(v)) => {
                *self = Facts::Map(v.clone());
                Ok(())
            }
            (None, Input::Json(text)) => {
                // This path skips what no policy reads without looking
                // inside, so the whole text's shape is checked first.
                dealrules_expr::input_shape::check(text).map_err(bad_json)?;
                *self = Facts::Map(dealrules_expr::json::parse_projected(text, interest).map_err(bad_json)?);
                Ok(())
            }
        }
    }

    fn slots_mut(&mut self) -> &mut Slots {
        if let Facts::Map(_) = self {
            *self = Facts::default();
        }
        match self {
            Facts::Slots(slots) => slots,
            Facts::Map(_) => unreachable!("made slots just above"),
        }
    }

    /// Sets `locals[1]` (`now`) from the input's own `now`, or the caller's.
    /// An input's `now` must be text whether or not an expression reads it.
    pub fn set_now(&self, plan: Option<&SlotPlan>, now: &str, locals: &mut [Value]) -> Result<(), DecideError> {
        let (own, needed) = match (self, plan) {
            (Facts::Map(v), _) => (as_object(v)?.get("now"), true),
            (Facts::Slots(slots), Some(plan)) => match plan.now_slot().map(|i| &slots[i]) {
                Some(Slot::Present(v)) => (Some(v), plan.reads_now()),
                _ => (None, plan.reads_now()),
            },
            (Facts::Slots(_), None) => (None, true),
        };
        locals[1] = now_local(own, now, needed)?;
        Ok(())
    }

    /// Whether the input asks for why-not explanations (`"why_not": true`);
    /// anything but true or false there is an input error. `slot` is where
    /// the policy's plan reads `why_not` (`SlotPlan::slot_of`).
    #[inline]
    pub fn why_not(&self, slot: Option<usize>) -> Result<bool, DecideError> {
        let given = match (self, slot) {
            (Facts::Map(v), _) => as_object(v)?.get(WHY_NOT),
            (Facts::Slots(slots), Some(i)) => match &slots[i] {
                Slot::Present(v) => Some(v),
                _ => None,
            },
            (Facts::Slots(_), None) => None,
        };
        match given {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(DecideError::BadInput(format!(
                "`{WHY_NOT}` must be true or false, got {}",
                other.type_name()
            ))),
        }
    }

    /// The same facts with `change` applied (path -> new value), for asking
    /// what a changed input would decide; `None` when a path cannot be set
    /// (it runs through something that is not a mapping).
    pub fn changed(&self, plan: Option<&SlotPlan>, change: &[(std::sync::Arc<str>, Value)]) -> Option<Facts> {
        let mut out = match self {
            Facts::Map(v) => Facts::Map(v.clone()),
            Facts::Slots(s) => Facts::Slots(s.clone()),
        };
        for (path, v) in change {
            let keys: Vec<&str> = path.split('.').collect();
            match &mut out {
                Facts::Map(root) => *root = with_path(root, &keys, v.clone())?,
                Facts::Slots(slots) => {
                    let plan = plan?;
                    let cut = (1..=keys.len()).rev().find(|&n| plan.slot_of(&keys[..n]).is_some())?;
                    let slot = &mut slots[plan.slot_of(&keys[..cut])?];
                    let base = match slot {
                        Slot::Present(v) => v.clone(),
                        Slot::Missing => Value::Null,
                        Slot::Blocked(_) => return None,
                    };
                    *slot = Slot::Present(with_path(&base, &keys[cut..], v.clone())?);
                }
            }
        }
        Some(out)
    }

    pub fn env<'a>(&'a self, locals: &'a [Value]) -> Env<'a> {
        match self {
            Facts::Map(Value::Map(m)) => Env::new(m, locals),
            Facts::Map(_) => Env::with_slots(locals, &[]),
            Facts::Slots(s) => Env::with_slots(locals, s),
        }
    }
}

/// `value` with the field at `keys` set to `new`; missing mappings on the
/// way are made. `None` when a value on the way is not a mapping.
fn with_path(value: &Value, keys: &[&str], new: Value) -> Option<Value> {
    let Some((first, rest)) = keys.split_first() else {
        return Some(new);
    };
    let mut map = match value {
        Value::Map(m) => (**m).clone(),
        Value::Null => Map::new(),
        _ => return None,
    };
    let child = map.get(first).cloned().unwrap_or(Value::Null);
    map.insert(*first, with_path(&child, rest, new)?);
    Some(Value::map(map))
}

/// Binds a policy's expressions to slots when all of them are compiled
/// ahead of time; returns the plan used. The plan also reads the input's
/// own `now` and `why_not`.
pub fn bind_all(exprs: &mut [&mut Expr]) -> Option<SlotPlan> {
    let plan = SlotPlan::build(&exprs.iter().map(|e| &**e).collect::<Vec<_>>(), &[&["now"], &[WHY_NOT]])?;
    for e in exprs.iter_mut() {
        **e = plan.bind(e);
    }
    Some(plan)
}
