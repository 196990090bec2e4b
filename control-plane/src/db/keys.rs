//! `api_keys`: one row per key, only the SHA-256 of its secret stored. The
//! `models` column (a JSON list, `NULL` for every model) is encoded and
//! read by `model_list.rs` (a group's models are the same kind of list).

pub use super::model_list::decode_models;
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
    /// The key's spend over its whole life (only grows).
    pub spent_nanos: i64,
    /// `daily`, `weekly`, `monthly` or `None` (never resets).
    pub budget_period: Option<String>,
    /// The lifetime spend at the last reset: the period's spend is
    /// `spent_nanos - spent_base_nanos`.
    pub spent_base_nanos: i64,
    /// The start of the period the base belongs to.
    pub period_start_ms: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

const COLUMNS: &str =
    "id, name, account_id, prefix, models, rpm, tpm, max_concurrent, budget_nanos, \
                       spent_nanos, budget_period, spent_base_nanos, period_start_ms, \
                       expires_at, revoked_at_ms, created_at_ms";

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

/// The `models` column for a list of model ids.
pub fn encode_models(models: &[String]) -> ApiResult<String> {
    serde_json::to_string(models).map_err(|e| ApiError::Internal(e.into()))
}

/// A new key with the hash of its secret; `spent_nanos` and `revoked_at_ms`
/// start empty whatever the row says.
pub async fn insert(db: &Db, row: &Row, hash: &str) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, name, account_id, hash, prefix, models, rpm, tpm, max_concurrent, \
         budget_nanos, spent_nanos, budget_period, spent_base_nanos, period_start_ms, \
         expires_at, revoked_at_ms, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, 0, $12, $13, NULL, $14)",
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
    .bind(&row.budget_period)
    .bind(row.period_start_ms)
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
         budget_nanos = $6, expires_at = $7, budget_period = $8, period_start_ms = $9 \
         WHERE id = $10",
    )
    .bind(&row.name)
    .bind(&row.models_json)
    .bind(row.rpm)
    .bind(row.tpm)
    .bind(row.max_concurrent)
    .bind(row.budget_nanos)
    .bind(row.expires_at)
    .bind(&row.budget_period)
    .bind(row.period_start_ms)
    .bind(&row.id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// A page of keys after `after`, of one account or of all (`account_id`
/// empty), whose name, id, prefix, account id or account name contains
/// `search` (any case; empty: every key).
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
         spent_nanos, budget_period, spent_base_nanos, period_start_ms, expires_at, revoked_at_ms, \
         created_at_ms FROM api_keys \
         WHERE id > $1 AND ($2 = '' OR account_id = $2) \
         AND ($3 = '' OR LOWER(name) LIKE $4 ESCAPE '\\' OR LOWER(id) LIKE $4 ESCAPE '\\' \
         OR LOWER(prefix) LIKE $4 ESCAPE '\\' OR LOWER(account_id) LIKE $4 ESCAPE '\\' \
         OR account_id IN (SELECT id FROM accounts WHERE LOWER(name) LIKE $4 ESCAPE '\\')) \
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

/// Resets the spend now: the base moves up to the lifetime spend, in one
/// statement (spend arriving meanwhile lands on one side of it, never lost);
/// whether the key exists.
pub async fn reset_spend(db: &Db, id: &str) -> ApiResult<bool> {
    let done = sqlx::query("UPDATE api_keys SET spent_base_nanos = spent_nanos WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Starts the period `start_ms` for the live keys of `period` still in an
/// earlier one: their spend resets (one statement a period, so two control
/// planes rolling at once reset a key once); how many were reset.
pub async fn roll_period(db: &Db, period: &str, start_ms: i64) -> ApiResult<u64> {
    // A read first: the UPDATE would take SQLite's write lock every second
    // even with nothing to reset, in the way of usage ingest.
    let due: Option<String> = sqlx::query_scalar(
        "SELECT id FROM api_keys WHERE budget_period = $2 AND revoked_at_ms IS NULL \
         AND (period_start_ms IS NULL OR period_start_ms < $1) LIMIT 1",
    )
    .bind(start_ms)
    .bind(period)
    .fetch_optional(&db.pool)
    .await?;
    if due.is_none() {
        return Ok(0);
    }
    let done = sqlx::query(
        "UPDATE api_keys SET spent_base_nanos = spent_nanos, period_start_ms = $1 \
         WHERE budget_period = $2 AND revoked_at_ms IS NULL \
         AND (period_start_ms IS NULL OR period_start_ms < $1)",
    )
    .bind(start_ms)
    .bind(period)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected())
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

/// The key's effective set: its account's group's models narrowed by its
/// own list (`db::groups::effective`).
pub async fn allowed_models(db: &Db, key_id: &str) -> ApiResult<Allowed> {
    let raw: Option<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT k.models, g.models FROM api_keys k JOIN accounts a ON a.id = k.account_id \
         LEFT JOIN model_groups g ON g.id = a.group_id \
         WHERE k.id = $1 AND k.revoked_at_ms IS NULL",
    )
    .bind(key_id)
    .fetch_optional(&db.pool)
    .await?;
    let Some((own, group)) = raw else {
        return Ok(Allowed::Gone);
    };
    let own = decode_models(key_id, own.as_deref())?;
    let group = decode_models(key_id, group.as_deref())?;
    Ok(match super::groups::effective(group.as_deref(), own) {
        None => Allowed::All,
        Some(list) => Allowed::Only(list),
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
         budget_period, CAST(spent_base_nanos AS BIGINT) AS spent_base_nanos, \
         CAST(period_start_ms AS BIGINT) AS period_start_ms, CAST(expires_at AS BIGINT) AS expires_at, revoked_at_ms, \
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
         spent_nanos, budget_period, spent_base_nanos, period_start_ms, expires_at, revoked_at_ms, \
         created_at_ms FROM api_keys WHERE hash = $1",
    )
    .bind(hash)
    .fetch_optional(&db.pool)
    .await?)
}
