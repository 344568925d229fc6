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

use jiter::{Jiter, Peek};
use smol_str::SmolStr;

use crate::ir::Node;
use crate::json::{self, JsonError};
use crate::value::Value;
use crate::Expr;

/// A decision's slots; most policies read fewer than eight paths.
pub type Slots = smallvec::SmallVec<[Slot; 8]>;

/// What a decision found at one slot's path.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Slot {
    #[default]
    Missing,
    Present(Value),
    /// A value on the way was not a mapping (`deal` is text, `deal.amount` read).
    Blocked { key: SmolStr, parent: Arc<str>, found: &'static str },
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
}

fn fact_path(node: &Node) -> Option<Vec<SmolStr>> {
    match node {
        Node::Fact(name) => Some(vec![name.clone()]),
        Node::Get(base, key, _) => {
            let mut p = fact_path(base)?;
            p.push(key.clone());
            Some(p)
        }
        _ => None,
    }
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
        let mut all: Vec<Vec<SmolStr>> = extra.iter().map(|p| p.iter().map(|s| SmolStr::new(s)).collect()).collect();
        for e in exprs {
            collect_paths(e.node()?, &mut all);
        }
        all.sort();
        all.dedup();
        // A path read whole makes its descendants reads inside that value.
        let paths: Vec<Vec<SmolStr>> =
            all.iter().filter(|p| !all.iter().any(|q| q.len() < p.len() && p.starts_with(q))).cloned().collect();
        let mut trie = Trie::default();
        for (i, p) in paths.iter().enumerate() {
            let mut t = &mut trie;
            for (d, key) in p.iter().enumerate() {
                let last = d + 1 == p.len();
                let pos = match t.children.iter().position(|(k, _)| k == key) {
                    Some(pos) => pos,
                    None => {
                        t.children.push((key.clone(), if last { TrieNode::Leaf(i) } else { TrieNode::Inner(Trie::default()) }));
                        t.children.len() - 1
                    }
                };
                match &mut t.children[pos].1 {
                    TrieNode::Inner(inner) => t = inner,
                    TrieNode::Leaf(_) => break,
                }
            }
        }
        Some(SlotPlan { paths, trie })
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The slot holding exactly `path`, if it is one.
    pub fn slot_of(&self, path: &[&str]) -> Option<usize> {
        self.paths.iter().position(|p| p.len() == path.len() && p.iter().zip(path).all(|(a, b)| a == b))
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
        let root = input.as_map().ok_or_else(|| format!("the input must be a JSON object, got {}", input.type_name()))?;
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
                        slots[i] = Slot::Blocked { key: key.clone(), parent: p[..d].join(".").into(), found: other.type_name() };
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
        let mut j = Jiter::new(text.as_bytes());
        let result = (|| -> Result<Option<&'static str>, json::Failure> {
            let peek = j.peek()?;
            if peek != Peek::Object {
                j.known_skip(peek)?;
                j.finish()?;
                return Ok(Some(peek_type(peek)));
            }
            fill(&mut j, &self.trie, &self.paths, 0, slots)?;
            j.finish()?;
            Ok(None)
        })();
        match result {
            Ok(None) => Ok(()),
            Ok(Some(found)) => Err(Ok(format!("the input must be a JSON object, got {found}"))),
            Err(_) => Err(Err(json::parse(text).err().unwrap_or(JsonError { message: "invalid JSON".into(), line: 1, col: 1 }))),
        }
    }
}

fn peek_type(p: Peek) -> &'static str {
    match p {
        Peek::Array => "a list",
        Peek::String => "text",
        Peek::Null => "null",
        Peek::True | Peek::False => "a boolean",
        _ => "a number",
    }
}

/// The trie child a raw (still escaped) key names. Keys are compared as
/// raw bytes; a key with escapes is unescaped first, so `"am\u006funt"`
/// still names `amount`.
fn child_of(trie: &Trie, raw: &[u8]) -> Option<usize> {
    let direct = trie.children.iter().position(|(c, _)| c.len() == raw.len() && c.as_bytes() == raw);
    if direct.is_some() || !raw.contains(&b'\\') {
        return direct;
    }
    let quoted = format!("\"{}\"", String::from_utf8_lossy(raw));
    let key: String = serde_json::from_str(&quoted).ok()?;
    trie.children.iter().position(|(c, _)| c.as_str() == key)
}

/// Reads an object (already peeked) into the slots under `trie`.
fn fill(j: &mut Jiter, trie: &Trie, paths: &[Vec<SmolStr>], depth: usize, slots: &mut [Slot]) -> Result<(), json::Failure> {
    let mut key = j.next_object_bytes()?.map(|k| child_of(trie, k));
    while let Some(found) = key {
        let peek = j.peek()?;
        match found.map(|pos| &trie.children[pos].1) {
            None => j.known_skip(peek)?,
            Some(TrieNode::Leaf(i)) => slots[*i] = Slot::Present(json::read(j, peek, depth + 1, &crate::Interest::All)?),
            Some(TrieNode::Inner(inner)) => {
                if peek == Peek::Object {
                    fill(j, inner, paths, depth + 1, slots)?;
                } else {
                    // Something that is not a mapping where fields are read.
                    let found = json::read(j, peek, depth + 1, &crate::Interest::All)?.type_name();
                    block(inner, paths, depth + 1, found, slots);
                }
            }
        }
        key = j.next_key_bytes()?.map(|k| child_of(trie, k));
    }
    Ok(())
}

/// Marks every slot below a non-mapping value as blocked by it.
fn block(trie: &Trie, paths: &[Vec<SmolStr>], depth: usize, found: &'static str, slots: &mut [Slot]) {
    for (_, node) in &trie.children {
        match node {
            TrieNode::Leaf(i) => {
                let p = &paths[*i];
                slots[*i] = Slot::Blocked { key: p[depth].clone(), parent: p[..depth].join(".").into(), found };
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
        plan.fill_from_value(&Value::from_json_str(json).unwrap(), &mut from_value).unwrap();
        assert_eq!(from_text, from_value, "{json}");
        let via_slots = bound.eval(&Env::with_slots(&[], &from_text));
        let parsed = Value::from_json_str(json).unwrap();
        let via_facts = e.eval(&Env::new(parsed.as_map().unwrap(), &[]));
        assert_eq!(via_slots, via_facts, "{src} over {json}");
        via_slots
    }

    #[test]
    fn slots_and_facts_agree() {
        assert_eq!(run("deal.amount * 2", r#"{"deal": {"amount": 21, "x": [1, {"y": 2}]}}"#).unwrap(), Value::Num(42.into()));
        assert!(run("deal.amount", r#"{"deal": {}}"#).unwrap_err().to_string().contains("deal.amount is missing"));
        assert!(run("deal.amount", r#"{"deal": "text"}"#).unwrap_err().to_string().contains("cannot read `amount` of deal"));
        assert!(run("deal.customer.tier", r#"{"deal": {"customer": 5}}"#).unwrap_err().to_string().contains("cannot read `tier` of deal.customer"));
        assert!(run("deal.customer.tier", r#"{"deal": 5}"#).unwrap_err().to_string().contains("cannot read `customer` of deal"));
        assert_eq!(run("deal.a", r#"{"deal": {"a": 1, "a": 2}}"#).unwrap(), Value::Num(2.into()));
        // a path read whole and one below it share one slot
        assert_eq!(run("has(deal, \"a\") && deal.a.b == 1", r#"{"deal": {"a": {"b": 1}}}"#).unwrap(), Value::Bool(true));
    }

    #[test]
    fn escaped_keys_match() {
        assert_eq!(run("deal.amount", r#"{"deal": {"am\u006funt": 7}}"#).unwrap(), Value::Num(7.into()));
    }

    #[test]
    fn the_input_must_be_an_object() {
        let engine = ExprEngine::default();
        let e = engine.compile("deal.amount", &[]).unwrap();
        let plan = SlotPlan::build(&[&e], &[]).unwrap();
        let mut s = Slots::new();
        assert_eq!(plan.fill_from_json("[1]", &mut s), Err(Ok("the input must be a JSON object, got a list".into())));
        assert!(matches!(plan.fill_from_json("{", &mut s), Err(Err(_))));
    }

    #[test]
    fn rhai_expressions_have_no_plan() {
        let engine = ExprEngine::default();
        let e = engine.compile("deal.region.to_lower() == \"na\"", &[]).unwrap();
        assert!(SlotPlan::build(&[&e], &[]).is_none());
    }
}
