//! DecisionTable: DMN-style tables with four hit policies (section 3).
//!
//! Large tables are indexed: every row whose `when` is a conjunction of
//! `input OP constant` tests is placed in per-input bitsets (a hash for
//! text equality, sorted regions for numeric ranges). A decision intersects
//! the bitsets of its input values and evaluates only the rows left, in
//! order, with their full conditions, so results are exactly those of a
//! scan; rows with other conditions are always candidates.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use dealrules_expr::{AtomOp, CmpOp, Expr, Value};
use dealrules_model::{DecisionTableSpec, Document, HitPolicy, OutputValue, suggest};
use rust_decimal::Decimal;
use serde::ser::{Serialize, SerializeMap, Serializer};
use smol_str::SmolStr;

use crate::approval::{Explained, TraceOut, TraceStep};
use crate::context::{BASE_LOCALS, DocCompiler, Facts, Input, WHY_NOT, base_locals, bind_all};
use crate::error::DecideError;

/// Result keys an output column may not shadow.
const RESERVED: [&str; 9] = [
    "policy", "kind", "version", "matched", "rule", "rows", "inputs", "trace", "skipped",
];
const ROW_KEYS: [&str; 4] = ["id", "when", "priority", "description"];
/// Tables with fewer rows are scanned; an index does not pay for itself.
const INDEX_MIN_ROWS: usize = 16;

#[derive(Debug)]
pub struct DecisionTable {
    pub name: Arc<str>,
    hit: HitPolicy,
    inputs: Vec<(Arc<str>, Expr)>,
    outputs: Vec<Arc<str>>,
    rows: Vec<Row>,
    vars: Value,
    index: Option<TableIndex>,
    plan: Option<dealrules_expr::SlotPlan>,
    interest: dealrules_expr::Interest,
    /// The slot of the input's `why_not`, when the table reads slots.
    why_not_slot: Option<usize>,
}

#[derive(Debug)]
struct Row {
    id: Arc<str>,
    when: Option<Expr>,
    priority: i64,
    values: Vec<Cell>,
    /// Whether any output is computed (the common constant row takes a
    /// plain copy).
    computed: bool,
}

/// A row's value for one output column.
#[derive(Debug)]
enum Cell {
    Const(Value),
    /// `{ expr: "..." }`, evaluated only for a row that answers.
    Computed(Expr),
}

/// The outcome of a table decision.
/// One matching row of a `collect` table: its id and its outputs.
pub type CollectedRow<'a> = (&'a str, Vec<(&'a str, Value)>);

#[derive(Debug, Clone, PartialEq)]
pub struct TableDecision<'a> {
    pub policy: &'a str,
    pub version: &'a str,
    pub matched: bool,
    /// The row that gave the outputs (not for `collect`).
    pub rule: Option<&'a str>,
    /// Output column -> value (not for `collect`).
    pub outputs: Vec<(&'a str, Value)>,
    /// For `collect`: every matching row's id and outputs.
    pub rows: Option<Vec<CollectedRow<'a>>>,
    pub inputs: Vec<(&'a str, Value)>,
    /// Rows evaluated, in order, and whether each matched.
    pub trace: Vec<TraceStep<'a>>,
    /// Rows ruled out by the index without evaluation.
    pub skipped: usize,
    /// With `"why_not": true`: why each unmatched row did not match.
    pub explained: Option<Box<Explained<'a>>>,
    /// The plugin calls the policy made first: answer, fuel, time.
    pub plugins: Vec<serde_json::Value>,
}

struct Pairs<'a, 'b>(&'b [(&'a str, Value)]);

impl Serialize for Pairs<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(*k, v)?;
        }
        m.end()
    }
}

impl Serialize for TableDecision<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("policy", self.policy)?;
        m.serialize_entry("kind", "DecisionTable")?;
        m.serialize_entry("version", self.version)?;
        m.serialize_entry("matched", &self.matched)?;
        if let Some(rows) = &self.rows {
            let rows: Vec<_> = rows
                .iter()
                .map(|(id, outs)| {
                    let mut all = vec![("rule", Value::str(id))];
                    all.extend(outs.iter().cloned());
                    all
                })
                .collect();
            m.serialize_entry("rows", &rows.iter().map(|r| Pairs(r)).collect::<Vec<_>>())?;
        } else {
            if let Some(rule) = self.rule {
                m.serialize_entry("rule", rule)?;
            }
            for (k, v) in &self.outputs {
                m.serialize_entry(*k, v)?;
            }
        }
        m.serialize_entry("inputs", &Pairs(&self.inputs))?;
        m.serialize_entry("trace", &TraceOut(&self.trace, self.explained.as_deref()))?;
        if self.skipped > 0 {
            m.serialize_entry("skipped", &self.skipped)?;
        }
        if !self.plugins.is_empty() {
            m.serialize_entry("plugins", &self.plugins)?;
        }
        m.end()
    }
}

pub fn compile(doc: &Document, spec: &DecisionTableSpec, cx: &mut DocCompiler) -> Option<DecisionTable> {
    let before = cx.diags.len();
    let mut inputs = Vec::new();
    for (name, src) in &spec.inputs {
        let path = format!("spec.inputs.{name}");
        if BASE_LOCALS.contains(&name.as_str()) {
            cx.error(
                &path,
                format!("`{name}` is a reserved name; call the input something else"),
            );
        }
        if let Some(e) = cx.expr(&path, src, &BASE_LOCALS) {
            inputs.push((Arc::<str>::from(name.as_str()), e));
        }
    }
    let mut seen = HashSet::new();
    for (i, o) in spec.outputs.iter().enumerate() {
        if RESERVED.contains(&o.as_str()) || ROW_KEYS.contains(&o.as_str()) {
            cx.error(
                &format!("spec.outputs[{i}]"),
                format!("`{o}` is a reserved name; call the output something else"),
            );
        }
        if !seen.insert(o.as_str()) {
            cx.error(&format!("spec.outputs[{i}]"), format!("output `{o}` is listed twice"));
        }
    }
    let locals: Vec<&str> = BASE_LOCALS
        .iter()
        .copied()
        .chain(spec.inputs.keys().map(String::as_str))
        .collect();
    let mut rows = Vec::new();
    let mut ids = HashSet::new();
    for (i, r) in spec.rules.iter().enumerate() {
        let path = format!("spec.rules[{i}]");
        let id: Arc<str> = r.id.clone().unwrap_or_else(|| format!("#{}", i + 1)).into();
        if !ids.insert(id.clone()) {
            cx.error(&format!("{path}.id"), format!("row id `{id}` is used twice"));
        }
        for key in r.outputs.keys() {
            if !spec.outputs.contains(key) {
                let known = spec.outputs.iter().map(String::as_str).chain(ROW_KEYS);
                cx.error(
                    &format!("{path}.{key}"),
                    format!(
                        "`{key}` is not an output of this table (outputs: {}){}",
                        spec.outputs.join(", "),
                        suggest(key, known)
                    ),
                );
            }
        }
        if spec.hit == HitPolicy::Priority && r.priority.is_none() {
            cx.error(&path, format!("row `{id}` needs a `priority` (hit: priority)"));
        }
        let when = r
            .when
            .as_ref()
            .and_then(|w| cx.expr(&format!("{path}.when"), w, &locals));
        let mut values = Vec::with_capacity(spec.outputs.len());
        for o in &spec.outputs {
            values.push(match r.outputs.get(o) {
                None => Cell::Const(Value::Null),
                Some(OutputValue::Computed(c)) => match cx.expr(&format!("{path}.{o}.expr"), &c.expr, &locals) {
                    Some(e) => Cell::Computed(e),
                    None => Cell::Const(Value::Null),
                },
                Some(OutputValue::Constant(v)) => {
                    if v.get("expr").is_some() {
                        cx.error(
                            &format!("{path}.{o}"),
                            "a computed output is written `{ expr: \"...\" }`: `expr` must be text and the only key",
                        );
                    }
                    Cell::Const(Value::from_json(v))
                }
            });
        }
        let computed = values.iter().any(|c| matches!(c, Cell::Computed(_)));
        rows.push(Row {
            id,
            when,
            priority: r.priority.unwrap_or(0),
            values,
            computed,
        });
    }
    if spec.rules.is_empty() {
        cx.error("spec.rules", "a table needs at least one row");
    }
    if cx.diags.len() != before {
        return None;
    }
    let index = (rows.len() >= INDEX_MIN_ROWS)
        .then(|| TableIndex::build(&rows, BASE_LOCALS.len(), inputs.len()))
        .flatten();
    let mut table = DecisionTable {
        name: doc.metadata.name.as_str().into(),
        hit: spec.hit,
        inputs,
        outputs: spec.outputs.iter().map(|o| Arc::from(o.as_str())).collect(),
        rows,
        vars: base_locals(&spec.vars).swap_remove(0),
        index,
        plan: None,
        interest: dealrules_expr::Interest::All,
        why_not_slot: None,
    };
    table.interest = table.interest();
    let mut exprs: Vec<&mut Expr> = table.inputs.iter_mut().map(|(_, e)| e).collect();
    for row in table.rows.iter_mut() {
        exprs.extend(row.when.as_mut());
        exprs.extend(row.values.iter_mut().filter_map(|c| match c {
            Cell::Computed(e) => Some(e),
            Cell::Const(_) => None,
        }));
    }
    table.plan = bind_all(&mut exprs);
    table.why_not_slot = table.plan.as_ref().and_then(|p| p.slot_of(&[WHY_NOT]));
    Some(table)
}

impl DecisionTable {
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rows.iter().map(|r| &*r.id)
    }

    /// The input fields this table can read.
    pub fn interest(&self) -> dealrules_expr::Interest {
        let mut acc = dealrules_expr::Interest::default();
        acc.add_path(&["now"]);
        acc.add_path(&[WHY_NOT]);
        self.inputs.iter().for_each(|(_, e)| e.collect_interest(&mut acc));
        for row in &self.rows {
            row.when.iter().for_each(|w| w.collect_interest(&mut acc));
            for c in &row.values {
                if let Cell::Computed(e) = c {
                    e.collect_interest(&mut acc);
                }
            }
        }
        acc
    }

    pub(crate) fn disable_index(&mut self) {
        self.index = None;
    }

    /// What an admin sees of the compiled table.
    pub fn summary(&self) -> serde_json::Value {
        let compiled = self
            .rows
            .iter()
            .filter(|r| r.when.as_ref().is_none_or(|w| w.is_compiled()))
            .count();
        let computed: Vec<_> = self
            .rows
            .iter()
            .flat_map(|r| r.values.iter())
            .filter_map(|c| match c {
                Cell::Computed(e) => Some(e),
                Cell::Const(_) => None,
            })
            .collect();
        serde_json::json!({
            "hit": format!("{:?}", self.hit).to_lowercase(),
            "inputs": self.inputs.iter().map(|(n, _)| &**n).collect::<Vec<_>>(),
            "outputs": self.outputs.iter().map(|o| &**o).collect::<Vec<_>>(),
            "rows": self.rows.len(),
            "rows_compiled_ahead_of_time": compiled,
            "computed_outputs": computed.len(),
            "computed_outputs_compiled_ahead_of_time": computed.iter().filter(|e| e.is_compiled()).count(),
            "indexed": self.index.is_some(),
            "reads_input_through_slots": self.plan.is_some(),
        })
    }

    pub fn is_indexed(&self) -> bool {
        self.index.is_some()
    }

    pub fn decide<'a>(&'a self, version: &'a str, input: Input, now: &str) -> Result<TableDecision<'a>, DecideError> {
        let mut locals = Vec::with_capacity(BASE_LOCALS.len() + self.inputs.len());
        locals.push(self.vars.clone());
        locals.push(Value::Null);
        let mut facts = Facts::default();
        facts.load(self.plan.as_ref(), &self.interest, input)?;
        facts.set_now(self.plan.as_ref(), now, &mut locals)?;
        for (name, e) in &self.inputs {
            let v = e.eval(&facts.env(&locals)).map_err(|error| DecideError::Eval {
                policy: self.name.to_string(),
                at: format!("input `{name}`"),
                error,
            })?;
            locals.push(v);
        }
        let env = facts.env(&locals);
        let candidates = self.index.as_ref().and_then(|ix| ix.candidates(&locals));
        let mut trace = Vec::new();
        let mut matches: Vec<&Row> = Vec::new();
        let mut evaluated = 0usize;
        let mut check = |row: &'a Row| -> Result<bool, DecideError> {
            evaluated += 1;
            let m = match &row.when {
                None => true,
                Some(w) => w.eval_bool(&env).map_err(|error| DecideError::Eval {
                    policy: self.name.to_string(),
                    at: format!("row `{}`", row.id),
                    error,
                })?,
            };
            trace.push(TraceStep {
                rule: &row.id,
                matched: m,
            });
            Ok(m)
        };
        let first_only = self.hit == HitPolicy::First;
        match &candidates {
            Some(bits) => {
                'scan: for (w, word) in bits.iter().enumerate() {
                    let mut word = *word;
                    while word != 0 {
                        let i = w * 64 + word.trailing_zeros() as usize;
                        word &= word - 1;
                        let row = &self.rows[i];
                        if check(row)? {
                            matches.push(row);
                            if first_only {
                                break 'scan;
                            }
                        }
                    }
                }
            }
            None => {
                for row in &self.rows {
                    if check(row)? {
                        matches.push(row);
                        if first_only {
                            break;
                        }
                    }
                }
            }
        }
        // Rows the index ruled out, among those a scan would have reached.
        let reached = match (first_only, matches.first()) {
            (true, Some(m)) => self
                .rows
                .iter()
                .position(|r| std::ptr::eq(r, *m))
                .map_or(self.rows.len(), |p| p + 1),
            _ => self.rows.len(),
        };
        let skipped = if candidates.is_some() { reached - evaluated } else { 0 };
        let chosen: Option<&Row> = match self.hit {
            HitPolicy::First => matches.first().copied(),
            HitPolicy::Unique => {
                if matches.len() > 1 {
                    let ids: Vec<&str> = matches.iter().map(|r| &*r.id).collect();
                    return Err(DecideError::Policy {
                        policy: self.name.to_string(),
                        message: format!("hit policy `unique`, but {} rows match: {}", ids.len(), ids.join(", ")),
                    });
                }
                matches.first().copied()
            }
            HitPolicy::Priority => {
                let mut best: Option<&Row> = None;
                for r in &matches {
                    if best.is_none_or(|b| r.priority > b.priority) {
                        best = Some(r);
                    }
                }
                best
            }
            HitPolicy::Collect => None,
        };
        // Why-not work is asked for, and done once the decision is made.
        let explained = match facts.why_not(self.why_not_slot)? {
            false => None,
            true => {
                // The trace lists evaluated rows in table order, scanned or not.
                let mut rows = self.rows.iter();
                let why_not = trace
                    .iter()
                    .map(|step| {
                        let row = rows.find(|r| &*r.id == step.rule)?;
                        if step.matched {
                            None
                        } else {
                            row.when.as_ref().map(|w| w.why_not(&env, true))
                        }
                    })
                    .collect();
                Some(Box::new(Explained {
                    why_not,
                    to_reach: Vec::new(),
                }))
            }
        };
        let outputs_of = |r: &Row| -> Result<Vec<(&str, Value)>, DecideError> {
            if !r.computed {
                return Ok(self
                    .outputs
                    .iter()
                    .zip(&r.values)
                    .map(|(o, cell)| match cell {
                        Cell::Const(v) => (&**o, v.clone()),
                        Cell::Computed(_) => (&**o, Value::Null),
                    })
                    .collect());
            }
            self.outputs
                .iter()
                .zip(&r.values)
                .map(|(o, cell)| match cell {
                    Cell::Const(v) => Ok((&**o, v.clone())),
                    Cell::Computed(e) => e.eval(&env).map(|v| (&**o, v)).map_err(|error| DecideError::Eval {
                        policy: self.name.to_string(),
                        at: format!("row `{}` output `{o}`", r.id),
                        error,
                    }),
                })
                .collect()
        };
        let outputs = match chosen {
            Some(r) => outputs_of(r)?,
            None => Vec::new(),
        };
        let rows = match self.hit {
            HitPolicy::Collect => Some(
                matches
                    .iter()
                    .map(|r| outputs_of(r).map(|outs| (&*r.id, outs)))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            _ => None,
        };
        let inputs = self
            .inputs
            .iter()
            .map(|(n, _)| &**n)
            .zip(locals[BASE_LOCALS.len()..].iter().cloned())
            .collect();
        Ok(TableDecision {
            plugins: Vec::new(),
            policy: &self.name,
            version,
            matched: !matches.is_empty(),
            rule: chosen.map(|r| &*r.id),
            outputs,
            rows,
            inputs,
            trace,
            skipped,
            explained,
        })
    }
}

// ----------------------------------------------------------------- the index

#[derive(Debug)]
struct TableIndex {
    all: Vec<u64>,
    eq: Vec<EqIndex>,
    ranges: Vec<RangeIndex>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Text(SmolStr),
    Bool(bool),
}

fn key_of(v: &Value) -> Option<Key> {
    match v {
        Value::Str(s) => Some(Key::Text(s.clone())),
        Value::Bool(b) => Some(Key::Bool(*b)),
        _ => None,
    }
}

#[derive(Debug)]
struct EqIndex {
    local: usize,
    /// Some key reads as a number, so a number input may equal it.
    numeric_keys: bool,
    by_key: HashMap<Key, Vec<u64>>,
    /// Rows with no equality test on this input.
    wildcard: Vec<u64>,
}

#[derive(Debug)]
struct RangeIndex {
    local: usize,
    points: Vec<Decimal>,
    /// `2 * points.len() + 1` regions: before p0, p0, between p0 and p1, ...
    regions: Vec<Vec<u64>>,
}

#[derive(Debug, Clone, Copy)]
struct Bound {
    at: Decimal,
    inclusive: bool,
}

fn set(bits: &mut [u64], i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}

impl TableIndex {
    fn build(rows: &[Row], first_input: usize, n_inputs: usize) -> Option<TableIndex> {
        let words = rows.len().div_ceil(64);
        let mut all = vec![0u64; words];
        for i in 0..rows.len() {
            set(&mut all, i);
        }
        let atoms: Vec<Option<Vec<dealrules_expr::Atom>>> = rows
            .iter()
            .map(|r| match &r.when {
                None => Some(Vec::new()),
                Some(w) => w.conjunction_atoms(),
            })
            .collect();
        let mut eq = Vec::new();
        let mut ranges = Vec::new();
        for local in first_input..first_input + n_inputs {
            // Equality on text and booleans.
            let mut allowed: Vec<Option<HashSet<Key>>> = vec![None; rows.len()];
            let mut any_eq = false;
            // Numeric bounds.
            let mut bounds: Vec<(Option<Bound>, Option<Bound>, bool)> = vec![(None, None, false); rows.len()];
            let mut any_range = false;
            for (r, atoms) in atoms.iter().enumerate() {
                let Some(atoms) = atoms else { continue };
                for a in atoms.iter().filter(|a| a.local == local) {
                    let keys: Option<HashSet<Key>> = match &a.op {
                        AtomOp::Cmp(CmpOp::Eq, v) => key_of(v).map(|k| HashSet::from([k])),
                        AtomOp::In(vs) if vs.iter().all(|v| key_of(v).is_some()) => {
                            Some(vs.iter().filter_map(key_of).collect())
                        }
                        _ => None,
                    };
                    if let Some(keys) = keys {
                        any_eq = true;
                        allowed[r] = Some(match allowed[r].take() {
                            None => keys,
                            Some(prev) => prev.intersection(&keys).cloned().collect(),
                        });
                        continue;
                    }
                    if let AtomOp::Cmp(op, Value::Num(c)) = &a.op {
                        let (lo, hi, constrained) = &mut bounds[r];
                        let tighten_lo = |lo: &mut Option<Bound>, b: Bound| {
                            if lo.is_none_or(|l| b.at > l.at || (b.at == l.at && !b.inclusive)) {
                                *lo = Some(b);
                            }
                        };
                        let tighten_hi = |hi: &mut Option<Bound>, b: Bound| {
                            if hi.is_none_or(|h| b.at < h.at || (b.at == h.at && !b.inclusive)) {
                                *hi = Some(b);
                            }
                        };
                        match op {
                            CmpOp::Ge => tighten_lo(
                                lo,
                                Bound {
                                    at: *c,
                                    inclusive: true,
                                },
                            ),
                            CmpOp::Gt => tighten_lo(
                                lo,
                                Bound {
                                    at: *c,
                                    inclusive: false,
                                },
                            ),
                            CmpOp::Le => tighten_hi(
                                hi,
                                Bound {
                                    at: *c,
                                    inclusive: true,
                                },
                            ),
                            CmpOp::Lt => tighten_hi(
                                hi,
                                Bound {
                                    at: *c,
                                    inclusive: false,
                                },
                            ),
                            CmpOp::Eq => {
                                tighten_lo(
                                    lo,
                                    Bound {
                                        at: *c,
                                        inclusive: true,
                                    },
                                );
                                tighten_hi(
                                    hi,
                                    Bound {
                                        at: *c,
                                        inclusive: true,
                                    },
                                );
                            }
                            CmpOp::Ne => continue,
                        }
                        *constrained = true;
                        any_range = true;
                    }
                }
            }
            if any_eq {
                let mut by_key: HashMap<Key, Vec<u64>> = HashMap::new();
                let mut wildcard = vec![0u64; words];
                for (r, a) in allowed.iter().enumerate() {
                    match a {
                        None => set(&mut wildcard, r),
                        Some(keys) => {
                            for k in keys {
                                by_key.entry(k.clone()).or_insert_with(|| vec![0u64; words]);
                            }
                        }
                    }
                }
                for (k, bits) in by_key.iter_mut() {
                    for (r, a) in allowed.iter().enumerate() {
                        if a.as_ref().is_none_or(|keys| keys.contains(k)) {
                            set(bits, r);
                        }
                    }
                }
                let numeric_keys = by_key
                    .keys()
                    .any(|k| matches!(k, Key::Text(t) if dealrules_expr::value::parse_decimal(t.trim()).is_some()));
                eq.push(EqIndex {
                    local,
                    numeric_keys,
                    by_key,
                    wildcard,
                });
            }
            if any_range {
                let mut points: Vec<Decimal> = bounds
                    .iter()
                    .flat_map(|(lo, hi, _)| lo.iter().chain(hi.iter()).map(|b| b.at.normalize()))
                    .collect();
                points.sort();
                points.dedup();
                let n = points.len();
                let mut regions = vec![vec![0u64; words]; 2 * n + 1];
                for (r, (lo, hi, constrained)) in bounds.iter().enumerate() {
                    for (g, bits) in regions.iter_mut().enumerate() {
                        let inside = !constrained || region_inside(&points, g, *lo, *hi);
                        if inside {
                            set(bits, r);
                        }
                    }
                }
                ranges.push(RangeIndex { local, points, regions });
            }
        }
        (!eq.is_empty() || !ranges.is_empty()).then_some(TableIndex { all, eq, ranges })
    }

    /// The rows that may match, or `None` when the index cannot tell (an
    /// input of an unexpected type: then every row is evaluated).
    fn candidates(&self, locals: &[Value]) -> Option<Vec<u64>> {
        let mut bits = self.all.clone();
        for ix in &self.eq {
            let key = key_of(&locals[ix.local]);
            if key.is_none() && ix.numeric_keys {
                return None; // a number may equal numeric text: scan
            }
            let set = key.and_then(|k| ix.by_key.get(&k)).unwrap_or(&ix.wildcard);
            bits.iter_mut().zip(set).for_each(|(b, s)| *b &= s);
        }
        for ix in &self.ranges {
            let Value::Num(v) = &locals[ix.local] else { return None };
            let g = match ix.points.binary_search(v) {
                Ok(i) => 2 * i + 1,
                Err(i) => 2 * i,
            };
            bits.iter_mut().zip(&ix.regions[g]).for_each(|(b, s)| *b &= s);
        }
        Some(bits)
    }
}

/// Whether every value of region `g` lies within `lo..hi`. Bounds are
/// breakpoints, so a region is wholly inside or wholly outside.
fn region_inside(points: &[Decimal], g: usize, lo: Option<Bound>, hi: Option<Bound>) -> bool {
    if g % 2 == 1 {
        let p = points[g / 2];
        let above = lo.is_none_or(|l| p > l.at || (p == l.at && l.inclusive));
        let below = hi.is_none_or(|h| p < h.at || (p == h.at && h.inclusive));
        return above && below;
    }
    let i = g / 2;
    let left = if i == 0 { None } else { Some(points[i - 1]) };
    let right = points.get(i).copied();
    let above = match (lo, left) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(l), Some(a)) => l.at <= a,
    };
    let below = match (hi, right) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(h), Some(b)) => h.at >= b,
    };
    above && below
}
