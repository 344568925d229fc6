//! The command line: parse, load the pack, call the core, print, exit.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use dealrules_core::Snapshot;
use dealrules_expr::Value;
use dealrules_model::{PackErrors, PackSource};

#[derive(Debug, Parser)]
#[command(
    name = "dealrules",
    version,
    about = "Run a company's own sales policies: funnel, approvals, incentives"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API over a pack; the folder is watched and reloaded.
    Serve {
        #[arg(long, env = "DEALRULES_RULES", default_value = "./rules")]
        rules: PathBuf,
        #[arg(long, env = "DEALRULES_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// The store: sqlite://FILE (created if absent) or postgres://...
        #[arg(long, env = "DEALRULES_DB", default_value = "sqlite://dealrules.db")]
        db: String,
        /// Write every decision to the decision log: on or off.
        #[arg(long, env = "DEALRULES_DECISION_LOG", default_value = "on", value_parser = ["on", "off"])]
        decision_log: String,
        /// Keep decision log records this long (e.g. 90d, 12h); `forever` keeps all.
        #[arg(long, env = "DEALRULES_DECISION_LOG_RETENTION", default_value = "400d")]
        decision_log_retention: String,
        /// POST notifications from the outbox to this http:// URL (retried with backoff).
        #[arg(long, env = "DEALRULES_WEBHOOK_URL")]
        webhook_url: Option<String>,
        /// Move the workflow clock forward (e.g. 15d) for drills and tests of timers.
        #[arg(long, env = "DEALRULES_CLOCK_OFFSET", hide = true)]
        clock_offset: Option<String>,
        /// How often due timers are looked for (e.g. 1s, 100ms).
        #[arg(long, env = "DEALRULES_TIMER_TICK", default_value = "1s", hide = true)]
        timer_tick: String,
        /// Logs on stderr as readable text, or as one JSON object per line
        /// for collectors. `RUST_LOG` picks the level (default `info`).
        #[arg(long, env = "DEALRULES_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
    },
    /// Import people or deals (CSV or JSONL) into a server or a store.
    Import {
        #[command(subcommand)]
        command: crate::import_cli::ImportCommand,
    },
    /// Run an IncentivePlan for a period on the deals and people a store holds.
    Run(crate::run_cli::RunArgs),
    /// Make, build, test and inspect WebAssembly plugins.
    Plugin {
        #[command(subcommand)]
        command: crate::plugin_cli::PluginCommand,
    },
    /// Manage API tokens in the store (shown once when created).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Load and compile a pack; print every error as file:line:col: message.
    /// Exit 0 valid, 1 invalid, 2 could not run.
    Check {
        /// The pack folder.
        #[arg(env = "DEALRULES_RULES", default_value = "./rules")]
        dir: PathBuf,
    },
    /// One decision: input JSON from --input or stdin, result JSON on stdout.
    /// Exit 0 decided, 1 decision error, 2 usage or pack error.
    Eval {
        /// A policy name, or Kind/name when names repeat across kinds.
        policy: String,
        #[arg(long, env = "DEALRULES_RULES", default_value = "./rules")]
        rules: PathBuf,
        /// Input JSON file; stdin when absent or `-`.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Evaluation time (ISO-8601); default now, unless the input pins `now`.
        #[arg(long)]
        now: Option<String>,
        /// One line of JSON instead of pretty-printed.
        #[arg(long)]
        compact: bool,
        /// For IncentivePlan statements: render as html, md or csv.
        #[arg(long, value_enum, default_value = "json")]
        format: crate::render::Format,
        /// Language of rendered statements.
        #[arg(long, value_enum, default_value = "en")]
        locale: crate::render::Locale,
    },
    /// Run the pack's policy tests; print failures and rule coverage.
    /// Exit 0 all pass, 1 any fail (or the pack does not load).
    Test {
        #[arg(env = "DEALRULES_RULES", default_value = "./rules")]
        dir: PathBuf,
        /// Evaluation time for tests that do not pin `now`.
        #[arg(long)]
        now: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the current and a candidate pack over the same inputs and report
    /// what changes. Input: a JSON array or JSON lines of {policy, input, id?}.
    Backtest {
        /// The candidate pack folder.
        #[arg(long)]
        candidate: PathBuf,
        /// The current pack folder.
        #[arg(long, env = "DEALRULES_RULES", default_value = "./rules")]
        rules: PathBuf,
        /// The inputs to replay.
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        now: Option<String>,
    },
    /// Print the JSON Schema of the pack format (`--tests`: of test files).
    Schema {
        #[arg(long)]
        tests: bool,
    },
}

fn now_or(now: Option<String>) -> String {
    now.unwrap_or_else(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// Prints a pack's errors with the folder as given, so editors can jump.
fn print_errors(dir: &Path, errors: &PackErrors, to_stderr: bool) {
    for d in &errors.0 {
        let line = format!("{}/{d}", dir.display().to_string().trim_end_matches('/'));
        if to_stderr {
            eprintln!("{line}")
        } else {
            println!("{line}")
        }
    }
}

// Made once per command: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Loaded {
    Ok(Snapshot),
    Invalid(PackErrors),
    Unreadable(String),
    /// The pack is valid but a plugin does not load: `file:line:col: ...` lines.
    Plugins(Vec<String>),
}

fn load(dir: &Path) -> Loaded {
    match PackSource::from_dir(dir) {
        Err(e) => Loaded::Unreadable(format!("cannot read pack {}: {e}", dir.display())),
        Ok(src) => match Snapshot::load(src) {
            Ok(mut s) => {
                match dealrules_plugin_host::attach(&mut s, dealrules_plugin_host::default_cache_dir().as_deref()) {
                    Ok(()) => Loaded::Ok(s),
                    Err(errors) => Loaded::Plugins(errors),
                }
            }
            Err(e) => Loaded::Invalid(e),
        },
    }
}

/// Loads a pack, or prints why not and gives the exit code to use.
fn load_or_report(dir: &Path, errors_to_stderr: bool, code: u8) -> Result<Snapshot, u8> {
    match load(dir) {
        Loaded::Ok(s) => Ok(s),
        Loaded::Invalid(e) => {
            print_errors(dir, &e, errors_to_stderr);
            Err(code)
        }
        Loaded::Unreadable(m) => {
            eprintln!("{m}");
            Err(code)
        }
        Loaded::Plugins(errors) => {
            for e in &errors {
                if errors_to_stderr {
                    eprintln!("{e}")
                } else {
                    println!("{e}")
                }
            }
            Err(code)
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints the token alone on stdout, once.
    Create {
        /// viewer, service, approver or admin.
        #[arg(long, value_parser = ["viewer", "service", "approver", "admin"])]
        role: String,
        /// The user id the token acts as.
        #[arg(long, default_value = "cli")]
        subject: String,
        /// A group, e.g. role:sales-director (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        #[arg(long, env = "DEALRULES_DB", default_value = "sqlite://dealrules.db")]
        db: String,
    },
    /// List live tokens (never the tokens themselves).
    List {
        #[arg(long, env = "DEALRULES_DB", default_value = "sqlite://dealrules.db")]
        db: String,
    },
    /// Revoke a token by its id.
    Revoke {
        id: String,
        #[arg(long, env = "DEALRULES_DB", default_value = "sqlite://dealrules.db")]
        db: String,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("cannot start: {e}");
            2
        })
}

fn token(command: TokenCommand) -> u8 {
    let rt = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let result: Result<(), String> = rt.block_on(async {
        let db = match &command {
            TokenCommand::Create { db, .. } | TokenCommand::List { db } | TokenCommand::Revoke { db, .. } => db.clone(),
        };
        let store = dealrules_store::Store::open(&db)
            .await
            .map_err(|e| format!("cannot open the store: {e}"))?;
        match command {
            TokenCommand::Create {
                role, subject, groups, ..
            } => {
                let token = dealrules_server::auth::generate_token()?;
                let hash = hex_hash(&token);
                let record = store
                    .add_token(&hash, &role, &subject, &groups, "cli")
                    .await
                    .map_err(|e| e.to_string())?;
                eprintln!(
                    "created {} ({role}, subject {subject}); the token is shown once:",
                    record.id
                );
                println!("{token}");
            }
            TokenCommand::List { .. } => {
                for t in store.tokens().await.map_err(|e| e.to_string())? {
                    println!(
                        "{}\t{}\t{}\t{}\tcreated {} by {}",
                        t.id,
                        t.role,
                        t.subject,
                        t.groups.join(","),
                        t.created_at,
                        t.created_by
                    );
                }
            }
            TokenCommand::Revoke { id, .. } => {
                if !store.revoke_token(&id).await.map_err(|e| e.to_string())? {
                    return Err(format!("no live token `{id}`"));
                }
                eprintln!("revoked {id}");
            }
        }
        store.close().await;
        Ok(())
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// The new commands answer an `ExitCode`; `run` answers its number.
fn exit_code(code: std::process::ExitCode) -> u8 {
    if code == std::process::ExitCode::SUCCESS { 0 } else { 1 }
}

fn hex_hash(token: &str) -> String {
    dealrules_server::auth::hash_token(token)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Server logs through `tracing`, on stderr: text, or JSON lines.
fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Token { command } => token(command),
        Command::Plugin { command } => crate::plugin_cli::run(command),
        Command::Import { command } => exit_code(crate::import_cli::run(command)),
        Command::Run(args) => exit_code(crate::run_cli::run(args)),
        Command::Serve {
            rules,
            listen,
            db,
            decision_log,
            decision_log_retention,
            webhook_url,
            clock_offset,
            timer_tick,
            log_format,
        } => {
            init_logs(&log_format);
            let duration = |flag: &str, text: &str| {
                dealrules_model::duration::parse_duration(text).map_err(|e| eprintln!("--{flag}: {e}"))
            };
            let Ok(clock_offset) = clock_offset.as_deref().map(|t| duration("clock-offset", t)).transpose() else {
                return 2;
            };
            let Ok(timer_tick) = duration("timer-tick", &timer_tick) else {
                return 2;
            };
            if let Some(url) = &webhook_url
                && !url.starts_with("http://")
            {
                eprintln!(
                    "--webhook-url: only http:// URLs are delivered to (put a TLS-terminating relay in front): {url}"
                );
                return 2;
            }
            let retention = match decision_log_retention.as_str() {
                "forever" => None,
                text => match dealrules_model::duration::parse_duration(text) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        eprintln!("--decision-log-retention: {e}");
                        return 2;
                    }
                },
            };
            let config = dealrules_server::ServeConfig {
                rules,
                listen,
                db,
                admin_token: std::env::var("DEALRULES_ADMIN_TOKEN").ok(),
                decision_log: decision_log == "on",
                retention,
                clock_offset: clock_offset
                    .and_then(|d| chrono::Duration::from_std(d).ok())
                    .unwrap_or_default(),
                webhook_url,
                timer_tick,
            };
            let runtime = match runtime() {
                Ok(r) => r,
                Err(code) => return code,
            };
            match runtime.block_on(dealrules_server::serve(config)) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("{e}");
                    2
                }
            }
        }
        Command::Check { dir } => match load(&dir) {
            Loaded::Ok(s) => {
                let n = s.pack.documents.len();
                let t: usize = s.pack.tests.iter().map(|t| t.tests.tests.len()).sum();
                println!("{}: ok, {n} policies, {t} tests, version {}", dir.display(), s.version);
                0
            }
            Loaded::Invalid(e) => {
                print_errors(&dir, &e, false);
                println!(
                    "{}: {} error{}",
                    dir.display(),
                    e.0.len(),
                    if e.0.len() == 1 { "" } else { "s" }
                );
                1
            }
            Loaded::Unreadable(m) => {
                eprintln!("{m}");
                2
            }
            Loaded::Plugins(errors) => {
                for e in &errors {
                    println!("{e}");
                }
                println!(
                    "{}: {} error{}",
                    dir.display(),
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                );
                1
            }
        },
        Command::Eval {
            policy,
            rules,
            input,
            now,
            compact,
            format,
            locale,
        } => {
            let snapshot = match load_or_report(&rules, true, 2) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let text = match read_input(input.as_deref()) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("{e}");
                    return 2;
                }
            };
            let input = match dealrules_expr::input_shape::check(&text).and_then(|()| Value::from_json_str(&text)) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("input is not valid JSON: {e}");
                    return 1;
                }
            };
            match snapshot.decide(&policy, &input, &now_or(now)) {
                Ok(d) if format != crate::render::Format::Json => {
                    let json = serde_json::to_value(&d).unwrap_or_default();
                    match crate::render::statements(&json, format, locale) {
                        Ok(text) => {
                            print!("{text}");
                            0
                        }
                        Err(e) => {
                            eprintln!("{e}");
                            1
                        }
                    }
                }
                Ok(d) => {
                    let out = if compact {
                        serde_json::to_string(&d)
                    } else {
                        serde_json::to_string_pretty(&d)
                    };
                    match out {
                        Ok(s) => {
                            println!("{s}");
                            0
                        }
                        Err(e) => {
                            eprintln!("cannot print the result: {e}");
                            1
                        }
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    1
                }
            }
        }
        Command::Test { dir, now, json } => {
            let snapshot = match load_or_report(&dir, false, 1) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let report = snapshot.run_tests(&now_or(now));
            if json {
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                print_report(&dir, &report);
            }
            if report.ok() { 0 } else { 1 }
        }
        Command::Backtest {
            candidate,
            rules,
            input,
            now,
        } => {
            let (current, next) = match (load_or_report(&rules, true, 2), load_or_report(&candidate, true, 2)) {
                (Ok(a), Ok(b)) => (a, b),
                _ => return 2,
            };
            let cases = match read_input(Some(&input)).and_then(|t| dealrules_core::backtest::parse_cases(&t)) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{}: {e}", input.display());
                    return 2;
                }
            };
            let report = dealrules_core::backtest::backtest(&current, &next, &cases, &now_or(now));
            println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            eprintln!(
                "{} cases: {} changed, {} unchanged",
                report.cases, report.changed, report.unchanged
            );
            0
        }
        Command::Schema { tests } => {
            let schema = if tests {
                dealrules_model::tests_schema()
            } else {
                dealrules_model::pack_schema()
            };
            println!("{}", serde_json::to_string_pretty(&schema).unwrap_or_default());
            0
        }
    }
}

fn read_input(path: Option<&Path>) -> Result<String, String> {
    match path {
        Some(p) if p != Path::new("-") => {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        }
        _ => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read stdin: {e}"))?;
            Ok(s)
        }
    }
}

fn print_report(dir: &Path, r: &dealrules_core::TestReport) {
    let base = dir.display().to_string();
    let base = base.trim_end_matches('/');
    for t in &r.tests {
        match &t.failure {
            None => println!("ok    {} ({})", t.name, t.policy),
            Some(f) => println!("FAIL  {}/{}:{}: {} ({}): {f}", base, t.file, t.line, t.name, t.policy),
        }
    }
    println!();
    println!("rule coverage:");
    for c in &r.coverage {
        if c.unmatched.is_empty() {
            println!("  {}/{}: {}/{} rules matched", c.kind, c.policy, c.matched, c.rules);
        } else {
            println!(
                "  {}/{}: {}/{} rules matched; never matched: {}",
                c.kind,
                c.policy,
                c.matched,
                c.rules,
                c.unmatched.join(", ")
            );
        }
    }
    println!();
    println!("policy tests: {} passed, {} failed", r.passed, r.failed);
}
