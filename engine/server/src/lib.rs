//! `dealrules serve`: the HTTP API over the evaluation core, with the rules
//! folder watched and hot-reloaded.
//!
//! ```
//! use dealrules_server::auth::{Principal, Role, TokenBook};
//! let mut tokens = TokenBook::default();
//! tokens.add("s3cret", Principal { subject: "crm".into(), role: Role::Service, groups: vec![] });
//! let who = tokens.authenticate(Some("Bearer s3cret")).unwrap();
//! assert_eq!(who.role, Role::Service);
//! assert!(tokens.authenticate(Some("Bearer wrong")).is_err());
//! assert!(dealrules_server::auth::require(&who, Role::Admin).is_err());
//! ```
//!
//! Core concepts:
//! - [`routes::app`]: `fn app(state) -> Router`, so tests drive it with `oneshot`.
//! - [`state::AppState`]: the active [`dealrules_core::Snapshot`] in an
//!   `ArcSwap`; requests finish on the snapshot they started with.
//! - [`reload`]: watch, debounce, build and test a new snapshot off the
//!   request path, swap it in or keep the last good one and say why.
//! - [`auth`]: bearer tokens with four roles, stored hashed, compared in
//!   constant time.
#![forbid(unsafe_code)]

pub mod activation;
pub mod auth;
pub mod changes;
pub mod console;
pub mod decide;
pub mod decision_log;
pub mod decision_routes;
pub mod error;
mod extract;
pub mod incentive_routes;
pub mod long_work;
pub mod measured_routes;
pub mod metrics;
pub mod openapi;
pub mod people_routes;
pub mod reload;
pub mod routes;
pub mod schemas;
pub mod state;
pub mod supervisor;
pub mod upload;
pub mod workers;
pub mod workflow;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use auth::{Principal, Role, TokenBook};
use dealrules_store::Store;
use error::ServeError;

/// How `serve` was asked to run.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub rules: PathBuf,
    pub listen: SocketAddr,
    /// `sqlite://...` or `postgres://...`.
    pub db: String,
    /// `DEALRULES_ADMIN_TOKEN`, when set.
    pub admin_token: Option<String>,
    /// Write every decision to the decision log.
    pub decision_log: bool,
    /// Keep decision log records this long; `None` keeps them forever.
    pub retention: Option<Duration>,
    /// Moves the workflow clock (timers, deal history) by this much.
    pub clock_offset: chrono::Duration,
    /// Where notifications are POSTed; none keeps them in the outbox.
    pub webhook_url: Option<String>,
    /// How often due timers (and scheduled change requests) are looked for.
    pub timer_tick: Duration,
    /// Seed the (new, throwaway) store with the demo company before serving.
    pub demo: bool,
    /// Approving a change request needs a second admin (`--four-eyes off`
    /// lets a lone admin approve their own).
    pub four_eyes: bool,
}

/// Creates an admin token in the store when the store has none and no
/// `DEALRULES_ADMIN_TOKEN` is set; the token, to be shown once.
pub async fn first_admin_token(store: &Store) -> Result<Option<String>, ServeError> {
    if !store.tokens().tokens().await?.is_empty() {
        return Ok(None);
    }
    let t = auth::generate_token().map_err(ServeError::Token)?;
    store
        .tokens()
        .add_token(
            &hex::encode(auth::hash_token(&t)),
            Role::Admin.as_str(),
            "admin",
            &[],
            "first start",
        )
        .await?;
    Ok(Some(t))
}

/// Runs until SIGTERM or Ctrl-C, then lets in-flight requests finish and
/// flushes the decision log.
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    let store = Arc::new(Store::open(&config.db).await.map_err(ServeError::OpenStore)?);
    let (snapshot, activation, startup_errors) = reload::startup(&store, &config.rules).await?;
    let mut fixed = TokenBook::default();
    let mut listen = config.listen;
    match &config.admin_token {
        Some(t) if !t.trim().is_empty() => fixed.add(
            t.trim(),
            Principal {
                subject: "admin".into(),
                role: Role::Admin,
                groups: vec![],
            },
        ),
        _ => {
            if let Some(t) = first_admin_token(&store).await? {
                // No token at all: make one, show it once, and stay on loopback.
                println!("No token was configured. An admin token was created and is shown once:\n  {t}");
                if !listen.ip().is_loopback() {
                    println!("Listening on loopback only until a token is configured.");
                    listen.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
            }
        }
    }
    let state = state::AppState::start(state::Setup {
        snapshot,
        activation,
        rules_dir: config.rules.clone(),
        store: store.clone(),
        fixed_tokens: fixed,
        decision_log: config.decision_log,
        clock: dealrules_workflow::Clock::with_offset(config.clock_offset),
        four_eyes: config.four_eyes,
    })
    .await?;
    if startup_errors.is_some() {
        state.activations.started(startup_errors).await;
    }
    if config.demo {
        let company =
            dealrules_workflow::demo::seed(store.clone(), state.snapshot.load_full(), state.clock.now()).await?;
        println!(
            "Demo company: {} people, {} deals, {} approvals pending{}. Nothing is kept after the server stops.",
            company.people,
            company.deals,
            company.pending_approvals,
            match &company.run {
                Some((run, period)) => format!(", incentive run {run} published for {period}"),
                None => String::new(),
            }
        );
    }
    if let (true, Some(keep)) = (config.decision_log, config.retention) {
        decision_log::prune_every_hour(store.decisions(), keep, &state.workers);
    }
    workers::tokens_refresh(state.clone(), Duration::from_secs(10));
    workers::timers(state.clone(), config.timer_tick);
    workers::pace_checks(state.clone(), config.timer_tick.max(Duration::from_secs(1)));
    workers::scheduled_changes(state.clone(), config.timer_tick);
    workers::follow_activations(state.clone());
    if let Some(url) = &config.webhook_url {
        workers::webhook(&state.workers, store.outbox(), state.clock.clone(), url.clone());
    }
    let _watcher = workers::watch(state.clone(), Duration::from_millis(150)).map_err(|source| ServeError::Watch {
        dir: config.rules.display().to_string(),
        source,
    })?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Listen { addr: listen, source })?;
    tracing::info!(version = %state.snapshot.load().version, rules = %config.rules.display(), listen = %listen, store = %store.url(), "serving");
    println!(
        "dealrules serving pack {} from {} on http://{} (store {})",
        state.snapshot.load().version,
        config.rules.display(),
        listener.local_addr()?,
        store.url()
    );
    axum::serve(listener, routes::app(state.clone()))
        .with_graceful_shutdown(shutdown())
        .await?;
    // In-flight requests are done; write what they logged, then stop the
    // background work.
    state.log.flush().await;
    state.workers.shutdown().await;
    store.close().await;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
