//! YAML text to JSON-compatible values, keeping the position of every node.
//!
//! Scalars are resolved by the YAML 1.2 core schema, but numbers are kept as
//! their exact text (serde_json's arbitrary precision), so `0.1` in a policy
//! is the decimal 0.1, never the nearest binary float.

use std::collections::HashMap;
use std::str::FromStr;

use saphyr::{MarkedYaml, ScalarStyle, YamlData, YamlLoader};
use serde_json::{Map, Number, Value};

use crate::diag::{Diagnostic, Pos};

/// Where each node of a document stands: path (`spec.rules[2].when`) to the
/// position of its key (for map entries) and of its value.
#[derive(Debug, Default, Clone)]
pub struct PosIndex {
    nodes: HashMap<String, (Pos, Pos)>,
    /// Values written as quoted scalars: their text starts one column later.
    quoted: std::collections::HashSet<String>,
    root: Pos,
}

impl PosIndex {
    /// Position of the value at `path`, or of the closest ancestor known.
    pub fn value(&self, path: &str) -> Pos {
        self.lookup(path).1
    }

    /// Position of the first character of a scalar's text (after a quote).
    pub fn content(&self, path: &str) -> Pos {
        let p = self.value(path);
        if self.quoted.contains(path) {
            Pos::new(p.line, p.col + 1)
        } else {
            p
        }
    }

    /// Position of the key at `path` (the value's, for sequence items).
    pub fn key(&self, path: &str) -> Pos {
        self.lookup(path).0
    }

    fn lookup(&self, path: &str) -> (Pos, Pos) {
        let mut p = path;
        loop {
            if let Some(found) = self.nodes.get(p) {
                return *found;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return (self.root, self.root),
            }
        }
    }
}

/// One YAML document of a file.
#[derive(Debug, Clone)]
pub struct YamlDoc {
    pub value: Value,
    pub index: PosIndex,
}

fn pos_of(node: &MarkedYaml) -> Pos {
    let m = node.span.start;
    Pos::new(m.line(), m.col() + 1)
}

/// Deepest nesting of sequences and mappings a pack file may have. Policies
/// need a handful of levels; the bound keeps every later walk of the tree
/// (conversion, typed decoding, dropping it) far from any thread's stack limit.
pub const MAX_DEPTH: usize = 64;

/// Parses every document of a file. A syntax error is one diagnostic.
pub fn parse_documents(file: &str, text: &str) -> Result<Vec<YamlDoc>, Diagnostic> {
    check_depth(file, text)?;
    let mut parser = saphyr_parser::Parser::new_from_str(text);
    let mut loader: YamlLoader<MarkedYaml> = YamlLoader::default();
    loader.early_parse(false);
    let scan = parser.load(&mut loader, true);
    let scan_err = scan.err().or_else(|| loader.error().cloned());
    if let Some(e) = scan_err {
        let m = e.marker();
        return Err(Diagnostic::new(
            file,
            Pos::new(m.line(), m.col() + 1),
            format!("invalid YAML: {}", e.info()),
        ));
    }
    let mut docs = Vec::new();
    for node in loader.into_documents() {
        let mut index = PosIndex {
            root: pos_of(&node),
            ..Default::default()
        };
        let value = convert(file, &node, String::new(), &mut index)?;
        docs.push(YamlDoc { value, index });
    }
    Ok(docs)
}

/// Refuses a file nested deeper than [`MAX_DEPTH`] before any tree is built.
/// The parser emits events without recursing, so this pass is safe on any
/// input; syntax errors are left to the real parse, which reports them.
fn check_depth(file: &str, text: &str) -> Result<(), Diagnostic> {
    use saphyr_parser::Event;
    let mut depth = 0usize;
    for event in saphyr_parser::Parser::new_from_str(text) {
        match event {
            Ok((Event::SequenceStart(..) | Event::MappingStart(..), span)) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    let m = span.start;
                    return Err(Diagnostic::new(
                        file,
                        Pos::new(m.line(), m.col() + 1),
                        format!("nested deeper than {MAX_DEPTH} levels"),
                    ));
                }
            }
            Ok((Event::SequenceEnd | Event::MappingEnd, _)) => depth = depth.saturating_sub(1),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn convert(file: &str, node: &MarkedYaml, path: String, index: &mut PosIndex) -> Result<Value, Diagnostic> {
    let at = pos_of(node);
    match &node.data {
        YamlData::Representation(raw, style, tag) => {
            let plain = matches!(style, ScalarStyle::Plain);
            match tag {
                Some(t) if t.suffix == "str" => Ok(Value::String(raw.to_string())),
                Some(t) => Err(Diagnostic::new(
                    file,
                    at,
                    format!("YAML tag `!{}` is not supported", t.suffix),
                )),
                None if plain => resolve_plain(raw).map_err(|m| Diagnostic::new(file, at, m)),
                None => {
                    if matches!(style, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted) {
                        index.quoted.insert(path);
                    }
                    Ok(Value::String(raw.to_string()))
                }
            }
        }
        YamlData::Value(s) => Ok(match s {
            saphyr::Scalar::Null => Value::Null,
            saphyr::Scalar::Boolean(b) => Value::Bool(*b),
            saphyr::Scalar::Integer(i) => Value::Number((*i).into()),
            saphyr::Scalar::FloatingPoint(f) => Number::from_str(&f.to_string())
                .map(Value::Number)
                .unwrap_or(Value::Null),
            saphyr::Scalar::String(s) => Value::String(s.to_string()),
        }),
        YamlData::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                let ip = pos_of(item);
                index.nodes.insert(p.clone(), (ip, ip));
                out.push(convert(file, item, p, index)?);
            }
            Ok(Value::Array(out))
        }
        YamlData::Mapping(entries) => {
            let mut out = Map::new();
            for (k, v) in entries.iter() {
                let key = match &k.data {
                    YamlData::Representation(raw, ..) => raw.to_string(),
                    YamlData::Value(saphyr::Scalar::String(s)) => s.to_string(),
                    _ => return Err(Diagnostic::new(file, pos_of(k), "a mapping key must be a plain string")),
                };
                let p = join_key(&path, &key);
                index.nodes.insert(p.clone(), (pos_of(k), pos_of(v)));
                let value = convert(file, v, p, index)?;
                out.insert(key, value);
            }
            Ok(Value::Object(out))
        }
        YamlData::Tagged(tag, inner) => {
            if tag.suffix == "str"
                && let YamlData::Representation(raw, ..) = &inner.data
            {
                return Ok(Value::String(raw.to_string()));
            }
            Err(Diagnostic::new(
                file,
                at,
                format!("YAML tag `!{}` is not supported", tag.suffix),
            ))
        }
        YamlData::Alias(_) | YamlData::BadValue => Err(Diagnostic::new(file, at, "unresolved YAML alias or bad value")),
    }
}

/// The YAML 1.2 core schema for plain scalars, numbers kept exact.
fn resolve_plain(raw: &str) -> Result<Value, String> {
    match raw {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        ".inf" | "+.inf" | "-.inf" | ".Inf" | ".INF" | "-.Inf" | "-.INF" | ".nan" | ".NaN" | ".NAN" => {
            return Err(format!("`{raw}` is not a number a policy can use"));
        }
        _ => {}
    }
    if looks_numeric(raw) {
        let normal = raw.strip_prefix('+').unwrap_or(raw);
        if let Ok(n) = Number::from_str(normal) {
            return Ok(Value::Number(n));
        }
    }
    if let Some(hex) = raw.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Ok(Value::Number(i.into()));
    }
    if let Some(oct) = raw.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Ok(Value::Number(i.into()));
    }
    Ok(Value::String(raw.to_string()))
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn looks_numeric(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - digits_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_exact_and_words_stay_words() {
        let docs = parse_documents(
            "f.yaml",
            "a: 0.1\nb: NA\nc: 2026-03-31\nd: 14d\ne: 'true'\nf: 10\ng: no\n",
        )
        .unwrap();
        let v = &docs[0].value;
        assert_eq!(v["a"].to_string(), "0.1");
        assert_eq!(v["b"], Value::String("NA".into()));
        assert_eq!(v["c"], Value::String("2026-03-31".into()));
        assert_eq!(v["d"], Value::String("14d".into()));
        assert_eq!(v["e"], Value::String("true".into()));
        assert_eq!(v["f"].to_string(), "10");
        assert_eq!(v["g"], Value::String("no".into()));
    }

    #[test]
    fn positions_are_indexed_by_path() {
        let docs = parse_documents(
            "f.yaml",
            "spec:\n  rules:\n    - { id: a, when: \"x > 1\" }\n    - id: b\n      when: y\n",
        )
        .unwrap();
        let idx = &docs[0].index;
        assert_eq!(idx.value("spec.rules[1].when"), Pos::new(5, 13));
        assert_eq!(idx.key("spec.rules[1].when"), Pos::new(5, 7));
        assert_eq!(idx.value("spec.rules[0].when"), Pos::new(3, 22));
        assert_eq!(idx.content("spec.rules[0].when"), Pos::new(3, 23));
        // unknown paths fall back to the nearest ancestor
        assert_eq!(idx.value("spec.rules[1].nope"), Pos::new(4, 7));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse_documents("f.yaml", "a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(err.file, "f.yaml");
        assert!(err.pos.line >= 1, "{err}");
        assert!(err.message.starts_with("invalid YAML"), "{err}");
    }

    /// Regression: a block sequence nested ~4,000 levels deep aborted the
    /// server with a stack overflow on its worker threads.
    #[test]
    fn deeply_nested_yaml_is_refused_not_a_stack_overflow() {
        let block = format!("{}1\n", "- ".repeat(10_000));
        let flow = format!("a: {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let map = format!("a: {}1{}\n", "{k: ".repeat(10_000), "}".repeat(10_000));
        for text in [block, flow, map] {
            // A small stack, like a server worker's, must be enough.
            let err = std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || parse_documents("deep.yaml", &text).unwrap_err())
                .unwrap()
                .join()
                .unwrap();
            // Flow collections hit the scanner's own limit first.
            assert!(
                err.message.contains("nested deeper than 64 levels")
                    || err.message.contains("recursion limit exceeded"),
                "{err}"
            );
            assert_eq!(err.file, "deep.yaml");
        }
        let ok = format!("{}1\n", "- ".repeat(MAX_DEPTH));
        assert!(parse_documents("ok.yaml", &ok).is_ok());
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse_documents("f.yaml", "a: 1\na: 2\n").unwrap_err();
        assert!(err.message.contains("invalid YAML"), "{err}");
    }
}
