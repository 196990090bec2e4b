//! `usage_records`: one row per request, written by ingest (idempotent on
//! the filter-minted `request_id`: `usage_insert`, in groups of batches:
//! `usage_commit`) and read by the usage lists.

use super::Db;
use crate::error::ApiResult;

#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub id: i64,
    pub request_id: String,
    pub key_id: String,
    pub model: String,
    pub status: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub estimated: i64,
    pub stream: i64,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub cost_nanos: i64,
    pub created_at_ms: i64,
    pub attempts: i64,
    pub cut: i64,
}

pub const COLUMNS: &str = "id, request_id, key_id, model, status, input_tokens, output_tokens, \
                           cache_read_tokens, cache_creation_tokens, estimated, stream, latency_ms, ttft_ms, cost_nanos, created_at_ms, attempts, cut";

/// A page of one account's records before the row id `before`, newest
/// first, of one model or of all (`model` empty).
pub async fn for_account(
    db: &Db,
    account_id: &str,
    before: i64,
    model: &str,
    rows: i64,
) -> ApiResult<Vec<Row>> {
    Ok(sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM usage_records WHERE account_id = $1 AND id < $2 AND ($3 = '' OR model = $3) \
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(account_id)
    .bind(before)
    .bind(model)
    .bind(rows)
    .fetch_all(&db.pool)
    .await?)
}

/// Requests and tokens recorded since `since_ms`: of one key, or (`key_id`
/// empty) of one account.
#[derive(Debug, Default, sqlx::FromRow)]
pub struct Recent {
    pub requests: i64,
    pub tokens: i64,
}

pub async fn recent_of_key(db: &Db, key_id: &str, since_ms: i64) -> ApiResult<Recent> {
    Ok(sqlx::query_as::<_, Recent>(
        "SELECT COUNT(*) AS requests, \
         CAST(COALESCE(SUM(input_tokens + output_tokens), 0) AS BIGINT) AS tokens \
         FROM usage_records WHERE key_id = $1 AND created_at_ms >= $2",
    )
    .bind(key_id)
    .bind(since_ms)
    .fetch_one(&db.pool)
    .await?)
}

pub async fn recent_of_account(db: &Db, account_id: &str, since_ms: i64) -> ApiResult<Recent> {
    Ok(sqlx::query_as::<_, Recent>(
        "SELECT COUNT(*) AS requests, \
         CAST(COALESCE(SUM(input_tokens + output_tokens), 0) AS BIGINT) AS tokens \
         FROM usage_records WHERE account_id = $1 AND created_at_ms >= $2",
    )
    .bind(account_id)
    .bind(since_ms)
    .fetch_one(&db.pool)
    .await?)
}
