//! API tokens, stored hashed.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Result, StoreError, Tokens, query_err, timestamp_now};

/// A token as stored: its hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    pub id: String,
    #[serde(skip)]
    pub token_hash: String,
    pub role: String,
    pub subject: String,
    pub groups: Vec<String>,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
}

impl Tokens {
    /// Stores a token by its hash (hex of SHA-256).
    pub async fn add_token(
        &self,
        token_hash: &str,
        role: &str,
        subject: &str,
        groups: &[String],
        created_by: &str,
    ) -> Result<TokenRecord> {
        let record = TokenRecord {
            id: format!("tok_{}", self.new_id().to_lowercase()),
            token_hash: token_hash.to_string(),
            role: role.to_string(),
            subject: subject.to_string(),
            groups: groups.to_vec(),
            created_at: timestamp_now(),
            created_by: created_by.to_string(),
            revoked_at: None,
        };
        let groups_json = serde_json::to_string(&record.groups).map_err(|e| StoreError::BadArgument(e.to_string()))?;
        sqlx::query("INSERT INTO tokens (id, token_hash, role, subject, groups, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&record.id)
            .bind(&record.token_hash)
            .bind(&record.role)
            .bind(&record.subject)
            .bind(groups_json)
            .bind(&record.created_at)
            .bind(&record.created_by)
            .execute(&self.pool)
            .await
            .map_err(query_err("storing a token"))?;
        Ok(record)
    }

    /// Tokens not revoked, oldest first.
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query("SELECT id, token_hash, role, subject, groups, created_at, created_by, revoked_at FROM tokens WHERE revoked_at IS NULL ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("reading tokens"))?;
        rows.iter().map(token_row).collect()
    }

    /// Revokes a token by id; false when there was no such live token.
    pub async fn revoke_token(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(timestamp_now())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(query_err("revoking a token"))?;
        Ok(done.rows_affected() == 1)
    }
}

fn token_row(r: &AnyRow) -> Result<TokenRecord> {
    let e = query_err("reading tokens");
    let groups: String = r.try_get(4).map_err(query_err("reading tokens"))?;
    Ok(TokenRecord {
        id: r.try_get(0).map_err(query_err("reading tokens"))?,
        token_hash: r.try_get(1).map_err(query_err("reading tokens"))?,
        role: r.try_get(2).map_err(query_err("reading tokens"))?,
        subject: r.try_get(3).map_err(query_err("reading tokens"))?,
        groups: serde_json::from_str(&groups).map_err(|x| e(sqlx::Error::Decode(Box::new(x))))?,
        created_at: r.try_get(5).map_err(query_err("reading tokens"))?,
        created_by: r.try_get(6).map_err(query_err("reading tokens"))?,
        revoked_at: r.try_get(7).map_err(query_err("reading tokens"))?,
    })
}
