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
    /// A workbook: one row per statement line, money as number cells.
    Xlsx,
}

impl DocFormat {
    /// `json`, `html`, `md` (or `markdown`), `csv`, `xlsx`.
    pub fn parse(s: &str) -> Option<DocFormat> {
        match s {
            "json" => Some(DocFormat::Json),
            "html" => Some(DocFormat::Html),
            "md" | "markdown" => Some(DocFormat::Md),
            "csv" => Some(DocFormat::Csv),
            "xlsx" => Some(DocFormat::Xlsx),
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
            DocFormat::Xlsx => crate::imports::XLSX_CONTENT_TYPE,
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

pub use crate::spreadsheet::no_formula;

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

/// The pieces of `text` that fill the `{}` holes of `pattern`, when the
/// text has the pattern's shape (each hole at least one character).
fn capture<'t>(text: &'t str, pattern: &str) -> Option<Vec<&'t str>> {
    let literals: Vec<&str> = pattern.split("{}").collect();
    let (first, rest) = literals.split_first()?;
    let mut at = text.strip_prefix(first)?;
    let mut holes = Vec::new();
    for (i, lit) in rest.iter().enumerate() {
        let last = i + 1 == rest.len();
        let end = if last {
            if !at.ends_with(lit) || at.len() < lit.len() + 1 {
                return None;
            }
            at.len() - lit.len()
        } else {
            at.get(1..)?.find(lit)? + 1
        };
        holes.push(&at[..end]);
        at = &at[end + lit.len()..];
    }
    Some(holes)
}

/// Whole explanations with holes, English -> Chinese (`{0}`... name the
/// holes in order). Tried in order; the first that fits wins.
const WHOLE: &[(&str, &str)] = &[
    (
        "deal {} cancelled {} days after close (window {} days): {} paid x {} taken back",
        "交易 {0} 在成交 {1} 天后取消（追回期 {2} 天）：已付 {3} x {4} 追回",
    ),
    (
        "deal {} in {} (locked, run {}): paid {}, pays {} now, {} adjusted already: {}",
        "交易 {0}（{1}，已锁定，运行 {2}）：原付 {3}，现应付 {4}，已调整 {5}：{6}",
    ),
    (
        "deal {} in {} (locked, run {}): paid {}, pays {} now: {}",
        "交易 {0}（{1}，已锁定，运行 {2}）：原付 {3}，现应付 {4}：{5}",
    ),
    (
        "{} (locked, run {}): lines not tied to a deal paid {}, pay {} now, {} adjusted already: {}",
        "{0}（已锁定，运行 {1}）：与交易无关的明细原付 {2}，现应付 {3}，已调整 {4}：{5}",
    ),
    (
        "{} (locked, run {}): lines not tied to a deal paid {}, pay {} now: {}",
        "{0}（已锁定，运行 {1}）：与交易无关的明细原付 {2}，现应付 {3}：{4}",
    ),
    ("{} deals x {}", "{0} 笔交易 x {1}"),
    ("{} deal x {}", "{0} 笔交易 x {1}"),
];

/// Phrases inside explanations (the arithmetic itself reads the same in
/// both languages).
const PHRASES: &[(&str, &str)] = &[
    ("split deal paid as one, ", "拆分交易按整单计算，"),
    (" of it by largest remainder = ", " 的份额（最大余数法）= "),
    ("; score below the threshold ", "；得分低于门槛 "),
    (", pays nothing", "，不予支付"),
    (", capped at ", "，封顶 "),
    (" (as a fraction)", "（小数）"),
    (" per deal", " 每笔交易"),
];

/// A statement line's explanation in Chinese: the engine's wording
/// translated, numbers, deal ids and rates kept. Text a script or plugin
/// wrote is left as it came.
pub fn explain_zh(text: &str) -> String {
    if text == "no credit" {
        return "无业绩".into();
    }
    for (en, zh) in WHOLE {
        if let Some(holes) = capture(text, en) {
            let mut out = (*zh).to_string();
            for (i, h) in holes.iter().enumerate() {
                out = out.replace(&format!("{{{i}}}"), h);
            }
            return out;
        }
    }
    let mut out = text.to_string();
    for (en, zh) in PHRASES {
        out = out.replace(en, zh);
    }
    out
}

/// The statement's lines explained in `locale` (`explain`, and `rate`
/// where it has words).
pub fn localize(statement: &mut serde_json::Value, locale: DocLocale) {
    if locale != DocLocale::ZhCn {
        return;
    }
    for line in statement
        .get_mut("lines")
        .and_then(serde_json::Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        for key in ["explain", "rate"] {
            if let Some(text) = line.get(key).and_then(serde_json::Value::as_str) {
                let zh = explain_zh(text);
                line[key] = serde_json::Value::String(zh);
            }
        }
    }
}

/// Renders an IncentivePlan decision (its JSON: `policy`, `version`,
/// `period`, `statements`) as `format`.
pub fn render(decision: &serde_json::Value, format: DocFormat, locale: DocLocale) -> Result<String, String> {
    if decision.get("kind").and_then(|k| k.as_str()) != Some("IncentivePlan") {
        return Err("--format html, md and csv render IncentivePlan statements; this decision is not one".into());
    }
    let mut localized;
    let decision = if locale == DocLocale::ZhCn {
        localized = decision.clone();
        if let Some(list) = localized
            .get_mut("statements")
            .and_then(serde_json::Value::as_array_mut)
        {
            list.iter_mut().for_each(|s| localize(s, locale));
        }
        &localized
    } else {
        decision
    };
    let name = match (format, locale) {
        (DocFormat::Json, _) => return serde_json::to_string_pretty(decision).map_err(|e| e.to_string()),
        (DocFormat::Html, DocLocale::En) => "statement.html",
        (DocFormat::Html, DocLocale::ZhCn) => "statement.zh-CN.html",
        (DocFormat::Md, DocLocale::En) => "statement.md",
        (DocFormat::Md, DocLocale::ZhCn) => "statement.zh-CN.md",
        (DocFormat::Csv, _) => "statement.csv",
        (DocFormat::Xlsx, _) => return Err("a workbook is not text: render it with `render_bytes`".into()),
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

/// Renders the decision as `format`, workbooks included.
pub fn render_bytes(decision: &serde_json::Value, format: DocFormat, locale: DocLocale) -> Result<Vec<u8>, String> {
    if format != DocFormat::Xlsx {
        return render(decision, format, locale).map(String::into_bytes);
    }
    if decision.get("kind").and_then(|k| k.as_str()) != Some("IncentivePlan") {
        return Err("--format xlsx renders IncentivePlan statements; this decision is not one".into());
    }
    use crate::spreadsheet::{Cell, Sheet, workbook};
    let zh = locale == DocLocale::ZhCn;
    let header: Vec<String> = if zh {
        ["代表", "期间", "币种", "项目", "交易", "金额", "说明"]
    } else {
        ["rep", "period", "currency", "component", "deals", "amount", "explain"]
    }
    .map(String::from)
    .to_vec();
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let money = |v: &serde_json::Value| {
        text(v)
            .parse::<rust_decimal::Decimal>()
            .map(Cell::Money)
            .unwrap_or_else(|_| Cell::Text(text(v)))
    };
    let mut rows = Vec::new();
    for s in decision["statements"].as_array().into_iter().flatten() {
        let mut s = s.clone();
        localize(&mut s, locale);
        let (rep, period, currency) = (text(&s["rep"]), text(&s["period"]), text(&s["currency"]));
        for l in s["lines"].as_array().into_iter().flatten() {
            let deals: Vec<String> = l["deals"].as_array().into_iter().flatten().map(text).collect();
            rows.push(vec![
                Cell::text(&rep),
                Cell::text(&period),
                Cell::text(&currency),
                Cell::text(text(&l["component"])),
                Cell::text(deals.join(" ")),
                money(&l["amount"]),
                Cell::text(text(&l["explain"])),
            ]);
        }
        rows.push(vec![
            Cell::text(&rep),
            Cell::text(&period),
            Cell::text(&currency),
            Cell::text(if zh { "合计" } else { "total" }),
            Cell::Empty,
            money(&s["total"]),
            Cell::Empty,
        ]);
    }
    let title = format!(
        "{} {} ({})",
        text(&decision["policy"]),
        text(&decision["period"]),
        text(&decision["version"])
    );
    workbook(&[Sheet {
        name: if zh { "提成明细".into() } else { "Statements".into() },
        title: vec![title],
        header,
        rows,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_explanation_the_engine_writes_reads_in_chinese() {
        let cases = [
            ("no credit", "无业绩"),
            ("2 deals x 500.00", "2 笔交易 x 500.00"),
            ("1 deal x 500.00", "1 笔交易 x 500.00"),
            (
                "100000.00 x 10% + 27000.00 x 15% = 14050.00, capped at 12000.00",
                "100000.00 x 10% + 27000.00 x 15% = 14050.00，封顶 12000.00",
            ),
            (
                "d-1: split deal paid as one, 50000.00 x 10% = 5000.00, 60% of it by largest remainder = 3000.00",
                "d-1: 拆分交易按整单计算，50000.00 x 10% = 5000.00, 60% 的份额（最大余数法）= 3000.00",
            ),
            (
                "10000.00 x (0.6 x 0.9 + 0.4 x 1.1) = 10000.00 x 0.98; score below the threshold 0.99, pays nothing",
                "10000.00 x (0.6 x 0.9 + 0.4 x 1.1) = 10000.00 x 0.98；得分低于门槛 0.99，不予支付",
            ),
            (
                "deal d-1 cancelled 85 days after close (window 90 days): 6500.00 paid x 100% taken back",
                "交易 d-1 在成交 85 天后取消（追回期 90 天）：已付 6500.00 x 100% 追回",
            ),
            (
                "deal d-4 in 2026-Q1 (locked, run run_01): paid 0, pays 70.00 now: +70.00",
                "交易 d-4（2026-Q1，已锁定，运行 run_01）：原付 0，现应付 70.00：+70.00",
            ),
            (
                "deal d-3 in 2026-Q1 (locked, run run_01): paid 50.00, pays 25.00 now, -10.00 adjusted already: -15.00",
                "交易 d-3（2026-Q1，已锁定，运行 run_01）：原付 50.00，现应付 25.00，已调整 -10.00：-15.00",
            ),
            (
                "2026-Q1 (locked, run run_01): lines not tied to a deal paid 0, pay 500.00 now: +500.00",
                "2026-Q1（已锁定，运行 run_01）：与交易无关的明细原付 0，现应付 500.00：+500.00",
            ),
            ("a script's own words", "a script's own words"),
        ];
        for (en, zh) in cases {
            assert_eq!(explain_zh(en), zh, "{en}");
        }
    }

    #[test]
    fn a_chinese_statement_explains_each_line_in_chinese() {
        let decision = serde_json::json!({
            "policy": "ae", "kind": "IncentivePlan", "version": "v1", "period": "2026-Q1",
            "statements": [{"rep": "ana", "period": "2026-Q1", "currency": "USD", "credit": "1000.00",
                "earned": "500.00", "total": "500.00",
                "lines": [{"component": "new-logo", "amount": "500.00", "deals": ["d-1"], "explain": "1 deal x 500.00"}]}]
        });
        let md = render(&decision, DocFormat::Md, DocLocale::ZhCn).unwrap();
        assert!(md.contains("1 笔交易 x 500.00"), "{md}");
        let md = render(&decision, DocFormat::Md, DocLocale::En).unwrap();
        assert!(md.contains("1 deal x 500.00"), "{md}");
    }
}
