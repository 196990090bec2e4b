//! `usage_records`: one row per request, written by ingest (idempotent on
//! the filter-minted `request_id`) and read by the usage lists.

use std::collections::{BTreeMap, HashSet};

use tollgate_contract::usage::UsageRecord;

use sqlx::{Any, Row as _, Transaction};

use super::usage_filter::value_rows;
use super::{Backend, Db};
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
/// Rows per INSERT statement: a whole batch of the filter's (200; 19 values
/// each, well under both backends' parameter limits).
const ROWS_PER_INSERT: usize = 200;

/// Queue rows per INSERT into `usage_rollup_pending` (PostgreSQL).
const IDS_PER_INSERT: usize = 500;

const INSERT_RECORDS: &str = "INSERT INTO usage_records (request_id, key_id, account_id, model, \
     upstream_model, provider, status, input_tokens, output_tokens, cache_read_tokens, \
     cache_creation_tokens, estimated, stream, latency_ms, ttft_ms, cost_nanos, created_at_ms, \
     attempts, cut) VALUES ";

/// The records' multi-row INSERT, each value bound from the records (text
/// borrowed, not copied).
fn insert_query<'q>(
    sql: &'q str,
    chunk: &'q [UsageRecord],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut q = sqlx::query(sql);
    for r in chunk {
        q = q
            .bind(r.request_id.as_str())
            .bind(r.key_id.as_str())
            .bind(r.account_id.as_str())
            .bind(r.model.as_str())
            .bind(r.upstream_model.as_str())
            .bind(r.provider.as_str())
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
    q
}

/// One transaction per batch; returns (inserted, already there). Records go
/// in with multi-row `INSERT ... ON CONFLICT DO NOTHING`; only the rows
/// really inserted move money and reach the rollup (`rollup_writer`, which
/// adds them after the commit: on PostgreSQL from a queue row each, on
/// SQLite from above its mark), and the money moves in one `UPDATE` per key
/// and per account, summed.
///
/// Most batches are new records: they are inserted without reading anything
/// back (on PostgreSQL queued in the same statement). A batch with a record
/// already stored (a redelivery, or a request id twice) is rolled back and
/// done again, reading back which rows went in.
pub async fn insert_batch(db: &Db, records: &[UsageRecord]) -> ApiResult<(usize, usize)> {
    if insert_all_new(db, records).await? {
        return Ok((records.len(), 0));
    }
    insert_some_new(db, records).await
}

/// Inserts the batch if none of its records is stored yet (and commits);
/// false, with nothing changed, otherwise.
async fn insert_all_new(db: &Db, records: &[UsageRecord]) -> ApiResult<bool> {
    let mut tx = db.writer.begin().await?;
    let mut inserted = 0u64;
    for chunk in records.chunks(ROWS_PER_INSERT) {
        let mut sql = String::with_capacity(INSERT_RECORDS.len() + chunk.len() * 120 + 160);
        if db.backend == Backend::Postgres {
            sql.push_str("WITH ins AS (");
        }
        sql.push_str(INSERT_RECORDS);
        sql.push_str(&value_rows(db.backend, chunk.len(), VALUES_PER_ROW));
        sql.push_str(" ON CONFLICT (request_id) DO NOTHING");
        if db.backend == Backend::Postgres {
            sql.push_str(
                " RETURNING id) INSERT INTO usage_rollup_pending (record_id) SELECT id FROM ins",
            );
        }
        inserted += insert_query(&sql, chunk)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    if usize::try_from(inserted).ok() != Some(records.len()) {
        // Dropped: rolled back.
        return Ok(false);
    }
    add_spend(&mut tx, records.iter()).await?;
    tx.commit().await?;
    if !records.is_empty() {
        db.rollup_due.notify_one();
    }
    Ok(true)
}

/// A batch with records already stored: inserted reading back the rows that
/// went in, so that only those move money (and, on PostgreSQL, are queued).
async fn insert_some_new(db: &Db, records: &[UsageRecord]) -> ApiResult<(usize, usize)> {
    let mut tx = db.writer.begin().await?;
    let mut inserted: HashSet<String> = HashSet::new();
    let mut ids: Vec<i64> = Vec::with_capacity(records.len());
    for chunk in records.chunks(ROWS_PER_INSERT) {
        let mut sql = String::from(INSERT_RECORDS);
        sql.push_str(&value_rows(db.backend, chunk.len(), VALUES_PER_ROW));
        sql.push_str(" ON CONFLICT (request_id) DO NOTHING RETURNING id, request_id");
        for row in insert_query(&sql, chunk).fetch_all(&mut *tx).await? {
            ids.push(row.try_get(0)?);
            inserted.insert(row.try_get(1)?);
        }
    }
    if db.backend == Backend::Postgres {
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
    }
    // A request id twice in one batch counts once (its first record is the
    // one the database kept).
    let mut seen: HashSet<&str> = HashSet::new();
    add_spend(
        &mut tx,
        records.iter().filter(|r| {
            inserted.contains(r.request_id.as_str()) && seen.insert(r.request_id.as_str())
        }),
    )
    .await?;
    tx.commit().await?;
    if !ids.is_empty() {
        db.rollup_due.notify_one();
    }
    let accepted = inserted.len();
    Ok((accepted, records.len() - accepted))
}

/// The records' cost added to their keys' and accounts' spend (and taken
/// from prepaid balances), one `UPDATE` per key and per account.
async fn add_spend<'r>(
    tx: &mut Transaction<'_, Any>,
    records: impl Iterator<Item = &'r UsageRecord>,
) -> ApiResult<()> {
    let mut by_key: BTreeMap<&str, i64> = BTreeMap::new();
    let mut by_account: BTreeMap<&str, i64> = BTreeMap::new();
    for r in records {
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
        .execute(&mut **tx)
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
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
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
