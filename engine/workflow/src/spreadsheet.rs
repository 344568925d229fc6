//! Reports and statements as XLSX workbooks with real number cells: money
//! as `#,##0.00`, shares as percentages, counts as whole numbers. A figure
//! goes in as a number cell only when that number reads back as the same
//! decimal (up to 15 significant digits); a longer one is written as text,
//! so a workbook never shows a figure the engine did not compute. Text that
//! a spreadsheet would read as a formula is neutralised.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// The content type of the workbooks written here.
pub const XLSX_CONTENT_TYPE: &str = crate::imports::XLSX_CONTENT_TYPE;

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

/// One cell of a report.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    /// An amount of money: `#,##0.00`.
    Money(Decimal),
    /// A share (0.25 shows as 25.0%).
    Ratio(Decimal),
    /// A measured figure such as days: up to two places.
    Number(Decimal),
    Count(u64),
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    /// An optional share: empty when there is none.
    pub fn ratio(d: Option<Decimal>) -> Cell {
        d.map_or(Cell::Empty, Cell::Ratio)
    }

    /// An optional figure: empty when there is none.
    pub fn number(d: Option<Decimal>) -> Cell {
        d.map_or(Cell::Empty, Cell::Number)
    }
}

/// One sheet: a bold header row frozen at the top, then the rows.
#[derive(Debug, Clone)]
pub struct Sheet {
    pub name: String,
    /// Lines above the header (a title, the period, notes).
    pub title: Vec<String>,
    pub header: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// The number a decimal is written as, when it reads back as the same decimal.
fn exact_f64(d: Decimal) -> Option<f64> {
    let f = d.to_f64()?;
    let back: Decimal = format!("{f}").parse().ok()?;
    (back == d.normalize()).then_some(f)
}

/// The workbook of `sheets`, in order.
pub fn workbook(sheets: &[Sheet]) -> Result<Vec<u8>, String> {
    use rust_xlsxwriter::{Format, Workbook};
    let x = |e: rust_xlsxwriter::XlsxError| format!("writing the workbook: {e}");
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let money = Format::new().set_num_format("#,##0.00");
    let ratio = Format::new().set_num_format("0.0%");
    let number = Format::new().set_num_format("0.##");
    let count = Format::new().set_num_format("0");
    for s in sheets {
        let sheet = book.add_worksheet();
        // Sheet names are at most 31 characters, without []:*?/\.
        let name: String = s.name.chars().filter(|c| !"[]:*?/\\".contains(*c)).take(31).collect();
        sheet
            .set_name(if name.is_empty() { "Sheet1" } else { &name })
            .map_err(x)?;
        for (r, line) in s.title.iter().enumerate() {
            sheet.write_string(r as u32, 0, no_formula(line)).map_err(x)?;
        }
        let top = s.title.len() as u32 + u32::from(!s.title.is_empty());
        for (c, h) in s.header.iter().enumerate() {
            sheet
                .write_string_with_format(top, c as u16, no_formula(h), &bold)
                .map_err(x)?;
            sheet
                .set_column_width(c as u16, (h.chars().count() + 4).max(12) as f64)
                .map_err(x)?;
        }
        for (i, cells) in s.rows.iter().enumerate() {
            let row = top + 1 + i as u32;
            for (c, cell) in cells.iter().enumerate() {
                let c = c as u16;
                let (value, format) = match cell {
                    Cell::Empty => continue,
                    Cell::Text(t) => {
                        sheet.write_string(row, c, no_formula(t)).map_err(x)?;
                        continue;
                    }
                    Cell::Count(n) => {
                        sheet.write_number_with_format(row, c, *n as f64, &count).map_err(x)?;
                        continue;
                    }
                    Cell::Money(d) => (*d, &money),
                    Cell::Ratio(d) => (*d, &ratio),
                    Cell::Number(d) => (*d, &number),
                };
                match exact_f64(value) {
                    Some(f) => sheet.write_number_with_format(row, c, f, format).map_err(x)?,
                    None => sheet.write_string(row, c, value.to_string()).map_err(x)?,
                };
            }
        }
        sheet.set_freeze_panes(top + 1, 0).map_err(x)?;
    }
    book.save_to_buffer().map_err(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{Data, Reader};

    #[test]
    fn figures_are_number_cells_with_formats_and_read_back_exactly() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let sheet = Sheet {
            name: "Progress".into(),
            title: vec!["fy2026 2026-Q1".into()],
            header: vec![
                "region".into(),
                "target".into(),
                "attainment".into(),
                "days".into(),
                "deals".into(),
            ],
            rows: vec![
                vec![
                    Cell::text("=NA"),
                    Cell::Money(d("480000.10")),
                    Cell::Ratio(d("0.8125")),
                    Cell::Number(d("12.5")),
                    Cell::Count(7),
                ],
                vec![
                    Cell::text("EMEA"),
                    Cell::Money(d("12345678901234567.89")),
                    Cell::Empty,
                    Cell::Empty,
                    Cell::Count(0),
                ],
            ],
        };
        let bytes = workbook(&[sheet]).unwrap();
        let mut book: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
        let range = book.worksheet_range("Progress").unwrap();
        assert_eq!(range.get_value((0, 0)), Some(&Data::String("fy2026 2026-Q1".into())));
        assert_eq!(range.get_value((2, 1)), Some(&Data::String("target".into())));
        // A leading `=` is not a formula.
        assert_eq!(range.get_value((3, 0)), Some(&Data::String("'=NA".into())));
        assert_eq!(range.get_value((3, 1)), Some(&Data::Float(480000.1)));
        assert_eq!(range.get_value((3, 2)), Some(&Data::Float(0.8125)));
        assert_eq!(range.get_value((3, 4)), Some(&Data::Float(7.0)));
        // Past 15 digits the figure stays exact, as text.
        assert_eq!(
            range.get_value((4, 1)),
            Some(&Data::String("12345678901234567.89".into()))
        );
        assert_eq!(range.get_value((4, 2)), Some(&Data::Empty));
    }
}
