//! Statements as documents: HTML, Markdown and CSV from the Tera templates
//! in `templates/statements/`, in English or Chinese (zh-CN).
//!
//! The templates are compiled into the binary so `dealrules` renders the
//! same anywhere; HTML is autoescaped (deal fields come from a CRM).

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Html,
    Md,
    Csv,
    /// A workbook (redirect it to a file).
    Xlsx,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Locale {
    #[value(name = "en")]
    En,
    #[value(name = "zh-CN")]
    ZhCn,
}

/// Renders an IncentivePlan decision (its JSON) as `format`, with the
/// templates the server renders statements with.
pub fn statements(decision: &serde_json::Value, format: Format, locale: Locale) -> Result<Vec<u8>, String> {
    use dealrules_workflow::statement_docs::{DocFormat, DocLocale, render_bytes};
    let format = match format {
        Format::Json => DocFormat::Json,
        Format::Html => DocFormat::Html,
        Format::Md => DocFormat::Md,
        Format::Csv => DocFormat::Csv,
        Format::Xlsx => DocFormat::Xlsx,
    };
    let locale = match locale {
        Locale::En => DocLocale::En,
        Locale::ZhCn => DocLocale::ZhCn,
    };
    render_bytes(decision, format, locale)
}
