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

use jiter::{Jiter, JiterError, Peek};
use std::collections::HashSet;
use smol_str::SmolStr;

pub use crate::json::{JsonError, MAX_DEPTH};

/// Most keys one object may have.
pub const MAX_KEYS: usize = 10_000;
/// Most items one array may have.
pub const MAX_ITEMS: usize = 1_000_000;

/// Keys seen in one open object: a short list, a set once it grows, so a
/// 10,000-key object costs a set's work, not a quadratic scan.
enum Seen {
    Few(Vec<SmolStr>),
    Many(HashSet<SmolStr>),
}

impl Seen {
    /// False when `key` was already there.
    fn insert(&mut self, key: &str) -> bool {
        match self {
            Seen::Few(keys) => {
                if keys.iter().any(|k| k == key) {
                    return false;
                }
                keys.push(SmolStr::new(key));
                if keys.len() > 16 {
                    *self = Seen::Many(keys.drain(..).collect());
                }
                true
            }
            Seen::Many(keys) => keys.insert(SmolStr::new(key)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Seen::Few(k) => k.len(),
            Seen::Many(k) => k.len(),
        }
    }
}

enum Frame {
    Object { path: String, seen: Seen },
    Array { path: String, items: usize },
}

enum Fail {
    Jiter(JiterError),
    Shape(String, usize),
}

impl From<JiterError> for Fail {
    fn from(e: JiterError) -> Self {
        Fail::Jiter(e)
    }
}

/// Checks the whole document; the first problem, with its line and column.
pub fn check(text: &str) -> Result<(), JsonError> {
    let mut j = Jiter::new(text.as_bytes());
    let result = walk(&mut j);
    result.map_err(|f| {
        let (message, index) = match f {
            Fail::Jiter(e) => (e.error_type.to_string(), e.index),
            Fail::Shape(m, i) => (m, i),
        };
        let p = j.error_position(index);
        JsonError { message, line: p.line, col: p.column }
    })
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_string() } else { format!("{parent}.{key}") }
}

fn shown(path: &str) -> &str {
    if path.is_empty() { "(the top level)" } else { path }
}

fn walk(j: &mut Jiter) -> Result<(), Fail> {
    let mut stack: Vec<Frame> = Vec::new();
    // The value to read next, and the path it sits at.
    let mut next: Option<(Peek, String)> = Some((j.peek()?, String::new()));
    loop {
        if let Some((peek, path)) = next.take() {
            match peek {
                Peek::Array | Peek::Object if stack.len() >= MAX_DEPTH => {
                    return Err(Fail::Shape(format!("nested deeper than {MAX_DEPTH} levels at `{}`", shown(&path)), j.current_index()));
                }
                // An empty container is read whole by its first step.
                Peek::Array => {
                    if let Some(p) = j.known_array()? {
                        next = Some((p, format!("{path}[0]")));
                        stack.push(Frame::Array { path, items: 1 });
                        continue;
                    }
                }
                Peek::Object => {
                    if let Some(key) = j.known_object()?.map(str::to_owned) {
                        let mut seen = Seen::Few(Vec::new());
                        seen.insert(&key);
                        let child = join(&path, &key);
                        stack.push(Frame::Object { path, seen });
                        next = Some((j.peek()?, child));
                        continue;
                    }
                }
                scalar => j.known_skip(scalar)?,
            }
        }
        // The value is read: step in the innermost open container.
        let Some(frame) = stack.last_mut() else { break };
        match frame {
            Frame::Array { path, items } => match j.array_step()? {
                Some(p) => {
                    if *items >= MAX_ITEMS {
                        return Err(Fail::Shape(format!("more than {MAX_ITEMS} items in the list `{}`", shown(path)), j.current_index()));
                    }
                    next = Some((p, format!("{path}[{items}]")));
                    *items += 1;
                }
                None => {
                    stack.pop();
                }
            },
            Frame::Object { path, seen } => {
                let at = j.current_index();
                match j.next_key()? {
                    Some(key) => {
                        if !seen.insert(key) {
                            return Err(Fail::Shape(format!("the key `{}` appears twice", join(path, key)), at));
                        }
                        if seen.len() > MAX_KEYS {
                            return Err(Fail::Shape(format!("more than {MAX_KEYS} keys in the object `{}`", shown(path)), at));
                        }
                        let child = join(path, key);
                        next = Some((j.peek()?, child));
                    }
                    None => {
                        stack.pop();
                    }
                }
            }
        }
    }
    j.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_inputs_pass() {
        for ok in [r#"{}"#, r#"[]"#, r#"1"#, r#"{"deal": {"amount": "1.005", "tags": ["a", {"b": null}], "x": true}}"#, r#"{"a": {"a": {"a": 1}}}"#] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    /// Regression: a decide body with `pad` nested 100,000 deep was accepted
    /// (only fields a policy reads were depth-checked) and logged whole.
    #[test]
    fn depth_is_checked_on_the_whole_body() {
        let deep = format!(r#"{{"deal": {{"amount": 1}}, "pad": {}1{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
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
        assert_eq!(check(r#"{"a": {"x": 1}, "b": {"x": 1}, "c": [{"x": 1}, {"x": 2}]}"#), Ok(()));
        // Large objects use a set: duplicates are still found.
        let many: Vec<String> = (0..100).map(|i| format!(r#""k{i}": {i}"#)).chain([r#""k57": 0"#.to_string()]).collect();
        let err = check(&format!("{{{}}}", many.join(","))).unwrap_err();
        assert_eq!(err.message, "the key `k57` appears twice");
    }

    #[test]
    fn too_many_keys_are_refused() {
        let many: Vec<String> = (0..=MAX_KEYS).map(|i| format!(r#""k{i}": 0"#)).collect();
        let err = check(&format!(r#"{{"deal": {{{}}}}}"#, many.join(","))).unwrap_err();
        assert!(err.message.contains("more than 10000 keys in the object `deal`"), "{err}");
    }

    #[test]
    fn malformed_json_is_an_error_with_a_position() {
        let err = check("{\"a\": [1, 2,]}").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(check("{\"a\": 1} x").is_err());
        assert!(check("").is_err());
    }
}
