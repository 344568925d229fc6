//! Diagnostics: every load error names the file, line and column, the
//! document (kind/name) and what was expected.

use std::fmt;

/// A position in a pack file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    pub fn new(line: usize, col: usize) -> Self {
        Pos { line, col }
    }
}

/// One error found while loading or compiling a pack.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Path of the file inside the pack, with `/` separators.
    pub file: String,
    pub pos: Pos,
    /// `Kind/name` of the document, when the error is inside one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    /// What inside the document the error is about, when it is inside a
    /// rule, level, stage, component...: `rule small`, `stage proposal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: impl Into<String>, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            pos,
            document: None,
            item: None,
            message: message.into(),
        }
    }

    pub fn in_item(mut self, item: Option<String>) -> Self {
        if self.item.is_none() {
            self.item = item;
        }
        self
    }

    pub fn in_document(mut self, document: Option<String>) -> Self {
        if self.document.is_none() {
            self.document = document;
        }
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.pos.line, self.pos.col)?;
        match (&self.document, &self.item) {
            (Some(doc), Some(item)) => write!(f, "{doc} {item}: ")?,
            (Some(doc), None) => write!(f, "{doc}: ")?,
            (None, _) => {}
        }
        f.write_str(&self.message)
    }
}

/// All the errors of a pack, in file and position order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PackErrors(pub Vec<Diagnostic>);

impl PackErrors {
    pub fn sorted(mut diags: Vec<Diagnostic>) -> Self {
        diags.sort_by(|a, b| (&a.file, a.pos).cmp(&(&b.file, b.pos)));
        diags.dedup();
        PackErrors(diags)
    }
}

impl fmt::Display for PackErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// "did you mean" for a misspelt name among the known ones.
pub fn did_you_mean<'a>(given: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(given, k), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// Appends `; did you mean `x`?` when a close known name exists.
pub fn suggest<'a>(given: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    match did_you_mean(given, known) {
        Some(k) => format!("; did you mean `{k}`?"),
        None => String::new(),
    }
}
