//! The shape every JSON input must have before anything reads, stores or
//! logs it: nested no deeper than [`MAX_DEPTH`], no object with more than
//! [`MAX_KEYS`] keys, no array with more than [`MAX_ITEMS`] items, and no
//! key written twice in one object (JSON parsers silently keep the last
//! value, so `"discount_pct": 5, "discount_pct": 35` would decide on 35
//! while a reviewer reads 5).
//!
//! The walk keeps its own stack, so no input can exhaust the thread's: it
//! runs on the whole body, including fields no policy reads.
//!
//! ```
//! use dealrules_expr::input_shape::check;
//! assert!(check(r#"{"deal": {"amount": "1.005"}}"#).is_ok());
//! let err = check(r#"{"deal": {"discount_pct": 5, "discount_pct": 35}}"#).unwrap_err();
//! assert!(err.message.contains("`deal.discount_pct`"), "{err}");
//! ```

use std::borrow::Cow;
use std::collections::HashSet;

use smallvec::SmallVec;

pub use crate::json::{JsonError, MAX_DEPTH};

/// Most keys one object may have.
pub const MAX_KEYS: usize = 10_000;
/// Most items one array may have.
pub const MAX_ITEMS: usize = 1_000_000;

/// Keys seen in one open object, as written in the input: a short inline
/// list (no allocation for the objects inputs are made of), a set once it
/// grows, so a 10,000-key object costs a set's work, not a quadratic scan.
// Inline on purpose: the short list lives in the frame, with no allocation.
#[allow(clippy::large_enum_variant)]
enum Seen<'a> {
    Few(SmallVec<[Cow<'a, str>; 6]>),
    Many(HashSet<Cow<'a, str>>),
}

impl<'a> Seen<'a> {
    /// False when `key` was already there.
    fn insert(&mut self, key: Cow<'a, str>) -> bool {
        match self {
            Seen::Few(keys) => {
                if keys.contains(&key) {
                    return false;
                }
                keys.push(key);
                if keys.len() > 16 {
                    *self = Seen::Many(keys.drain(..).collect());
                }
                true
            }
            Seen::Many(keys) => keys.insert(key),
        }
    }

    fn len(&self) -> usize {
        match self {
            Seen::Few(k) => k.len(),
            Seen::Many(k) => k.len(),
        }
    }
}

/// An open container. The path to a value is only put together when there
/// is something to report, from the keys and indexes on the stack.
#[allow(clippy::large_enum_variant)]
enum Frame<'a> {
    Object {
        seen: Seen<'a>,
        current: Cow<'a, str>,
        expecting_key: bool,
    },
    Array {
        items: usize,
    },
}

/// JSON text whose shape [`check`] has passed: a caller that checked a body
/// early (before logging it) hands this on, so the check runs once.
#[derive(Debug, Clone, Copy)]
pub struct Shaped<'a>(&'a str);

impl<'a> Shaped<'a> {
    /// The text, once [`check`] passes.
    pub fn check(text: &'a str) -> Result<Shaped<'a>, JsonError> {
        check(text).map(|()| Shaped(text))
    }

    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// A value inside the checked text (say, one member's raw JSON): its
    /// shape passed with the whole, so it is not checked again. `None`
    /// when `part` does not lie within the checked text.
    pub fn part(&self, part: &'a str) -> Option<Shaped<'a>> {
        let whole = self.0.as_bytes().as_ptr_range();
        let inner = part.as_bytes().as_ptr_range();
        (whole.start <= inner.start && inner.end <= whole.end).then_some(Shaped(part))
    }
}

/// Checks the whole document; the first problem, with its line and column.
///
/// A single pass over the bytes that follows strings and brackets only: it
/// is about shape, so syntax is left to the parser that reads the input
/// next (the check never fails to stop, whatever the bytes).
pub fn check(text: &str) -> Result<(), JsonError> {
    walk(text, 0).map_err(|(message, at)| {
        let before = &text.as_bytes()[..at.min(text.len())];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let col = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        JsonError { message, line, col }
    })
}

/// `deal.items[2].sku` for the value the innermost frame is at.
fn path_of(stack: &[Frame]) -> String {
    let mut out = String::new();
    for f in stack {
        match f {
            Frame::Object { current, .. } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(current);
            }
            Frame::Array { items } => out.push_str(&format!("[{}]", items.saturating_sub(1))),
        }
    }
    if out.is_empty() { "(the top level)".into() } else { out }
}

/// A key as its text: borrowed, or decoded when it has escapes.
fn key_text(raw: &str, escaped: bool) -> Cow<'_, str> {
    if escaped {
        match serde_json::from_str::<String>(&format!("\"{raw}\"")) {
            Ok(k) => Cow::Owned(k),
            Err(_) => Cow::Borrowed(raw),
        }
    } else {
        Cow::Borrowed(raw)
    }
}

/// The bytes the walk stops at: quotes, brackets and commas.
const STRUCTURAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut k = 0;
    let bytes = *b"\"{}[],";
    while k < bytes.len() {
        t[bytes[k] as usize] = true;
        k += 1;
    }
    t
};

/// Whether one value, found inside `enclosing` containers of a document
/// whose other parts are checked elsewhere, keeps the rules. For parsers
/// that check as they read and only need to know; [`check`] on the whole
/// document says what is wrong and where.
pub(crate) fn value_keeps_the_rules(value: &str, enclosing: usize) -> bool {
    walk(value, enclosing).is_ok()
}

fn walk(text: &str, enclosing: usize) -> Result<(), (String, usize)> {
    let b = text.as_bytes();
    let mut stack: SmallVec<[Frame; 8]> = SmallVec::new();
    let mut i = 0;
    while i < b.len() {
        // Most bytes (names, numbers, spaces) say nothing about shape.
        if !STRUCTURAL[b[i] as usize] {
            i += 1;
            continue;
        }
        match b[i] {
            b'"' => {
                let start = i + 1;
                // To the closing quote, stepping over escapes.
                let mut j = start;
                let mut escaped = false;
                loop {
                    match memchr::memchr2(b'"', b'\\', &b[j..]) {
                        Some(k) if b[j + k] == b'"' => {
                            j += k;
                            break;
                        }
                        Some(k) => {
                            escaped = true;
                            j = (j + k + 2).min(b.len());
                        }
                        None => {
                            j = b.len();
                            break;
                        }
                    }
                }
                let end = j.min(b.len());
                if let Some(Frame::Object {
                    seen,
                    current,
                    expecting_key,
                }) = stack.last_mut()
                    && *expecting_key
                {
                    *expecting_key = false;
                    let key = key_text(&text[start..end], escaped);
                    let fresh = seen.insert(key.clone());
                    let count = seen.len();
                    *current = key;
                    if !fresh {
                        return Err((format!("the key `{}` appears twice", path_of(&stack)), i));
                    }
                    if count > MAX_KEYS {
                        stack.pop();
                        return Err((
                            format!("more than {MAX_KEYS} keys in the object `{}`", path_of(&stack)),
                            i,
                        ));
                    }
                }
                i = end + 1;
                continue;
            }
            open @ (b'{' | b'[') => {
                if enclosing + stack.len() >= MAX_DEPTH {
                    return Err((
                        format!("nested deeper than {MAX_DEPTH} levels at `{}`", path_of(&stack)),
                        i,
                    ));
                }
                stack.push(if open == b'{' {
                    Frame::Object {
                        seen: Seen::Few(SmallVec::new()),
                        current: Cow::Borrowed(""),
                        expecting_key: true,
                    }
                } else {
                    let empty = b[i + 1..].iter().find(|c| !c.is_ascii_whitespace()) == Some(&b']');
                    Frame::Array {
                        items: usize::from(!empty),
                    }
                });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { expecting_key, .. }) => *expecting_key = true,
                Some(Frame::Array { items }) => {
                    *items += 1;
                    if *items > MAX_ITEMS {
                        stack.pop();
                        return Err((
                            format!("more than {MAX_ITEMS} items in the list `{}`", path_of(&stack)),
                            i,
                        ));
                    }
                }
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_part_of_checked_text_needs_no_second_check() {
        let body = r#"{"policies": ["a"], "input": {"deal": {"amount": 1}}}"#;
        let checked = Shaped::check(body).unwrap();
        let input = &body[body.find("{\"deal").unwrap()..body.len() - 1];
        assert_eq!(checked.part(input).unwrap().as_str(), input);
        let elsewhere = String::from(input);
        assert!(checked.part(&elsewhere).is_none());
    }

    use super::*;

    #[test]
    fn ordinary_inputs_pass() {
        for ok in [
            r#"{}"#,
            r#"[]"#,
            r#"1"#,
            r#"{"deal": {"amount": "1.005", "tags": ["a", {"b": null}], "x": true}}"#,
            r#"{"a": {"a": {"a": 1}}}"#,
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    /// Regression: a decide body with `pad` nested 100,000 deep was accepted
    /// (only fields a policy reads were depth-checked) and logged whole.
    #[test]
    fn depth_is_checked_on_the_whole_body() {
        let deep = format!(
            r#"{{"deal": {{"amount": 1}}, "pad": {}1{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let err = check(&deep).unwrap_err();
        assert!(err.message.contains("nested deeper than 128 levels at `pad"), "{err}");
        let deep_map = format!(r#"{{"rep": {}1{}}}"#, r#"{"r": "#.repeat(100_000), "}".repeat(100_000));
        assert!(check(&deep_map).unwrap_err().message.contains("nested deeper than 128"));
        let at_limit = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(check(&at_limit), Ok(()));
    }

    /// Regression: `"discount_pct": 5, "discount_pct": 35` silently decided on 35.
    #[test]
    fn duplicate_keys_are_refused_naming_the_key() {
        let err = check(r#"{"deal": {"discount_pct": 5, "discount_pct": 35}}"#).unwrap_err();
        assert_eq!(err.message, "the key `deal.discount_pct` appears twice");
        assert!(err.line == 1 && err.col > 20, "{err:?}");
        let err = check(r#"{"a": 1, "a": 2}"#).unwrap_err();
        assert_eq!(err.message, "the key `a` appears twice");
        // Escapes are decoded before keys are compared.
        assert!(check(r#"{"a": 1, "\u0061": 2}"#).is_err());
        // The same key in different objects is fine.
        assert_eq!(
            check(r#"{"a": {"x": 1}, "b": {"x": 1}, "c": [{"x": 1}, {"x": 2}]}"#),
            Ok(())
        );
        // Large objects use a set: duplicates are still found.
        let many: Vec<String> = (0..100)
            .map(|i| format!(r#""k{i}": {i}"#))
            .chain([r#""k57": 0"#.to_string()])
            .collect();
        let err = check(&format!("{{{}}}", many.join(","))).unwrap_err();
        assert_eq!(err.message, "the key `k57` appears twice");
    }

    #[test]
    fn too_many_keys_are_refused() {
        let many: Vec<String> = (0..=MAX_KEYS).map(|i| format!(r#""k{i}": 0"#)).collect();
        let err = check(&format!(r#"{{"deal": {{{}}}}}"#, many.join(","))).unwrap_err();
        assert!(
            err.message.contains("more than 10000 keys in the object `deal`"),
            "{err}"
        );
    }

    /// Syntax is the parser's job (every caller parses next); on any bytes
    /// the check stops, without a panic, whatever it answers.
    #[test]
    fn malformed_input_never_stops_the_check() {
        for text in [
            "{\"a\": [1, 2,]}",
            "{\"a\": 1} x",
            "",
            "\"",
            "\"\\",
            "{\"a",
            "]]]]}}}",
            "{\"\\é\": 1}",
            "[[[[[",
            ",,,,",
            "{\"a\" \"a\"}",
        ] {
            let _ = check(text);
        }
        assert_eq!(
            check(r#"{"a": "}{][\"", "b": "x\\"}"#),
            Ok(()),
            "brackets and quotes inside strings are text"
        );
    }
}
