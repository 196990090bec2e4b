//! `api_keys`: one row per key, only the SHA-256 of its secret stored. The
//! `models` column (a JSON list, `NULL` for every model) is encoded and
//! decoded here and nowhere else.

use super::{Db, Table};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub account_id: String,
    pub prefix: String,
    /// The `models` column as stored; read it with [`Row::models`].
    #[sqlx(rename = "models")]
    pub models_json: Option<String>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub max_concurrent: Option<i64>,
    pub budget_nanos: Option<i64>,
    pub spent_nanos: i64,
    pub expires_at: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

const COLUMNS: &str =
    "id, name, account_id, prefix, models, rpm, tpm, max_concurrent, budget_nanos, \
                       spent_nanos, expires_at, revoked_at_ms, created_at_ms";

impl Table for Row {
    const TABLE: &'static str = "api_keys";
    const EXISTS: &'static str = "SELECT id FROM api_keys WHERE id = $1";
    const COLUMNS: &'static str = COLUMNS;
    const WHAT: &'static str = "key";
}

impl Row {
    pub fn models(&self) -> ApiResult<Option<Vec<String>>> {
        decode_models(&self.id, self.models_json.as_deref())
    }
}

/// The `models` column: `None` for every model, else the JSON list.
pub fn decode_models(key_id: &str, raw: Option<&str>) -> ApiResult<Option<Vec<String>>> {
    raw.map(serde_json::from_str::<Vec<String>>)
        .transpose()
        .map_err(|e| {
            ApiError::Internal(anyhow::anyhow!("key {key_id} has a bad models column: {e}"))
        })
}

/// The `models` column for a list of model ids.
pub fn encode_models(models: &[String]) -> ApiResult<String> {
    serde_json::to_string(models).map_err(|e| ApiError::Internal(e.into()))
}

/// A new key with the hash of its secret; `spent_nanos` and `revoked_at_ms`
/// start empty whatever the row says.
pub async fn insert(db: &Db, row: &Row, hash: &str) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, name, account_id, hash, prefix, models, rpm, tpm, max_concurrent, \
         budget_nanos, spent_nanos, expires_at, revoked_at_ms, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, NULL, $12)",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(&row.account_id)
    .bind(hash)
    .bind(&row.prefix)
    .bind(&row.models_json)
    .bind(row.rpm)
    .bind(row.tpm)
    .bind(row.max_concurrent)
    .bind(row.budget_nanos)
    .bind(row.expires_at)
    .bind(row.created_at_ms)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Writes what a PATCH may change.
pub async fn update(db: &Db, row: &Row) -> ApiResult<()> {
    sqlx::query(
        "UPDATE api_keys SET name = $1, models = $2, rpm = $3, tpm = $4, max_concurrent = $5, \
         budget_nanos = $6, expires_at = $7 WHERE id = $8",
    )
    .bind(&row.name)
    .bind(&row.models_json)
    .bind(row.rpm)
    .bind(row.tpm)
    .bind(row.max_concurrent)
    .bind(row.budget_nanos)
    .bind(row.expires_at)
    .bind(&row.id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// A page of keys after `after`, of one account or of all (`account_id`
/// empty), whose name, id, prefix or account id contains `search` (any
/// case; empty: every key).
pub async fn list(
    db: &Db,
    after: &str,
    account_id: &str,
    search: &str,
    rows: i64,
) -> ApiResult<Vec<Row>> {
    // `%` and `_` in the search are themselves, not wildcards.
    let pattern = format!(
        "%{}%",
        search
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    Ok(sqlx::query_as::<_, Row>(
        "SELECT id, name, account_id, prefix, models, rpm, tpm, max_concurrent, budget_nanos, \
         spent_nanos, expires_at, revoked_at_ms, created_at_ms FROM api_keys \
         WHERE id > $1 AND ($2 = '' OR account_id = $2) \
         AND ($3 = '' OR LOWER(name) LIKE $4 ESCAPE '\\' OR LOWER(id) LIKE $4 ESCAPE '\\' \
         OR LOWER(prefix) LIKE $4 ESCAPE '\\' OR LOWER(account_id) LIKE $4 ESCAPE '\\') \
         ORDER BY id LIMIT $5",
    )
    .bind(after)
    .bind(account_id)
    .bind(search)
    .bind(pattern)
    .bind(rows)
    .fetch_all(&db.pool)
    .await?)
}

/// Revokes (keeping the first revocation time); whether the key exists.
pub async fn revoke(db: &Db, id: &str, now_ms: i64) -> ApiResult<bool> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at_ms = COALESCE(revoked_at_ms, $1) WHERE id = $2",
    )
    .bind(now_ms)
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A new secret for the same key.
pub async fn set_secret(db: &Db, id: &str, hash: &str, prefix: &str) -> ApiResult<()> {
    sqlx::query("UPDATE api_keys SET hash = $1, prefix = $2 WHERE id = $3")
        .bind(hash)
        .bind(prefix)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// How many keys of an account are not revoked.
pub async fn live_for_account(db: &Db, account_id: &str) -> ApiResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_keys WHERE account_id = $1 AND revoked_at_ms IS NULL",
    )
    .bind(account_id)
    .fetch_one(&db.pool)
    .await?)
}

/// Which models a key may use.
pub enum Allowed {
    /// The key is revoked or gone.
    Gone,
    All,
    Only(Vec<String>),
}

pub async fn allowed_models(db: &Db, key_id: &str) -> ApiResult<Allowed> {
    let raw: Option<Option<String>> =
        sqlx::query_scalar("SELECT models FROM api_keys WHERE id = $1 AND revoked_at_ms IS NULL")
            .bind(key_id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(match raw {
        None => Allowed::Gone,
        Some(raw) => match decode_models(key_id, raw.as_deref())? {
            None => Allowed::All,
            Some(list) => Allowed::Only(list),
        },
    })
}

/// A live key as the snapshot carries it: the row and the hash of its
/// secret.
#[derive(sqlx::FromRow)]
pub struct Live {
    #[sqlx(flatten)]
    pub key: Row,
    pub hash: String,
}

/// Every key not revoked, in id order. The integer columns are cast, so that
/// a value SQLite stored as REAL still reads (the snapshot leaves no key out
/// for that).
pub async fn live(db: &Db) -> ApiResult<Vec<Live>> {
    Ok(sqlx::query_as::<_, Live>(
        "SELECT id, name, account_id, prefix, models, CAST(rpm AS BIGINT) AS rpm, \
         CAST(tpm AS BIGINT) AS tpm, CAST(max_concurrent AS BIGINT) AS max_concurrent, \
         CAST(budget_nanos AS BIGINT) AS budget_nanos, CAST(spent_nanos AS BIGINT) AS spent_nanos, \
         CAST(expires_at AS BIGINT) AS expires_at, revoked_at_ms, \
         CAST(created_at_ms AS BIGINT) AS created_at_ms, hash \
         FROM api_keys WHERE revoked_at_ms IS NULL ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await?)
}

/// The key whose secret has this SHA-256, revoked or not.
pub async fn by_hash(db: &Db, hash: &str) -> ApiResult<Option<Row>> {
    Ok(sqlx::query_as::<_, Row>(
        "SELECT id, name, account_id, prefix, models, rpm, tpm, max_concurrent, budget_nanos, \
         spent_nanos, expires_at, revoked_at_ms, created_at_ms FROM api_keys WHERE hash = $1",
    )
    .bind(hash)
    .fetch_optional(&db.pool)
    .await?)
}
