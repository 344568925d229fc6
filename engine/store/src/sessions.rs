//! Admin console sessions, stored by the hash of their id: expiring and
//! revocable (sign-out revokes).

use sqlx::Row;

use crate::{Result, Sessions, query_err, timestamp_now};

/// A live session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id_hash: String,
    /// The hash of the token the session was opened with.
    pub token_hash: String,
    pub subject: String,
    pub csrf: String,
    pub created_at: String,
    pub expires_at: String,
}

impl Sessions {
    /// Stores a new session.
    pub async fn add_session(&self, session: &SessionRecord) -> Result<()> {
        sqlx::query("INSERT INTO console_sessions (id_hash, token_hash, subject, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&session.id_hash)
            .bind(&session.token_hash)
            .bind(&session.subject)
            .bind(&session.csrf)
            .bind(&session.created_at)
            .bind(&session.expires_at)
            .execute(&self.pool)
            .await
            .map_err(query_err("storing a console session"))?;
        Ok(())
    }

    /// The session with this id hash, unless revoked or expired.
    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>> {
        let row = sqlx::query("SELECT id_hash, token_hash, subject, csrf, created_at, expires_at FROM console_sessions WHERE id_hash = $1 AND revoked_at IS NULL AND expires_at > $2")
            .bind(id_hash)
            .bind(timestamp_now())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading a console session"))?;
        let e = || query_err("reading a console session");
        row.map(|r| {
            Ok(SessionRecord {
                id_hash: r.try_get(0).map_err(e())?,
                token_hash: r.try_get(1).map_err(e())?,
                subject: r.try_get(2).map_err(e())?,
                csrf: r.try_get(3).map_err(e())?,
                created_at: r.try_get(4).map_err(e())?,
                expires_at: r.try_get(5).map_err(e())?,
            })
        })
        .transpose()
    }

    /// Revokes a session; false when there was no such live session.
    pub async fn revoke_session(&self, id_hash: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE console_sessions SET revoked_at = $1 WHERE id_hash = $2 AND revoked_at IS NULL")
            .bind(timestamp_now())
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(query_err("revoking a console session"))?;
        Ok(done.rows_affected() == 1)
    }
}
