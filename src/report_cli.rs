//! `dealrules report progress|funnel|forecast --db URL`: what
//! `GET /v1/targets/{name}/progress`, `/v1/analytics/funnel` and
//! `/v1/analytics/forecast` answer, read from a store with a pack, printed
//! as a table (or `--format csv|json|xlsx`; a workbook has number cells
//! with money, percentage and count formats).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use dealrules_core::measure::funnel::StageRow;
use dealrules_core::measure::progress::ProgressBy;
use dealrules_workflow::measured::{FunnelBy, bound};
use dealrules_workflow::spreadsheet::{Cell, Sheet};
use dealrules_workflow::{Clock, LongWork, Workflow};

use crate::error::{CliError, Result};
use crate::out::out;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
    /// A workbook, to a file: `> report.xlsx`.
    Xlsx,
}

#[derive(Debug, Args)]
pub struct Source {
    /// The store: sqlite://dealrules.db or postgres://...
    #[arg(long, env = "DEALRULES_DB", default_value = "sqlite://dealrules.db")]
    pub db: String,
    /// The pack the report reads its Targets and Funnel from.
    #[arg(long, env = "DEALRULES_RULES", default_value = "./rules")]
    pub rules: PathBuf,
    /// Measure as of this day (YYYY-MM-DD) instead of today.
    #[arg(long)]
    pub as_of: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Progress against a Targets document: target, actual, attainment, pace, alert.
    #[command(
        after_help = "Example:\n  dealrules report progress fy2026 --period 2026-Q1 --by region --db sqlite://dealrules.db"
    )]
    Progress {
        /// The Targets document.
        targets: String,
        /// 2026-Q1, 2026-03 or 2026.
        #[arg(long)]
        period: String,
        /// rep, region, team, product, channel or month.
        #[arg(long, default_value = "rep")]
        by: String,
        #[command(flatten)]
        source: Source,
    },
    /// Funnel analytics from the deals' history, per stage.
    #[command(
        after_help = "Example:\n  dealrules report funnel b2b --since 2026-01-01 --until 2026-04-01 --format csv"
    )]
    Funnel {
        /// The Funnel.
        funnel: String,
        /// Stage visits that began at or after this date or time.
        #[arg(long)]
        since: Option<String>,
        /// ...and before this one.
        #[arg(long)]
        until: Option<String>,
        /// owner or region: one table per group after the totals.
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        source: Source,
    },
    /// The weighted pipeline by period, configured and measured.
    #[command(
        after_help = "Example:\n  dealrules report forecast b2b --since 2026-01-01 --db sqlite://dealrules.db --format xlsx > forecast.xlsx"
    )]
    Forecast {
        funnel: String,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        source: Source,
    },
}

pub fn run(command: ReportCommand) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    rt.block_on(report(command))
}

async fn open(source: &Source) -> Result<(Workflow, Arc<dealrules_core::Snapshot>)> {
    let pack = dealrules_model::PackSource::from_dir(&source.rules).map_err(|e| CliError::PackUnreadable {
        dir: source.rules.clone(),
        source: e,
    })?;
    let snapshot = dealrules_core::Snapshot::load(pack).map_err(|e| CliError::PackInvalid {
        lines: vec![format!("{}: {e}", source.rules.display())],
    })?;
    let store = dealrules_store::Store::open(&source.db)
        .await
        .map_err(|e| CliError::StoreOpen(e.to_string()))?;
    let clock = match &source.as_of {
        None => Clock::default(),
        Some(day) => {
            let at = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|e| CliError::Flag {
                flag: "as-of",
                message: format!("`{day}` is not a date such as 2026-02-14: {e}"),
            })?;
            // Noon of that day, as the server's clock would read it.
            let at = at.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc();
            Clock::with_offset(at - chrono::Utc::now())
        }
    };
    let workflow = Workflow::new(
        Arc::new(store),
        Arc::new(clock),
        Arc::new(LongWork::default()),
        format!("cli-{}", std::process::id()),
    )
    .map_err(|e| CliError::Store(e.to_string()))?;
    Ok((workflow, Arc::new(snapshot)))
}

fn flag(flag: &'static str) -> impl Fn(String) -> CliError {
    move |message| CliError::Flag { flag, message }
}

/// A report's `--since` and `--until`, each open when absent.
type Window = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// `--since` and `--until`, each a time or a day.
fn window(since: Option<&str>, until: Option<&str>) -> Result<Window> {
    let read = |text: Option<&str>, name: &'static str| {
        text.map(|t| bound(t, name))
            .transpose()
            .map_err(|e| flag(name)(e.to_string()))
    };
    Ok((read(since, "since")?, read(until, "until")?))
}

async fn report(command: ReportCommand) -> Result<ExitCode> {
    match command {
        ReportCommand::Progress {
            targets,
            period,
            by,
            source,
        } => {
            let by: ProgressBy = by.parse().map_err(flag("by"))?;
            let (workflow, snapshot) = open(&source).await?;
            let p = workflow
                .target_progress(&snapshot, &targets, &period, by)
                .await
                .map_err(|e| CliError::Store(e.to_string()))?;
            workflow.store.close().await;
            if source.format == ReportFormat::Json {
                return json(&p);
            }
            let rows: Vec<Vec<Cell>> = p
                .rows
                .iter()
                .map(|r| {
                    vec![
                        Cell::text(&r.key),
                        Cell::Money(r.target),
                        Cell::Money(r.actual),
                        Cell::ratio(r.attainment),
                        Cell::ratio(r.pace),
                        Cell::text(if r.alert { "yes" } else { "no" }),
                    ]
                })
                .collect();
            let title = format!(
                "{} {} on {}: {} of the period elapsed",
                p.targets,
                p.period,
                p.today.format("%Y-%m-%d"),
                p.elapsed_share
            );
            let header = [by.as_str(), "target", "actual", "attainment", "pace", "alert"];
            if source.format == ReportFormat::Table {
                out!("{title}\n")?;
                for f in p.figures.iter().filter(|_| p.figures.len() > 1) {
                    out!(
                        "  {} to {}: total {}{}\n",
                        f.from.format("%Y-%m-%d"),
                        f.to.format("%Y-%m-%d"),
                        f.total,
                        f.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
                    )?;
                }
            }
            print_rows(source.format, &title, &header, &rows)?;
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::Funnel {
            funnel,
            since,
            until,
            by,
            source,
        } => {
            let (since, until) = window(since.as_deref(), until.as_deref())?;
            let by = by
                .as_deref()
                .map(FunnelBy::parse)
                .transpose()
                .map_err(|e| flag("by")(e.to_string()))?;
            let (workflow, snapshot) = open(&source).await?;
            let (report, _) = workflow
                .funnel_analytics(&snapshot, &funnel, since, until, by)
                .await
                .map_err(|e| CliError::Store(e.to_string()))?;
            workflow.store.close().await;
            if source.format == ReportFormat::Json {
                return json(&report);
            }
            let header = [
                "group",
                "stage",
                "entered",
                "advanced",
                "lost",
                "moved_back",
                "to_next",
                "to_won",
                "days_median",
                "days_p90",
                "open",
                "weighted",
                "stalled",
            ];
            let mut rows: Vec<Vec<Cell>> = report.stages.iter().map(|s| stage_cells("(all)", s)).collect();
            for g in &report.groups {
                rows.extend(g.stages.iter().map(|s| stage_cells(&g.key, s)));
            }
            print_rows(source.format, &format!("funnel {funnel}"), &header, &rows)?;
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::Forecast {
            funnel,
            since,
            until,
            source,
        } => {
            let (since, until) = window(since.as_deref(), until.as_deref())?;
            let (workflow, snapshot) = open(&source).await?;
            let (_, forecast) = workflow
                .funnel_analytics(&snapshot, &funnel, since, until, None)
                .await
                .map_err(|e| CliError::Store(e.to_string()))?;
            workflow.store.close().await;
            if source.format == ReportFormat::Json {
                return json(&forecast);
            }
            let rows: Vec<Vec<Cell>> = forecast
                .periods
                .iter()
                .map(|p| {
                    vec![
                        Cell::text(&p.period),
                        Cell::Count(p.open),
                        Cell::Money(p.amount),
                        Cell::Money(p.weighted_configured),
                        Cell::Money(p.weighted_measured),
                    ]
                })
                .collect();
            print_rows(
                source.format,
                &format!("forecast {funnel}"),
                &["period", "open", "amount", "weighted_configured", "weighted_measured"],
                &rows,
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn stage_cells(group: &str, s: &StageRow) -> Vec<Cell> {
    vec![
        Cell::text(group),
        Cell::text(&s.stage),
        Cell::Count(s.entered),
        Cell::Count(s.advanced),
        Cell::Count(s.lost),
        Cell::Count(s.moved_back),
        Cell::ratio(s.conversion_to_next),
        Cell::ratio(s.conversion_to_won),
        Cell::number(s.days_median),
        Cell::number(s.days_p90),
        Cell::Count(s.open),
        Cell::Money(s.weighted),
        Cell::Count(s.stalled),
    ]
}

/// A cell as the table and CSV print it: the figure as computed.
fn cell_text(c: &Cell) -> String {
    match c {
        Cell::Empty => String::new(),
        Cell::Text(t) => t.clone(),
        Cell::Money(d) | Cell::Ratio(d) | Cell::Number(d) => d.to_string(),
        Cell::Count(n) => n.to_string(),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<ExitCode> {
    let text = serde_json::to_string_pretty(value).map_err(CliError::Print)?;
    out!("{text}\n")?;
    Ok(ExitCode::SUCCESS)
}

/// A CSV field, quoted when it must be (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn print_rows(format: ReportFormat, title: &str, header: &[&str], cells: &[Vec<Cell>]) -> Result<()> {
    if format == ReportFormat::Xlsx {
        let sheet = Sheet {
            name: "Report".into(),
            title: vec![title.to_string()],
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: cells.to_vec(),
        };
        let bytes = dealrules_workflow::spreadsheet::workbook(&[sheet]).map_err(CliError::Render)?;
        return crate::out::write_bytes(&bytes);
    }
    let rows: Vec<Vec<String>> = cells.iter().map(|r| r.iter().map(cell_text).collect()).collect();
    if format == ReportFormat::Csv {
        out!(
            "{}\n",
            header.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(",")
        )?;
        for r in rows {
            out!("{}\n", r.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","))?;
        }
        return Ok(());
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            // The first column reads left to right; numbers line up on the right.
            .map(|(i, (c, w))| if i == 0 { format!("{c:<w$}") } else { format!("{c:>w$}") })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    out!("{}\n", line(header.to_vec()))?;
    for r in &rows {
        out!("{}\n", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}
