//! Files of people and deals, CSV or JSONL, read into the roster's and the
//! store's rows. Every line is checked before anything is stored: a file
//! with one bad line is refused whole, with every bad line numbered.
//!
//! CSV: a header row names the columns; an empty cell is no value; `true`
//! and `false` are booleans, numbers are exact decimals, a cell starting
//! with `[` or `{` is JSON (deal `splits`); id-like columns stay text.
//! JSONL: one JSON object per line; blank lines are skipped.

use serde::Serialize;
use serde_json::{Map, Value};

use dealrules_store::{Deal, Person, people::BEGINNING};

/// Errors listed before a file is refused.
pub const MAX_ERRORS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Csv,
    Jsonl,
}

impl ImportFormat {
    /// From a content type (`text/csv`, `application/x-ndjson`,
    /// `application/jsonl`), else from the first byte that is not a space:
    /// `{` is JSONL.
    pub fn detect(content_type: Option<&str>, body: &[u8]) -> ImportFormat {
        match content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase()) {
            Some(c) if c == "text/csv" => ImportFormat::Csv,
            Some(c) if c.contains("ndjson") || c.contains("jsonl") || c.contains("json-seq") => ImportFormat::Jsonl,
            _ => match body.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') => ImportFormat::Jsonl,
                _ => ImportFormat::Csv,
            },
        }
    }

    /// From a file name's extension (`.csv`, `.jsonl`, `.ndjson`).
    pub fn from_path(path: &str, body: &[u8]) -> ImportFormat {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            ImportFormat::Csv
        } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
            ImportFormat::Jsonl
        } else {
            ImportFormat::detect(None, body)
        }
    }
}

/// A bad line: its number in the file (the CSV header is line 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

/// Columns read as text even when they look like numbers.
const TEXT_COLUMNS: &[&str] = &[
    "id",
    "name",
    "role",
    "manager",
    "region",
    "team",
    "owner",
    "stage",
    "funnel",
    "closed_at",
    "cancelled_at",
    "effective_from",
    "effective_to",
];

fn cell_value(column: &str, cell: &str) -> Result<Option<Value>, String> {
    let t = cell.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if TEXT_COLUMNS.contains(&column) {
        return Ok(Some(Value::String(t.to_string())));
    }
    if t.starts_with('[') || t.starts_with('{') {
        dealrules_expr::input_shape::check(t).map_err(|e| format!("`{column}`: {e}"))?;
        return serde_json::from_str(t)
            .map(Some)
            .map_err(|e| format!("`{column}` is not JSON: {e}"));
    }
    match t {
        "true" => return Ok(Some(Value::Bool(true))),
        "false" => return Ok(Some(Value::Bool(false))),
        _ => {}
    }
    if t.parse::<rust_decimal::Decimal>().is_ok()
        && let Ok(n) = serde_json::from_str::<serde_json::Number>(t)
    {
        return Ok(Some(Value::Number(n)));
    }
    Ok(Some(Value::String(t.to_string())))
}

/// The file's records as JSON objects, each with its line number.
/// One record of a file and the line it starts on.
pub type NumberedRecord = (u64, Map<String, Value>);

pub fn records(body: &[u8], format: ImportFormat) -> Result<Vec<NumberedRecord>, Vec<LineError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    match format {
        ImportFormat::Jsonl => {
            let text = std::str::from_utf8(body).map_err(|e| {
                vec![LineError {
                    line: 1,
                    message: format!("the file is not UTF-8: {e}"),
                }]
            })?;
            for (i, line) in text.lines().enumerate() {
                let n = i as u64 + 1;
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let parsed = dealrules_expr::input_shape::check(line)
                    .map_err(|e| e.to_string())
                    .and_then(|()| serde_json::from_str::<Value>(line).map_err(|e| e.to_string()));
                match parsed {
                    Ok(Value::Object(m)) => out.push((n, m)),
                    Ok(_) => errors.push(LineError {
                        line: n,
                        message: "not a JSON object".into(),
                    }),
                    Err(message) => errors.push(LineError { line: n, message }),
                }
                if errors.len() >= MAX_ERRORS {
                    break;
                }
            }
        }
        ImportFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(body);
            let header: Vec<String> = match reader.headers() {
                Ok(h) => h.iter().map(|c| c.trim().to_string()).collect(),
                Err(e) => {
                    return Err(vec![LineError {
                        line: 1,
                        message: format!("the header row cannot be read: {e}"),
                    }]);
                }
            };
            if let Some(dup) = header.iter().enumerate().find(|(i, c)| header[..*i].contains(c)) {
                return Err(vec![LineError {
                    line: 1,
                    message: format!("column `{}` appears twice", dup.1),
                }]);
            }
            for row in reader.records() {
                let row = match row {
                    Ok(r) => r,
                    Err(e) => {
                        let line = e.position().map(|p| p.line()).unwrap_or(0);
                        errors.push(LineError {
                            line,
                            message: e.to_string(),
                        });
                        if errors.len() >= MAX_ERRORS || line == 0 {
                            break;
                        }
                        continue;
                    }
                };
                let line = row.position().map(|p| p.line()).unwrap_or(0);
                let mut m = Map::new();
                let mut bad = None;
                for (column, cell) in header.iter().zip(row.iter()) {
                    match cell_value(column, cell) {
                        Ok(Some(v)) => {
                            m.insert(column.clone(), v);
                        }
                        Ok(None) => {}
                        Err(message) => {
                            bad = Some(message);
                            break;
                        }
                    }
                }
                match bad {
                    Some(message) => errors.push(LineError { line, message }),
                    None => out.push((line, m)),
                }
                if errors.len() >= MAX_ERRORS {
                    break;
                }
            }
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

fn text_field(m: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match m.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.chars().count() > 200 => Err(format!("`{key}` is longer than 200 characters")),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("`{key}` must be text, not {other}")),
    }
}

fn date_field(m: &Map<String, Value>, key: &str) -> Result<(), String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s))
            if s.get(..10)
                .is_some_and(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()) =>
        {
            Ok(())
        }
        Some(other) => Err(format!("`{key}` must be a date such as 2026-02-15, not {other}")),
    }
}

/// One person version from a record: `id`, `role` (needed), `name`,
/// `manager`, `region`, `team`, `effective_from` (or `effective: {"from"}`),
/// `attributes` (JSONL); any other column is an attribute.
pub fn person(mut m: Map<String, Value>) -> Result<Person, String> {
    let id = text_field(&mut m, "id")?.ok_or("`id` is missing")?;
    let role = text_field(&mut m, "role")?.ok_or("`role` is missing")?;
    let name = text_field(&mut m, "name")?.unwrap_or_else(|| id.clone());
    let manager = text_field(&mut m, "manager")?;
    if manager.as_deref() == Some(id.as_str()) {
        return Err(format!("`{id}` cannot be their own manager"));
    }
    let region = text_field(&mut m, "region")?;
    let team = text_field(&mut m, "team")?;
    let mut from = text_field(&mut m, "effective_from")?;
    if let Some(Value::Object(mut e)) = m.remove("effective") {
        from = from.or(text_field(&mut e, "from")?);
    }
    let from = from.unwrap_or_else(|| BEGINNING.to_string());
    if chrono::NaiveDate::parse_from_str(&from, "%Y-%m-%d").is_err() {
        return Err(format!(
            "`effective_from` must be a date such as 2026-02-15, not `{from}`"
        ));
    }
    let mut attributes = match m.remove("attributes") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a,
        Some(other) => return Err(format!("`attributes` must be an object, not {other}")),
    };
    attributes.extend(m);
    Ok(Person {
        id,
        name,
        role,
        manager,
        region,
        team,
        attributes,
        valid_from: from,
        valid_to: None,
    })
}

/// Reads a people file: every version, or every bad line.
pub fn people(body: &[u8], format: ImportFormat) -> Result<Vec<Person>, Vec<LineError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (line, m) in records(body, format)? {
        match person(m) {
            Ok(p) => out.push(p),
            Err(message) => errors.push(LineError { line, message }),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// One deal from a record: `id`, `owner`, `stage` (needed), `funnel`
/// (else `default_funnel`), `context` (JSONL); every other column is a
/// field (`amount`, `closed_at`, `splits`, ...). Times are `at`.
pub fn deal(mut m: Map<String, Value>, default_funnel: &str, at: &str) -> Result<Deal, String> {
    let id = text_field(&mut m, "id")?.ok_or("`id` is missing")?;
    let owner = text_field(&mut m, "owner")?.ok_or("`owner` is missing")?;
    let stage = text_field(&mut m, "stage")?.ok_or("`stage` is missing")?;
    let funnel = text_field(&mut m, "funnel")?.unwrap_or_else(|| default_funnel.to_string());
    let context = match m.remove("context") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(c)) => c,
        Some(other) => return Err(format!("`context` must be an object, not {other}")),
    };
    date_field(&m, "closed_at")?;
    date_field(&m, "cancelled_at")?;
    if let Some(a) = m.get("amount")
        && !a.is_number()
    {
        return Err(format!("`amount` must be a number, not {a}"));
    }
    Ok(Deal {
        id,
        funnel,
        owner,
        stage,
        fields: Value::Object(m),
        context: Value::Object(context),
        stage_entered_at: at.to_string(),
        created_at: at.to_string(),
        updated_at: at.to_string(),
        revision: 1,
    })
}

/// Reads a deals file: every deal, or every bad line (an id twice is bad).
pub fn deals(body: &[u8], format: ImportFormat, default_funnel: &str, at: &str) -> Result<Vec<Deal>, Vec<LineError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (line, m) in records(body, format)? {
        match deal(m, default_funnel, at) {
            Ok(d) => {
                if let Some(first) = seen.insert(d.id.clone(), line) {
                    errors.push(LineError {
                        line,
                        message: format!("deal `{}` is also on line {first}", d.id),
                    });
                } else {
                    out.push(d);
                }
            }
            Err(message) => errors.push(LineError { line, message }),
        }
        if errors.len() >= MAX_ERRORS {
            break;
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_typed_and_ids_stay_text() {
        let body = b"id,owner,stage,amount,closed_at,new_logo,splits\n1001,ana,won,42000.50,2026-02-12,true,\"[{\"\"rep\"\": \"\"ana\"\", \"\"share\"\": 1}]\"\n";
        let d = deals(body, ImportFormat::Csv, "b2b", "2026-01-01T00:00:00.000Z").unwrap();
        assert_eq!(d[0].id, "1001");
        assert_eq!(d[0].fields["amount"].to_string(), "42000.50");
        assert_eq!(d[0].fields["new_logo"], Value::Bool(true));
        assert_eq!(d[0].fields["splits"][0]["rep"], "ana");
        assert_eq!(d[0].funnel, "b2b");
    }

    #[test]
    fn every_bad_line_is_numbered() {
        let body = b"id,owner,stage,amount\nd1,ana,won,10\nd2,,won,10\nd3,ben,won,lots\nd1,ana,won,10\n";
        let errors = deals(body, ImportFormat::Csv, "b2b", "t").unwrap_err();
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5], "{errors:?}");
        assert!(errors[0].message.contains("owner"));
        assert!(errors[2].message.contains("line 2"));
    }

    #[test]
    fn jsonl_people_with_attributes_and_dates() {
        let body =
            br#"{"id": "ana", "role": "ae", "manager": "frank", "quota": 480000, "effective": {"from": "2026-02-15"}}

{"id": "frank", "role": "manager", "attributes": {"csat": 93}}
[1]
"#;
        let errors = people(body, ImportFormat::Jsonl).unwrap_err();
        assert_eq!(
            errors,
            vec![LineError {
                line: 4,
                message: "not a JSON object".into()
            }]
        );
        let ok = people(&body[..body.len() - 4], ImportFormat::Jsonl).unwrap();
        assert_eq!(ok[0].valid_from, "2026-02-15");
        assert_eq!(ok[0].attributes["quota"].to_string(), "480000");
        assert_eq!(ok[1].valid_from, BEGINNING);
        assert_eq!(ok[1].attributes["csat"].to_string(), "93");
    }

    #[test]
    fn formats_are_detected() {
        assert_eq!(
            ImportFormat::detect(Some("text/csv; charset=utf-8"), b"{"),
            ImportFormat::Csv
        );
        assert_eq!(ImportFormat::detect(None, b"  {\"id\": 1}"), ImportFormat::Jsonl);
        assert_eq!(ImportFormat::detect(None, b"id,role"), ImportFormat::Csv);
        assert_eq!(ImportFormat::from_path("x.jsonl", b"id"), ImportFormat::Jsonl);
    }
}
