//! Slots: a policy's field reads resolved before any input is seen.
//!
//! When every expression of a policy is compiled ahead of time, the input
//! paths they read (`deal.amount`, `rep.manager`) are numbered. A decision
//! fills those numbered slots straight from the JSON text (or from a parsed
//! value) and the expressions read the slots: no maps are built for the
//! input and no field is looked up by name. Errors are the same as on the
//! map path: a missing field names itself, a field read through something
//! that is not a mapping says so.

use std::cell::Cell;
use std::sync::Arc;

use smallvec::SmallVec;
use smol_str::SmolStr;

use crate::Expr;
use crate::input_shape::{self, MAX_ITEMS, MAX_KEYS};
use crate::ir::Node;
use crate::json::{self, JsonError};
use crate::value::{Map, Value};

pub use crate::slot::{Slot, Slots};

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
        slots.reserve(self.paths.len());
        fill_from_map(&self.trie, &self.paths, 0, root, slots);
        debug_assert_eq!(slots.len(), self.paths.len());
        Ok(())
    }

    /// One `Missing` slot per path (a plain loop: `resize` clones a
    /// template per slot, a measurable share of a decision).
    #[inline]
    fn empty_slots(&self, slots: &mut Slots) {
        slots.clear();
        slots.reserve(self.paths.len());
        for _ in 0..self.paths.len() {
            slots.push(Slot::Missing);
        }
    }

    /// Fills slots straight from JSON text; everything else in the text is
    /// checked as JSON and skipped. `Err(Ok(msg))` when the input is not an
    /// object, `Err(Err(e))` when it is not JSON.
    pub fn fill_from_json(&self, text: &str, slots: &mut Slots) -> Result<(), Result<String, JsonError>> {
        self.empty_slots(slots);
        let mut de = serde_json::Deserializer::from_str(text);
        let mut root_kind = None;
        let walk = Walk::default();
        let seed = TrieSeed {
            trie: &self.trie,
            paths: &self.paths,
            depth: 0,
            slots,
            root: Some(&mut root_kind),
            walk: &walk,
        };
        let result = serde::de::DeserializeSeed::deserialize(seed, &mut de).and_then(|_| de.end());
        // The walk above checks the input's shape as it reads (see
        // `input_shape`). When it found a problem, or could not be sure (a
        // value it skipped may hold lists or objects: the text has brackets
        // the walk did not account for), the whole text is checked, which
        // also says what is wrong and where. A shape problem is reported
        // before any other.
        if result.is_err() || walk.recheck.get() || (walk.skipped.get() && walk.containers.get() != brackets(text)) {
            input_shape::check(text).map_err(Err)?;
        }
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

/// What the walk reports when the input breaks a shape rule; the whole text
/// is then checked by [`input_shape::check`], which says what and where.
const SHAPE: &str = "the input breaks a shape rule";

/// Most keys of one object compared one by one (past it, the whole text is
/// checked once the walk is done).
const FEW_KEYS: usize = 16;

/// Walks one object of the input along the trie, checking its shape as it
/// goes: keys counted and never repeated, values read whole checked
/// (depth, width, keys), and the opening brackets it meets counted.
struct TrieSeed<'p> {
    trie: &'p Trie,
    paths: &'p [Vec<SmolStr>],
    depth: usize,
    slots: &'p mut [Slot],
    /// At the root: set to what the input was when it is not an object.
    root: Option<&'p mut Option<&'static str>>,
    walk: &'p Walk,
}

/// What the walk keeps across the objects it goes through.
#[derive(Default)]
struct Walk {
    /// Set when a repeated key could not be ruled out cheaply (an escaped
    /// key, an object with many keys no policy reads): the whole text is
    /// checked after the walk.
    recheck: Cell<bool>,
    /// Opening brackets accounted for: objects walked, and those inside
    /// the values read whole (which are checked as they are read).
    containers: Cell<usize>,
    /// Whether a value was skipped unseen: only then can the text hold a
    /// bracket the walk did not account for.
    skipped: Cell<bool>,
}

/// Opening brackets in JSON text, strings included.
fn brackets(text: &str) -> usize {
    // Byte-wide sums over chunks short enough not to overflow: a loop the
    // compiler turns into vector code.
    text.as_bytes()
        .chunks(255)
        .map(|chunk| {
            let n = chunk
                .iter()
                .fold(0u8, |n, &b| n + (u8::from(b == b'{') | u8::from(b == b'[')));
            usize::from(n)
        })
        .sum()
}

impl<'de> serde::de::DeserializeSeed<'de> for TrieSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// What one key of an object is to the trie.
enum Key<'de> {
    /// serde_json's key for an exact number: the value was a number.
    Number,
    /// The trie child at this position.
    Child(usize),
    /// A key no policy reads: as written when it has no escapes.
    Other(Option<&'de str>),
}

/// A key: which trie child it names, if any.
struct KeySeed<'p>(&'p Trie);

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'p> KeySeed<'p> {
    fn classify<'de>(&self, k: &str, borrowed: Option<&'de str>) -> Key<'de> {
        if k == NUMBER_TOKEN {
            return Key::Number;
        }
        match self.0.children.iter().position(|(c, _)| c.len() == k.len() && c == k) {
            Some(pos) => Key::Child(pos),
            None => Key::Other(borrowed),
        }
    }
}

impl<'de> serde::de::Visitor<'de> for KeySeed<'_> {
    type Value = Key<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E>(self, k: &'de str) -> Result<Self::Value, E> {
        Ok(self.classify(k, Some(k)))
    }
    fn visit_str<E>(self, k: &str) -> Result<Self::Value, E> {
        Ok(self.classify(k, None))
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

impl Walk {
    /// Checks a value read whole (a list or an object a policy reads as
    /// one value), found inside `enclosing` containers.
    #[inline]
    fn read_whole<E: serde::de::Error>(&self, raw: &str, enclosing: usize) -> Result<(), E> {
        match raw.as_bytes().first() {
            Some(b'{' | b'[') => self.container(raw, enclosing),
            _ => Ok(()),
        }
    }

    #[cold]
    fn container<E: serde::de::Error>(&self, raw: &str, enclosing: usize) -> Result<(), E> {
        if !input_shape::value_keeps_the_rules(raw, enclosing) {
            return Err(E::custom(SHAPE));
        }
        self.containers.set(self.containers.get() + brackets(raw));
        Ok(())
    }
}

impl<'de> serde::de::Visitor<'de> for TrieSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        use serde::de::Error;
        let enclosing = self.depth + 1;
        self.walk.containers.set(self.walk.containers.get() + 1);
        let mut keys = 0usize;
        // Trie children seen (the first 64), and the other keys as written.
        let mut read = 0u64;
        let mut others: SmallVec<[&'de str; 8]> = SmallVec::new();
        while let Some(key) = map.next_key_seed(KeySeed(self.trie))? {
            keys += 1;
            if keys > MAX_KEYS {
                return Err(A::Error::custom(SHAPE));
            }
            match key {
                Key::Number => {
                    // Not an object after all: the text had no bracket.
                    self.walk.containers.set(self.walk.containers.get() - 1);
                    map.next_value::<serde::de::IgnoredAny>()?;
                    return self.not_an_object("a number");
                }
                Key::Other(name) => {
                    match name {
                        Some(k) if others.len() < FEW_KEYS => {
                            if others.contains(&k) {
                                return Err(A::Error::custom(SHAPE));
                            }
                            others.push(k);
                        }
                        _ => self.walk.recheck.set(true),
                    }
                    // Skipped unseen; the bracket count notices any list or
                    // object inside.
                    self.walk.skipped.set(true);
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                Key::Child(pos) => {
                    if pos < 64 {
                        let bit = 1u64 << pos;
                        if read & bit != 0 {
                            return Err(A::Error::custom(SHAPE));
                        }
                        read |= bit;
                    } else {
                        self.walk.recheck.set(true);
                    }
                    match &self.trie.children[pos].1 {
                        TrieNode::Leaf(i) => {
                            let raw: &serde_json::value::RawValue = map.next_value()?;
                            self.walk.read_whole(raw.get(), enclosing)?;
                            self.slots[*i] = Slot::Present(raw_value(raw.get()).map_err(A::Error::custom)?);
                        }
                        TrieNode::Inner(inner) => map.next_value_seed(TrieSeed {
                            trie: inner,
                            paths: self.paths,
                            depth: self.depth + 1,
                            slots: &mut *self.slots,
                            root: None,
                            walk: self.walk,
                        })?,
                    }
                }
            }
        }
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        use serde::de::Error;
        let enclosing = self.depth + 1;
        self.walk.containers.set(self.walk.containers.get() + 1);
        let mut items = 0usize;
        while let Some(raw) = seq.next_element::<&serde_json::value::RawValue>()? {
            items += 1;
            if items > MAX_ITEMS {
                return Err(A::Error::custom(SHAPE));
            }
            self.walk.read_whole(raw.get(), enclosing)?;
        }
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

/// Pushes the slots below `trie`, read from `map` (the object at `depth`):
/// one look-up per trie key, each object on the way searched once for all
/// the paths through it. The trie was built from the sorted paths, so a
/// walk in order meets its leaves in slot order and each slot is pushed
/// once, never filled twice.
fn fill_from_map(trie: &Trie, paths: &[Vec<SmolStr>], depth: usize, map: &Map, slots: &mut Slots) {
    for (key, node) in &trie.children {
        match (node, map.get(key)) {
            (TrieNode::Leaf(i), found) => {
                debug_assert_eq!(slots.len(), *i);
                slots.push(found.map_or(Slot::Missing, |v| Slot::Present(v.clone())));
            }
            (TrieNode::Inner(inner), Some(Value::Map(m))) => fill_from_map(inner, paths, depth + 1, m, slots),
            (TrieNode::Inner(inner), Some(other)) => {
                let found = other.type_name();
                inner.each_leaf(&mut |i| {
                    let p = &paths[i];
                    slots.push(Slot::blocked(p[depth + 1].clone(), p[..=depth].join(".").into(), found));
                });
            }
            (TrieNode::Inner(inner), None) => inner.each_leaf(&mut |_| slots.push(Slot::Missing)),
        }
    }
}

impl Trie {
    /// Every slot below this node, in slot order.
    fn each_leaf(&self, f: &mut impl FnMut(usize)) {
        for (_, node) in &self.children {
            match node {
                TrieNode::Leaf(i) => f(*i),
                TrieNode::Inner(inner) => inner.each_leaf(f),
            }
        }
    }
}

/// Marks every slot below a non-mapping value as blocked by it.
fn block(trie: &Trie, paths: &[Vec<SmolStr>], depth: usize, found: &'static str, slots: &mut [Slot]) {
    for (_, node) in &trie.children {
        match node {
            TrieNode::Leaf(i) => {
                let p = &paths[*i];
                slots[*i] = Slot::blocked(p[depth].clone(), p[..depth].join(".").into(), found);
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

    /// The slot path checks the input's shape as it reads (the decide path
    /// no longer scans the text first): every rule of `input_shape`, in
    /// the parts it reads and the parts it skips, with the same messages.
    #[test]
    fn the_shape_is_checked_while_reading() {
        let engine = ExprEngine::default();
        let e = engine
            .compile("deal.amount > 0 && deal.items == deal.items", &[])
            .unwrap();
        let plan = SlotPlan::build(&[&e], &[]).unwrap();
        let fill = |json: &str| {
            let mut s = Slots::new();
            plan.fill_from_json(json, &mut s).map_err(|e| match e {
                Ok(m) => m,
                Err(e) => e.message,
            })
        };
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let wide = (0..=MAX_KEYS)
            .map(|i| format!(r#""k{i}": 0"#))
            .collect::<Vec<_>>()
            .join(",");
        let cases = [
            // repeated keys: read, unread, escaped, inside read and unread values
            (
                r#"{"deal": {"amount": 1, "amount": 2}}"#.to_string(),
                "the key `deal.amount` appears twice",
            ),
            (
                r#"{"deal": {"amount": 1}, "deal": {}}"#.into(),
                "the key `deal` appears twice",
            ),
            (
                r#"{"deal": {"amount": 1, "x": 1, "x": 2}}"#.into(),
                "the key `deal.x` appears twice",
            ),
            (
                r#"{"deal": {"amount": 1}, "a": 1, "\u0061": 2}"#.into(),
                "the key `a` appears twice",
            ),
            (
                r#"{"deal": {"am\u006funt": 1, "amount": 2}}"#.into(),
                "the key `deal.amount` appears twice",
            ),
            (
                r#"{"deal": {"amount": 1, "items": [{"s": 1, "s": 2}]}}"#.into(),
                "the key `deal.items[0].s` appears twice",
            ),
            (
                r#"{"deal": {"amount": 1}, "rep": {"r": {"q": 1, "q": 1}}}"#.into(),
                "the key `rep.r.q` appears twice",
            ),
            // depth: unread, read whole, and a list where an object was expected
            (
                format!(r#"{{"deal": {{"amount": 1}}, "pad": {}}}"#, deep(200)),
                "nested deeper than 128 levels at `pad",
            ),
            (
                format!(r#"{{"deal": {{"amount": 1, "items": {}}}}}"#, deep(127)),
                "nested deeper than 128 levels at `deal.items",
            ),
            (
                format!(r#"{{"deal": {}}}"#, deep(128)),
                "nested deeper than 128 levels at `deal",
            ),
            // width
            (
                format!(r#"{{"deal": {{"amount": 1}}, "wide": {{{wide}}}}}"#),
                "more than 10000 keys in the object `wide`",
            ),
            (
                format!(r#"{{"deal": {{"amount": 1, {wide}}}}}"#),
                "more than 10000 keys in the object `deal`",
            ),
        ];
        for (json, want) in &cases {
            let got = fill(json).unwrap_err();
            assert!(got.contains(want), "{json:.120}: {got}");
            // the same answer as the whole-text check
            assert_eq!(got, input_shape::check(json).unwrap_err().message);
        }
        // Many unread keys, escaped unread keys: still exact, no false alarm.
        let many = (0..40)
            .map(|i| format!(r#""k{i}": [{i}]"#))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(fill(&format!(r#"{{"deal": {{"amount": 1, {many}}}}}"#)), Ok(()));
        let many_dup = format!(r#"{{"deal": {{"amount": 1, {many}, "k3": 0}}}}"#);
        assert_eq!(fill(&many_dup).unwrap_err(), "the key `deal.k3` appears twice");
        assert_eq!(fill(r#"{"deal": {"amount": 1}, "\u0062": 1, "c": 2}"#), Ok(()));
        assert_eq!(
            fill(&format!(r#"{{"deal": {{"amount": 1, "items": {}}}}}"#, deep(126))),
            Ok(())
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
