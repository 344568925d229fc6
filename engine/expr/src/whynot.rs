//! Why not: for a condition that did not hold, the parts of it that failed,
//! the values they read, and the nearest value that would pass.
//!
//! ```
//! use dealrules_expr::{ExprEngine, Value, Env};
//! let engine = ExprEngine::default();
//! let cond = engine.compile("deal.discount_pct <= 10 && deal.region == \"NA\"", &[]).unwrap();
//! let facts = Value::from_json_str(r#"{"deal": {"discount_pct": 15, "region": "NA"}}"#).unwrap();
//! let env = Env::new(facts.as_map().unwrap(), &[]);
//! let why = cond.why_not(&env, true);
//! assert_eq!(serde_json::to_value(&why).unwrap(), serde_json::json!([{
//!     "expr": "deal.discount_pct <= 10",
//!     "values": {"deal.discount_pct": "15"},
//!     "would_pass": {"deal.discount_pct": "10"}
//! }]));
//! ```
//!
//! Only what can be worked out exactly is answered: a field compared with a
//! value that does not depend on the input (a constant, `vars`, `now`, a
//! helper over those), a field tested for membership in a fixed list, a
//! boolean field. Anything else (a condition run by Rhai, a plugin's answer,
//! arithmetic over the input, a helper such as `has`) is "cannot say", with
//! the reason, never a guess.

use std::fmt::Write as _;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::ir::{ArithOp, Builtin, CmpOp, Env, Node};
use crate::value::Value;

/// One failed part of a condition.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WhyNot {
    /// The part, as dealrules reads it (`deal.discount_pct <= 10`).
    pub expr: String,
    /// Each field the part read and the value it had, in reading order.
    pub values: Vec<(Arc<str>, Value)>,
    /// The nearest values that make this part pass (empty when unknown).
    pub would_pass: Vec<(Arc<str>, Value)>,
    /// For a part that passes when any one of its alternatives does: what
    /// each alternative needs.
    pub any_of: Vec<Vec<WhyNot>>,
    /// Set when dealrules cannot work out what would pass; says why.
    pub cannot_say: Option<String>,
}

/// A value as a page shows it: numbers as exact decimal text (`"10.50"`),
/// everything else as JSON.
struct Shown<'a>(&'a Value);

impl Serialize for Shown<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Num(d) => s.serialize_str(&d.to_string()),
            other => other.serialize(s),
        }
    }
}

/// Path -> value pairs as a JSON object.
pub struct PathValues<'a>(pub &'a [(Arc<str>, Value)]);

impl Serialize for PathValues<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(&**k, &Shown(v))?;
        }
        m.end()
    }
}

impl Serialize for WhyNot {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("expr", &self.expr)?;
        m.serialize_entry("values", &PathValues(&self.values))?;
        if !self.would_pass.is_empty() {
            m.serialize_entry("would_pass", &PathValues(&self.would_pass))?;
        }
        if !self.any_of.is_empty() {
            m.serialize_entry("any_of", &self.any_of)?;
        }
        if let Some(reason) = &self.cannot_say {
            m.serialize_entry("cannot_say", &true)?;
            m.serialize_entry("reason", reason)?;
        }
        m.end()
    }
}

impl WhyNot {
    /// A part dealrules cannot invert, with the reason.
    pub fn cannot(expr: impl Into<String>, values: Vec<(Arc<str>, Value)>, reason: impl Into<String>) -> WhyNot {
        WhyNot {
            expr: expr.into(),
            values,
            cannot_say: Some(reason.into()),
            ..WhyNot::default()
        }
    }
}

/// The single change that makes every part pass: the `would_pass` values of
/// all of them, and for alternatives the first that can be met. `None` when
/// some part cannot say, or two parts want different values of one field.
pub fn change_of(parts: &[WhyNot]) -> Option<Vec<(Arc<str>, Value)>> {
    let mut out: Vec<(Arc<str>, Value)> = Vec::new();
    for p in parts {
        if p.cannot_say.is_some() {
            return None;
        }
        let wanted = if p.any_of.is_empty() {
            p.would_pass.clone()
        } else {
            p.any_of.iter().find_map(|g| change_of(g).filter(|c| merges(&out, c)))?
        };
        if wanted.is_empty() || !merges(&out, &wanted) {
            return None;
        }
        for (k, v) in wanted {
            if !out.iter().any(|(o, _)| *o == k) {
                out.push((k, v));
            }
        }
    }
    Some(out)
}

fn merges(have: &[(Arc<str>, Value)], more: &[(Arc<str>, Value)]) -> bool {
    more.iter().all(|(k, v)| have.iter().all(|(hk, hv)| hk != k || hv == v))
}

/// Where a field's value comes from, for deciding whether a deal can change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// An input fact or a table input: the caller can change it.
    Input,
    /// A plugin's answer (`plugins.<as>...`).
    Plugin,
    /// The policy's `vars` or the evaluation time `now`.
    Fixed,
}

fn origin_of_root(name: &str) -> Origin {
    match name {
        "plugins" => Origin::Plugin,
        "vars" | "now" => Origin::Fixed,
        _ => Origin::Input,
    }
}

/// The field a node reads, when it is a plain path: its text and origin.
/// `get(m, "k", default)` over a path reads the path `m.k`.
fn path_of(n: &Node) -> Option<(Arc<str>, Origin)> {
    match n {
        Node::Fact(name) => Some((Arc::from(name.as_str()), origin_of_root(name))),
        Node::Local(_, name) => Some((Arc::from(name.as_str()), origin_of_root(name))),
        Node::Slot(_, p) => Some((p.clone(), origin_of_root(p.split('.').next().unwrap_or(p)))),
        Node::Get(base, _, p) => path_of(base).map(|(_, o)| (p.clone(), o)),
        Node::Call(Builtin::Get, args) => match (args.first().and_then(path_of), args.get(1)) {
            (Some((base, o)), Some(Node::Const(Value::Str(k)))) => Some((format!("{base}.{k}").into(), o)),
            _ => None,
        },
        _ => None,
    }
}

/// Every field a node reads (outermost paths only), in reading order.
fn paths_in<'n>(n: &'n Node, out: &mut Vec<(&'n Node, Arc<str>, Origin)>) {
    if let Some((p, o)) = path_of(n) {
        if !out.iter().any(|(_, q, _)| *q == p) {
            out.push((n, p, o));
        }
        return;
    }
    n.children().for_each(|c| paths_in(c, out));
}

fn values_of(n: &Node, env: &Env<'_>) -> Vec<(Arc<str>, Value)> {
    let mut paths = Vec::new();
    paths_in(n, &mut paths);
    paths
        .into_iter()
        .filter_map(|(node, p, _)| node.eval(env).ok().map(|v| (p, v)))
        .collect()
}

fn reads(n: &Node, origin: Origin) -> Option<Arc<str>> {
    let mut paths = Vec::new();
    paths_in(n, &mut paths);
    paths.into_iter().find(|(_, _, o)| *o == origin).map(|(_, p, _)| p)
}

/// What would make `node` give `want`, given that it does not. `shown` is
/// the text a leaf is reported as (a `!` around it stays visible).
pub fn explain(node: &Node, env: &Env<'_>, want: bool) -> Vec<WhyNot> {
    let mut out = Vec::new();
    explain_into(node, env, want, node, &mut out);
    out
}

fn explain_into(n: &Node, env: &Env<'_>, want: bool, shown: &Node, out: &mut Vec<WhyNot>) {
    match n {
        Node::Not(x) => explain_into(x, env, !want, shown, out),
        // Every part must change: `a && b` made true, `a || b` made false.
        Node::And(items) | Node::Or(items) if want == matches!(n, Node::And(_)) => {
            for i in items {
                match i.eval_bool(env) {
                    Ok(v) if v == want => {}
                    Ok(_) => explain_into(i, env, want, i, out),
                    Err(e) => out.push(WhyNot::cannot(
                        text(i),
                        values_of(i, env),
                        format!("this part could not be checked: {e}"),
                    )),
                }
            }
        }
        // Any one part suffices: `a || b` made true, `a && b` made false.
        Node::And(items) | Node::Or(items) => {
            let groups: Vec<Vec<WhyNot>> = items
                .iter()
                .map(|i| match i.eval_bool(env) {
                    Ok(_) => explain(i, env, want),
                    Err(e) => vec![WhyNot::cannot(
                        text(i),
                        values_of(i, env),
                        format!("this part could not be checked: {e}"),
                    )],
                })
                .collect();
            match <[_; 1]>::try_from(groups) {
                Ok([only]) => out.extend(only),
                Err(groups) => out.push(WhyNot {
                    expr: text(shown),
                    values: values_of(n, env),
                    any_of: groups,
                    ..WhyNot::default()
                }),
            }
        }
        Node::Cmp(op, a, b) => out.push(comparison(if want { *op } else { negated(*op) }, a, b, shown, env)),
        Node::In(item, container) => out.push(membership(item, container, want, shown, env)),
        Node::Const(v) => out.push(WhyNot::cannot(
            text(shown),
            Vec::new(),
            format!("the condition is always {v}"),
        )),
        _ => match path_of(n) {
            Some((p, o)) => out.push(leaf(shown, env, p, o, Value::Bool(want))),
            None => out.push(not_invertible(shown, env)),
        },
    }
}

fn not_invertible(shown: &Node, env: &Env<'_>) -> WhyNot {
    let reason = match reads(shown, Origin::Plugin) {
        Some(p) => plugin_reason(&p),
        None => "dealrules cannot work out which values would make this part pass".to_string(),
    };
    WhyNot::cannot(text(shown), values_of(shown, env), reason)
}

fn plugin_reason(path: &str) -> String {
    format!("`{path}` is a plugin's answer; dealrules cannot say which input would change it")
}

/// A field that must become `value` for the part to pass.
fn leaf(shown: &Node, env: &Env<'_>, path: Arc<str>, origin: Origin, value: Value) -> WhyNot {
    let values = values_of(shown, env);
    match origin {
        Origin::Input => WhyNot {
            expr: text(shown),
            values,
            would_pass: vec![(path, value)],
            ..WhyNot::default()
        },
        Origin::Plugin => WhyNot::cannot(text(shown), values, plugin_reason(&path)),
        Origin::Fixed => WhyNot::cannot(
            text(shown),
            values,
            "this part reads no input field, only the policy's vars and now",
        ),
    }
}

fn negated(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Eq => CmpOp::Ne,
        CmpOp::Ne => CmpOp::Eq,
        CmpOp::Lt => CmpOp::Ge,
        CmpOp::Le => CmpOp::Gt,
        CmpOp::Gt => CmpOp::Le,
        CmpOp::Ge => CmpOp::Lt,
    }
}

/// `a OP b` must hold: the field on one side against the value of the other.
fn comparison(op: CmpOp, a: &Node, b: &Node, shown: &Node, env: &Env<'_>) -> WhyNot {
    let changeable = |n: &Node| path_of(n).filter(|(_, o)| *o == Origin::Input);
    let fixed = |n: &Node| reads(n, Origin::Input).is_none() && reads(n, Origin::Plugin).is_none();
    // The field to change, the comparison seen from it, and the other side.
    let target = match (changeable(a), changeable(b)) {
        (Some(pa), _) if fixed(b) || changeable(b).is_some() => Some((pa, a, op, b)),
        (None, Some(pb)) if fixed(a) => Some((pb, b, op.flipped(), a)),
        _ => None,
    };
    let Some(((path, _), field, op, other)) = target else {
        let reason = match reads(shown, Origin::Plugin) {
            Some(p) => plugin_reason(&p),
            None if reads(shown, Origin::Input).is_none() => "this part reads no input field, only the policy's vars and now".to_string(),
            None => "the value compared is computed from the input; dealrules does not work backwards through arithmetic or functions".to_string(),
        };
        return WhyNot::cannot(text(shown), values_of(shown, env), reason);
    };
    let values = values_of(shown, env);
    let bound = match other.eval(env) {
        Ok(v) => v,
        Err(e) => return WhyNot::cannot(text(shown), values, format!("`{}` could not be read: {e}", text(other))),
    };
    let current = field.eval(env).ok();
    match nearest(op, current.as_ref(), &bound) {
        Ok(v) => WhyNot {
            expr: text(shown),
            values,
            would_pass: vec![(path, v)],
            ..WhyNot::default()
        },
        Err(reason) => WhyNot::cannot(text(shown), values, reason),
    }
}

fn numeric(v: &Value) -> Option<Decimal> {
    match v {
        Value::Num(d) => Some(*d),
        Value::Str(s) => crate::value::parse_decimal(s.trim()),
        _ => None,
    }
}

/// An ISO date (`2026-03-31`), which has a next and a previous day.
fn is_date(s: &str) -> bool {
    s.len() == 10 && crate::funcs::parse_date(s).is_ok()
}

/// The value nearest to `current` for which `value OP bound` holds.
///
/// Numbers: `<=`, `>=` and `==` give the bound itself; `<` and `>` give
/// the bound one step away, the step being one unit in the last decimal
/// place of the bound or of the current value, whichever has more places
/// (`> 10` read as `9.99` gives `10.01`; read as `9` gives `11`). Dates
/// step by a day. Other text can only be named for `==`, `<=`, `>=`.
fn nearest(op: CmpOp, current: Option<&Value>, bound: &Value) -> Result<Value, String> {
    let shown = |v: &Value| match v {
        Value::Str(s) => format!("\"{s}\""),
        other => other.to_string(),
    };
    if op == CmpOp::Ne {
        return Err(format!(
            "any value other than {} passes; there is no single nearest one",
            shown(bound)
        ));
    }
    if let Some(c) = numeric(bound).filter(|_| current.is_none_or(|v| numeric(v).is_some())) {
        let scale = current
            .and_then(numeric)
            .map_or(0, |x| x.scale())
            .max(c.scale())
            .min(28);
        let step = Decimal::new(1, scale);
        let v = match op {
            CmpOp::Lt => c.checked_sub(step),
            CmpOp::Gt => c.checked_add(step),
            _ => Some(c),
        };
        return v
            .map(Value::Num)
            .ok_or_else(|| format!("no number is {} {c} within the decimal range", op_text(op)));
    }
    match (op, bound) {
        (CmpOp::Eq, v) => Ok(v.clone()),
        (CmpOp::Le | CmpOp::Ge, Value::Str(_)) => Ok(bound.clone()),
        (CmpOp::Lt | CmpOp::Gt, Value::Str(s)) if is_date(s) => {
            let days = Decimal::from(if op == CmpOp::Lt { -1 } else { 1 });
            crate::funcs::add_days(s, days)
                .map(|d| Value::str(&d))
                .map_err(|e| e.to_string())
        }
        (CmpOp::Lt | CmpOp::Gt, Value::Str(s)) => Err(format!("text has no nearest value {} \"{s}\"", op_text(op))),
        (_, other) => Err(format!("{} cannot be ordered", other.type_name())),
    }
}

fn op_text(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "==",
        CmpOp::Ne => "!=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
    }
}

/// `item in container` must become `want`.
fn membership(item: &Node, container: &Node, want: bool, shown: &Node, env: &Env<'_>) -> WhyNot {
    let values = values_of(shown, env);
    let Some((path, origin)) = path_of(item) else {
        return not_invertible(shown, env);
    };
    if reads(container, Origin::Input).is_some() || reads(container, Origin::Plugin).is_some() {
        return not_invertible(shown, env);
    }
    match (origin, container.eval(env)) {
        (Origin::Plugin, _) => WhyNot::cannot(text(shown), values, plugin_reason(&path)),
        (Origin::Fixed, _) => WhyNot::cannot(
            text(shown),
            values,
            "this part reads no input field, only the policy's vars and now",
        ),
        (Origin::Input, Ok(Value::List(items))) if want => match items.first() {
            Some(first) => WhyNot {
                expr: text(shown),
                values,
                would_pass: vec![(path, first.clone())],
                ..WhyNot::default()
            },
            None => WhyNot::cannot(text(shown), values, "the list is empty; no value is in it"),
        },
        (Origin::Input, Ok(_)) if want => {
            WhyNot::cannot(text(shown), values, "dealrules names passing values only for a list")
        }
        (Origin::Input, Ok(_)) => WhyNot::cannot(
            text(shown),
            values,
            "any value not in the list passes; there is no single nearest one",
        ),
        (Origin::Input, Err(e)) => WhyNot::cannot(
            text(shown),
            values,
            format!("`{}` could not be read: {e}", text(container)),
        ),
    }
}

// ------------------------------------------------------------- showing parts

/// An expression as text, as dealrules reads it (`deal.amount > 0`).
pub fn text(n: &Node) -> String {
    let mut s = String::new();
    write_node(n, &mut s);
    s
}

fn precedence(n: &Node) -> u8 {
    match n {
        Node::If(..) => 0,
        Node::Or(_) => 1,
        Node::And(_) => 2,
        Node::Coalesce(_) => 3,
        Node::Cmp(..) | Node::In(..) => 4,
        Node::Arith(ArithOp::Add | ArithOp::Sub, ..) => 5,
        Node::Arith(..) => 6,
        Node::Not(_) | Node::Neg(_) => 7,
        _ => 8,
    }
}

/// Writes `child` in a context of precedence `ctx`, in parentheses when it
/// binds less tightly (and, for readability, an `&&` inside an `||`).
fn write_child(child: &Node, ctx: u8, s: &mut String) {
    let p = precedence(child);
    if p < ctx || (ctx == 1 && p == 2) {
        s.push('(');
        write_node(child, s);
        s.push(')');
    } else {
        write_node(child, s);
    }
}

fn write_joined(items: &[Node], sep: &str, ctx: u8, s: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            s.push_str(sep);
        }
        write_child(item, ctx, s);
    }
}

fn write_const(v: &Value, s: &mut String) {
    match v {
        Value::Null => s.push_str("()"),
        Value::Str(t) => s.push_str(&serde_json::to_string(t.as_str()).unwrap_or_default()),
        Value::List(items) => {
            s.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                write_const(item, s);
            }
            s.push(']');
        }
        Value::Num(d) => {
            let _ = write!(s, "{d}");
        }
        other => {
            let _ = write!(s, "{other}");
        }
    }
}

fn write_node(n: &Node, s: &mut String) {
    let p = precedence(n);
    match n {
        Node::Const(v) => write_const(v, s),
        Node::Local(_, name) | Node::Fact(name) => s.push_str(name),
        Node::Slot(_, path) => s.push_str(path),
        Node::Get(base, key, path) => match path_of(base) {
            Some(_) => s.push_str(path),
            None => {
                write_child(base, 8, s);
                s.push('.');
                s.push_str(key);
            }
        },
        Node::Index(base, idx) => {
            write_child(base, 8, s);
            s.push('[');
            write_node(idx, s);
            s.push(']');
        }
        Node::Not(x) => {
            s.push('!');
            write_child(x, 8, s);
        }
        Node::Neg(x) => {
            s.push('-');
            write_child(x, 8, s);
        }
        Node::And(items) => write_joined(items, " && ", p, s),
        Node::Or(items) => write_joined(items, " || ", p, s),
        Node::Coalesce(items) => write_joined(items, " ?? ", p, s),
        Node::Cmp(op, a, b) => {
            write_child(a, p + 1, s);
            let _ = write!(s, " {} ", op_text(*op));
            write_child(b, p + 1, s);
        }
        Node::Arith(op, a, b) => {
            write_child(a, p, s);
            s.push_str(match op {
                ArithOp::Add => " + ",
                ArithOp::Sub => " - ",
                ArithOp::Mul => " * ",
                ArithOp::Div => " / ",
                ArithOp::Rem => " % ",
            });
            // `a - (b - c)`: the right side of a same-precedence operator keeps its parentheses.
            write_child(b, p + 1, s);
        }
        Node::In(item, container) => {
            write_child(item, p + 1, s);
            s.push_str(" in ");
            write_child(container, p + 1, s);
        }
        Node::Array(items) => {
            s.push('[');
            write_joined(items, ", ", 0, s);
            s.push(']');
        }
        Node::If(c, a, b) => {
            s.push_str("if ");
            write_node(c, s);
            s.push_str(" { ");
            write_node(a, s);
            s.push_str(" } else ");
            if matches!(**b, Node::If(..)) {
                write_node(b, s);
            } else {
                s.push_str("{ ");
                write_node(b, s);
                s.push_str(" }");
            }
        }
        Node::Call(f, args) => {
            s.push_str(f.name());
            s.push('(');
            write_joined(args, ", ", 0, s);
            s.push(')');
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value as Json, json};

    use crate::{Env, ExprEngine, SlotPlan, Slots, Value};

    /// The why-not of `src` over `input`, both ways the input can arrive:
    /// as facts and through slots; they must agree.
    fn why(src: &str, input: &str) -> Json {
        let engine = ExprEngine::default();
        let e = engine.compile(src, &["vars", "now"]).unwrap();
        let locals = [
            Value::from_json_str(r#"{"cap": 25}"#).unwrap(),
            Value::str("2026-11-23T00:00:00Z"),
        ];
        let facts = Value::from_json_str(input).unwrap();
        let env = Env::new(facts.as_map().unwrap(), &locals);
        assert_eq!(e.eval_bool(&env), Ok(false), "{src} must be false over {input}");
        let by_facts = serde_json::to_value(e.why_not(&env, true)).unwrap();
        if let Some(plan) = SlotPlan::build(&[&e], &[]) {
            let bound = plan.bind(&e);
            let mut slots = Slots::new();
            plan.fill_from_value(&facts, &mut slots).unwrap();
            let by_slots = serde_json::to_value(bound.why_not(&Env::with_slots(&locals, &slots), true)).unwrap();
            assert_eq!(by_facts, by_slots, "{src}");
        }
        by_facts
    }

    fn would_pass(src: &str, input: &str) -> Json {
        let w = why(src, input);
        assert_eq!(w.as_array().map(Vec::len), Some(1), "{src}: {w}");
        w[0].get("would_pass")
            .cloned()
            .unwrap_or_else(|| panic!("{src} over {input}: no would_pass in {w}"))
    }

    #[test]
    fn nearest_passing_numbers() {
        let d = r#"{"deal": {"x": 15, "y": 9.99, "z": 22.5, "t": "15"}}"#;
        let cases = [
            ("deal.x <= 10", json!({"deal.x": "10"})),
            ("deal.x < 10", json!({"deal.x": "9"})),
            ("deal.z < 10", json!({"deal.z": "9.9"})),
            ("deal.y > 10", json!({"deal.y": "10.01"})),
            ("deal.y >= 10", json!({"deal.y": "10"})),
            ("deal.x > 20.5", json!({"deal.x": "20.6"})),
            ("deal.x == 12", json!({"deal.x": "12"})),
            ("10 >= deal.x", json!({"deal.x": "10"})),
            ("10 > deal.x", json!({"deal.x": "9"})),
            ("deal.t <= 10", json!({"deal.t": "10"})),
            ("deal.x <= vars.cap - 15", json!({"deal.x": "10"})),
            ("!(deal.x > 10)", json!({"deal.x": "10"})),
            ("!(deal.x >= 10)", json!({"deal.x": "9"})),
        ];
        for (src, want) in cases {
            assert_eq!(would_pass(src, d), want, "{src}");
        }
    }

    #[test]
    fn nearest_passing_text_dates_and_flags() {
        let d = r#"{"deal": {"region": "NA", "close": "2026-01-01", "new_logo": false, "strategic": true}}"#;
        let cases = [
            ("deal.region == \"APAC\"", json!({"deal.region": "APAC"})),
            ("deal.region in [\"EMEA\", \"APAC\"]", json!({"deal.region": "EMEA"})),
            ("deal.close > date(now)", json!({"deal.close": "2026-11-24"})),
            ("deal.close >= \"2026-02-01\"", json!({"deal.close": "2026-02-01"})),
            ("deal.new_logo", json!({"deal.new_logo": true})),
            ("!deal.strategic", json!({"deal.strategic": false})),
            (
                "get(deal, \"paper\", \"ours\") == \"theirs\"",
                json!({"deal.paper": "theirs"}),
            ),
        ];
        for (src, want) in cases {
            assert_eq!(would_pass(src, d), want, "{src}");
        }
    }

    #[test]
    fn a_conditional_is_shown_whole_and_a_field_against_a_rounded_bound_still_has_a_nearest_value() {
        let w = why(
            "deal.amount > (if deal.new_logo { 1000 } else { 5000 }) && deal.pct <= round(vars.cap / 3, 1)",
            r#"{"deal": {"amount": 10, "new_logo": true, "pct": 9}}"#,
        );
        assert_eq!(
            w,
            json!([
                {"expr": "deal.amount > (if deal.new_logo { 1000 } else { 5000 })",
                 "values": {"deal.amount": "10", "deal.new_logo": true}, "cannot_say": true,
                 "reason": "the value compared is computed from the input; dealrules does not work backwards through arithmetic or functions"},
                {"expr": "deal.pct <= round(vars.cap / 3, 1)", "values": {"deal.pct": "9", "vars.cap": "25"},
                 "would_pass": {"deal.pct": "8.3"}},
            ])
        );
    }

    #[test]
    fn every_failed_conjunct_is_listed_with_the_values_it_read() {
        let w = why(
            "deal.pct <= 10 && deal.region == \"NA\" && deal.amount <= 50000",
            r#"{"deal": {"pct": 15, "region": "NA", "amount": 120000}}"#,
        );
        assert_eq!(
            w,
            json!([
                {"expr": "deal.pct <= 10", "values": {"deal.pct": "15"}, "would_pass": {"deal.pct": "10"}},
                {"expr": "deal.amount <= 50000", "values": {"deal.amount": "120000"}, "would_pass": {"deal.amount": "50000"}},
            ])
        );
    }

    #[test]
    fn alternatives_are_listed_each_with_what_it_needs() {
        let w = why(
            "deal.pct <= 30 || (deal.region == \"APAC\" && deal.pct <= 35)",
            r#"{"deal": {"pct": 40, "region": "NA"}}"#,
        );
        assert_eq!(
            w,
            json!([{
                "expr": "deal.pct <= 30 || (deal.region == \"APAC\" && deal.pct <= 35)",
                "values": {"deal.pct": "40", "deal.region": "NA"},
                "any_of": [
                    [{"expr": "deal.pct <= 30", "values": {"deal.pct": "40"}, "would_pass": {"deal.pct": "30"}}],
                    [{"expr": "deal.region == \"APAC\"", "values": {"deal.region": "NA"}, "would_pass": {"deal.region": "APAC"}},
                     {"expr": "deal.pct <= 35", "values": {"deal.pct": "40"}, "would_pass": {"deal.pct": "35"}}],
                ],
            }])
        );
        let parts: Vec<super::WhyNot> = {
            let engine = ExprEngine::default();
            let e = engine
                .compile("deal.pct <= 30 || (deal.region == \"APAC\" && deal.pct <= 35)", &[])
                .unwrap();
            let facts = Value::from_json_str(r#"{"deal": {"pct": 40, "region": "NA"}}"#).unwrap();
            e.why_not(&Env::new(facts.as_map().unwrap(), &[]), true)
        };
        let change = super::change_of(&parts).unwrap();
        assert_eq!(change, vec![("deal.pct".into(), Value::Num(30.into()))]);
    }

    #[test]
    fn what_cannot_be_inverted_says_so() {
        let d =
            r#"{"deal": {"x": 15, "region": "NA", "tags": ["a"]}, "plugins": {"credit": {"ok": false, "limit": 5}}}"#;
        let cases = [
            ("deal.region.to_lower() == \"apac\"", "runs on Rhai"),
            ("deal.x * 2 <= 10", "does not work backwards"),
            ("plugins.credit.ok", "is a plugin's answer"),
            ("deal.x <= plugins.credit.limit", "is a plugin's answer"),
            ("deal.x != 15", "any value other than 15"),
            ("has(deal, \"owner\")", "cannot work out"),
            ("\"vip\" in deal.tags", "cannot work out"),
            ("!(deal.region in [\"NA\"])", "any value not in the list"),
            ("vars.cap < 10", "only the policy's vars and now"),
            ("deal.region > \"X\"", "no nearest value"),
        ];
        for (src, reason) in cases {
            let w = why(src, d);
            assert_eq!(w[0]["cannot_say"], json!(true), "{src}: {w}");
            assert!(w[0]["reason"].as_str().unwrap().contains(reason), "{src}: {w}");
            assert!(w[0].get("would_pass").is_none(), "{src}: {w}");
        }
    }

    #[test]
    fn a_part_that_fails_to_evaluate_after_a_false_one_cannot_say() {
        let w = why("has(deal, \"x\") && deal.x > 5", r#"{"deal": {}}"#);
        assert_eq!(w[0]["expr"], "has(deal, \"x\")");
        assert_eq!(w[1]["expr"], "deal.x > 5");
        assert!(w[1]["reason"].as_str().unwrap().contains("deal.x is missing"), "{w}");
    }

    #[test]
    fn making_a_condition_false() {
        let engine = ExprEngine::default();
        let e = engine.compile("deal.terms > 60 && deal.region == \"NA\"", &[]).unwrap();
        let facts = Value::from_json_str(r#"{"deal": {"terms": 90, "region": "NA"}}"#).unwrap();
        let parts = e.why_not(&Env::new(facts.as_map().unwrap(), &[]), false);
        let change = super::change_of(&parts).unwrap();
        assert_eq!(change, vec![("deal.terms".into(), Value::Num(60.into()))]);
    }

    #[test]
    fn parts_print_as_written() {
        let engine = ExprEngine::default();
        for src in [
            "deal.a - (deal.b - 1) > 0",
            "(deal.a + 1) * 2 >= deal.b % 3",
            "!(deal.a && deal.b) || deal.c",
            "deal.list[0] == -deal.x",
            "days_between(deal.start, \"2026-01-01\") < 30",
        ] {
            let e = engine.compile(src, &[]).unwrap();
            assert_eq!(super::text(e.node().unwrap()), src);
        }
    }
}
