//! Statements as documents: HTML, Markdown and CSV from the Tera templates
//! in `templates/statements/`, in English or Chinese (zh-CN).
//!
//! The templates are compiled into the binary so `dealrules` renders the
//! same anywhere; HTML is autoescaped (deal fields come from a CRM).

use std::collections::HashMap;

use tera::{Context, Tera};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Html,
    Md,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Locale {
    #[value(name = "en")]
    En,
    #[value(name = "zh-CN")]
    ZhCn,
}

const TEMPLATES: [(&str, &str); 5] = [
    (
        "statement.html",
        include_str!("../templates/statements/statement.html.tera"),
    ),
    (
        "statement.zh-CN.html",
        include_str!("../templates/statements/statement.zh-CN.html.tera"),
    ),
    (
        "statement.md",
        include_str!("../templates/statements/statement.md.tera"),
    ),
    (
        "statement.zh-CN.md",
        include_str!("../templates/statements/statement.zh-CN.md.tera"),
    ),
    (
        "statement.csv",
        include_str!("../templates/statements/statement.csv.tera"),
    ),
];

/// A CSV field: quoted when it must be, and never a spreadsheet formula
/// (text starting `=`, `+`, `-`, `@` gets a leading `'`, numbers stay).
fn csv(value: &tera::Value, _: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let text = match value {
        tera::Value::String(s) => s.clone(),
        tera::Value::Null => String::new(),
        other => other.to_string(),
    };
    let is_number = text.parse::<f64>().is_ok();
    let text = if !is_number && text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text
    };
    let out = if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    };
    Ok(tera::Value::String(out))
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

/// Renders an IncentivePlan decision (its JSON) as `format`.
pub fn statements(decision: &serde_json::Value, format: Format, locale: Locale) -> Result<String, String> {
    if decision.get("kind").and_then(|k| k.as_str()) != Some("IncentivePlan") {
        return Err("--format html, md and csv render IncentivePlan statements; this decision is not one".into());
    }
    let name = match (format, locale) {
        (Format::Json, _) => return serde_json::to_string_pretty(decision).map_err(|e| e.to_string()),
        (Format::Html, Locale::En) => "statement.html",
        (Format::Html, Locale::ZhCn) => "statement.zh-CN.html",
        (Format::Md, Locale::En) => "statement.md",
        (Format::Md, Locale::ZhCn) => "statement.zh-CN.md",
        (Format::Csv, _) => "statement.csv",
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
