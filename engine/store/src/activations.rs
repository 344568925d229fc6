//! Pack versions (whole, for rollback and replay) and their activations:
//! who, when, from where; other nodes told of each.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::states::ActivationSource;
use crate::{Backend, MAX_PAGE, pack_from_json, pack_to_json};
use crate::{Packs, Result, StoreError, query_err, timestamp_now};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activation {
    pub id: String,
    pub version: String,
    pub activated_at: String,
    pub activated_by: String,
    pub source: ActivationSource,
    pub comment: Option<String>,
    /// The change request it came from, when it came from one.
    pub change_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackInfo {
    pub version: String,
    pub files: i64,
    pub bytes: i64,
    pub stored_at: String,
}

impl Packs {
    /// Stores a pack's files under its version (once; storing it again is a
    /// no-op).
    pub async fn put_pack(&self, source: &dealrules_model::PackSource) -> Result<String> {
        let version = source.version();
        let content = pack_to_json(source);
        let bytes: usize = source.files.values().map(Vec::len).sum();
        let sql = match self.backend {
            Backend::Sqlite => {
                "INSERT OR IGNORE INTO packs (version, content, files, bytes, stored_at) VALUES ($1, $2, $3, $4, $5)"
            }
            Backend::Postgres => {
                "INSERT INTO packs (version, content, files, bytes, stored_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (version) DO NOTHING"
            }
        };
        sqlx::query(sql)
            .bind(&version)
            .bind(content)
            .bind(source.files.len() as i64)
            .bind(bytes as i64)
            .bind(timestamp_now())
            .execute(&self.pool)
            .await
            .map_err(query_err("storing a pack"))?;
        Ok(version)
    }

    /// A stored pack's files.
    pub async fn pack(&self, version: &str) -> Result<Option<dealrules_model::PackSource>> {
        let row = sqlx::query("SELECT content FROM packs WHERE version = $1")
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading a pack"))?;
        let Some(row) = row else { return Ok(None) };
        let content: String = row.try_get(0).map_err(query_err("reading a pack"))?;
        let source = pack_from_json(&content).map_err(|message| StoreError::DamagedPack {
            version: version.into(),
            message,
        })?;
        if source.version() != version {
            return Err(StoreError::DamagedPack {
                version: version.into(),
                message: format!("its files hash to {}", source.version()),
            });
        }
        Ok(Some(source))
    }

    /// Stored versions, newest first.
    pub async fn packs(&self) -> Result<Vec<PackInfo>> {
        let rows = sqlx::query("SELECT version, files, bytes, stored_at FROM packs ORDER BY stored_at DESC, version")
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing packs"))?;
        rows.iter()
            .map(|r| {
                Ok(PackInfo {
                    version: r.try_get(0).map_err(query_err("listing packs"))?,
                    files: r.try_get(1).map_err(query_err("listing packs"))?,
                    bytes: r.try_get(2).map_err(query_err("listing packs"))?,
                    stored_at: r.try_get(3).map_err(query_err("listing packs"))?,
                })
            })
            .collect()
    }

    /// Stores the pack (if new) and records that it was activated.
    pub async fn activate(
        &self,
        source: &dealrules_model::PackSource,
        by: &str,
        from: impl TryInto<ActivationSource, Error: std::fmt::Display>,
        comment: Option<&str>,
    ) -> Result<Activation> {
        self.activate_from(source, by, from, comment, None).await
    }

    /// As [`Packs::activate`], naming the change request it came from.
    pub async fn activate_from(
        &self,
        source: &dealrules_model::PackSource,
        by: &str,
        from: impl TryInto<ActivationSource, Error: std::fmt::Display>,
        comment: Option<&str>,
        change_id: Option<&str>,
    ) -> Result<Activation> {
        let from = from.try_into().map_err(|e| StoreError::BadArgument(e.to_string()))?;
        let version = self.put_pack(source).await?;
        let activation = Activation {
            id: self.new_id(),
            version,
            activated_at: timestamp_now(),
            activated_by: by.into(),
            source: from,
            comment: comment.map(str::to_string),
            change_id: change_id.map(str::to_string),
        };
        sqlx::query("INSERT INTO activations (id, version, activated_at, activated_by, source, comment, change_id) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&activation.id)
            .bind(&activation.version)
            .bind(&activation.activated_at)
            .bind(&activation.activated_by)
            .bind(activation.source.as_str())
            .bind(activation.comment.clone())
            .bind(activation.change_id.clone())
            .execute(&self.pool)
            .await
            .map_err(query_err("recording an activation"))?;
        Ok(activation)
    }

    /// Activations, newest first.
    pub async fn activations(&self, limit: u32) -> Result<Vec<Activation>> {
        let rows = sqlx::query("SELECT id, version, activated_at, activated_by, source, comment, change_id FROM activations ORDER BY id DESC LIMIT $1")
            .bind(i64::from(limit.clamp(1, MAX_PAGE)))
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing activations"))?;
        rows.iter().map(activation_row).collect()
    }

    /// The latest activation, and the latest from the rules folder.
    pub async fn latest_activation(&self, source: Option<&str>) -> Result<Option<Activation>> {
        let row = match source {
            None => sqlx::query("SELECT id, version, activated_at, activated_by, source, comment, change_id FROM activations ORDER BY id DESC LIMIT 1").fetch_optional(&self.pool).await,
            Some(s) => sqlx::query("SELECT id, version, activated_at, activated_by, source, comment, change_id FROM activations WHERE source = $1 ORDER BY id DESC LIMIT 1")
                .bind(s)
                .fetch_optional(&self.pool)
                .await,
        }
        .map_err(query_err("reading the latest activation"))?;
        row.as_ref().map(activation_row).transpose()
    }

    /// Finds a stored version by its full name or an unambiguous prefix of
    /// at least 6 hex digits (`sha256:` may be left off).
    pub async fn resolve_version(&self, wanted: &str) -> Result<Option<String>> {
        let wanted = wanted.trim();
        let full = if wanted.starts_with("sha256:") {
            wanted.to_string()
        } else {
            format!("sha256:{wanted}")
        };
        let hex = &full["sha256:".len()..];
        if hex.len() < 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::BadArgument(format!(
                "`{wanted}` is not a pack version: give sha256:<hex>, at least 6 hex digits"
            )));
        }
        let rows = sqlx::query("SELECT version FROM packs WHERE version LIKE $1 ORDER BY version LIMIT 2")
            .bind(format!("{}%", full.to_lowercase()))
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("finding a pack"))?;
        match rows.len() {
            0 => Ok(None),
            1 => Ok(Some(rows[0].try_get(0).map_err(query_err("finding a pack"))?)),
            _ => Err(StoreError::BadArgument(format!(
                "`{wanted}` names more than one stored version; give more digits"
            ))),
        }
    }

    /// Tells the other nodes sharing a PostgreSQL database that a pack was
    /// activated (they also poll, so this only makes it faster).
    pub async fn notify_activation(&self, version: &str) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify('dealrules_activations', $1)")
                .bind(version)
                .execute(&self.pool)
                .await
                .map_err(query_err("notifying other nodes"))?;
        }
        Ok(())
    }

    /// On PostgreSQL, a listener for other nodes' activations.
    pub async fn listen_activations(&self) -> Result<Option<sqlx::postgres::PgListener>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut l = sqlx::postgres::PgListener::connect(&self.connect_url)
            .await
            .map_err(query_err("listening for activations"))?;
        l.listen("dealrules_activations")
            .await
            .map_err(query_err("listening for activations"))?;
        Ok(Some(l))
    }
}

fn activation_row(r: &AnyRow) -> Result<Activation> {
    let get = |i: usize| r.try_get::<String, _>(i).map_err(query_err("reading activations"));
    Ok(Activation {
        id: get(0)?,
        version: get(1)?,
        activated_at: get(2)?,
        activated_by: get(3)?,
        source: get(4)?.parse().map_err(|e: String| StoreError::Query {
            what: "reading activations",
            source: sqlx::Error::Decode(e.into()),
        })?,
        comment: r.try_get(5).map_err(query_err("reading activations"))?,
        change_id: r.try_get(6).map_err(query_err("reading activations"))?,
    })
}
