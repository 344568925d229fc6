//! Throwaway PostgreSQL databases for tests and benchmarks: one per test,
//! made from a server URL (`DEALRULES_TEST_POSTGRES`) and dropped after.

use sqlx::migrate::MigrateDatabase;

/// The variable that names a PostgreSQL server for tests, e.g.
/// `postgres://dealrules:dealrules@127.0.0.1:5432/postgres`.
pub const POSTGRES_ENV: &str = "DEALRULES_TEST_POSTGRES";

/// The PostgreSQL server tests may use, if one is configured.
pub fn postgres_server() -> Option<String> {
    std::env::var(POSTGRES_ENV).ok().filter(|s| !s.trim().is_empty())
}

/// Makes a new, empty database on the server of `server_url`; its URL.
pub async fn create_postgres_database(server_url: &str, label: &str) -> Result<String, String> {
    sqlx::any::install_default_drivers();
    let (base, query) = match server_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (server_url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let label: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    let name = format!("dr_{label}_{}", ulid::Ulid::new().to_string().to_lowercase());
    let url = format!("{}/{name}{query}", &base[..host_end]);
    sqlx::Any::create_database(&url)
        .await
        .map_err(|e| format!("creating {}: {e}", crate::redact(&url)))?;
    Ok(url)
}

pub async fn drop_postgres_database(url: &str) -> Result<(), String> {
    // A server process can still be on the new database for a moment (an
    // autovacuum worker, which only a superuser may stop): try again
    // briefly before giving up.
    let mut last = String::new();
    for attempt in 0..10 {
        match sqlx::Any::force_drop_database(url).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100 * (attempt + 1))).await;
    }
    Err(format!("dropping {}: {last}", crate::redact(url)))
}
