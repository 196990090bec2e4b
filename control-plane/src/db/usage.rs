//! `usage_records`: one row per request, written by ingest (idempotent on
//! the filter-minted `request_id`) and read by the usage lists.

use std::collections::{BTreeMap, HashSet};

use tollgate_contract::usage::UsageRecord;

use super::usage_filter::value_rows;
use super::Db;
use crate::error::ApiResult;
use crate::money::MAX_BALANCE_NANOS;

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

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A record's cost as money moved: at most the stored maximum, so that sums
/// stay far from overflowing.
fn cost_of(v: u64) -> i64 {
    clamp(v).min(MAX_BALANCE_NANOS)
}

/// Values a row of the INSERT binds.
const VALUES_PER_ROW: usize = 19;
/// Rows per INSERT statement (19 values each, well under both backends'
/// parameter limits).
const ROWS_PER_INSERT: usize = 100;

/// Queue rows per INSERT into `usage_rollup_pending`.
const IDS_PER_INSERT: usize = 500;

/// One transaction per batch; returns (inserted, already there). Records go
/// in with multi-row `INSERT ... ON CONFLICT DO NOTHING RETURNING`, so only
/// the rows really inserted move money and are queued for the rollup
/// (`rollup_writer`, which adds them after the commit), and the money moves
/// in one `UPDATE` per key and per account, summed.
pub async fn insert_batch(db: &Db, records: &[UsageRecord]) -> ApiResult<(usize, usize)> {
    let mut tx = db.pool.begin().await?;
    let mut inserted: HashSet<String> = HashSet::new();
    let mut ids: Vec<i64> = Vec::with_capacity(records.len());
    for chunk in records.chunks(ROWS_PER_INSERT) {
        let mut sql = String::from(
            "INSERT INTO usage_records (request_id, key_id, account_id, model, upstream_model, provider, status, \
             input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, estimated, stream, latency_ms, \
             ttft_ms, cost_nanos, created_at_ms, attempts, cut) VALUES ",
        );
        sql.push_str(&value_rows(db.backend, chunk.len(), VALUES_PER_ROW));
        sql.push_str(" ON CONFLICT (request_id) DO NOTHING RETURNING id, request_id");
        let mut q = sqlx::query_as::<_, (i64, String)>(&sql);
        for r in chunk {
            q = q
                .bind(r.request_id.clone())
                .bind(r.key_id.clone())
                .bind(r.account_id.clone())
                .bind(r.model.clone())
                .bind(r.upstream_model.clone())
                .bind(r.provider.clone())
                .bind(i64::from(r.status))
                .bind(clamp(r.input_tokens))
                .bind(clamp(r.output_tokens))
                .bind(clamp(r.cache_read_tokens))
                .bind(clamp(r.cache_creation_tokens))
                .bind(i64::from(r.estimated))
                .bind(i64::from(r.stream))
                .bind(clamp(r.latency_ms))
                .bind(r.ttft_ms.map(clamp))
                .bind(clamp(r.cost_nanos))
                .bind(clamp(r.created_at_ms))
                .bind(i64::from(r.attempts))
                .bind(i64::from(r.cut));
        }
        for (id, request_id) in q.fetch_all(&mut *tx).await? {
            ids.push(id);
            inserted.insert(request_id);
        }
    }
    // Queued before the key's and account's rows are locked (every batch of
    // a key waits for those): insert only, no row any other batch touches.
    ids.sort_unstable();
    for chunk in ids.chunks(IDS_PER_INSERT) {
        let mut sql = String::from("INSERT INTO usage_rollup_pending (record_id) VALUES ");
        sql.push_str(&value_rows(db.backend, chunk.len(), 1));
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *tx).await?;
    }
    // Spend of the rows inserted; a request id twice in one batch counts once
    // (its first record is the one the database kept).
    let mut seen: HashSet<&str> = HashSet::new();
    let mut by_key: BTreeMap<&str, i64> = BTreeMap::new();
    let mut by_account: BTreeMap<&str, i64> = BTreeMap::new();
    for r in records {
        if !inserted.contains(&r.request_id) || !seen.insert(r.request_id.as_str()) {
            continue;
        }
        let cost = cost_of(r.cost_nanos);
        if cost > 0 {
            let key = by_key.entry(&r.key_id).or_default();
            *key = key.saturating_add(cost).min(MAX_BALANCE_NANOS);
            let account = by_account.entry(&r.account_id).or_default();
            *account = account.saturating_add(cost).min(MAX_BALANCE_NANOS);
        }
    }
    for (key, cost) in by_key {
        // Capped at the stored maximum, compared before adding: never an
        // overflow (which SQLite turns into a REAL that no snapshot decodes).
        sqlx::query(
            "UPDATE api_keys SET spent_nanos = CASE WHEN spent_nanos > $3 THEN $4 \
             ELSE spent_nanos + $1 END WHERE id = $2",
        )
        .bind(cost)
        .bind(key)
        .bind(MAX_BALANCE_NANOS - cost)
        .bind(MAX_BALANCE_NANOS)
        .execute(&mut *tx)
        .await?;
    }
    for (account, cost) in by_account {
        sqlx::query(
            "UPDATE accounts SET \
             spent_nanos = CASE WHEN spent_nanos > $3 THEN $4 ELSE spent_nanos + $1 END, \
             balance_nanos = CASE WHEN balance_nanos IS NULL THEN NULL \
             WHEN balance_nanos < $5 THEN -$4 ELSE balance_nanos - $1 END \
             WHERE id = $2",
        )
        .bind(cost)
        .bind(account)
        .bind(MAX_BALANCE_NANOS - cost)
        .bind(MAX_BALANCE_NANOS)
        .bind(cost - MAX_BALANCE_NANOS)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    if !ids.is_empty() {
        db.rollup_due.notify_one();
    }
    let accepted = inserted.len();
    Ok((accepted, records.len() - accepted))
}

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
