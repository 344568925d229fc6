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

pub mod auth;
pub mod error;
pub mod reload;
pub mod routes;
pub mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use auth::{Principal, Role, TokenBook};

/// How `serve` was asked to run.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub rules: PathBuf,
    pub listen: SocketAddr,
    /// `DEALRULES_ADMIN_TOKEN`, when set.
    pub admin_token: Option<String>,
}

/// Runs until SIGTERM or Ctrl-C, then lets in-flight requests finish.
pub async fn serve(config: ServeConfig) -> Result<(), String> {
    let snapshot = reload::build(&config.rules).map_err(|e| format!("the pack in {} cannot serve:\n{}", config.rules.display(), e.join("\n")))?;
    let mut tokens = TokenBook::default();
    let mut listen = config.listen;
    match &config.admin_token {
        Some(t) if !t.trim().is_empty() => tokens.add(t.trim(), Principal { subject: "admin".into(), role: Role::Admin, groups: vec![] }),
        _ => {
            // No token at all: make one, show it once, and stay on loopback.
            let t = auth::generate_token()?;
            tokens.add(&t, Principal { subject: "admin".into(), role: Role::Admin, groups: vec![] });
            println!("No DEALRULES_ADMIN_TOKEN was set. An admin token for this run (shown once):\n  {t}");
            if !listen.ip().is_loopback() {
                println!("Listening on loopback only until a token is configured.");
                listen.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
        }
    }
    let state = state::AppState::new(snapshot, config.rules.clone(), tokens);
    let _watcher = reload::watch(state.clone(), Duration::from_millis(150)).map_err(|e| format!("cannot watch {}: {e}", config.rules.display()))?;
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    println!("dealrules serving pack {} from {} on http://{}", state.snapshot.load().version, config.rules.display(), listener.local_addr().map_err(|e| e.to_string())?);
    axum::serve(listener, routes::app(state)).with_graceful_shutdown(shutdown()).await.map_err(|e| e.to_string())
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
