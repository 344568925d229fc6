//! One function per command: parse is done, each returns the exit status
//! of an answer or the error that stopped it (see `error.rs`).

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use dealrules_core::Snapshot;
use dealrules_expr::Value;
use dealrules_model::{PackErrors, PackSource};

use clap::CommandFactory;

use crate::cli::{
    BacktestArgs, CheckArgs, Cli, Command, CompletionsArgs, EvalArgs, ManArgs, SchemaArgs, ServeArgs, TestArgs,
    TokenCommand,
};
use crate::error::{CliError, Result};
use crate::out::outln;

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Init(args) => crate::init::init(&args.dir, args.template),
        Command::Serve(args) => serve(args),
        Command::Plugin { command } => crate::plugin_cli::run(command),
        Command::Import { command } => Ok(crate::import_cli::run(command)),
        Command::Change { command } => crate::change_cli::run(command),
        Command::Run(args) => Ok(crate::run_cli::run(args)),
        Command::Report { command } => crate::report_cli::run(command),
        Command::Token { command } => token(command),
        Command::Check(args) => check(args),
        Command::Eval(args) => eval(args),
        Command::Test(args) => test(args),
        Command::Backtest(args) => backtest(args),
        Command::Schema(args) => schema(args),
        Command::Completions(args) => completions(args),
        Command::Man(args) => man(args),
    }
}

fn completions(args: CompletionsArgs) -> Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "dealrules", &mut script);
    write_stdout(&script)?;
    Ok(ExitCode::SUCCESS)
}

fn man(args: ManArgs) -> Result<ExitCode> {
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|source| CliError::File {
                path: dir.clone(),
                source,
            })?;
            clap_mangen::generate_to(Cli::command(), &dir).map_err(|source| CliError::File {
                path: dir.clone(),
                source,
            })?;
            eprintln!("wrote the man pages to {}", dir.display());
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map_err(CliError::Stdout)?;
            write_stdout(&page)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(args: ServeArgs) -> Result<ExitCode> {
    init_logs(&args.log_format);
    let duration = |flag: &'static str, text: &str| {
        dealrules_model::duration::parse_duration(text).map_err(|e| CliError::Flag {
            flag,
            message: e.to_string(),
        })
    };
    let clock_offset = args
        .clock_offset
        .as_deref()
        .map(|t| duration("clock-offset", t))
        .transpose()?;
    let timer_tick = duration("timer-tick", &args.timer_tick)?;
    if let Some(url) = &args.webhook_url
        && !url.starts_with("http://")
    {
        return Err(CliError::Flag {
            flag: "webhook-url",
            message: format!("only http:// URLs are delivered to (put a TLS-terminating relay in front): {url}"),
        });
    }
    let retention = match args.decision_log_retention.as_str() {
        "forever" => None,
        text => Some(duration("decision-log-retention", text)?),
    };
    // The demo's store lives in a folder of its own that is removed when
    // the server stops: `dealrules.db` is never opened.
    let demo_dir = if args.demo {
        Some(
            tempfile::Builder::new()
                .prefix("dealrules-demo-")
                .tempdir()
                .map_err(|e| CliError::Serve(format!("cannot make the demo's throwaway store: {e}")))?,
        )
    } else {
        None
    };
    let db = match &demo_dir {
        Some(dir) => format!("sqlite://{}", dir.path().join("demo.db").display()),
        None => args.db,
    };
    let config = dealrules_server::ServeConfig {
        rules: args.rules,
        listen: args.listen,
        db,
        demo: args.demo,
        admin_token: std::env::var("DEALRULES_ADMIN_TOKEN").ok(),
        decision_log: args.decision_log == "on",
        retention,
        clock_offset: clock_offset
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .unwrap_or_default(),
        webhook_url: args.webhook_url,
        timer_tick,
        four_eyes: args.four_eyes == "on",
    };
    runtime()?
        .block_on(dealrules_server::serve(config))
        .map_err(|e| CliError::Serve(e.to_string()))?;
    drop(demo_dir);
    Ok(ExitCode::SUCCESS)
}

fn check(args: CheckArgs) -> Result<ExitCode> {
    let dir = &args.dir;
    let errors = match load(dir)? {
        Ok(s) => {
            let n = s.pack.documents.len();
            let t: usize = s.pack.tests.iter().map(|t| t.tests.tests.len()).sum();
            outln!("{}: ok, {n} policies, {t} tests, version {}", dir.display(), s.version)?;
            return Ok(ExitCode::SUCCESS);
        }
        Err(lines) => lines,
    };
    for line in &errors {
        outln!("{line}")?;
    }
    outln!(
        "{}: {} error{}",
        dir.display(),
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    )?;
    Ok(ExitCode::from(1))
}

fn eval(args: EvalArgs) -> Result<ExitCode> {
    if args.policies.len() > 1 && args.format != crate::render::Format::Json {
        return Err(CliError::Flag {
            flag: "format",
            message: "several policies print as JSON only; name one policy to render its statement".into(),
        });
    }
    let snapshot = load_valid(&args.rules)?;
    let text = read_input(args.input.as_deref())?;
    let input = dealrules_expr::input_shape::check(&text)
        .and_then(|()| Value::from_json_str(&text))
        .map_err(|e| CliError::InputJson(e.to_string()))?;
    let now = now_or(args.now);
    if let [policy] = args.policies.as_slice() {
        let decision = snapshot.decide(policy, &input, &now)?;
        if args.format != crate::render::Format::Json {
            let json = serde_json::to_value(&decision).unwrap_or_default();
            let bytes = crate::render::statements(&json, args.format, args.locale).map_err(CliError::Render)?;
            crate::out::write_bytes_or_text(&bytes, args.format == crate::render::Format::Xlsx)?;
            return Ok(ExitCode::SUCCESS);
        }
        print_json(&decision, args.compact)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Several: every policy answers (an `error` entry for one that cannot),
    // and the exit code says whether all decided.
    let names: Vec<&str> = args.policies.iter().map(String::as_str).collect();
    let many = snapshot.decide_many(&names, &input, &now)?;
    print_json(&many, args.compact)?;
    Ok(if many.all_decided() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_json<T: serde::Serialize>(value: &T, compact: bool) -> Result<()> {
    let out = if compact {
        serde_json::to_string(value)
    } else {
        serde_json::to_string_pretty(value)
    };
    outln!("{}", out.map_err(CliError::Print)?)?;
    Ok(())
}

fn test(args: TestArgs) -> Result<ExitCode> {
    // A pack that does not load fails its tests: its errors are the report.
    let snapshot = match load(&args.dir) {
        Ok(Ok(s)) => s,
        Ok(Err(lines)) => {
            for line in &lines {
                outln!("{line}")?;
            }
            return Ok(ExitCode::from(1));
        }
        Err(unreadable) => {
            eprintln!("{unreadable}");
            return Ok(ExitCode::from(1));
        }
    };
    let report = snapshot.run_tests(&now_or(args.now));
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report).unwrap_or_default())?;
    } else {
        print_report(&args.dir, &report)?;
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Cases replayed between two updates of the progress bar.
const BACKTEST_STEP: usize = 256;

fn backtest(args: BacktestArgs) -> Result<ExitCode> {
    // Both packs are loaded before either failure is reported, so one run
    // shows what is wrong with each.
    let current = load_valid(&args.rules);
    let next = load_valid(&args.candidate);
    let (current, next) = match (current, next) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(a), Err(b)) => {
            eprintln!("{a}");
            return Err(b);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let cases = read_input(Some(&args.input))
        .map_err(|e| e.to_string())
        .and_then(|t| dealrules_core::backtest::parse_cases(&t))
        .map_err(|message| CliError::Cases {
            path: args.input.clone(),
            message,
        })?;
    let now = now_or(args.now);
    // Replayed in steps so a long replay shows its progress on a terminal
    // (nothing is drawn when stderr is not one); each case is decided on
    // its own, so the steps add up to the whole.
    let progress = indicatif::ProgressBar::new(cases.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("replaying {wide_bar} {pos}/{len} cases, {eta} left")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut report = dealrules_core::backtest::BacktestReport {
        current: current.version.to_string(),
        candidate: next.version.to_string(),
        cases: 0,
        changed: 0,
        unchanged: 0,
        changes: Vec::new(),
    };
    for step in cases.chunks(BACKTEST_STEP) {
        let part = dealrules_core::backtest::backtest(&current, &next, step, &now);
        report.cases += part.cases;
        report.changed += part.changed;
        report.unchanged += part.unchanged;
        report.changes.extend(part.changes);
        progress.inc(step.len() as u64);
    }
    progress.finish_and_clear();
    outln!("{}", serde_json::to_string_pretty(&report).unwrap_or_default())?;
    eprintln!(
        "{} cases: {} changed, {} unchanged",
        report.cases, report.changed, report.unchanged
    );
    Ok(ExitCode::SUCCESS)
}

fn schema(args: SchemaArgs) -> Result<ExitCode> {
    let schema = if args.tests {
        dealrules_model::tests_schema()
    } else {
        dealrules_model::pack_schema()
    };
    outln!("{}", serde_json::to_string_pretty(&schema).unwrap_or_default())?;
    Ok(ExitCode::SUCCESS)
}

fn token(command: TokenCommand) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let store = dealrules_store::Store::open(command.db())
            .await
            .map_err(|e| CliError::StoreOpen(e.to_string()))?;
        match command {
            TokenCommand::Create {
                role, subject, groups, ..
            } => {
                let token = dealrules_server::auth::generate_token().map_err(CliError::Token)?;
                let hash = hex_hash(&token);
                let record = store
                    .tokens()
                    .add_token(&hash, &role, &subject, &groups, "cli")
                    .await
                    .map_err(store_error)?;
                eprintln!(
                    "created {} ({role}, subject {subject}); the token is shown once:",
                    record.id
                );
                outln!("{token}")?;
            }
            TokenCommand::List { .. } => {
                for t in store.tokens().tokens().await.map_err(store_error)? {
                    outln!(
                        "{}\t{}\t{}\t{}\tcreated {} by {}",
                        t.id,
                        t.role,
                        t.subject,
                        t.groups.join(","),
                        t.created_at,
                        t.created_by
                    )?;
                }
            }
            TokenCommand::Revoke { id, .. } => {
                if !store.tokens().revoke_token(&id).await.map_err(store_error)? {
                    return Err(CliError::NoSuchToken(id));
                }
                eprintln!("revoked {id}");
            }
        }
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    std::io::Write::write_all(&mut std::io::stdout().lock(), bytes).map_err(CliError::Stdout)
}

fn store_error(e: impl std::fmt::Display) -> CliError {
    CliError::Store(e.to_string())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
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

fn now_or(now: Option<String>) -> String {
    now.unwrap_or_else(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// A pack's errors with the folder as given, so editors can jump.
fn error_lines(dir: &Path, errors: &PackErrors) -> Vec<String> {
    let base = dir.display().to_string();
    let base = base.trim_end_matches('/');
    errors.0.iter().map(|d| format!("{base}/{d}")).collect()
}

/// Loads and compiles a pack with its plugins. `Err` when the folder cannot
/// be read at all; `Ok(Err(lines))` when the pack is invalid or a plugin does
/// not load, one `file:line:col: message` per line.
fn load(dir: &Path) -> Result<std::result::Result<Snapshot, Vec<String>>> {
    let source = PackSource::from_dir(dir).map_err(|source| CliError::PackUnreadable {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut snapshot = match Snapshot::load(source) {
        Ok(s) => s,
        Err(errors) => return Ok(Err(error_lines(dir, &errors))),
    };
    let cache = dealrules_plugin_host::default_cache_dir();
    Ok(dealrules_plugin_host::attach(&mut snapshot, cache.as_deref()).map(|()| snapshot))
}

/// A pack the command cannot do without: any error stops it (exit 2).
fn load_valid(dir: &Path) -> Result<Snapshot> {
    load(dir)?.map_err(|lines| CliError::PackInvalid { lines })
}

fn read_input(path: Option<&Path>) -> Result<String> {
    match path {
        Some(p) if p != Path::new("-") => std::fs::read_to_string(p).map_err(|source| CliError::Read {
            path: p.to_path_buf(),
            source,
        }),
        _ => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map_err(CliError::Stdin)?;
            Ok(s)
        }
    }
}

fn print_report(dir: &Path, r: &dealrules_core::TestReport) -> Result<()> {
    let base = dir.display().to_string();
    let base = base.trim_end_matches('/');
    for t in &r.tests {
        match &t.failure {
            None => outln!("ok    {} ({})", t.name, t.policy)?,
            Some(f) => outln!("FAIL  {}/{}:{}: {} ({}): {f}", base, t.file, t.line, t.name, t.policy)?,
        }
    }
    outln!()?;
    outln!("rule coverage:")?;
    for c in &r.coverage {
        if c.unmatched.is_empty() {
            outln!("  {}/{}: {}/{} rules matched", c.kind, c.policy, c.matched, c.rules)?;
        } else {
            outln!(
                "  {}/{}: {}/{} rules matched; never matched: {}",
                c.kind,
                c.policy,
                c.matched,
                c.rules,
                c.unmatched.join(", ")
            )?;
        }
    }
    outln!()?;
    outln!("policy tests: {} passed, {} failed", r.passed, r.failed)
}
