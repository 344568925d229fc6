//! The values policies compute with: JSON-compatible, numbers exact decimals.

use std::fmt;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use smol_str::SmolStr;

/// A fact, a variable or a result. Numbers are always exact decimals.
#[derive(Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Num(Decimal),
    Str(SmolStr),
    List(Arc<Vec<Value>>),
    Map(Arc<Map>),
}

/// A small ordered map; facts have few keys, so a scan beats hashing.
#[derive(Clone, PartialEq, Default)]
pub struct Map {
    entries: Vec<(SmolStr, Value)>,
}

impl Map {
    pub fn new() -> Self {
        Map { entries: Vec::new() }
    }

    pub fn with_capacity(n: usize) -> Self {
        Map {
            entries: Vec::with_capacity(n),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`, replacing an earlier value.
    pub fn insert(&mut self, key: impl Into<SmolStr>, value: Value) {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Appends without looking for an earlier value (a later duplicate wins on `get`).
    fn push(&mut self, key: SmolStr, value: Value) {
        self.entries.push((key, value));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&SmolStr, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &SmolStr> {
        self.entries.iter().map(|(k, _)| k)
    }
}

impl FromIterator<(SmolStr, Value)> for Map {
    fn from_iter<T: IntoIterator<Item = (SmolStr, Value)>>(iter: T) -> Self {
        let mut m = Map::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(SmolStr::new(s))
    }

    pub fn map(m: Map) -> Value {
        Value::Map(Arc::new(m))
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Arc::new(items))
    }

    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_decimal(&self) -> Option<Decimal> {
        match self {
            Value::Num(d) => Some(*d),
            _ => None,
        }
    }

    /// A field of a map value, if this is a map and the field is there.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// What a policy author calls this kind of value, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Num(_) => "a number",
            Value::Str(_) => "text",
            Value::List(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Present and non-empty: not null, not "", not an empty list or mapping.
    pub fn is_filled(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Str(s) => !s.trim().is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            _ => true,
        }
    }

    /// A JSON value as facts. A number no exact decimal holds is kept as
    /// its text, so that using it as a number fails with its digits named
    /// instead of computing with a rounded copy; [`Value::try_from_json`]
    /// refuses it outright.
    pub fn from_json(v: &serde_json::Value) -> Value {
        Value::convert_json(v, &mut |text| {
            Ok::<_, NumberError>(read_decimal(text).map(Value::Num).unwrap_or_else(|_| Value::str(text)))
        })
        .unwrap_or_default()
    }

    /// A JSON value as facts, refusing any number an exact decimal cannot
    /// hold (too many digits, or too large) rather than rounding it.
    pub fn try_from_json(v: &serde_json::Value) -> Result<Value, NumberError> {
        Value::convert_json(v, &mut |text| read_decimal(text).map(Value::Num))
    }

    fn convert_json<E>(v: &serde_json::Value, number: &mut impl FnMut(&str) -> Result<Value, E>) -> Result<Value, E> {
        Ok(match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => number(n.as_str())?,
            serde_json::Value::String(s) => Value::Str(SmolStr::new(s)),
            serde_json::Value::Array(a) => Value::list(
                a.iter()
                    .map(|x| Value::convert_json(x, number))
                    .collect::<Result<_, E>>()?,
            ),
            serde_json::Value::Object(o) => {
                let mut m = Map::with_capacity(o.len());
                for (k, v) in o {
                    m.push(SmolStr::new(k), Value::convert_json(v, number)?);
                }
                Value::map(m)
            }
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Num(d) => decimal_to_json(*d),
            Value::Str(s) => serde_json::Value::String(s.to_string()),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => serde_json::Value::Object(m.iter().map(|(k, v)| (k.to_string(), v.to_json())).collect()),
        }
    }
}

/// A decimal as an exact JSON number (`500000`, `0.05`).
pub fn decimal_to_json(d: Decimal) -> serde_json::Value {
    let text = d.normalize().to_string();
    text.parse::<serde_json::Number>()
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::String(text))
}

/// Why text is not an exact decimal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("`{0}` is not a number")]
    NotANumber(String),
    #[error("number {0} is out of range for an exact decimal")]
    OutOfRange(String),
    /// More significant digits than the decimal type keeps (28 or 29):
    /// reading it would round it once here and again wherever money is
    /// rounded, so it is refused instead.
    #[error(
        "number {0} has more digits than an exact decimal holds (28 significant digits); it is refused rather than rounded"
    )]
    TooPrecise(String),
}

impl NumberError {
    /// Whether the text was written as a number (and only its size is wrong).
    pub fn is_number_shaped(&self) -> bool {
        !matches!(self, NumberError::NotANumber(_))
    }
}

/// Reads a number as written: `40000`, `0.1`, `1e3`.
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    read_decimal(text).ok()
}

/// Reads a number as written (`40000`, `0.1`, `1e3`), exactly or not at
/// all: `rust_decimal` alone rounds digits beyond its 28th silently, so
/// `1.00499999999999999999999999999999` would become `1.005` and then
/// round to cents as 1.01, where the number itself rounds to 1.00.
#[inline]
pub fn read_decimal(text: &str) -> Result<Decimal, NumberError> {
    use std::str::FromStr;
    // Up to 28 characters cannot hold more than 28 digits or a scale
    // above 28: whatever parses is exact. (`Decimal::from_str` reads no
    // exponent: `1e5` takes the long way.)
    if text.len() <= 28
        && let Ok(d) = Decimal::from_str(text)
    {
        return Ok(d);
    }
    read_decimal_exactly(text)
}

/// [`read_decimal`] for long numbers and exponents: the digits written
/// are compared with the digits held.
#[cold]
fn read_decimal_exactly(text: &str) -> Result<Decimal, NumberError> {
    use std::str::FromStr;
    let parsed = Decimal::from_str(text).or_else(|_| Decimal::from_scientific(text));
    let Some(written) = Digits::of(text) else {
        return Err(NumberError::NotANumber(text.to_string()));
    };
    match parsed {
        Ok(d) if written == Digits::of_decimal(d) => Ok(d),
        Ok(_) => Err(NumberError::TooPrecise(text.to_string())),
        Err(_) => Err(NumberError::OutOfRange(text.to_string())),
    }
}

/// A number's value as its significant digits and a power of ten, without
/// leading or trailing zeros: `12.50` and `1.25e1` are both ("125", -1).
#[derive(Debug, PartialEq, Eq)]
struct Digits {
    digits: String,
    /// `None` when the written exponent does not fit an `i64`.
    exponent: Option<i64>,
}

impl Digits {
    /// `None` when `text` is not written as a number.
    fn of(text: &str) -> Option<Digits> {
        let body = text.strip_prefix(['-', '+']).unwrap_or(text);
        let (mantissa, exponent) = match body.split_once(['e', 'E']) {
            Some((m, e)) => {
                let digits = e.strip_prefix(['-', '+']).unwrap_or(e);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (m, e.parse::<i64>().ok())
            }
            None => (body, Some(0)),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || b == b'_');
        if !is_digits(int)
            || !is_digits(frac)
            || !(int.bytes().any(|b| b.is_ascii_digit()) || frac.bytes().any(|b| b.is_ascii_digit()))
        {
            return None;
        }
        let frac_len = frac.bytes().filter(|b| b.is_ascii_digit()).count() as i64;
        let all: String = int.chars().chain(frac.chars()).filter(char::is_ascii_digit).collect();
        Some(Digits::normal(&all, exponent.and_then(|e| e.checked_sub(frac_len))))
    }

    fn of_decimal(d: Decimal) -> Digits {
        Digits::normal(&d.mantissa().unsigned_abs().to_string(), Some(-i64::from(d.scale())))
    }

    fn normal(digits: &str, exponent: Option<i64>) -> Digits {
        let digits = digits.trim_start_matches('0');
        let significant = digits.trim_end_matches('0');
        if significant.is_empty() {
            return Digits {
                digits: String::new(),
                exponent: Some(0),
            };
        }
        let zeros = (digits.len() - significant.len()) as i64;
        Digits {
            digits: significant.to_string(),
            exponent: exponent.and_then(|e| e.checked_add(zeros)),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Num(d) => write!(f, "{}", d.normalize()),
            other => write!(f, "{}", other.to_json()),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Num(d) => match d.normalize().to_string().parse::<serde_json::Number>() {
                Ok(n) => n.serialize(s),
                Err(_) => s.serialize_str(&d.to_string()),
            },
            Value::Str(v) => s.serialize_str(v),
            Value::List(l) => {
                let mut seq = s.serialize_seq(Some(l.len()))?;
                for item in l.iter() {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m.iter() {
                    map.serialize_entry(k.as_str(), v)?;
                }
                map.end()
            }
        }
    }
}

/// serde_json's private key for exact numbers (feature `arbitrary_precision`).
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Num(Decimal::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Num(Decimal::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // Only reached from formats without exact numbers; keep the shortest text.
        parse_decimal(&v.to_string())
            .map(Value::Num)
            .ok_or_else(|| E::custom(format!("{v} is not a finite decimal")))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(SmolStr::new(v)))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(SmolStr::from(v)))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::list(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::with_capacity(access.size_hint().unwrap_or(8));
        while let Some(key) = access.next_key::<KeyText>()? {
            if map.is_empty() && key.0 == NUMBER_TOKEN {
                let text: KeyText = access.next_value()?;
                return read_decimal(&text.0).map(Value::Num).map_err(de::Error::custom);
            }
            let value: Value = access.next_value()?;
            map.push(key.0, value);
        }
        Ok(Value::map(map))
    }
}

/// A map key or a number's text, borrowed from the input when possible.
struct KeyText(SmolStr);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyText, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(SmolStr::new(v)))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn json_numbers_are_exact() {
        let v = Value::from_json_str(r#"{"a": 0.1, "b": 0.2, "c": 12345678901234567890.123, "d": 1e3}"#).unwrap();
        let a = v.get("a").unwrap().as_decimal().unwrap();
        let b = v.get("b").unwrap().as_decimal().unwrap();
        assert_eq!(a + b, Decimal::from_str("0.3").unwrap());
        assert_eq!(
            v.get("c").unwrap().as_decimal().unwrap().to_string(),
            "12345678901234567890.123"
        );
        assert_eq!(v.get("d").unwrap().as_decimal().unwrap(), Decimal::from(1000));
    }

    #[test]
    fn numbers_are_read_exactly_or_refused() {
        let exact = [
            ("0", "0"),
            ("-0", "0"),
            ("1.005", "1.005"),
            ("1e3", "1000"),
            ("1.5E-7", "0.00000015"),
            ("12.50e1", "125"),
            ("0.0000000000000000000000000001", "0.0000000000000000000000000001"),
            ("79228162514264337593543950335", "79228162514264337593543950335"),
            ("1.004999999999999999999999999", "1.004999999999999999999999999"),
            // trailing zeros past the 28th digit change nothing
            ("1.000000000000000000000000000000000", "1"),
        ];
        for (text, value) in exact {
            assert_eq!(
                read_decimal(text).map(|d| d.normalize().to_string()),
                Ok(value.to_string()),
                "{text}"
            );
        }
        for text in [
            "1.00499999999999999999999999999999",
            "0.00000000000000000000000000001",
            "1.00499999999999999999999999999999e0",
            "7922816251426433759354395033.51",
        ] {
            assert_eq!(read_decimal(text), Err(NumberError::TooPrecise(text.into())), "{text}");
        }
        for text in ["79228162514264337593543950336", "1e400", "-1e29"] {
            assert_eq!(read_decimal(text), Err(NumberError::OutOfRange(text.into())), "{text}");
        }
        for text in ["", "abc", "1.005 USD", "1e", "--1", "2026-03-31", "1.2.3", "."] {
            assert_eq!(read_decimal(text), Err(NumberError::NotANumber(text.into())), "{text}");
        }
    }

    #[test]
    fn a_number_no_decimal_holds_is_kept_as_text_or_refused_never_rounded() {
        let json: serde_json::Value =
            serde_json::from_str(r#"{"amount": 1.00499999999999999999999999999999}"#).unwrap();
        assert_eq!(
            Value::from_json(&json).get("amount"),
            Some(&Value::str("1.00499999999999999999999999999999"))
        );
        let err = Value::try_from_json(&json).unwrap_err();
        assert!(
            err.to_string().contains("has more digits than an exact decimal holds"),
            "{err}"
        );
        let err = serde_json::from_str::<Value>(r#"{"amount": 1.00499999999999999999999999999999}"#).unwrap_err();
        assert!(
            err.to_string().contains("has more digits than an exact decimal holds"),
            "{err}"
        );
    }

    #[test]
    fn round_trips_through_json() {
        let text = r#"{"deal":{"amount":40000,"pct":10.5,"tags":["a","b"],"x":null,"ok":true}}"#;
        let v = Value::from_json_str(text).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), text);
        assert_eq!(Value::from_json(&v.to_json()), v);
    }
}
