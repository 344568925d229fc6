//! Loading a pack: files in, typed documents and diagnostics out.
//!
//! Loading is all-or-nothing: [`load_pack`] returns every error it found, in
//! one run, and no documents when there is any.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::diag::{Diagnostic, PackErrors, Pos, suggest};
use crate::types::*;
use crate::yaml::{PosIndex, parse_documents};

/// The files of a pack: path inside the pack (with `/`) -> bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackSource {
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Largest file a pack may hold (a policy or a plugin module).
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;
/// Largest amount of policy text (YAML and scripts) a pack may hold. A
/// loaded pack takes about 45 times its YAML in memory (measured: 30 MB of
/// rules, 1.3 GB); real packs are kilobytes. Binary files (plugins) are
/// not counted.
pub const MAX_POLICY_TEXT_BYTES: u64 = 8 * 1024 * 1024;

impl PackSource {
    /// Reads a directory. Hidden files and folders (`.git`) are skipped, and so
    /// are symbolic links: a pack cannot reach outside its folder.
    pub fn from_dir(dir: &Path) -> std::io::Result<PackSource> {
        let mut files = BTreeMap::new();
        read_dir_into(dir, "", &mut files)?;
        Ok(PackSource { files })
    }

    pub fn from_texts<'a>(texts: impl IntoIterator<Item = (&'a str, &'a str)>) -> PackSource {
        PackSource {
            files: texts
                .into_iter()
                .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
                .collect(),
        }
    }

    /// `sha256:<first 12 hex>` over every file's path and bytes, in path order.
    ///
    /// Each file contributes `path`, a NUL byte, its length in decimal, a NUL
    /// byte and its bytes, so no two different packs hash alike by shifting
    /// bytes between a path and a body.
    pub fn version(&self) -> String {
        let mut h = Sha256::new();
        for (path, bytes) in &self.files {
            h.update(path.as_bytes());
            h.update([0]);
            h.update(bytes.len().to_string().as_bytes());
            h.update([0]);
            h.update(bytes);
        }
        let full = hex::encode(h.finalize());
        format!("sha256:{}", &full[..12])
    }
}

fn read_dir_into(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let ty = entry.file_type()?;
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if ty.is_symlink() {
            continue;
        } else if ty.is_dir() {
            read_dir_into(&entry.path(), &rel, out)?;
        } else if ty.is_file() {
            if entry.metadata()?.len() > MAX_FILE_BYTES {
                return Err(std::io::Error::other(format!(
                    "{rel}: larger than {MAX_FILE_BYTES} bytes"
                )));
            }
            out.insert(rel, std::fs::read(entry.path())?);
        }
    }
    Ok(())
}

/// A kind's spec, typed.
#[derive(Debug, Clone)]
pub enum Spec {
    DecisionTable(DecisionTableSpec),
    Calculation(CalculationSpec),
    ApprovalPolicy(ApprovalPolicySpec),
    Funnel(FunnelSpec),
    IncentivePlan(IncentivePlanSpec),
    Targets(TargetsSpec),
    Plugin(PluginSpec),
}

/// One parsed policy document, with where it came from.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: String,
    pub kind: Kind,
    pub metadata: Metadata,
    pub spec: Spec,
    /// The spec as written, for showing a policy's source.
    pub raw: Value,
    pub index: PosIndex,
}

impl Document {
    /// `Kind/name`, as errors name the document.
    pub fn label(&self) -> String {
        format!("{}/{}", self.kind, self.metadata.name)
    }

    /// A diagnostic at the value of `path` (`spec.rules[2].when`), naming
    /// the rule, level, stage or component the path is in.
    pub fn error_at(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.file, self.index.value(path), message)
            .in_document(Some(self.label()))
            .in_item(self.item_at(path))
    }

    /// What `path` is inside: `rule small` for `spec.rules[0].when`.
    pub fn item_at(&self, path: &str) -> Option<String> {
        item_at(self.kind, &self.raw, path)
    }

    /// A diagnostic at a 1-based line and column inside the text at `path`
    /// (an expression's own error position).
    pub fn error_in(&self, path: &str, line: usize, col: usize, message: impl Into<String>) -> Diagnostic {
        let base = self.index.content(path);
        let pos = match line {
            0 | 1 => Pos::new(base.line, base.col + col.saturating_sub(1)),
            n => Pos::new(base.line + n - 1, col.max(1)),
        };
        Diagnostic::new(&self.file, pos, message)
            .in_document(Some(self.label()))
            .in_item(self.item_at(path))
    }
}

/// What a path inside a document's spec is about, as errors name it: the
/// rule, escalation or level of an ApprovalPolicy, the row or input of a
/// DecisionTable, the stage, transition or timer of a Funnel, the component
/// of an IncentivePlan. Named by id (a table row without one as `#N`, a
/// transition as `from->to`, as traces name them). `spec` is the spec as
/// written; `None` for a path about the document as a whole.
pub fn item_at(kind: Kind, spec: &Value, path: &str) -> Option<String> {
    let rest = path.strip_prefix("spec.")?;
    let end = rest.find(['.', '[']).unwrap_or(rest.len());
    let (key, tail) = rest.split_at(end);
    let index = || -> Option<usize> { tail.strip_prefix('[')?.split(']').next()?.parse().ok() };
    let entry = || -> Option<&str> {
        Some(tail.strip_prefix('.')?.split(['.', '[']).next().unwrap_or_default()).filter(|k| !k.is_empty())
    };
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let listed = |word: &str, id: &dyn Fn(usize, &Value) -> Option<String>| {
        let i = index()?;
        let item = spec.get(key)?.get(i)?;
        Some(format!("{word} {}", id(i, item)?))
    };
    match (kind, key) {
        (Kind::DecisionTable, "rules") => listed("rule", &|i, r| {
            Some(text(r, "id").unwrap_or_else(|| format!("#{}", i + 1)))
        }),
        (Kind::DecisionTable, "inputs") => entry().map(|k| format!("input {k}")),
        (Kind::Calculation, "steps") => entry().map(|k| format!("step {k}")),
        (Kind::ApprovalPolicy, "rules") => listed("rule", &|_, r| text(r, "id")),
        (Kind::ApprovalPolicy, "escalate") => listed("escalation", &|_, e| text(e, "id")),
        (Kind::ApprovalPolicy, "levels") => listed("level", &|_, l| l.as_str().map(str::to_string)),
        (Kind::ApprovalPolicy, "approvers") => entry().map(|k| format!("level {k}")),
        (Kind::Funnel, "stages") => listed("stage", &|_, s| text(s, "id")),
        (Kind::Funnel, "transitions") => listed("transition", &|_, t| {
            Some(format!("{}->{}", text(t, "from")?, text(t, "to")?))
        }),
        (Kind::Funnel, "timers") => listed("timer", &|_, t| text(t, "id")),
        (Kind::IncentivePlan, "components") => listed("component", &|_, c| text(c, "id")),
        _ => None,
    }
}

/// A parsed `tests/*.yaml` file.
#[derive(Debug, Clone)]
pub struct TestDocument {
    pub file: String,
    pub tests: TestFile,
    pub index: PosIndex,
}

/// A parsed pack: typed documents, tests, scripts and other files.
#[derive(Debug, Clone)]
pub struct Pack {
    pub version: String,
    pub documents: Vec<Document>,
    pub tests: Vec<TestDocument>,
    /// `scripts/x.rhai` -> source.
    pub scripts: BTreeMap<String, String>,
    pub source: PackSource,
    /// Documents whose envelope named them but whose spec did not parse
    /// (only in a partial load): references to them are not reported again.
    pub broken: Vec<(Kind, String)>,
}

impl Pack {
    /// Whether the pack defines `kind/name`, even if that document is broken.
    pub fn has(&self, kind: Kind, name: &str) -> bool {
        self.find(kind, name).is_some() || self.broken.iter().any(|(k, n)| *k == kind && n == name)
    }

    pub fn find(&self, kind: Kind, name: &str) -> Option<&Document> {
        self.documents
            .iter()
            .find(|d| d.kind == kind && d.metadata.name == name)
    }
}

fn is_yaml(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".yml")
}

/// Parses every file of a pack. Errors of all files are gathered.
pub fn load_pack(source: PackSource) -> Result<Pack, PackErrors> {
    let (pack, diags) = load_pack_partial(source);
    if diags.is_empty() {
        Ok(pack)
    } else {
        Err(PackErrors::sorted(diags))
    }
}

/// Parses what parses, and returns it with every error found, so that a
/// later stage can check the sound documents too and report all errors of
/// a pack in one run. A pack with any error must not be activated.
pub fn load_pack_partial(source: PackSource) -> (Pack, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut broken = Vec::new();
    let mut documents = Vec::new();
    let mut tests = Vec::new();
    let mut scripts = BTreeMap::new();
    let text_bytes: u64 = source
        .files
        .iter()
        .filter(|(p, _)| is_yaml(p) || p.ends_with(".rhai"))
        .map(|(_, b)| b.len() as u64)
        .sum();
    if text_bytes > MAX_POLICY_TEXT_BYTES {
        let biggest = source
            .files
            .iter()
            .filter(|(p, _)| is_yaml(p) || p.ends_with(".rhai"))
            .max_by_key(|(_, b)| b.len())
            .map(|(p, _)| p.as_str())
            .unwrap_or("");
        diags.push(Diagnostic::new(biggest, Pos::new(1, 1), format!("the pack has {text_bytes} bytes of policy text (YAML and scripts), more than the {MAX_POLICY_TEXT_BYTES} a pack may hold")));
        let pack = Pack {
            version: source.version(),
            documents,
            tests,
            scripts,
            source,
            broken,
        };
        return (pack, diags);
    }
    for (path, bytes) in &source.files {
        let is_script = path.ends_with(".rhai");
        if !is_yaml(path) && !is_script {
            continue;
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                diags.push(Diagnostic::new(path, Pos::new(1, 1), format!("not UTF-8 text: {e}")));
                continue;
            }
        };
        if is_script {
            scripts.insert(path.clone(), text.to_string());
            continue;
        }
        let docs = match parse_documents(path, text) {
            Ok(d) => d,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        let in_tests = path.starts_with("tests/");
        for doc in docs {
            if doc.value.is_null() {
                continue; // an empty document, such as a trailing `---`
            }
            if in_tests {
                match deserialize_at::<TestFile>(path, &doc.index, "", doc.value, None) {
                    Ok(t) => tests.push(TestDocument {
                        file: path.clone(),
                        tests: t,
                        index: doc.index,
                    }),
                    Err(d) => diags.push(d),
                }
            } else {
                let named = envelope_name(&doc.value);
                match parse_document(path, doc.value, doc.index) {
                    Ok(d) => documents.push(d),
                    Err(mut d) => {
                        broken.extend(named);
                        diags.append(&mut d);
                    }
                }
            }
        }
    }
    // Names are unique per kind, except the versions of an IncentivePlan:
    // documents of one name whose `effective` ranges do not overlap.
    let mut seen: HashMap<(Kind, &str), Vec<&Document>> = HashMap::new();
    for d in &documents {
        let earlier = seen.entry((d.kind, d.metadata.name.as_str())).or_default();
        if let Some(first) = earlier.iter().find(|e| !plan_versions(e, d)) {
            let why = match (plan_effective(first), plan_effective(d)) {
                (Some(a), Some(b)) => format!(
                    "the effective ranges {}..{} and {}..{} overlap; versions of a plan must not",
                    a.from, a.to, b.from, b.to
                ),
                _ if d.kind == Kind::IncentivePlan => {
                    "two versions of a plan each need an `effective` range, and the ranges must not overlap".into()
                }
                _ => String::new(),
            };
            diags.push(d.error_at(
                "metadata.name",
                format!(
                    "duplicate {} name `{}` (first defined at {}:{}){}{}",
                    d.kind,
                    d.metadata.name,
                    first.file,
                    first.index.value("metadata.name").line,
                    if why.is_empty() { "" } else { ": " },
                    why
                ),
            ));
        }
        earlier.push(d);
    }
    let version = source.version();
    (
        Pack {
            version,
            documents,
            tests,
            scripts,
            source,
            broken,
        },
        diags,
    )
}

fn plan_effective(d: &Document) -> Option<&DateRange> {
    match &d.spec {
        Spec::IncentivePlan(p) => p.effective.as_ref(),
        _ => None,
    }
}

/// Whether two IncentivePlan documents are versions of one plan: both
/// have an `effective` range and the ranges do not overlap (ISO dates
/// compare as text; malformed dates are reported by validation).
fn plan_versions(a: &Document, b: &Document) -> bool {
    match (plan_effective(a), plan_effective(b)) {
        (Some(x), Some(y)) => x.to < y.from || y.to < x.from,
        _ => false,
    }
}

fn envelope_name(v: &Value) -> Option<(Kind, String)> {
    let kind = Kind::parse(v.get("kind")?.as_str()?)?;
    Some((kind, v.get("metadata")?.get("name")?.as_str()?.to_string()))
}

const ENVELOPE_KEYS: [&str; 4] = ["apiVersion", "kind", "metadata", "spec"];

fn parse_document(file: &str, value: Value, index: PosIndex) -> Result<Document, Vec<Diagnostic>> {
    let err = |path: &str, msg: String| vec![Diagnostic::new(file, index.value(path), msg)];
    let Value::Object(mut map) = value else {
        return Err(err(
            "",
            "a policy document must be a mapping with apiVersion, kind, metadata and spec".into(),
        ));
    };
    let mut diags = Vec::new();
    for key in map.keys() {
        if !ENVELOPE_KEYS.contains(&key.as_str()) {
            diags.push(Diagnostic::new(
                file,
                index.key(key),
                format!(
                    "unknown key `{key}`: expected apiVersion, kind, metadata or spec{}",
                    suggest(key, ENVELOPE_KEYS)
                ),
            ));
        }
    }
    match map.get("apiVersion") {
        Some(Value::String(v)) if v == "dealrules/v1" => {}
        Some(other) => diags.push(Diagnostic::new(
            file,
            index.value("apiVersion"),
            format!("apiVersion must be `dealrules/v1`, found {other}"),
        )),
        None => diags.push(Diagnostic::new(
            file,
            index.value(""),
            "missing `apiVersion: dealrules/v1`",
        )),
    }
    let kind = match map.get("kind") {
        Some(Value::String(k)) => match Kind::parse(k) {
            Some(k) => Some(k),
            None => {
                diags.push(Diagnostic::new(file, index.value("kind"), format!(
                    "unknown kind `{k}`: expected one of DecisionTable, Calculation, ApprovalPolicy, Funnel, IncentivePlan, Targets, Plugin{}",
                    suggest(k, Kind::ALL.iter().map(|k| k.as_str()))
                )));
                None
            }
        },
        _ => {
            diags.push(Diagnostic::new(file, index.value(""), "missing `kind`"));
            None
        }
    };
    let metadata = match map.remove("metadata") {
        Some(m) => match deserialize_at::<Metadata>(file, &index, "metadata", m, None) {
            Ok(m) => {
                if !valid_name(&m.name) {
                    diags.push(Diagnostic::new(
                        file,
                        index.value("metadata.name"),
                        format!("name `{}` must be 1 to 63 of a-z, 0-9 and -", m.name),
                    ));
                }
                Some(m)
            }
            Err(d) => {
                diags.push(d);
                None
            }
        },
        None => {
            diags.push(Diagnostic::new(
                file,
                index.value(""),
                "missing `metadata` (with a `name`)",
            ));
            None
        }
    };
    let Some(kind) = kind else { return Err(diags) };
    let label = metadata.as_ref().map(|m| format!("{kind}/{}", m.name));
    let raw = map.remove("spec").unwrap_or(Value::Null);
    if raw.is_null() {
        diags.push(Diagnostic::new(file, index.value(""), "missing `spec`").in_document(label.clone()));
        return Err(diags);
    }
    let spec = match parse_spec(kind, file, &index, &raw, label.clone()) {
        Ok(s) => s,
        Err(d) => {
            diags.push(d);
            return Err(diags);
        }
    };
    match (metadata, diags.is_empty()) {
        (Some(metadata), true) => Ok(Document {
            file: file.to_string(),
            kind,
            metadata,
            spec,
            raw,
            index,
        }),
        _ => Err(diags),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The typed spec; an error inside a rule, stage... names it.
fn parse_spec(
    kind: Kind,
    file: &str,
    index: &PosIndex,
    raw: &Value,
    label: Option<String>,
) -> Result<Spec, Diagnostic> {
    let at = "spec";
    let item = |path: &str| item_at(kind, raw, path);
    let raw = raw.clone();
    Ok(match kind {
        Kind::DecisionTable => Spec::DecisionTable(deserialize_at_with(file, index, at, raw, label, &item)?),
        Kind::Calculation => Spec::Calculation(deserialize_at_with(file, index, at, raw, label, &item)?),
        Kind::ApprovalPolicy => Spec::ApprovalPolicy(deserialize_at_with(file, index, at, raw, label, &item)?),
        Kind::Funnel => Spec::Funnel(deserialize_at_with(file, index, at, raw, label, &item)?),
        Kind::IncentivePlan => Spec::IncentivePlan(deserialize_at_with(file, index, at, raw, label, &item)?),
        Kind::Targets => Spec::Targets(deserialize_at_with(file, index, at, raw, label, &item)?),
        Kind::Plugin => Spec::Plugin(deserialize_at_with(file, index, at, raw, label, &item)?),
    })
}

/// Deserializes `value` (found at `prefix`) into `T`, turning serde's error
/// into a positioned diagnostic with a "did you mean" for unknown keys and
/// unknown variants.
pub fn deserialize_at<T: DeserializeOwned>(
    file: &str,
    index: &PosIndex,
    prefix: &str,
    value: Value,
    document: Option<String>,
) -> Result<T, Diagnostic> {
    deserialize_at_with(file, index, prefix, value, document, &|_| None)
}

/// [`deserialize_at`]; `item` names what inside the document an error's
/// path is in (see [`item_at`]).
fn deserialize_at_with<T: DeserializeOwned>(
    file: &str,
    index: &PosIndex,
    prefix: &str,
    value: Value,
    document: Option<String>,
    item: &dyn Fn(&str) -> Option<String>,
) -> Result<T, Diagnostic> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let inner = e.inner().to_string();
        let rel = e.path().to_string();
        let rel = if rel == "." { String::new() } else { rel };
        let path = match (prefix.is_empty(), rel.is_empty()) {
            (true, _) => rel.clone(),
            (false, true) => prefix.to_string(),
            (false, false) if rel.starts_with('[') => format!("{prefix}{rel}"),
            (false, false) => format!("{prefix}.{rel}"),
        };
        let (message, key_pos) = humanize_serde(&inner);
        let pos = if key_pos { index.key(&path) } else { index.value(&path) };
        let at = if path.is_empty() {
            String::new()
        } else {
            format!("at `{path}`: ")
        };
        Diagnostic::new(file, pos, format!("{at}{message}"))
            .in_document(document)
            .in_item(item(&path))
    })
}

/// Rewrites serde's wording for policy authors; says whether the error is
/// about a key (so it should point at the key, not the value).
fn humanize_serde(msg: &str) -> (String, bool) {
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((given, expected)) = rest.split_once('`')
    {
        let known = backticked(expected);
        let list = if known.is_empty() {
            "no keys here".to_string()
        } else {
            format!("expected one of: {}", known.join(", "))
        };
        return (
            format!(
                "unknown key `{given}` ({list}){}",
                suggest(given, known.iter().copied())
            ),
            true,
        );
    }
    if let Some(rest) = msg.strip_prefix("unknown variant `")
        && let Some((given, expected)) = rest.split_once('`')
    {
        let known = backticked(expected);
        return (
            format!(
                "unknown value `{given}` (expected one of: {}){}",
                known.join(", "),
                suggest(given, known.iter().copied())
            ),
            false,
        );
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let field = rest.trim_end_matches('`');
        return (format!("missing required key `{field}`"), false);
    }
    (
        msg.replace("invalid type: ", "wrong type: ")
            .replace("map", "mapping")
            .replace("sequence", "list"),
        false,
    )
}

fn backticked(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// Fuzzing found a pack's memory grows about 45 times its YAML: one
    /// upload of 64 MiB of rules would take gigabytes. The policy text is
    /// capped before anything is parsed.
    #[test]
    fn a_pack_with_more_policy_text_than_the_cap_is_refused_before_parsing() {
        let rule = "    - { id: r, level: auto }\n";
        let big = format!(
            "kind: ApprovalPolicy\nmetadata: {{ name: big }}\nspec:\n  levels: [auto]\n  rules:\n{}",
            rule.repeat((MAX_POLICY_TEXT_BYTES as usize / rule.len()) + 1)
        );
        let mut files = BTreeMap::new();
        files.insert("big.yaml".to_string(), big.into_bytes());
        files.insert("plugins/x.wasm".to_string(), vec![0u8; 16 << 20]);
        let err = load_pack(PackSource { files }).unwrap_err();
        assert!(
            err.0[0].to_string().starts_with("big.yaml:1:1: the pack has")
                && err.0[0].to_string().contains("more than the 8388608"),
            "{}",
            err.0[0]
        );
    }
}
