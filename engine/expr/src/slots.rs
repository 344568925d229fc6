//! Slots: a policy's field reads resolved before any input is seen.
//!
//! When every expression of a policy is compiled ahead of time, the input
//! paths they read (`deal.amount`, `rep.manager`) are numbered. A decision
//! fills those numbered slots straight from the JSON text (or from a parsed
//! value) and the expressions read the slots: no maps are built for the
//! input and no field is looked up by name. Errors are the same as on the
//! map path: a missing field names itself, a field read through something
//! that is not a mapping says so.

use std::sync::Arc;

use smol_str::SmolStr;

use crate::Expr;
use crate::ir::Node;
use crate::json::{self, JsonError};
use crate::value::Value;

/// A decision's slots; most policies read fewer than eight paths.
pub type Slots = smallvec::SmallVec<[Slot; 8]>;

/// What a decision found at one slot's path.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Slot {
    #[default]
    Missing,
    Present(Value),
    /// A value on the way was not a mapping (`deal` is text, `deal.amount` read).
    Blocked {
        key: SmolStr,
        parent: Arc<str>,
        found: &'static str,
    },
}

#[derive(Debug, Clone, Default)]
struct Trie {
    children: Vec<(SmolStr, TrieNode)>,
}

#[derive(Debug, Clone)]
enum TrieNode {
    Leaf(usize),
    Inner(Trie),
}

/// The numbered paths of one policy.
#[derive(Debug, Clone)]
pub struct SlotPlan {
    paths: Vec<Vec<SmolStr>>,
    trie: Trie,
    /// Whether any expression reads the local `now` (local 1).
    reads_now: bool,
    /// The slot of the input's own `now`, when the plan has one.
    now_slot: Option<usize>,
}

fn reads_local(node: &Node, local: usize) -> bool {
    matches!(node, Node::Local(i, _) if *i == local) || node.children().any(|c| reads_local(c, local))
}

fn fact_path(node: &Node) -> Option<Vec<SmolStr>> {
    node.fact_path().map(|p| p.into_iter().cloned().collect())
}

fn collect_paths(node: &Node, out: &mut Vec<Vec<SmolStr>>) {
    if let Some(p) = fact_path(node) {
        out.push(p);
        return;
    }
    node.children().for_each(|c| collect_paths(c, out));
}

impl SlotPlan {
    /// A plan for these expressions plus `extra` paths, or `None` when an
    /// expression runs on Rhai (which may read anything).
    pub fn build(exprs: &[&Expr], extra: &[&[&str]]) -> Option<SlotPlan> {
        let mut all: Vec<Vec<SmolStr>> = extra.iter().map(|p| p.iter().map(SmolStr::new).collect()).collect();
        let mut reads_now = false;
        for e in exprs {
            collect_paths(e.node()?, &mut all);
            reads_now |= reads_local(e.node()?, 1);
        }
        all.sort();
        all.dedup();
        // A path read whole makes its descendants reads inside that value.
        let paths: Vec<Vec<SmolStr>> = all
            .iter()
            .filter(|p| !all.iter().any(|q| q.len() < p.len() && p.starts_with(q)))
            .cloned()
            .collect();
        let mut trie = Trie::default();
        for (i, p) in paths.iter().enumerate() {
            let mut t = &mut trie;
            for (d, key) in p.iter().enumerate() {
                let last = d + 1 == p.len();
                let pos = match t.children.iter().position(|(k, _)| k == key) {
                    Some(pos) => pos,
                    None => {
                        t.children.push((
                            key.clone(),
                            if last {
                                TrieNode::Leaf(i)
                            } else {
                                TrieNode::Inner(Trie::default())
                            },
                        ));
                        t.children.len() - 1
                    }
                };
                match &mut t.children[pos].1 {
                    TrieNode::Inner(inner) => t = inner,
                    TrieNode::Leaf(_) => break,
                }
            }
        }
        let now_slot = paths.iter().position(|p| p.len() == 1 && p[0] == "now");
        Some(SlotPlan {
            paths,
            trie,
            reads_now,
            now_slot,
        })
    }

    /// The input paths, in slot order.
    pub fn paths(&self) -> &[Vec<SmolStr>] {
        &self.paths
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// The slot holding the input's own `now`, if the plan reads it.
    pub fn now_slot(&self) -> Option<usize> {
        self.now_slot
    }

    /// Whether an expression of the plan reads `now` (the second local).
    pub fn reads_now(&self) -> bool {
        self.reads_now
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The slot holding exactly `path`, if it is one.
    pub fn slot_of(&self, path: &[&str]) -> Option<usize> {
        self.paths
            .iter()
            .position(|p| p.len() == path.len() && p.iter().zip(path).all(|(a, b)| a == b))
    }

    /// The same expression reading slots instead of facts.
    pub fn bind(&self, e: &Expr) -> Expr {
        match e.node() {
            Some(node) => e.with_node(self.bind_node(node)),
            None => e.clone(),
        }
    }

    fn bind_node(&self, node: &Node) -> Node {
        if let Some(path) = fact_path(node) {
            // The longest prefix that is a slot; the rest are field reads.
            for cut in (1..=path.len()).rev() {
                if let Some(i) = self.paths.iter().position(|p| p.as_slice() == &path[..cut]) {
                    let text: Arc<str> = path[..cut].join(".").into();
                    let mut n = Node::Slot(i, text.clone());
                    let mut so_far = text.to_string();
                    for key in &path[cut..] {
                        so_far = format!("{so_far}.{key}");
                        n = Node::Get(Box::new(n), key.clone(), so_far.as_str().into());
                    }
                    return n;
                }
            }
        }
        node.map_children(|c| self.bind_node(c))
    }

    /// Fills slots from a parsed input. Errors only when the input is not
    /// an object.
    pub fn fill_from_value(&self, input: &Value, slots: &mut Slots) -> Result<(), String> {
        let root = input
            .as_map()
            .ok_or_else(|| format!("the input must be a JSON object, got {}", input.type_name()))?;
        slots.clear();
        slots.resize(self.paths.len(), Slot::Missing);
        'paths: for (i, p) in self.paths.iter().enumerate() {
            let mut cur = match root.get(&p[0]) {
                Some(v) => v,
                None => continue,
            };
            for (d, key) in p.iter().enumerate().skip(1) {
                match cur {
                    Value::Map(m) => match m.get(key) {
                        Some(v) => cur = v,
                        None => continue 'paths,
                    },
                    other => {
                        slots[i] = Slot::Blocked {
                            key: key.clone(),
                            parent: p[..d].join(".").into(),
                            found: other.type_name(),
                        };
                        continue 'paths;
                    }
                }
            }
            slots[i] = Slot::Present(cur.clone());
        }
        Ok(())
    }

    /// Fills slots straight from JSON text; everything else in the text is
    /// checked as JSON and skipped. `Err(Ok(msg))` when the input is not an
    /// object, `Err(Err(e))` when it is not JSON.
    pub fn fill_from_json(&self, text: &str, slots: &mut Slots) -> Result<(), Result<String, JsonError>> {
        slots.clear();
        slots.resize(self.paths.len(), Slot::Missing);
        let mut de = serde_json::Deserializer::from_str(text);
        let mut root_kind = None;
        let seed = TrieSeed {
            trie: &self.trie,
            paths: &self.paths,
            depth: 0,
            slots,
            root: Some(&mut root_kind),
        };
        let result = serde::de::DeserializeSeed::deserialize(seed, &mut de).and_then(|_| de.end());
        match (result, root_kind) {
            (Ok(()), None) => Ok(()),
            (Ok(()), Some(found)) => Err(Ok(format!("the input must be a JSON object, got {found}"))),
            (Err(e), _) => Err(Err(JsonError {
                message: strip_position(&e.to_string()),
                line: e.line(),
                col: e.column(),
            })),
        }
    }
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// serde_json's key for exact numbers (feature `arbitrary_precision`).
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Walks one object of the input along the trie.
struct TrieSeed<'p> {
    trie: &'p Trie,
    paths: &'p [Vec<SmolStr>],
    depth: usize,
    slots: &'p mut [Slot],
    /// At the root: set to what the input was when it is not an object.
    root: Option<&'p mut Option<&'static str>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for TrieSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// A key: which trie child it names, if any (`Err` for serde_json's number token).
struct KeySeed<'p>(&'p Trie);

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Result<Option<usize>, ()>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeySeed<'_> {
    type Value = Result<Option<usize>, ()>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, k: &str) -> Result<Self::Value, E> {
        if k == NUMBER_TOKEN {
            return Ok(Err(()));
        }
        Ok(Ok(self
            .0
            .children
            .iter()
            .position(|(c, _)| c.len() == k.len() && c == k)))
    }
}

impl TrieSeed<'_> {
    fn not_an_object<E>(self, found: &'static str) -> Result<(), E> {
        match self.root {
            Some(root) => *root = Some(found),
            None => block(self.trie, self.paths, self.depth, found, self.slots),
        }
        Ok(())
    }
}

impl<'de> serde::de::Visitor<'de> for TrieSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed(self.trie))? {
            match key {
                Err(()) => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    return self.not_an_object("a number");
                }
                Ok(None) => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                Ok(Some(pos)) => match &self.trie.children[pos].1 {
                    TrieNode::Leaf(i) => {
                        let raw: &serde_json::value::RawValue = map.next_value()?;
                        self.slots[*i] = Slot::Present(raw_value(raw.get()).map_err(serde::de::Error::custom)?);
                    }
                    TrieNode::Inner(inner) => map.next_value_seed(TrieSeed {
                        trie: inner,
                        paths: self.paths,
                        depth: self.depth + 1,
                        slots: &mut *self.slots,
                        root: None,
                    })?,
                },
            }
        }
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        self.not_an_object("a list")
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.not_an_object("text")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.not_an_object("a boolean")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.not_an_object("null")
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.not_an_object("a number")
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.not_an_object("a number")
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.not_an_object("a number")
    }
}

/// One JSON value's text to a [`Value`], numbers exact.
fn raw_value(raw: &str) -> Result<Value, String> {
    let bytes = raw.as_bytes();
    match bytes.first() {
        Some(b'"') if !raw.contains('\\') => Ok(Value::Str(SmolStr::new(&raw[1..raw.len() - 1]))),
        Some(b't') => Ok(Value::Bool(true)),
        Some(b'f') => Ok(Value::Bool(false)),
        Some(b'n') => Ok(Value::Null),
        Some(b'-' | b'0'..=b'9') => crate::value::read_decimal(raw)
            .map(Value::Num)
            .map_err(|e| e.to_string()),
        _ => json::parse(raw).map_err(|e| e.message),
    }
}

/// Marks every slot below a non-mapping value as blocked by it.
fn block(trie: &Trie, paths: &[Vec<SmolStr>], depth: usize, found: &'static str, slots: &mut [Slot]) {
    for (_, node) in &trie.children {
        match node {
            TrieNode::Leaf(i) => {
                let p = &paths[*i];
                slots[*i] = Slot::Blocked {
                    key: p[depth].clone(),
                    parent: p[..depth].join(".").into(),
                    found,
                };
            }
            TrieNode::Inner(inner) => block(inner, paths, depth, found, slots),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Env, ExprEngine};

    fn run(src: &str, json: &str) -> Result<Value, crate::EvalError> {
        let engine = ExprEngine::default();
        let e = engine.compile(src, &[]).unwrap();
        let plan = SlotPlan::build(&[&e], &[&["now"]]).unwrap();
        let bound = plan.bind(&e);
        let mut from_text = Slots::new();
        plan.fill_from_json(json, &mut from_text).unwrap();
        let mut from_value = Slots::new();
        plan.fill_from_value(&Value::from_json_str(json).unwrap(), &mut from_value)
            .unwrap();
        assert_eq!(from_text, from_value, "{json}");
        let via_slots = bound.eval(&Env::with_slots(&[], &from_text));
        let parsed = Value::from_json_str(json).unwrap();
        let via_facts = e.eval(&Env::new(parsed.as_map().unwrap(), &[]));
        assert_eq!(via_slots, via_facts, "{src} over {json}");
        via_slots
    }

    #[test]
    fn slots_and_facts_agree() {
        assert_eq!(
            run("deal.amount * 2", r#"{"deal": {"amount": 21, "x": [1, {"y": 2}]}}"#).unwrap(),
            Value::Num(42.into())
        );
        assert!(
            run("deal.amount", r#"{"deal": {}}"#)
                .unwrap_err()
                .to_string()
                .contains("deal.amount is missing")
        );
        assert!(
            run("deal.amount", r#"{"deal": "text"}"#)
                .unwrap_err()
                .to_string()
                .contains("cannot read `amount` of deal")
        );
        assert!(
            run("deal.customer.tier", r#"{"deal": {"customer": 5}}"#)
                .unwrap_err()
                .to_string()
                .contains("cannot read `tier` of deal.customer")
        );
        assert!(
            run("deal.customer.tier", r#"{"deal": 5}"#)
                .unwrap_err()
                .to_string()
                .contains("cannot read `customer` of deal")
        );
        assert_eq!(
            run("deal.a", r#"{"deal": {"a": 1, "a": 2}}"#).unwrap(),
            Value::Num(2.into())
        );
        // a path read whole and one below it share one slot
        assert_eq!(
            run("has(deal, \"a\") && deal.a.b == 1", r#"{"deal": {"a": {"b": 1}}}"#).unwrap(),
            Value::Bool(true)
        );
    }

    #[test]
    fn numbers_with_more_digits_than_a_decimal_holds_are_refused_on_the_slot_path_too() {
        let engine = ExprEngine::default();
        let e = engine.compile("deal.amount", &[]).unwrap();
        let plan = SlotPlan::build(&[&e], &[]).unwrap();
        let mut s = Slots::new();
        let Err(Err(e)) = plan.fill_from_json(r#"{"deal": {"amount": 1.00499999999999999999999999999999}}"#, &mut s)
        else {
            panic!("accepted")
        };
        assert!(
            e.message.contains("has more digits than an exact decimal holds"),
            "{e:?}"
        );
    }

    #[test]
    fn escaped_keys_match() {
        assert_eq!(
            run("deal.amount", r#"{"deal": {"am\u006funt": 7}}"#).unwrap(),
            Value::Num(7.into())
        );
    }

    #[test]
    fn the_input_must_be_an_object() {
        let engine = ExprEngine::default();
        let e = engine.compile("deal.amount", &[]).unwrap();
        let plan = SlotPlan::build(&[&e], &[]).unwrap();
        let mut s = Slots::new();
        assert_eq!(
            plan.fill_from_json("[1]", &mut s),
            Err(Ok("the input must be a JSON object, got a list".into()))
        );
        assert!(matches!(plan.fill_from_json("{", &mut s), Err(Err(_))));
    }

    #[test]
    fn rhai_expressions_have_no_plan() {
        let engine = ExprEngine::default();
        let e = engine.compile("deal.region.to_lower() == \"na\"", &[]).unwrap();
        assert!(SlotPlan::build(&[&e], &[]).is_none());
    }
}
