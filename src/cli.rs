//! The command line's shape: every command, flag and default, in one place.
//! The work of each command is in `commands.rs` (and `plugin_cli.rs`,
//! `init.rs`); this file is what `--help`, completions and the man page
//! are made from.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "dealrules",
    version,
    about = "Run a company's own sales policies: funnel, approvals, incentives",
    after_help = "Examples:\n  dealrules init my-pack && dealrules test my-pack\n  dealrules check rules\n  echo '{\"customer\": {\"annual_revenue\": 250000, \"late_payments_12m\": 1}}' | dealrules eval customer-tier\n  dealrules serve --rules rules"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a new pack: one policy of each kind, commented, with tests
    /// that pass, a README and a .gitignore. Never writes over files.
    #[command(
        after_help = "Examples:\n  dealrules init                          # ./rules, the b2b template\n  dealrules init acme-pack --template saas\n  dealrules init channel --template distributor && dealrules test channel"
    )]
    Init(InitArgs),
    /// Serve the HTTP API over a pack; the folder is watched and reloaded.
    #[command(
        after_help = "Examples:\n  dealrules serve                                   # ./rules, sqlite://dealrules.db, 127.0.0.1:8080\n  dealrules serve --demo                            # a made-up company in a throwaway store\n  dealrules serve --rules examples/acme --listen 0.0.0.0:8080\n  DEALRULES_ADMIN_TOKEN=... dealrules serve --db postgres://user@db/dealrules --log-format json"
    )]
    Serve(ServeArgs),
    /// Import people or deals (CSV, JSONL or XLSX) into a server or a store, or targets into a policy.
    #[command(
        after_help = "Examples:\n  dealrules import people team.xlsx --server http://127.0.0.1:8080 --token $TOKEN\n  dealrules import deals crm-export.csv --db sqlite://dealrules.db\n  dealrules import targets fy2027.xlsx --name fy2027 --year 2027 --out rules/targets-fy2027.yaml"
    )]
    Import {
        #[command(subcommand)]
        command: crate::import_cli::ImportCommand,
    },
    /// Change requests on a server: propose a folder, see its diff and impact, submit, approve.
    #[command(
        after_help = "Examples:\n  dealrules change create rules --title \"EMEA accelerator to 14%\" --server http://rules:8080\n  dealrules change impact chg_01J... --periods 2026-Q4\n  dealrules change approve chg_01J... --activate-at 2027-01-01T00:00:00Z"
    )]
    Change {
        #[command(subcommand)]
        command: crate::change_cli::ChangeCommand,
    },
    /// Run an IncentivePlan for a period on the deals and people a store holds.
    #[command(
        after_help = "Examples:\n  dealrules run ae-2026 --period 2026-Q1 --db sqlite://dealrules.db\n  dealrules run ae-2026 --period 2026-03 --db postgres://user@db/dealrules --rules rules"
    )]
    Run(crate::run_cli::RunArgs),
    /// Progress against targets, funnel analytics and the forecast, from a store.
    #[command(
        after_help = "Examples:\n  dealrules report progress fy2026 --period 2026-Q1 --by region\n  dealrules report funnel b2b --since 2026-01-01 --format csv"
    )]
    Report {
        #[command(subcommand)]
        command: crate::report_cli::ReportCommand,
    },
    /// Make, build, test and inspect WebAssembly plugins.
    #[command(
        after_help = "Examples:\n  dealrules plugin new fx --lang rust\n  dealrules plugin build fx --out fx/fx.wasm --manifest fx/fx.yaml\n  dealrules plugin test fx/fx.yaml --cases fx/cases"
    )]
    Plugin {
        #[command(subcommand)]
        command: crate::plugin_cli::PluginCommand,
    },
    /// Manage API tokens in the store (shown once when created).
    #[command(
        after_help = "Examples:\n  dealrules token create --role approver --subject u-17 --group role:sales-director\n  dealrules token list\n  dealrules token revoke tok_01J..."
    )]
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Load and compile a pack; print every error as file:line:col: message.
    /// Exit 0 valid, 1 invalid, 2 could not run.
    #[command(after_help = "Examples:\n  dealrules check                 # ./rules\n  dealrules check examples/acme")]
    Check(CheckArgs),
    /// One decision: input JSON from --input or stdin, result JSON on stdout.
    /// Exit 0 decided, 1 decision error, 2 usage or pack error.
    #[command(
        after_help = "Examples:\n  echo '{\"customer\": {\"annual_revenue\": 250000, \"late_payments_12m\": 1}}' | dealrules eval customer-tier\n  dealrules eval ae-2026 --rules examples/acme --input examples/acme/data/2026-q1.json --format html > ae.html\n  dealrules eval rep-commission --rules examples/distributor-cn --input examples/distributor-cn/data/2026-03.json --format md --locale zh-CN"
    )]
    Eval(EvalArgs),
    /// Run the pack's policy tests; print failures and rule coverage.
    /// Exit 0 all pass, 1 any fail (or the pack does not load).
    #[command(
        after_help = "Examples:\n  dealrules test                  # ./rules\n  dealrules test examples/distributor-cn --json"
    )]
    Test(TestArgs),
    /// Run the current and a candidate pack over the same inputs and report
    /// what changes. Input: a JSON array or JSON lines of {policy, input, id?}.
    #[command(
        after_help = "Examples:\n  dealrules backtest --candidate proposed/ --input last-quarter.jsonl\n  (each line: {\"id\": \"d-1\", \"policy\": \"discount-approvals\", \"input\": {...}})"
    )]
    Backtest(BacktestArgs),
    /// Print the JSON Schema of the pack format (`--tests`: of test files).
    #[command(
        after_help = "Examples:\n  dealrules schema > .schema/dealrules-pack.schema.json\n  dealrules schema --tests > .schema/dealrules-tests.schema.json"
    )]
    Schema(SchemaArgs),
    /// Print a shell completion script for dealrules.
    #[command(
        after_help = "Examples:\n  dealrules completions bash > ~/.local/share/bash-completion/completions/dealrules\n  dealrules completions zsh > ~/.zfunc/_dealrules\n  dealrules completions fish > ~/.config/fish/completions/dealrules.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff) made from this command line; with --dir,
    /// write one page per command there.
    #[command(after_help = "Examples:\n  dealrules man | man -l -\n  dealrules man --dir /usr/local/share/man/man1")]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write dealrules.1 and a page per command (dealrules-serve.1, ...) here.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Colour in help and usage errors: never when `NO_COLOR` is set to
/// anything but the empty string (no-color.org), otherwise when the
/// terminal takes it.
pub fn color_choice() -> clap::ColorChoice {
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        clap::ColorChoice::Never
    } else {
        clap::ColorChoice::Auto
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[arg(long, env = "DEALRULES_RULES", default_value = "./rules")]
    pub rules: PathBuf,
    #[arg(long, env = "DEALRULES_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// The store: sqlite://FILE (created if absent) or postgres://...
    #[arg(long, env = "DEALRULES_DB", default_value = "sqlite://dealrules.db")]
    pub db: String,
    /// Write every decision to the decision log: on or off.
    #[arg(long, env = "DEALRULES_DECISION_LOG", default_value = "on", value_parser = ["on", "off"])]
    pub decision_log: String,
    /// Keep decision log records this long (e.g. 90d, 12h); `forever` keeps all.
    #[arg(long, env = "DEALRULES_DECISION_LOG_RETENTION", default_value = "400d")]
    pub decision_log_retention: String,
    /// POST notifications from the outbox to this http:// URL (retried with backoff).
    #[arg(long, env = "DEALRULES_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Move the workflow clock forward (e.g. 15d) for drills and tests of timers.
    #[arg(long, env = "DEALRULES_CLOCK_OFFSET", hide = true)]
    pub clock_offset: Option<String>,
    /// How often due timers are looked for (e.g. 1s, 100ms).
    #[arg(long, env = "DEALRULES_TIMER_TICK", default_value = "1s", hide = true)]
    pub timer_tick: String,
    /// Logs on stderr as readable text, or as one JSON object per line
    /// for collectors. `RUST_LOG` picks the level (default `info`).
    #[arg(long, env = "DEALRULES_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Serve a made-up company (people, a quarter and a half of deals,
    /// pending approvals, a published incentive run) from a throwaway store
    /// deleted on exit; never opens --db.
    #[arg(long, conflicts_with = "db")]
    pub demo: bool,
    /// Approving a change request needs an admin other than its author:
    /// on, or off for a team of one.
    #[arg(long, env = "DEALRULES_FOUR_EYES", default_value = "on", value_parser = ["on", "off"])]
    pub four_eyes: String,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the pack: a new or empty folder.
    #[arg(default_value = "rules")]
    pub dir: PathBuf,
    /// The shape of the business the pack starts from.
    #[arg(long, value_enum, default_value = "b2b")]
    pub template: crate::init::Template,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The pack folder.
    #[arg(env = "DEALRULES_RULES", default_value = "./rules")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A policy name, or Kind/name when names repeat across kinds; several
    /// decide over the one input, printed as `{"results": {name: ...}}`
    /// like `POST /v1/decide`.
    #[arg(required = true, num_args = 1.., value_name = "POLICY")]
    pub policies: Vec<String>,
    #[arg(long, env = "DEALRULES_RULES", default_value = "./rules")]
    pub rules: PathBuf,
    /// Input JSON file; stdin when absent or `-`.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Evaluation time (ISO-8601); default now, unless the input pins `now`.
    #[arg(long)]
    pub now: Option<String>,
    /// One line of JSON instead of pretty-printed.
    #[arg(long)]
    pub compact: bool,
    /// For IncentivePlan statements: render as html, md or csv.
    #[arg(long, value_enum, default_value = "json")]
    pub format: crate::render::Format,
    /// Language of rendered statements.
    #[arg(long, value_enum, default_value = "en")]
    pub locale: crate::render::Locale,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    #[arg(env = "DEALRULES_RULES", default_value = "./rules")]
    pub dir: PathBuf,
    /// Evaluation time for tests that do not pin `now`.
    #[arg(long)]
    pub now: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// The candidate pack folder.
    #[arg(long)]
    pub candidate: PathBuf,
    /// The current pack folder.
    #[arg(long, env = "DEALRULES_RULES", default_value = "./rules")]
    pub rules: PathBuf,
    /// The inputs to replay.
    #[arg(long)]
    pub input: PathBuf,
    #[arg(long)]
    pub now: Option<String>,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[arg(long)]
    pub tests: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints the token alone on stdout, once.
    #[command(
        after_help = "Examples:\n  dealrules token create --role service --subject crm\n  dealrules token create --role approver --subject u-17 --group role:sales-director"
    )]
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
    #[command(after_help = "Example:\n  dealrules token list --db postgres://user@db/dealrules")]
    List {
        #[arg(long, env = "DEALRULES_DB", default_value = "sqlite://dealrules.db")]
        db: String,
    },
    /// Revoke a token by its id.
    #[command(after_help = "Example:\n  dealrules token revoke tok_01J... --db sqlite://dealrules.db")]
    Revoke {
        id: String,
        #[arg(long, env = "DEALRULES_DB", default_value = "sqlite://dealrules.db")]
        db: String,
    },
}

impl TokenCommand {
    pub fn db(&self) -> &str {
        match self {
            TokenCommand::Create { db, .. } | TokenCommand::List { db } | TokenCommand::Revoke { db, .. } => db,
        }
    }
}
