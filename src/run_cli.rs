//! `dealrules run PLAN --period 2026-Q1 --db URL`: an incentive run on the
//! deals and people a store holds, as `POST /v1/incentives/{plan}/runs`
//! does, to the end; prints the run (a spinner on a terminal meanwhile).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use dealrules_workflow::{Actor, Clock, LongWork, Workflow};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The IncentivePlan.
    pub plan: String,
    /// 2026-Q1, 2026-03 or 2026, as the plan pays.
    #[arg(long)]
    pub period: String,
    /// The store: sqlite://dealrules.db or postgres://...
    #[arg(long, env = "DEALRULES_DB", default_value = "sqlite://dealrules.db")]
    pub db: String,
    /// The pack the run computes with.
    #[arg(long, env = "DEALRULES_RULES", default_value = "./rules")]
    pub rules: PathBuf,
    /// Who the run is recorded as started by.
    #[arg(long, default_value = "cli")]
    pub by: String,
}

/// Runs the plan for the period; the finished run as JSON on stdout.
pub fn run(args: RunArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    let spinner = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(format!("running {} for {}", args.plan, args.period));
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        bar
    });
    let result = rt.block_on(execute(&args));
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    match result {
        Ok(run) => {
            println!("{run}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

async fn execute(args: &RunArgs) -> Result<String, String> {
    let source = dealrules_model::PackSource::from_dir(&args.rules)
        .map_err(|e| format!("cannot read pack {}: {e}", args.rules.display()))?;
    let snapshot = dealrules_core::Snapshot::load(source.clone())
        .map_err(|e| format!("pack {} does not load: {e}", args.rules.display()))?;
    let store = Arc::new(
        dealrules_store::Store::open(&args.db)
            .await
            .map_err(|e| format!("cannot open the store: {e}"))?,
    );
    // The run names its pack version: keep the pack so it can be read back.
    store.packs().put_pack(&source).await.map_err(|e| e.to_string())?;
    let workflow = Workflow::new(
        store.clone(),
        Arc::new(Clock::default()),
        Arc::new(LongWork::default()),
        format!("cli-{}", std::process::id()),
    )
    .map_err(|e| e.to_string())?;
    let actor = Actor {
        subject: args.by.clone(),
        admin: true,
        groups: vec![],
    };
    let run = workflow
        .run_now(Arc::new(snapshot), &actor, &args.plan, &args.period)
        .await
        .map_err(|e| e.to_string())?;
    store.close().await;
    if let Some(error) = &run.error {
        return Err(format!("run {} failed: {error}", run.id));
    }
    serde_json::to_string_pretty(&run).map_err(|e| e.to_string())
}
