//! `providers`: where models are served, the credentials (its key pool)
//! sealed at rest.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Db, Table};
use crate::error::{ApiError, ApiResult};
use crate::secrets::Sealer;

#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub base_url: String,
    /// Before the key pools (0009): the one credential sealed by
    /// `secrets::Sealer`, moved into `credentials` at start
    /// (`adopt_single_keys`); empty since.
    pub api_key_enc: String,
    pub created_at_ms: i64,
    /// The key pool: a JSON list of [`StoredCredential`].
    pub credentials: String,
    /// Set by `set_pool`: `update` writes the pool only then, so that a
    /// PATCH of the name or URL never writes back a pool read before a
    /// disable or another admin's change landed.
    #[sqlx(skip)]
    pub pool_replaced: bool,
}

/// One credential of a provider's key pool, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCredential {
    pub id: String,
    /// Sealed by `secrets::Sealer`.
    pub secret_enc: String,
    /// The last 4 characters of the secret, to tell credentials apart.
    pub hint: String,
    /// Goes up on every change, so that the gateways' marks on the older
    /// one no longer hold.
    pub generation: u32,
    pub created_at_ms: i64,
    #[serde(default)]
    pub disabled_at_ms: Option<i64>,
    #[serde(default)]
    pub disabled_reason: Option<String>,
}

impl Row {
    pub fn pool(&self) -> ApiResult<Vec<StoredCredential>> {
        serde_json::from_str(&self.credentials).map_err(|e| {
            ApiError::Internal(anyhow::anyhow!(
                "provider {}: stored credentials do not parse: {e}",
                self.id
            ))
        })
    }

    pub fn set_pool(&mut self, pool: &[StoredCredential]) -> ApiResult<()> {
        self.credentials = serde_json::to_string(pool).map_err(|e| ApiError::Internal(e.into()))?;
        self.pool_replaced = true;
        Ok(())
    }
}

const COLUMNS: &str = "id, name, kind, base_url, api_key_enc, created_at_ms, credentials";

impl Table for Row {
    const TABLE: &'static str = "providers";
    const EXISTS: &'static str = "SELECT id FROM providers WHERE id = $1";
    const COLUMNS: &'static str = COLUMNS;
    const WHAT: &'static str = "provider";
}

/// The API dialects a provider may speak.
/// What a provider speaks: OpenAI's API (and every compatible one),
/// Anthropic's Messages API, or Azure OpenAI's deployments. The filter
/// translates between them (`crates/translate`).
pub const KINDS: &[&str] = &["openai", "anthropic", "azure_openai"];

pub async fn insert(db: &Db, row: &Row) -> ApiResult<()> {
    sqlx::query("INSERT INTO providers (id, name, kind, base_url, api_key_enc, created_at_ms, credentials) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.kind)
        .bind(&row.base_url)
        .bind(&row.api_key_enc)
        .bind(row.created_at_ms)
        .bind(&row.credentials)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Writes what a PATCH may change; the pool only when it was replaced
/// (a PATCH's `api_keys` replaces it whole: the last one wins). Changes of
/// one credential go through `change_pool`.
pub async fn update(db: &Db, row: &Row) -> ApiResult<()> {
    sqlx::query(
        "UPDATE providers SET name = $1, kind = $2, base_url = $3, api_key_enc = $4, \
         credentials = CASE WHEN $5 THEN $6 ELSE credentials END WHERE id = $7",
    )
    .bind(&row.name)
    .bind(&row.kind)
    .bind(&row.base_url)
    .bind(&row.api_key_enc)
    .bind(row.pool_replaced)
    .bind(&row.credentials)
    .bind(&row.id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// How often a change of one pool is made again when the pool changed
/// between its read and its write (another admin, a reported disable),
/// with a pause between that grows: 16 writers at once all land (tested).
const POOL_WRITE_TRIES: u64 = 20;

/// What `change_pool` did.
#[derive(Debug, PartialEq, Eq)]
pub enum PoolChange {
    Written,
    /// The change had nothing to do.
    Unchanged,
    /// The pool changed under every try.
    KeptChanging,
}

/// Reads provider `id`'s pool, lets `change` change it (false: nothing to
/// do) and writes it only if the stored pool is still what was read, else
/// reads again: concurrent changes of one pool all stay, none is written
/// over.
pub async fn change_pool(
    db: &Db,
    id: &str,
    change: impl Fn(&mut Vec<StoredCredential>) -> ApiResult<bool>,
) -> ApiResult<PoolChange> {
    for n in 0..POOL_WRITE_TRIES {
        if n > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1 + n * 2)).await;
        }
        let mut row = super::load::<Row>(db, id).await?;
        let was = row.credentials.clone();
        let mut pool = row.pool()?;
        if !change(&mut pool)? {
            return Ok(PoolChange::Unchanged);
        }
        row.set_pool(&pool)?;
        let done =
            sqlx::query("UPDATE providers SET credentials = $1 WHERE id = $2 AND credentials = $3")
                .bind(&row.credentials)
                .bind(id)
                .bind(&was)
                .execute(&db.pool)
                .await?;
        if done.rows_affected() == 1 {
            return Ok(PoolChange::Written);
        }
    }
    Ok(PoolChange::KeptChanging)
}

pub async fn delete(db: &Db, id: &str) -> ApiResult<()> {
    sqlx::query("DELETE FROM providers WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Every provider, in id order.
pub async fn all(db: &Db) -> ApiResult<Vec<Row>> {
    Ok(sqlx::query_as::<_, Row>(
        "SELECT id, name, kind, base_url, api_key_enc, created_at_ms, credentials FROM providers ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await?)
}

/// Provider id to display name.
pub async fn names(db: &Db) -> ApiResult<HashMap<String, String>> {
    Ok(
        sqlx::query_as::<_, (String, String)>("SELECT id, name FROM providers")
            .fetch_all(&db.pool)
            .await?
            .into_iter()
            .collect(),
    )
}

/// Moves each provider's single sealed `api_key_enc` (from before 0009)
/// into its key pool as its one credential, with its hint; run at start.
pub async fn adopt_single_keys(db: &Db, sealer: &Sealer) -> anyhow::Result<()> {
    for mut row in all(db).await? {
        if row.api_key_enc.is_empty() {
            continue;
        }
        let secret = sealer.open(&row.api_key_enc)?;
        let mut pool = row.pool()?;
        if pool.is_empty() && !secret.is_empty() {
            pool.push(StoredCredential {
                id: crate::ids::new_id("cred"),
                hint: hint(&secret),
                secret_enc: row.api_key_enc.clone(),
                generation: 0,
                created_at_ms: row.created_at_ms,
                disabled_at_ms: None,
                disabled_reason: None,
            });
        }
        row.set_pool(&pool)?;
        row.api_key_enc = String::new();
        update(db, &row).await?;
    }
    Ok(())
}

/// The last 4 characters of a secret (all of a secret of 8 or fewer
/// would say too much: then none).
pub fn hint(secret: &str) -> String {
    if secret.len() <= 8 {
        return String::new();
    }
    secret[secret.len() - 4..].to_string()
}
