//! JSON text to [`Value`], fast and exact: numbers go from their digits
//! straight to `Decimal`, never through a binary float. jiter does the
//! parsing and validation; this walks its tokens.

use std::sync::Arc;

use jiter::{Jiter, JiterError, Peek};
use smol_str::SmolStr;

use crate::interest::Interest;
use crate::value::{Map, Value, read_decimal};

/// Deepest nesting an input may have; deeper input is refused, not recursed into.
pub const MAX_DEPTH: usize = 128;

/// Why JSON text was refused, with where (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at line {line} column {col}")]
pub struct JsonError {
    pub message: String,
    pub line: usize,
    pub col: usize,
}

pub(crate) enum Failure {
    Jiter(JiterError),
    Other(String, usize),
}

impl From<JiterError> for Failure {
    fn from(e: JiterError) -> Self {
        Failure::Jiter(e)
    }
}

/// Parses one JSON document.
pub fn parse(text: &str) -> Result<Value, JsonError> {
    parse_projected(text, &Interest::All)
}

/// Parses one JSON document, building only the fields `interest` names
/// (the rest is checked as JSON and skipped).
pub fn parse_projected(text: &str, interest: &Interest) -> Result<Value, JsonError> {
    let mut j = Jiter::new(text.as_bytes());
    let result = (|| {
        let peek = j.peek()?;
        let v = read(&mut j, peek, 0, interest)?;
        j.finish()?;
        Ok::<_, Failure>(v)
    })();
    result.map_err(|f| {
        let (message, index) = match f {
            Failure::Jiter(e) => (e.error_type.to_string(), e.index),
            Failure::Other(m, i) => (m, i),
        };
        let p = j.error_position(index);
        JsonError {
            message,
            line: p.line,
            col: p.column,
        }
    })
}

pub(crate) fn read(j: &mut Jiter, peek: Peek, depth: usize, interest: &Interest) -> Result<Value, Failure> {
    if depth > MAX_DEPTH {
        return Err(Failure::Other(
            format!("nested deeper than {MAX_DEPTH} levels"),
            j.current_index(),
        ));
    }
    Ok(match peek {
        Peek::Null => {
            j.known_null()?;
            Value::Null
        }
        Peek::True | Peek::False => Value::Bool(j.known_bool(peek)?),
        Peek::String => Value::Str(SmolStr::new(j.known_str()?)),
        Peek::Array => {
            let mut items = Vec::new();
            let mut next = j.known_array()?;
            while let Some(p) = next {
                items.push(read(j, p, depth + 1, &Interest::All)?);
                next = j.array_step()?;
            }
            Value::List(Arc::new(items))
        }
        Peek::Object => match interest {
            Interest::All => {
                let mut map = Map::with_capacity(8);
                let mut key = j.known_object()?.map(SmolStr::new);
                while let Some(k) = key {
                    let p = j.peek()?;
                    let v = read(j, p, depth + 1, &Interest::All)?;
                    map.insert(k, v);
                    key = j.next_key()?.map(SmolStr::new);
                }
                Value::map(map)
            }
            Interest::Fields(fields) => {
                let mut map = Map::with_capacity(fields.len());
                let mut key = j
                    .known_object()?
                    .map(|k| interest.field(k).map(|(k, i)| (k.clone(), i)));
                while let Some(wanted) = key {
                    let p = j.peek()?;
                    match wanted {
                        Some((k, sub)) => {
                            let v = read(j, p, depth + 1, sub)?;
                            map.insert(k, v);
                        }
                        None => j.known_skip(p)?,
                    }
                    key = j.next_key()?.map(|k| interest.field(k).map(|(k, i)| (k.clone(), i)));
                }
                Value::map(map)
            }
        },
        p if p.is_num() => {
            let at = j.current_index();
            let bytes = j.known_number_bytes(p)?;
            let text = std::str::from_utf8(bytes).unwrap_or_default();
            match read_decimal(text) {
                Ok(d) => Value::Num(d),
                Err(e) => return Err(Failure::Other(e.to_string(), at)),
            }
        }
        _ => {
            // Let jiter describe what it found.
            j.known_skip(peek)?;
            return Err(Failure::Other("expected a JSON value".into(), j.current_index()));
        }
    })
}

impl Value {
    /// Parses JSON text; numbers are read exactly, never through binary floats.
    pub fn from_json_str(text: &str) -> Result<Value, JsonError> {
        parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_everything_exactly() {
        let v = parse(r#" {"a": [1, -2.50, 1e3, true, false, null, "x\"y\u00e9"], "b": {"c": 0.1}} "#).unwrap();
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"a":[1,-2.5,1000,true,false,null,"x\"yé"],"b":{"c":0.1}}"#
        );
    }

    #[test]
    fn projection_skips_what_no_policy_reads() {
        let mut i = Interest::default();
        i.add_path(&["deal", "amount"]);
        i.add_path(&["rep"]);
        let v = parse_projected(
            r#"{"deal": {"amount": 5, "notes": [1, {"x": 2}], "stage": "won"}, "rep": {"id": "r1"}, "other": 1}"#,
            &i,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"deal":{"amount":5},"rep":{"id":"r1"}}"#
        );
        // what is skipped is still checked as JSON
        assert!(parse_projected(r#"{"deal": {"amount": 5, "notes": [1,}}"#, &i).is_err());
        // a field that is not an object is kept whole
        let v = parse_projected(r#"{"deal": "oops"}"#, &i).unwrap();
        assert_eq!(v.get("deal"), Some(&Value::str("oops")));
    }

    #[test]
    fn later_duplicate_keys_win() {
        let v = parse(r#"{"a": 1, "a": 2}"#).unwrap();
        assert_eq!(v.get("a"), Some(&Value::Num(2.into())));
        assert_eq!(v.as_map().unwrap().len(), 1);
    }

    #[test]
    fn errors_have_positions() {
        let e = parse("{\n  \"a\": tru\n}").unwrap_err();
        assert!(e.line >= 2 && !e.message.is_empty(), "{e}");
        assert!(parse("[1, 2").is_err());
        assert!(parse("{} x").is_err());
        assert!(parse("NaN").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_recursed() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = parse(&deep).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{e}");
    }

    #[test]
    fn huge_numbers_are_refused() {
        assert!(parse("1e400").is_err());
        assert!(parse("123456789012345678901234567890123").is_err());
    }

    /// Regression: rust_decimal rounded the digits past its 28th, and the
    /// plan rounded again to cents: 1.00499...9 paid 1.01, not 1.00.
    #[test]
    fn numbers_with_more_digits_than_a_decimal_holds_are_refused_not_rounded() {
        let e = parse(r#"{"amount": 1.00499999999999999999999999999999}"#).unwrap_err();
        assert_eq!(
            e.message,
            "number 1.00499999999999999999999999999999 has more digits than an exact decimal holds (28 significant digits); it is refused rather than rounded"
        );
        assert_eq!((e.line, e.col), (1, 12));
        // 28 digits are held as written.
        let v = parse(r#"{"amount": 1.004999999999999999999999999}"#).unwrap();
        assert_eq!(
            v.get("amount").unwrap().as_decimal().unwrap().to_string(),
            "1.004999999999999999999999999"
        );
    }
}
