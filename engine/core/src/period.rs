//! Pay periods: `2026-03` (month), `2026-Q1` (quarter), `2026` (year).

use chrono::{Datelike, NaiveDate};
use dealrules_model::PeriodKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub label: String,
    pub kind: PeriodKind,
    pub year: i32,
    /// 1..=4 for quarters (and the quarter of a month).
    pub quarter: u32,
    /// 1..=12 for months.
    pub month: Option<u32>,
    pub start: NaiveDate,
    /// Inclusive.
    pub end: NaiveDate,
}

fn last_day(year: i32, month: u32) -> Option<NaiveDate> {
    let (y, m) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(y, m, 1)?.pred_opt()
}

impl Period {
    /// Parses a period of the plan's kind.
    pub fn parse(label: &str, kind: PeriodKind) -> Result<Period, String> {
        let bad = || {
            let example = match kind {
                PeriodKind::Month => "2026-03",
                PeriodKind::Quarter => "2026-Q1",
                PeriodKind::Year => "2026",
            };
            format!(
                "period `{label}` is not a {} such as {example}",
                format!("{kind:?}").to_lowercase()
            )
        };
        let (year_text, rest) = label.split_once('-').unwrap_or((label, ""));
        let year: i32 = year_text.parse().map_err(|_| bad())?;
        let (start, end, quarter, month) = match kind {
            PeriodKind::Year if rest.is_empty() => (
                NaiveDate::from_ymd_opt(year, 1, 1),
                NaiveDate::from_ymd_opt(year, 12, 31),
                1,
                None,
            ),
            PeriodKind::Quarter => {
                let q: u32 = rest
                    .strip_prefix('Q')
                    .and_then(|q| q.parse().ok())
                    .filter(|q| (1..=4).contains(q))
                    .ok_or_else(bad)?;
                (
                    NaiveDate::from_ymd_opt(year, 3 * q - 2, 1),
                    last_day(year, 3 * q),
                    q,
                    None,
                )
            }
            PeriodKind::Month => {
                let m: u32 = rest
                    .parse()
                    .ok()
                    .filter(|m| (1..=12).contains(m) && rest.len() == 2)
                    .ok_or_else(bad)?;
                (
                    NaiveDate::from_ymd_opt(year, m, 1),
                    last_day(year, m),
                    (m - 1) / 3 + 1,
                    Some(m),
                )
            }
            _ => return Err(bad()),
        };
        Ok(Period {
            label: label.to_string(),
            kind,
            year,
            quarter,
            month,
            start: start.ok_or_else(bad)?,
            end: end.ok_or_else(bad)?,
        })
    }

    pub fn contains(&self, d: NaiveDate) -> bool {
        self.start <= d && d <= self.end
    }

    /// Days in the period.
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days() + 1
    }

    pub fn quarter_of(d: NaiveDate) -> u32 {
        (d.month() - 1) / 3 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        let q = Period::parse("2026-Q1", PeriodKind::Quarter).unwrap();
        assert_eq!(
            (q.start.to_string(), q.end.to_string()),
            ("2026-01-01".into(), "2026-03-31".into())
        );
        let m = Period::parse("2024-02", PeriodKind::Month).unwrap();
        assert_eq!(m.end.to_string(), "2024-02-29");
        assert_eq!(m.quarter, 1);
        let y = Period::parse("2026", PeriodKind::Year).unwrap();
        assert_eq!(y.days(), 365);
        assert!(Period::parse("2026-Q5", PeriodKind::Quarter).is_err());
        assert!(Period::parse("2026-03", PeriodKind::Quarter).is_err());
        assert!(Period::parse("2026-3", PeriodKind::Month).is_err());
    }
}
