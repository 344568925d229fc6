//! Statements as documents: HTML, Markdown and CSV from the Tera templates
//! in `templates/statements/`, in English or Chinese (zh-CN). The server
//! (`GET /v1/statements/...`) and `dealrules eval --format` render with the
//! same code.
//!
//! The templates are compiled into the binary so `dealrules` renders the
//! same anywhere; HTML is autoescaped (deal fields come from a CRM).

use std::collections::HashMap;

use tera::{Context, Tera};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocFormat {
    Json,
    Html,
    Md,
    Csv,
}

impl DocFormat {
    /// `json`, `html`, `md` (or `markdown`), `csv`.
    pub fn parse(s: &str) -> Option<DocFormat> {
        match s {
            "json" => Some(DocFormat::Json),
            "html" => Some(DocFormat::Html),
            "md" | "markdown" => Some(DocFormat::Md),
            "csv" => Some(DocFormat::Csv),
            _ => None,
        }
    }

    /// The media type of the document.
    pub fn content_type(self) -> &'static str {
        match self {
            DocFormat::Json => "application/json",
            DocFormat::Html => "text/html; charset=utf-8",
            DocFormat::Md => "text/markdown; charset=utf-8",
            DocFormat::Csv => "text/csv; charset=utf-8",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocLocale {
    En,
    ZhCn,
}

impl DocLocale {
    /// `en` or `zh-CN` (any case, `_` for `-`).
    pub fn parse(s: &str) -> Option<DocLocale> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "en" | "en-us" | "en-gb" => Some(DocLocale::En),
            "zh-cn" | "zh" | "zh-hans" => Some(DocLocale::ZhCn),
            _ => None,
        }
    }
}

const TEMPLATES: [(&str, &str); 5] = [
    (
        "statement.html",
        include_str!("../../../templates/statements/statement.html.tera"),
    ),
    (
        "statement.zh-CN.html",
        include_str!("../../../templates/statements/statement.zh-CN.html.tera"),
    ),
    (
        "statement.md",
        include_str!("../../../templates/statements/statement.md.tera"),
    ),
    (
        "statement.zh-CN.md",
        include_str!("../../../templates/statements/statement.zh-CN.md.tera"),
    ),
    (
        "statement.csv",
        include_str!("../../../templates/statements/statement.csv.tera"),
    ),
];

/// Never a spreadsheet formula: text starting `=`, `+`, `-`, `@` gets a
/// leading `'`; numbers stay as they are.
pub fn no_formula(text: &str) -> String {
    let is_number = text.parse::<f64>().is_ok();
    if !is_number && text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// A CSV field: quoted when it must be, and never a spreadsheet formula.
pub fn csv_field(text: &str) -> String {
    let text = no_formula(text);
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn csv(value: &tera::Value, _: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let text = match value {
        tera::Value::String(s) => s.clone(),
        tera::Value::Null => String::new(),
        other => other.to_string(),
    };
    Ok(tera::Value::String(csv_field(&text)))
}

/// A Markdown table cell: pipes escaped, one line.
fn md(value: &tera::Value, _: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let text = match value {
        tera::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Ok(tera::Value::String(text.replace('|', "\\|").replace(['\n', '\r'], " ")))
}

fn engine() -> tera::Result<Tera> {
    let mut t = Tera::default();
    t.add_raw_templates(TEMPLATES)?;
    t.register_filter("csv", csv);
    t.register_filter("md", md);
    Ok(t)
}

/// Renders an IncentivePlan decision (its JSON: `policy`, `version`,
/// `period`, `statements`) as `format`.
pub fn render(decision: &serde_json::Value, format: DocFormat, locale: DocLocale) -> Result<String, String> {
    if decision.get("kind").and_then(|k| k.as_str()) != Some("IncentivePlan") {
        return Err("--format html, md and csv render IncentivePlan statements; this decision is not one".into());
    }
    let name = match (format, locale) {
        (DocFormat::Json, _) => return serde_json::to_string_pretty(decision).map_err(|e| e.to_string()),
        (DocFormat::Html, DocLocale::En) => "statement.html",
        (DocFormat::Html, DocLocale::ZhCn) => "statement.zh-CN.html",
        (DocFormat::Md, DocLocale::En) => "statement.md",
        (DocFormat::Md, DocLocale::ZhCn) => "statement.zh-CN.md",
        (DocFormat::Csv, _) => "statement.csv",
    };
    let mut cx = Context::new();
    cx.insert("plan", &decision["policy"]);
    cx.insert("version", &decision["version"]);
    cx.insert("period", &decision["period"]);
    cx.insert("statements", &decision["statements"]);
    let tera = engine().map_err(|e| format!("templates: {e}"))?;
    tera.render(name, &cx).map_err(|e| {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        msg
    })
}
