//! `dealrules import people|deals FILE`: a CSV, JSONL or XLSX file into a
//! running server (`--server URL`, with a token) or straight into a store
//! (`--db URL`). Either way the file goes in whole or not at all, and bad
//! lines are listed with their numbers.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use dealrules_workflow::imports::{self, ImportFormat, LineError};

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// The roster: id,name,role,manager,region,team,effective_from,... (other columns are attributes).
    #[command(
        after_help = "Examples:\n  dealrules import people team.xlsx --server http://127.0.0.1:8080 --token $TOKEN\n  dealrules import people people.csv --db sqlite://dealrules.db"
    )]
    People(ImportArgs),
    /// Deals: id,owner,stage,funnel,amount,closed_at,splits,...; idempotent by id.
    #[command(
        after_help = "Examples:\n  dealrules import deals crm-export.csv --db sqlite://dealrules.db --rules rules\n  dealrules import deals history.jsonl --server http://127.0.0.1:8080 --token $SERVICE_TOKEN"
    )]
    Deals(ImportArgs),
    /// Per-rep targets (rep,region,Q1..Q4 or M01..M12, or amount) as a `kind: Targets` document.
    #[command(
        after_help = "Examples:\n  dealrules import targets fy2027.xlsx --name fy2027 --year 2027 --out rules/targets-fy2027.yaml\n  dealrules import targets targets.csv --name fy2027 --year 2027 --pace-alert 0.8 | less\n\nThe document's shares reproduce every cell of the sheet to the cent; rows that one phasing\nfor every rep cannot express are listed, and nothing is written. Review the document and\npropose it like any other change (dealrules change create, or a commit to the watched folder)."
    )]
    Targets(TargetsArgs),
}

#[derive(Debug, Args)]
pub struct TargetsArgs {
    /// The CSV or XLSX sheet (the sheet named `Targets`, else the first).
    pub file: PathBuf,
    /// The policy's name, e.g. fy2027.
    #[arg(long)]
    pub name: String,
    /// The targets' year; period columns such as 2027-Q1 must be in it.
    #[arg(long)]
    pub year: i32,
    /// What the targets measure (the plan's credit measure).
    #[arg(long, default_value = "bookings")]
    pub measure: String,
    /// Alert when pace (attainment over the elapsed share) falls under this, e.g. 0.8.
    #[arg(long)]
    pub pace_alert: Option<rust_decimal::Decimal>,
    /// Write the document here instead of the standard output (an existing file is not overwritten).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CSV, JSONL or XLSX file (by extension, else by its first bytes).
    pub file: PathBuf,
    /// A running server, e.g. http://127.0.0.1:8080.
    #[arg(long, conflicts_with = "db", required_unless_present = "db")]
    pub server: Option<String>,
    /// The token for --server (admin for people, service for deals).
    #[arg(long, env = "DEALRULES_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A store, e.g. sqlite://dealrules.db or postgres://...
    #[arg(long)]
    pub db: Option<String>,
    /// With --db: the pack whose funnel imported deals join and whose version their history names.
    #[arg(long, env = "DEALRULES_RULES", default_value = "./rules")]
    pub rules: PathBuf,
}

/// Runs an import command.
pub fn run(command: ImportCommand) -> ExitCode {
    let (what, args) = match command {
        ImportCommand::People(a) => ("people", a),
        ImportCommand::Deals(a) => ("deals", a),
        ImportCommand::Targets(a) => return targets(a),
    };
    let body = match std::fs::read(&args.file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {}: {e}", args.file.display());
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    // A spinner while the file is read, checked and stored (or sent); on a
    // terminal only, so pipes and logs get the summary alone.
    let spinner = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(format!("importing {what} from {}", args.file.display()));
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        bar
    });
    let result = match (&args.server, &args.db) {
        (Some(server), _) => rt.block_on(to_server(what, server, args.token.as_deref(), &args.file, body)),
        (None, Some(db)) => rt.block_on(to_store(what, db, &args.rules, &args.file, body)),
        (None, None) => Err(Failure::Usage("give --server URL or --db URL".into())),
    };
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    match result {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(Failure::Lines(errors)) => {
            for e in &errors {
                eprintln!("{}{}: {}", args.file.display(), e.place(), e.message);
            }
            let unit = if errors.iter().any(|e| e.sheet.is_some()) {
                "row"
            } else {
                "line"
            };
            eprintln!("{} bad {unit}(s); nothing was imported", errors.len());
            ExitCode::from(1)
        }
        Err(Failure::Usage(m)) => {
            eprintln!("{m}");
            ExitCode::from(2)
        }
        Err(Failure::Other(m)) => {
            eprintln!("{m}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    Lines(Vec<LineError>),
    Usage(String),
    Other(String),
}

async fn to_store(
    what: &str,
    db: &str,
    rules: &std::path::Path,
    file: &std::path::Path,
    body: Vec<u8>,
) -> Result<String, Failure> {
    let format = ImportFormat::from_path(&file.display().to_string(), &body);
    let store = dealrules_store::Store::open(db)
        .await
        .map_err(|e| Failure::Other(format!("cannot open the store: {e}")))?;
    let who = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    let summary = if what == "people" {
        let people = imports::people(&body, format).map_err(Failure::Lines)?;
        let n = store
            .people()
            .import_people(&people, &who)
            .await
            .map_err(|e| Failure::Other(e.to_string()))?;
        serde_json::json!({ "imported": n })
    } else {
        let source = dealrules_model::PackSource::from_dir(rules)
            .map_err(|e| Failure::Other(format!("cannot read pack {}: {e}", rules.display())))?;
        let snapshot = dealrules_core::Snapshot::load(source)
            .map_err(|e| Failure::Other(format!("pack {} does not load: {e}", rules.display())))?;
        let at = dealrules_store::timestamp_now();
        let funnel = dealrules_server::people_routes::default_funnel(&snapshot);
        let deals = imports::deals(&body, format, &funnel, &at).map_err(Failure::Lines)?;
        let now = chrono::Utc::now();
        let timers =
            |d: &dealrules_store::Deal| dealrules_workflow::timers::stage_timers(&snapshot, d, now, &|| store.new_id());
        let counts = store
            .deals()
            .import_deals(&deals, &snapshot.version, &who, &at, &timers)
            .await
            .map_err(|e| Failure::Other(e.to_string()))?;
        serde_json::json!({ "created": counts.created, "updated": counts.updated, "unchanged": counts.unchanged, "errors": [] })
    };
    store.close().await;
    Ok(summary.to_string())
}

async fn to_server(
    what: &str,
    server: &str,
    token: Option<&str>,
    file: &std::path::Path,
    body: Vec<u8>,
) -> Result<String, Failure> {
    use http_body_util::{BodyExt, Full};
    let token = token.ok_or_else(|| Failure::Usage("--server needs --token or DEALRULES_TOKEN".into()))?;
    let content_type = ImportFormat::from_path(&file.display().to_string(), &body).content_type();
    let url = format!("{}/v1/{what}:import", server.trim_end_matches('/'));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let request = hyper::Request::post(&url)
        .header("content-type", content_type)
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(hyper::body::Bytes::from(body)))
        .map_err(|e| Failure::Usage(format!("bad server URL `{url}`: {e}")))?;
    let response = Arc::new(client)
        .request(request)
        .await
        .map_err(|e| Failure::Other(format!("cannot reach {url}: {e}")))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| Failure::Other(format!("reading the answer of {url}: {e}")))?
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if status.is_success() {
        return Ok(text);
    }
    let problem: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if let Some(errors) = problem.get("errors").and_then(|e| e.as_array()) {
        let lines = errors
            .iter()
            .map(|e| {
                let text = |k: &str| e.get(k).and_then(|v| v.as_str()).map(str::to_string);
                LineError {
                    line: e.get("line").and_then(|l| l.as_u64()).unwrap_or(0),
                    message: text("message").unwrap_or_default(),
                    sheet: text("sheet"),
                    column: text("column"),
                }
            })
            .collect();
        return Err(Failure::Lines(lines));
    }
    Err(Failure::Other(format!(
        "{url} answered {status}: {}",
        problem.get("detail").and_then(|d| d.as_str()).unwrap_or(&text)
    )))
}

/// `dealrules import targets`: the sheet as a Targets document, on the
/// standard output or in `--out`.
fn targets(args: TargetsArgs) -> ExitCode {
    use dealrules_workflow::target_import::{TargetsHeader, targets};
    let body = match std::fs::read(&args.file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {}: {e}", args.file.display());
            return ExitCode::from(2);
        }
    };
    if let Some(out) = &args.out
        && out.exists()
    {
        eprintln!("{} exists: choose another --out, or remove it first", out.display());
        return ExitCode::from(2);
    }
    let format = ImportFormat::from_path(&args.file.display().to_string(), &body);
    if format == ImportFormat::Jsonl {
        eprintln!("{}: targets are read from CSV or XLSX", args.file.display());
        return ExitCode::from(2);
    }
    let header = TargetsHeader {
        name: args.name,
        year: args.year,
        measure: args.measure,
        pace_below: args.pace_alert,
        source: args
            .file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let document = match targets(&body, format, &header) {
        Ok(d) => d,
        Err(errors) => {
            for e in &errors {
                eprintln!("{}{}: {}", args.file.display(), e.place(), e.message);
            }
            eprintln!("{} row(s) cannot be expressed; nothing was written", errors.len());
            return ExitCode::from(1);
        }
    };
    match &args.out {
        None => print!("{}", document.yaml),
        Some(out) => {
            if let Err(e) = std::fs::write(out, &document.yaml) {
                eprintln!("cannot write {}: {e}", out.display());
                return ExitCode::from(1);
            }
            eprintln!(
                "{}: targets `{}` for {} reps, {} in total",
                out.display(),
                header.name,
                document.reps,
                document.total
            );
        }
    }
    ExitCode::SUCCESS
}
