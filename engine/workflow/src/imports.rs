//! Files of people and deals, CSV or JSONL, read into the roster's and the
//! store's rows. Every line is checked before anything is stored: a file
//! with one bad line is refused whole, with every bad line numbered.
//!
//! CSV: a header row names the columns; an empty cell is no value; `true`
//! and `false` are booleans, numbers are exact decimals, a cell starting
//! with `[` or `{` is JSON (deal `splits`); id-like columns stay text.
//! JSONL: one JSON object per line; blank lines are skipped.
//! XLSX: the sheet named `People` (or `Deals`), else the first sheet; its
//! first row names the columns and cells are typed as in CSV, except that
//! number and boolean cells are kept as the spreadsheet has them and date
//! cells become `YYYY-MM-DD` (with the time, when it has one). Errors name
//! the sheet, the row (as the spreadsheet numbers it) and the column.

use serde::Serialize;
use serde_json::{Map, Value};

use dealrules_store::{Deal, Person, people::BEGINNING};

/// Errors listed before a file is refused.
pub const MAX_ERRORS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Csv,
    Jsonl,
    Xlsx,
}

/// The content type of XLSX workbooks.
pub const XLSX_CONTENT_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

impl ImportFormat {
    /// From a content type (`text/csv`, `application/x-ndjson`,
    /// `application/jsonl`), else from the first byte that is not a space:
    /// `{` is JSONL.
    pub fn detect(content_type: Option<&str>, body: &[u8]) -> ImportFormat {
        match content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase()) {
            Some(c) if c == "text/csv" => ImportFormat::Csv,
            Some(c) if c == XLSX_CONTENT_TYPE => ImportFormat::Xlsx,
            Some(c) if c.contains("ndjson") || c.contains("jsonl") || c.contains("json-seq") => ImportFormat::Jsonl,
            // A workbook is a ZIP archive.
            _ if body.starts_with(b"PK\x03\x04") => ImportFormat::Xlsx,
            _ => match body.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') => ImportFormat::Jsonl,
                _ => ImportFormat::Csv,
            },
        }
    }

    /// The content type a file of this format is sent with.
    pub fn content_type(self) -> &'static str {
        match self {
            ImportFormat::Csv => "text/csv",
            ImportFormat::Jsonl => "application/x-ndjson",
            ImportFormat::Xlsx => XLSX_CONTENT_TYPE,
        }
    }

    /// From a file name's extension (`.csv`, `.jsonl`, `.ndjson`, `.xlsx`).
    pub fn from_path(path: &str, body: &[u8]) -> ImportFormat {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            ImportFormat::Csv
        } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
            ImportFormat::Jsonl
        } else if lower.ends_with(".xlsx") {
            ImportFormat::Xlsx
        } else {
            ImportFormat::detect(None, body)
        }
    }
}

/// A bad line: its number in the file (the CSV header is line 1); in a
/// workbook, the row as the spreadsheet numbers it, with the sheet and,
/// when one is to blame, the column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub line: u64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

impl LineError {
    pub fn new(line: u64, message: impl Into<String>) -> LineError {
        LineError {
            line,
            message: message.into(),
            sheet: None,
            column: None,
        }
    }

    /// Where the error is, after the file's name: `:7` for a line,
    /// ` sheet "People" row 7 column "manager"` in a workbook.
    pub fn place(&self) -> String {
        match &self.sheet {
            None => format!(":{}", self.line),
            Some(sheet) => {
                let column = self
                    .column
                    .as_ref()
                    .map(|c| format!(" column {c:?}"))
                    .unwrap_or_default();
                format!(": sheet {sheet:?} row {}{column}", self.line)
            }
        }
    }
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
    read(body, format, "").map(|t| t.rows)
}

/// What a file holds: its records and, for a workbook, the sheet read and
/// its header (to name the column an error is about).
pub(crate) struct Table {
    pub(crate) sheet: Option<String>,
    header: Vec<String>,
    pub(crate) rows: Vec<NumberedRecord>,
}

impl Table {
    /// Places `message` about the record on `line`.
    pub(crate) fn error(&self, line: u64, message: String) -> LineError {
        let column = self.sheet.as_ref().and_then(|_| blamed_column(&message, &self.header));
        LineError {
            line,
            message,
            sheet: self.sheet.clone(),
            column,
        }
    }
}

/// The first `column` a message names that is in the header.
fn blamed_column(message: &str, header: &[String]) -> Option<String> {
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .find(|name| header.iter().any(|h| h == name))
        .map(str::to_string)
}

pub(crate) fn read(body: &[u8], format: ImportFormat, sheet: &str) -> Result<Table, Vec<LineError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    match format {
        ImportFormat::Xlsx => return workbook(body, sheet),
        ImportFormat::Jsonl => {
            let text = std::str::from_utf8(body)
                .map_err(|e| vec![LineError::new(1, format!("the file is not UTF-8: {e}"))])?;
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
                    Ok(_) => errors.push(LineError::new(n, "not a JSON object")),
                    Err(message) => errors.push(LineError::new(n, message)),
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
                    return Err(vec![LineError::new(1, format!("the header row cannot be read: {e}"))]);
                }
            };
            if let Some(dup) = header.iter().enumerate().find(|(i, c)| header[..*i].contains(c)) {
                return Err(vec![LineError::new(1, format!("column `{}` appears twice", dup.1))]);
            }
            for row in reader.records() {
                let row = match row {
                    Ok(r) => r,
                    Err(e) => {
                        let line = e.position().map(|p| p.line()).unwrap_or(0);
                        errors.push(LineError::new(line, e.to_string()));
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
                    Some(message) => errors.push(LineError::new(line, message)),
                    None => out.push((line, m)),
                }
                if errors.len() >= MAX_ERRORS {
                    break;
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(Table {
            sheet: None,
            header: Vec::new(),
            rows: out,
        })
    } else {
        Err(errors)
    }
}

/// The records of a workbook's sheet `wanted` (any case), else its first.
fn workbook(body: &[u8], wanted: &str) -> Result<Table, Vec<LineError>> {
    use calamine::{Data, Reader};
    let whole = |message: String| vec![LineError::new(1, message)];
    let mut book: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(body))
        .map_err(|e| whole(format!("the file is not an XLSX workbook: {e}")))?;
    let names = book.sheet_names();
    let sheet = names
        .iter()
        .find(|n| n.eq_ignore_ascii_case(wanted))
        .or(names.first())
        .cloned()
        .ok_or_else(|| whole("the workbook has no sheet".into()))?;
    let range = book
        .worksheet_range(&sheet)
        .map_err(|e| whole(format!("sheet {sheet:?} cannot be read: {e}")))?;
    let at = |line: u64, column: Option<&str>, message: String| LineError {
        line,
        message,
        sheet: Some(sheet.clone()),
        column: column.map(str::to_string),
    };
    let (first_row, _) = range.start().unwrap_or((0, 0));
    let mut rows = range.rows();
    let header: Vec<String> = match rows.next() {
        Some(cells) => cells.iter().map(|c| c.to_string().trim().to_string()).collect(),
        None => {
            return Err(vec![at(
                1,
                None,
                "the sheet is empty: its first row names the columns".into(),
            )]);
        }
    };
    let header_row = u64::from(first_row) + 1;
    if let Some((i, name)) = header
        .iter()
        .enumerate()
        .find(|(i, c)| !c.is_empty() && header[..*i].contains(c))
    {
        return Err(vec![at(
            header_row,
            Some(name),
            format!("column `{}` appears twice (column {})", name, i + 1),
        )]);
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, cells) in rows.enumerate() {
        let line = header_row + 1 + i as u64;
        if cells.iter().all(|c| matches!(c, Data::Empty)) {
            continue;
        }
        let mut m = Map::new();
        for (column, cell) in header.iter().zip(cells) {
            if column.is_empty() {
                continue;
            }
            match xlsx_cell(column, cell) {
                Ok(Some(v)) => {
                    m.insert(column.clone(), v);
                }
                Ok(None) => {}
                Err(message) => {
                    errors.push(at(line, Some(column), message));
                    break;
                }
            }
        }
        if errors.last().is_none_or(|e| e.line != line) {
            out.push((line, m));
        }
        if errors.len() >= MAX_ERRORS {
            break;
        }
    }
    if errors.is_empty() {
        Ok(Table {
            sheet: Some(sheet),
            header,
            rows: out,
        })
    } else {
        Err(errors)
    }
}

/// One workbook cell as the value a record holds.
fn xlsx_cell(column: &str, cell: &calamine::Data) -> Result<Option<Value>, String> {
    use calamine::Data;
    let number = |text: String| -> Result<Option<Value>, String> {
        if TEXT_COLUMNS.contains(&column) {
            return Ok(Some(Value::String(text)));
        }
        serde_json::from_str::<serde_json::Number>(&text)
            .map(|n| Some(Value::Number(n)))
            .map_err(|e| format!("`{column}`: {text} is not a number: {e}"))
    };
    match cell {
        Data::Empty => Ok(None),
        Data::String(s) => cell_value(column, s),
        Data::Int(i) => number(i.to_string()),
        // The shortest text that reads back as the same float: what the
        // spreadsheet shows (0.1, 42000.5), read as an exact decimal.
        Data::Float(f) if f.is_finite() => {
            let text = if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{f:.0}")
            } else {
                f.to_string()
            };
            number(text)
        }
        Data::Float(f) => Err(format!("`{column}`: {f} is not a number")),
        Data::Bool(b) => Ok(Some(Value::Bool(*b))),
        Data::DateTime(d) if d.is_datetime() => {
            let (y, mo, day, h, mi, s, _) = d.to_ymd_hms_milli();
            let date = format!("{y:04}-{mo:02}-{day:02}");
            Ok(Some(Value::String(if (h, mi, s) == (0, 0, 0) {
                date
            } else {
                format!("{date}T{h:02}:{mi:02}:{s:02}Z")
            })))
        }
        Data::DateTime(d) => Err(format!(
            "`{column}`: a duration ({}) where a value was expected",
            d.as_f64()
        )),
        Data::DateTimeIso(s) | Data::DurationIso(s) => Ok(Some(Value::String(s.clone()))),
        Data::Error(e) => Err(format!("`{column}`: the cell holds the error {e}")),
    }
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
        return Err(format!("`manager`: {id} cannot be their own manager"));
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
    let table = read(body, format, "People")?;
    for (line, m) in &table.rows {
        match person(m.clone()) {
            Ok(p) => out.push(p),
            Err(message) => errors.push(table.error(*line, message)),
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
    let table = read(body, format, "Deals")?;
    let line_word = if table.sheet.is_some() { "row" } else { "line" };
    for (line, m) in table.rows.iter().cloned() {
        match deal(m, default_funnel, at) {
            Ok(d) => {
                if let Some(first) = seen.insert(d.id.clone(), line) {
                    let message = format!("deal `{}` is also on {line_word} {first}", d.id);
                    let mut e = table.error(line, message);
                    e.column = table.sheet.as_ref().map(|_| "id".to_string());
                    errors.push(e);
                } else {
                    out.push(d);
                }
            }
            Err(message) => errors.push(table.error(line, message)),
        }
        if errors.len() >= MAX_ERRORS {
            break;
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// A roster as an XLSX workbook that imports back as the same people: a
/// `People` sheet with `id, name, role, manager, region, team,
/// effective_from` and a column per attribute. Numbers are number cells
/// when a spreadsheet number holds them exactly (else text, which imports
/// as the same decimal), dates are date cells, objects and lists are JSON.
pub fn people_xlsx(people: &[Person]) -> Result<Vec<u8>, String> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let x = |e: rust_xlsxwriter::XlsxError| format!("writing the workbook: {e}");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("People").map_err(x)?;
    let bold = Format::new().set_bold();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let mut header: Vec<String> = ["id", "name", "role", "manager", "region", "team", "effective_from"]
        .map(String::from)
        .to_vec();
    for p in people {
        for k in p.attributes.keys() {
            if !header.contains(k) {
                header.push(k.clone());
            }
        }
    }
    for (c, h) in header.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, h, &bold).map_err(x)?;
    }
    for (i, p) in people.iter().enumerate() {
        let row = i as u32 + 1;
        for (c, value) in [
            Some(&p.id),
            Some(&p.name),
            Some(&p.role),
            p.manager.as_ref(),
            p.region.as_ref(),
            p.team.as_ref(),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(v) = value {
                sheet.write_string(row, c as u16, v).map_err(x)?;
            }
        }
        if p.valid_from != BEGINNING {
            // Excel's calendar starts in 1900: an earlier date stays text
            // (`yyyy-mm-dd`), which the import reads the same way.
            match ExcelDateTime::parse_from_str(&p.valid_from) {
                Ok(d) => sheet.write_datetime_with_format(row, 6, &d, &date),
                Err(_) => sheet.write_string(row, 6, &p.valid_from),
            }
            .map_err(x)?;
        }
        for (k, v) in &p.attributes {
            let c = header.iter().position(|h| h == k).unwrap_or(0) as u16;
            match v {
                Value::Null => {}
                Value::Bool(b) => {
                    sheet.write_boolean(row, c, *b).map_err(x)?;
                }
                Value::Number(n) => {
                    let text = n.to_string();
                    match text.parse::<f64>() {
                        // Only when the cell reads back as the same text.
                        Ok(f) if xlsx_cell(k, &calamine::Data::Float(f)).ok().flatten() == Some(v.clone()) => {
                            sheet.write_number(row, c, f).map_err(x)?;
                        }
                        _ => {
                            sheet.write_string(row, c, &text).map_err(x)?;
                        }
                    }
                }
                Value::String(t) => {
                    sheet.write_string(row, c, t).map_err(x)?;
                }
                other => {
                    sheet.write_string(row, c, other.to_string()).map_err(x)?;
                }
            }
        }
    }
    sheet.set_freeze_panes(1, 0).map_err(x)?;
    book.save_to_buffer().map_err(x)
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
        assert_eq!(errors, vec![LineError::new(4, "not a JSON object")]);
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

    /// A workbook with one sheet `name` of `rows` (the first is the header);
    /// a cell is a number, a boolean, a date (`date:YYYY-MM-DD`), `=ERR` (a
    /// #N/A formula) or text.
    pub(crate) fn workbook_of(sheets: &[(&str, &[&[&str]])]) -> Vec<u8> {
        use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};
        let mut book = Workbook::new();
        let date = Format::new().set_num_format("yyyy-mm-dd");
        for (name, rows) in sheets {
            let sheet = book.add_worksheet();
            sheet.set_name(*name).unwrap();
            for (r, row) in rows.iter().enumerate() {
                for (c, cell) in row.iter().enumerate() {
                    let (r, c) = (r as u32, c as u16);
                    if cell.is_empty() {
                        continue;
                    } else if let Some(d) = cell.strip_prefix("date:") {
                        let d = ExcelDateTime::parse_from_str(d).unwrap();
                        sheet.write_datetime_with_format(r, c, &d, &date).unwrap();
                    } else if *cell == "=ERR" {
                        sheet
                            .write_formula(r, c, Formula::new("=NA()").set_result("#N/A"))
                            .unwrap();
                    } else if let Ok(n) = cell.parse::<f64>() {
                        sheet.write_number(r, c, n).unwrap();
                    } else if let Ok(b) = cell.parse::<bool>() {
                        sheet.write_boolean(r, c, b).unwrap();
                    } else {
                        sheet.write_string(r, c, *cell).unwrap();
                    }
                }
            }
        }
        book.save_to_buffer().unwrap()
    }

    #[test]
    fn xlsx_people_are_read_from_their_sheet_with_typed_cells() {
        let body = workbook_of(&[
            ("Notes", &[&["read me first"]]),
            (
                "People",
                &[
                    &[
                        "id",
                        "name",
                        "role",
                        "manager",
                        "region",
                        "effective_from",
                        "quota",
                        "remote",
                    ],
                    &[
                        "1001",
                        "Ana Ruiz",
                        "ae",
                        "m-1",
                        "NA",
                        "date:2026-02-15",
                        "480000.5",
                        "true",
                    ],
                    &["", "", "", "", "", "", "", ""],
                    &["m-1", "Frank Ng", "manager", "", "NA", "", "0.1", "false"],
                ],
            ),
        ]);
        assert_eq!(ImportFormat::from_path("people.xlsx", &body), ImportFormat::Xlsx);
        assert_eq!(ImportFormat::detect(None, &body), ImportFormat::Xlsx);
        let people = people(&body, ImportFormat::Xlsx).unwrap();
        assert_eq!(people.len(), 2);
        assert_eq!(people[0].id, "1001", "an id-like number stays text");
        assert_eq!(people[0].valid_from, "2026-02-15");
        assert_eq!(people[0].manager.as_deref(), Some("m-1"));
        assert_eq!(people[0].attributes["quota"].to_string(), "480000.5");
        assert_eq!(people[0].attributes["remote"], Value::Bool(true));
        assert_eq!(
            people[1].attributes["quota"].to_string(),
            "0.1",
            "what the cell shows, exactly"
        );
        assert_eq!(people[1].valid_from, BEGINNING);
    }

    #[test]
    fn xlsx_errors_name_the_sheet_row_and_column() {
        let body = workbook_of(&[(
            "People",
            &[
                &["id", "name", "role", "effective_from", "quota"],
                &["p-1", "Ana", "ae", "", "100"],
                &["p-2", "Ben", "", "", "100"],
                &["p-3", "Cy", "ae", "soon", "100"],
                &["p-4", "Di", "ae", "", "=ERR"],
            ],
        )]);
        let errors = people(&body, ImportFormat::Xlsx).unwrap_err();
        let placed: Vec<String> = errors
            .iter()
            .map(|e| format!("people.xlsx{}: {}", e.place(), e.message))
            .collect();
        assert_eq!(
            placed,
            ["people.xlsx: sheet \"People\" row 5 column \"quota\": `quota`: the cell holds the error #N/A",],
            "cell errors are found first, while reading"
        );
        let body = workbook_of(&[(
            "People",
            &[
                &["id", "name", "role", "effective_from"],
                &["p-1", "Ana", "ae", ""],
                &["p-2", "Ben", "", ""],
                &["p-3", "Cy", "ae", "soon"],
            ],
        )]);
        let errors = people(&body, ImportFormat::Xlsx).unwrap_err();
        let placed: Vec<String> = errors
            .iter()
            .map(|e| format!("people.xlsx{}: {}", e.place(), e.message))
            .collect();
        assert_eq!(
            placed,
            [
                "people.xlsx: sheet \"People\" row 3 column \"role\": `role` is missing",
                "people.xlsx: sheet \"People\" row 4 column \"effective_from\": `effective_from` must be a date such as 2026-02-15, not `soon`",
            ]
        );
    }

    #[test]
    fn xlsx_deals_refuse_twice_the_same_id_and_text_amounts() {
        let body = workbook_of(&[(
            "Deals",
            &[
                &["id", "owner", "stage", "amount", "closed_at", "new_logo"],
                &["d-1", "ana", "won", "42000.5", "date:2026-02-12", "true"],
                &["d-2", "ana", "won", "lots", "", ""],
                &["d-1", "ben", "won", "10", "", ""],
            ],
        )]);
        let errors = deals(&body, ImportFormat::Xlsx, "b2b", "t").unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!((errors[0].line, errors[0].column.as_deref()), (3, Some("amount")));
        assert_eq!((errors[1].line, errors[1].column.as_deref()), (4, Some("id")));
        assert!(errors[1].message.contains("row 2"), "{}", errors[1].message);
        let fine = workbook_of(&[(
            "Deals",
            &[
                &["id", "owner", "stage", "amount", "closed_at"],
                &["d-1", "ana", "won", "42000.5", "date:2026-02-12"],
            ],
        )]);
        let d = deals(&fine, ImportFormat::Xlsx, "b2b", "t").unwrap();
        assert_eq!(d[0].fields["amount"].to_string(), "42000.5");
        assert_eq!(d[0].fields["closed_at"], "2026-02-12");
    }

    #[test]
    fn a_broken_workbook_is_one_error() {
        let errors = people(b"PK\x03\x04 not really", ImportFormat::Xlsx).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("not an XLSX workbook"), "{errors:?}");
    }

    #[test]
    fn a_roster_workbook_imports_back_as_the_same_people() {
        let body = br#"{"id": "1001", "name": "Ana", "role": "ae", "manager": "m-1", "region": "NA", "effective_from": "2026-02-15", "quota": 480000.5, "share": 0.1, "exact": 12345678901234567.89, "remote": true, "splits": [{"rep": "ana", "share": 1}]}
{"id": "m-1", "name": "Frank", "role": "manager", "team": "NA sales", "csat": 93}
"#;
        let people = people(body, ImportFormat::Jsonl).unwrap();
        let workbook = people_xlsx(&people).unwrap();
        let back = super::people(&workbook, ImportFormat::Xlsx).unwrap();
        assert_eq!(back, people);
        assert_eq!(back[0].attributes["exact"].to_string(), "12345678901234567.89");
    }

    #[test]
    fn a_date_before_excels_calendar_exports_as_text_and_imports_back() {
        let body = br#"{"id": "old", "name": "Old", "role": "ae", "effective_from": "0301-07-04"}
"#;
        let people = people(body, ImportFormat::Jsonl).unwrap();
        let workbook = people_xlsx(&people).unwrap();
        let back = super::people(&workbook, ImportFormat::Xlsx).unwrap();
        assert_eq!(back, people);
        assert_eq!(back[0].valid_from, "0301-07-04");
    }
}
