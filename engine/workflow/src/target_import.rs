//! A spreadsheet of per-rep targets (CSV or XLSX, one row per rep) turned
//! into a `kind: Targets` document whose decomposition reproduces every
//! cell of the sheet to the cent, or the rows it cannot express.
//!
//! The sheet: a `rep` column (or `id`), optional `name` and `region`
//! columns (kept as comments), and either period columns (`Q1`..`Q4`, or
//! months `M01`..`M12`; `2027-Q1`, `2027-01` and `1月`..`12月` read the
//! same) or one `amount` column for the year. The document's total is the
//! sheet's sum; each rep's share of it is their row's sum over the total
//! (one `by: rep` level, so every rep keeps their own figure whatever the
//! region); the phasing is each period column's sum over the total. One
//! phasing applies to every rep: a row whose periods are not in that
//! proportion cannot be expressed, and is named with the figure the policy
//! would give instead. Shares are written with the fewest decimal places
//! (at least two) that still reproduce every cell, and each level's shares
//! sum to exactly 1.

use std::collections::HashMap;

use indexmap::IndexMap;
use rust_decimal::Decimal;
use serde_json::Value;

use dealrules_core::period::Period;
use dealrules_core::targets::Targets;
use dealrules_model::{PaceAlert, PeriodKind, Shares, SplitLevel, TargetsSpec};

use crate::imports::{ImportFormat, LineError, read};

/// What the document is called and measures, from the command line.
#[derive(Debug, Clone)]
pub struct TargetsHeader {
    pub name: String,
    pub year: i32,
    pub measure: String,
    /// `pace_alert.below`, when alerts are wanted.
    pub pace_below: Option<Decimal>,
    /// Where the sheet came from, named in the document's comment.
    pub source: String,
}

/// The document written, and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetsDocument {
    pub yaml: String,
    pub reps: usize,
    pub total: Decimal,
}

/// What the sheet holds: the period keys in order, the rows, and where
/// they are (the workbook's sheet, each key's column as the sheet names it).
struct Layout {
    keys: Vec<String>,
    rows: Vec<RepRow>,
    sheet: Option<String>,
    columns: HashMap<String, String>,
}

impl Layout {
    fn error(&self, line: u64, key: Option<&str>, message: String) -> LineError {
        LineError {
            line,
            message,
            sheet: self.sheet.clone(),
            column: self.sheet.as_ref().and(key).and_then(|k| self.columns.get(k).cloned()),
        }
    }
}

/// One rep's row: where it is in the sheet and its figure per period key
/// (`Q1`, `M03`; `Y` for an annual-only sheet).
struct RepRow {
    line: u64,
    rep: String,
    region: Option<String>,
    cells: IndexMap<String, Decimal>,
    annual: Decimal,
}

/// The period key a column names in `year`, if it names one.
fn period_key(column: &str, year: i32) -> Option<String> {
    let c = column.trim();
    let c = c
        .strip_prefix(&format!("{year}-"))
        .or_else(|| c.strip_prefix(&format!("{year}")))
        .unwrap_or(c);
    let upper = c.to_ascii_uppercase();
    if let Some(q) = upper.strip_prefix('Q')
        && let Ok(q @ 1..=4) = q.parse::<u32>()
    {
        return Some(format!("Q{q}"));
    }
    let month = upper
        .strip_prefix('M')
        .or_else(|| c.strip_suffix('月'))
        .unwrap_or(&upper);
    match month.parse::<u32>() {
        Ok(m @ 1..=12) if month.len() <= 2 => Some(format!("M{m:02}")),
        _ => None,
    }
}

fn cents(v: &Value) -> Result<Decimal, String> {
    let d = match v {
        Value::Number(n) => n.to_string().parse::<Decimal>().map_err(|e| e.to_string())?,
        Value::String(s) => s
            .trim()
            .parse::<Decimal>()
            .map_err(|_| format!("`{s}` is not an amount"))?,
        other => return Err(format!("`{other}` is not an amount")),
    };
    if d.is_sign_negative() {
        return Err(format!("{d} is negative: a target is zero or more"));
    }
    if d.normalize().scale() > 2 {
        return Err(format!("{d} has more than two decimal places"));
    }
    Ok(d.normalize())
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads the sheet (the one named `Targets`, else the first) into rows,
/// with every bad row numbered.
fn rows(body: &[u8], format: ImportFormat, year: i32) -> Result<Layout, Vec<LineError>> {
    let table = read(body, format, "Targets")?;
    let mut keys: Vec<String> = Vec::new();
    let mut columns: HashMap<String, String> = HashMap::new();
    let mut errors = Vec::new();
    let mut out: Vec<RepRow> = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for (line, record) in &table.rows {
        let fail = |m: String| table.error(*line, m);
        let Some(rep) = record.get("rep").or_else(|| record.get("id")).and_then(text) else {
            errors.push(fail("`rep` is missing: each row is one rep's targets".into()));
            continue;
        };
        if let Some(first) = seen.insert(rep.clone(), *line) {
            errors.push(fail(format!("rep `{rep}` appears twice (first on row {first})")));
            continue;
        }
        let mut cells = IndexMap::new();
        let mut annual = None;
        let mut bad = None;
        for (column, value) in record {
            let key = period_key(column, year);
            let wanted = key.is_some() || column == "amount";
            if !wanted {
                continue;
            }
            match cents(value) {
                Ok(d) => match key {
                    Some(k) => {
                        if !keys.contains(&k) {
                            keys.push(k.clone());
                            columns.insert(k.clone(), column.clone());
                        }
                        cells.insert(k, d);
                    }
                    None => annual = Some(d),
                },
                Err(m) => {
                    bad = Some(format!("`{column}`: {m}"));
                    break;
                }
            }
        }
        if let Some(m) = bad {
            errors.push(fail(m));
            continue;
        }
        let sum = cells.values().try_fold(Decimal::ZERO, |a, d| a.checked_add(*d));
        let annual = match (annual, sum) {
            (_, None) => {
                errors.push(fail("the row's sum is out of range".into()));
                continue;
            }
            (Some(a), Some(s)) if !cells.is_empty() && a != s => {
                errors.push(fail(format!("`amount` is {a} but the row's periods sum to {s}")));
                continue;
            }
            (Some(a), _) => a,
            (None, Some(_)) if cells.is_empty() => {
                errors.push(fail(
                    "no figures: give period columns (Q1..Q4 or M01..M12) or an `amount` for the year".into(),
                ));
                continue;
            }
            (None, Some(s)) => s,
        };
        out.push(RepRow {
            line: *line,
            rep,
            region: record.get("region").and_then(text),
            cells,
            annual,
        });
    }
    let quarters = keys.iter().any(|k| k.starts_with('Q'));
    let months = keys.iter().any(|k| k.starts_with('M'));
    if quarters && months {
        errors.insert(
            0,
            LineError::new(1, "the sheet mixes quarter and month columns: give one or the other"),
        );
    }
    if out.is_empty() && errors.is_empty() {
        errors.push(LineError::new(1, "the sheet has no rows of targets"));
    }
    if errors.is_empty() {
        keys.sort();
        Ok(Layout {
            keys,
            rows: out,
            sheet: table.sheet.clone(),
            columns,
        })
    } else {
        Err(errors)
    }
}

/// `parts / whole` to `places` decimal places, the remainder of the
/// rounding given to the largest part so the shares sum to exactly 1.
fn shares(parts: &[Decimal], whole: Decimal, places: u32) -> Option<Vec<Decimal>> {
    let mut out: Vec<Decimal> = parts
        .iter()
        .map(|p| p.checked_div(whole).map(|s| s.round_dp(places)))
        .collect::<Option<_>>()?;
    let sum = out.iter().try_fold(Decimal::ZERO, |a, s| a.checked_add(*s))?;
    let largest = (0..out.len()).max_by_key(|i| out[*i])?;
    out[largest] = out[largest].checked_add(Decimal::ONE.checked_sub(sum)?)?;
    Some(out.into_iter().map(|s| s.normalize()).collect())
}

/// The spec with shares at `places` decimal places.
fn spec_at(
    header: &TargetsHeader,
    keys: &[String],
    rows: &[RepRow],
    total: Decimal,
    places: u32,
) -> Option<TargetsSpec> {
    let annuals: Vec<Decimal> = rows.iter().map(|r| r.annual).collect();
    let rep_shares = shares(&annuals, total, places)?;
    let phasing = if keys.is_empty() {
        IndexMap::new()
    } else {
        let sums: Vec<Decimal> = keys
            .iter()
            .map(|k| {
                rows.iter().try_fold(Decimal::ZERO, |a, r| {
                    a.checked_add(r.cells.get(k).copied().unwrap_or_default())
                })
            })
            .collect::<Option<_>>()?;
        keys.iter().cloned().zip(shares(&sums, total, places)?).collect()
    };
    Some(TargetsSpec {
        measure: header.measure.clone(),
        year: header.year,
        total,
        split: vec![SplitLevel {
            by: "rep".into(),
            shares: Shares::Explicit(rows.iter().map(|r| r.rep.clone()).zip(rep_shares).collect()),
        }],
        phasing,
        pace_alert: header.pace_below.map(|below| PaceAlert {
            below,
            schedule: Default::default(),
            period: PeriodKind::Quarter,
        }),
        adjustments: Vec::new(),
    })
}

/// Where the policy's figures differ from the sheet's, as row errors.
fn differences(header: &TargetsHeader, layout: &Layout, spec: &TargetsSpec) -> Result<Vec<LineError>, String> {
    let (keys, rows) = (&layout.keys, &layout.rows);
    let targets = Targets::new(&header.name, spec);
    let reps: Vec<dealrules_expr::Value> = rows
        .iter()
        .map(|r| dealrules_expr::Value::from_json(&serde_json::json!({ "id": r.rep })))
        .collect();
    let annual = targets.annual_all(&reps);
    let mut scales = Vec::new();
    for k in keys {
        let label = match k.strip_prefix('M') {
            Some(m) => format!("{}-{m}", header.year),
            None => format!("{}-{k}", header.year),
        };
        let kind = if k.starts_with('M') {
            PeriodKind::Month
        } else {
            PeriodKind::Quarter
        };
        let period = Period::parse(&label, kind)?;
        scales.push(targets.period_scale(&period)?);
    }
    let round = |d: Decimal| dealrules_core::money::Rounding::for_currency("USD").round(d);
    let mut out = Vec::new();
    for r in rows {
        let a = annual[&r.rep].clone()?;
        if round(a) != r.annual {
            out.push(layout.error(
                r.line,
                None,
                format!(
                    "rep `{}`: the year is {} but the shares give {}",
                    r.rep,
                    r.annual,
                    round(a)
                ),
            ));
            continue;
        }
        for (k, scale) in keys.iter().zip(&scales) {
            let want = r.cells.get(k).copied().unwrap_or_default();
            let got = a.checked_mul(*scale).map(round).ok_or("a target is out of range")?;
            if got != want {
                out.push(layout.error(
                    r.line,
                    Some(k),
                    format!(
                        "rep `{}`: `{k}` is {want} but one phasing for every rep gives {got} \
                         (the sheet's {k} is {} of the year)",
                        r.rep,
                        spec.phasing[k].round_dp(4).normalize()
                    ),
                ));
                break;
            }
        }
    }
    Ok(out)
}

/// The Targets document for a sheet of per-rep targets, or the rows it
/// cannot express.
pub fn targets(body: &[u8], format: ImportFormat, header: &TargetsHeader) -> Result<TargetsDocument, Vec<LineError>> {
    let layout = rows(body, format, header.year)?;
    let (keys, rows) = (&layout.keys, &layout.rows);
    let whole = |m: String| vec![LineError::new(1, m)];
    let total = rows
        .iter()
        .try_fold(Decimal::ZERO, |a, r| a.checked_add(r.annual))
        .ok_or_else(|| whole("the sheet's total is out of range".into()))?;
    if total.is_zero() {
        return Err(whole("the sheet's targets sum to 0: there is nothing to share".into()));
    }
    let mut best = None;
    for places in 2..=28 {
        let spec = spec_at(header, keys, rows, total, places).ok_or_else(|| whole("a share is out of range".into()))?;
        let diff = differences(header, &layout, &spec).map_err(whole)?;
        if diff.is_empty() {
            best = Some(spec);
            break;
        }
        if places == 28 {
            return Err(diff);
        }
    }
    let spec = best.ok_or_else(|| whole("no shares reproduce the sheet".into()))?;
    Ok(TargetsDocument {
        yaml: yaml(header, rows, &spec),
        reps: rows.len(),
        total,
    })
}

/// A YAML key or value, quoted when it would not read back as the text.
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "~"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

fn yaml(header: &TargetsHeader, rows: &[RepRow], spec: &TargetsSpec) -> String {
    use std::fmt::Write;
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Generated by `dealrules import targets` from {}: {} reps, {} in total.\n\
         # Each rep's share is their year over the total; the phasing is each\n\
         # period's sum over the total. Together they give the sheet's figures.",
        header.source,
        rows.len(),
        spec.total
    );
    let mut regions: IndexMap<&str, Decimal> = IndexMap::new();
    for r in rows {
        if let Some(region) = &r.region {
            let e = regions.entry(region.as_str()).or_default();
            *e = e.saturating_add(r.annual);
        }
    }
    if !regions.is_empty() {
        let list: Vec<String> = regions.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(y, "# By region: {}.", list.join(", "));
    }
    let _ = writeln!(
        y,
        "apiVersion: dealrules/v1\nkind: Targets\nmetadata:\n  name: {}",
        scalar(&header.name)
    );
    let _ = writeln!(
        y,
        "spec:\n  measure: {}\n  year: {}\n  total: {}",
        scalar(&spec.measure),
        spec.year,
        spec.total
    );
    let _ = writeln!(y, "  split:\n    - by: rep\n      shares:");
    if let Some(Shares::Explicit(m)) = spec.split.first().map(|l| &l.shares) {
        for (r, (rep, share)) in rows.iter().zip(m) {
            let note = r.region.as_ref().map(|g| format!("  # {g}")).unwrap_or_default();
            let _ = writeln!(y, "        {}: {share}{note}", scalar(rep));
        }
    }
    if !spec.phasing.is_empty() {
        let list: Vec<String> = spec.phasing.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(y, "  phasing: {{ {} }}", list.join(", "));
    }
    if let Some(p) = &spec.pace_alert {
        let _ = writeln!(y, "  pace_alert: {{ below: {} }}", p.below);
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> TargetsHeader {
        TargetsHeader {
            name: "fy2027".into(),
            year: 2027,
            measure: "bookings".into(),
            pace_below: Some(Decimal::new(8, 1)),
            source: "targets.csv".into(),
        }
    }

    /// The document loaded as a pack would load it (shares that do not sum
    /// to 1 would fail here), and its spec.
    fn spec_of(yaml: &str) -> TargetsSpec {
        let source = dealrules_model::PackSource::from_texts([("targets.yaml", yaml)]);
        let snapshot = dealrules_core::Snapshot::load(source).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert!(snapshot.targets(Some("fy2027")).is_some());
        match &snapshot.pack.documents[0].spec {
            dealrules_model::Spec::Targets(spec) => spec.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_quarterly_sheet_becomes_shares_and_phasing_that_give_every_cell() {
        let sheet = b"rep,name,region,Q1,Q2,Q3,Q4\nana,Ana,NA,20000,25000,25000,30000\nben,Ben,EMEA,8000,10000,10000,12000\n1001,Cy,NA,12000,15000,15000,18000\n";
        let doc = targets(sheet, ImportFormat::Csv, &header()).unwrap();
        assert_eq!(doc.reps, 3);
        assert_eq!(doc.total, Decimal::from(200_000));
        assert!(doc.yaml.contains("        ana: 0.5  # NA\n"), "{}", doc.yaml);
        assert!(doc.yaml.contains("        ben: 0.2  # EMEA\n"), "{}", doc.yaml);
        assert!(doc.yaml.contains("        \"1001\": 0.3  # NA\n"), "{}", doc.yaml);
        assert!(
            doc.yaml
                .contains("  phasing: { Q1: 0.2, Q2: 0.25, Q3: 0.25, Q4: 0.3 }\n"),
            "{}",
            doc.yaml
        );
        assert!(doc.yaml.contains("# By region: NA 160000, EMEA 40000."), "{}", doc.yaml);
        assert!(doc.yaml.contains("  pace_alert: { below: 0.8 }\n"), "{}", doc.yaml);
        assert_eq!(spec_of(&doc.yaml).total, Decimal::from(200_000));
    }

    #[test]
    fn thirds_take_the_places_they_need_and_still_sum_to_one() {
        let sheet = b"rep,amount\na,100000\nb,100000\nc,100000\n";
        let doc = targets(sheet, ImportFormat::Csv, &header()).unwrap();
        let spec = spec_of(&doc.yaml);
        let Shares::Explicit(m) = &spec.split[0].shares else {
            panic!("{}", doc.yaml)
        };
        assert_eq!(m.values().copied().sum::<Decimal>(), Decimal::ONE);
        // 300,000 x share is within half a cent of 100,000 from 8 places on.
        assert_eq!(m["a"], "0.33333333".parse::<Decimal>().unwrap(), "{}", doc.yaml);
        assert!(spec.phasing.is_empty());
        let reps: Vec<dealrules_expr::Value> = ["a", "b", "c"]
            .map(|r| dealrules_expr::Value::from_json(&serde_json::json!({"id": r})))
            .to_vec();
        let annual = Targets::new("fy2027", &spec).annual_all(&reps);
        for r in ["a", "b", "c"] {
            assert_eq!(annual[r].clone().unwrap().round_dp(2), Decimal::from(100_000));
        }
    }

    #[test]
    fn monthly_columns_in_any_spelling_phase_by_month() {
        let sheet = b"rep,2027-01,2027-02,3\xe6\x9c\x88,M04,M05,M06,M07,M08,M09,M10,M11,M12\nana,10,10,10,10,10,10,10,10,10,10,10,10\nben,20,20,20,20,20,20,20,20,20,20,20,20\n";
        let doc = targets(sheet, ImportFormat::Csv, &header()).unwrap();
        let spec = spec_of(&doc.yaml);
        assert_eq!(spec.phasing.len(), 12);
        assert_eq!(spec.phasing.values().copied().sum::<Decimal>(), Decimal::ONE);
        // A quarter of a month-phased year is the sum of its months.
        let t = Targets::new("fy2027", &spec);
        let q1 = Period::parse("2027-Q1", PeriodKind::Quarter).unwrap();
        assert_eq!((Decimal::from(360) * t.phase(&q1)).round_dp(2), Decimal::from(90));
    }

    #[test]
    fn a_rep_off_the_common_phasing_is_named_and_nothing_is_written() {
        let sheet = b"rep,Q1,Q2,Q3,Q4\nana,20000,25000,25000,30000\nben,40000,10000,10000,40000\n";
        let errors = targets(sheet, ImportFormat::Csv, &header()).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[1].line, 3);
        assert!(
            errors[1]
                .message
                .contains("rep `ben`: `Q1` is 40000 but one phasing for every rep gives"),
            "{errors:?}"
        );
    }

    #[test]
    fn bad_rows_are_numbered() {
        let sheet = b"rep,Q1,Q2\nana,10,-1\n,5,5\nana,1,1\nben,1.005,1\n";
        let errors = targets(sheet, ImportFormat::Csv, &header()).unwrap_err();
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4, 5], "{errors:?}");
        assert!(errors[0].message.contains("negative"));
        assert!(errors[1].message.contains("`rep` is missing"));
        assert!(errors[2].message.contains("appears twice (first on row 2)"));
        assert!(errors[3].message.contains("more than two decimal places"));
    }
}
