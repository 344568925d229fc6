//! `dealrules report progress|funnel|forecast --db URL`: what
//! `GET /v1/targets/{name}/progress`, `/v1/analytics/funnel` and
//! `/v1/analytics/forecast` answer, read from a store with a pack, printed
//! as a table (or `--format csv|json`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use dealrules_core::measure::funnel::StageRow;
use dealrules_core::measure::progress::ProgressBy;
use dealrules_workflow::measured::{FunnelBy, bound};
use dealrules_workflow::{Clock, LongWork, Workflow};

use crate::error::{CliError, Result};
use crate::out::out;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
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
            let rows: Vec<Vec<String>> = p
                .rows
                .iter()
                .map(|r| {
                    vec![
                        r.key.clone(),
                        r.target.to_string(),
                        r.actual.to_string(),
                        opt(r.attainment),
                        opt(r.pace),
                        if r.alert { "yes".into() } else { "no".into() },
                    ]
                })
                .collect();
            let header = [by.as_str(), "target", "actual", "attainment", "pace", "alert"];
            if source.format == ReportFormat::Table {
                out!(
                    "{} {} on {}: {} of the period elapsed\n",
                    p.targets,
                    p.period,
                    p.today.format("%Y-%m-%d"),
                    p.elapsed_share
                )?;
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
            print_rows(source.format, &header, &rows)?;
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
            let mut rows: Vec<Vec<String>> = report.stages.iter().map(|s| stage_cells("(all)", s)).collect();
            for g in &report.groups {
                rows.extend(g.stages.iter().map(|s| stage_cells(&g.key, s)));
            }
            print_rows(source.format, &header, &rows)?;
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
            let rows: Vec<Vec<String>> = forecast
                .periods
                .iter()
                .map(|p| {
                    vec![
                        p.period.clone(),
                        p.open.to_string(),
                        p.amount.to_string(),
                        p.weighted_configured.to_string(),
                        p.weighted_measured.to_string(),
                    ]
                })
                .collect();
            print_rows(
                source.format,
                &["period", "open", "amount", "weighted_configured", "weighted_measured"],
                &rows,
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn stage_cells(group: &str, s: &StageRow) -> Vec<String> {
    vec![
        group.to_string(),
        s.stage.clone(),
        s.entered.to_string(),
        s.advanced.to_string(),
        s.lost.to_string(),
        s.moved_back.to_string(),
        opt(s.conversion_to_next),
        opt(s.conversion_to_won),
        opt(s.days_median),
        opt(s.days_p90),
        s.open.to_string(),
        s.weighted.to_string(),
        s.stalled.to_string(),
    ]
}

/// An optional figure as a cell: empty when there is none.
fn opt<T: std::fmt::Display>(d: Option<T>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
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

fn print_rows(format: ReportFormat, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
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
    for r in rows {
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
    for r in rows {
        out!("{}\n", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}
