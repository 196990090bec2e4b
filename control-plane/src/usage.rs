//! Usage, filter to control plane and back to callers: `POST /internal/usage`
//! takes batches from the filter, `GET /v1/usage` shows an account its own.
//!
//! Ingestion is idempotent on the filter-minted `request_id`: each record is
//! `INSERT ... ON CONFLICT DO NOTHING`, and only a record that was really
//! inserted moves money, in the same transaction. The batch is acknowledged
//! (200) only after the commit, so a batch whose answer was lost is simply sent
//! again and counts once.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tollgate_contract::usage::{UsageBatch, UsageRecord};

use crate::app::{AppState, Caller, Filter, ProviderHealth};
use crate::error::{parse_json, ApiError, ApiResult, Q};
use crate::util::{nanos_to_usd, List, MAX_BALANCE_NANOS};

/// More than the filter ever sends (200); a bigger batch is refused whole.
pub const MAX_BATCH: usize = 1000;

#[derive(Debug, Serialize)]
pub struct IngestAnswer {
    accepted: usize,
    duplicates: usize,
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A record's cost as money moved: at most the stored maximum, so that sums
/// stay far from overflowing.
fn cost_of(v: u64) -> i64 {
    clamp(v).min(MAX_BALANCE_NANOS)
}

pub async fn ingest(
    _: Filter,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Json<IngestAnswer>> {
    let batch: UsageBatch = parse_json(&body)?;
    if batch.records.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            format!("at most {MAX_BATCH} records per batch"),
            Some("records"),
        ));
    }
    for r in &batch.records {
        if r.request_id.is_empty() || r.request_id.len() > 128 {
            return Err(ApiError::invalid(
                "every record needs a request_id of at most 128 bytes",
                Some("request_id"),
            ));
        }
    }
    let (accepted, duplicates) = insert_batch(&state, &batch.records).await?;
    note_health(&state, &batch.records);
    if accepted > 0 && batch.records.iter().any(|r| r.cost_nanos > 0) {
        state.config.spend_changed();
    }
    if duplicates > 0 {
        tracing::info!(
            accepted,
            duplicates,
            "usage batch had records already stored (a redelivery)"
        );
    }
    Ok(Json(IngestAnswer {
        accepted,
        duplicates,
    }))
}

/// Rows per INSERT statement (15 values each, well under both backends'
/// parameter limits).
const ROWS_PER_INSERT: usize = 100;

/// One transaction per batch; returns (inserted, already there). Records go
/// in with multi-row `INSERT ... ON CONFLICT DO NOTHING RETURNING request_id`,
/// so only the rows really inserted move money, and the money moves in one
/// `UPDATE` per key and per account, summed.
pub async fn insert_batch(state: &AppState, records: &[UsageRecord]) -> ApiResult<(usize, usize)> {
    use std::collections::{BTreeMap, HashSet};

    let mut tx = state.db.pool.begin().await?;
    let mut inserted: HashSet<String> = HashSet::new();
    for chunk in records.chunks(ROWS_PER_INSERT) {
        let mut sql = String::from(
            "INSERT INTO usage_records (request_id, key_id, account_id, model, upstream_model, provider, status, \
             input_tokens, output_tokens, estimated, stream, latency_ms, ttft_ms, cost_nanos, created_at_ms) VALUES ",
        );
        for i in 0..chunk.len() {
            let n = i * 15;
            if i > 0 {
                sql.push_str(", ");
            }
            let params: Vec<String> = (1..=15).map(|j| format!("${}", n + j)).collect();
            sql.push('(');
            sql.push_str(&params.join(", "));
            sql.push(')');
        }
        sql.push_str(" ON CONFLICT (request_id) DO NOTHING RETURNING request_id");
        let mut q = sqlx::query_scalar::<_, String>(&sql);
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
                .bind(i64::from(r.estimated))
                .bind(i64::from(r.stream))
                .bind(clamp(r.latency_ms))
                .bind(r.ttft_ms.map(clamp))
                .bind(clamp(r.cost_nanos))
                .bind(clamp(r.created_at_ms));
        }
        inserted.extend(q.fetch_all(&mut *tx).await?);
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
    let accepted = inserted.len();
    Ok((accepted, records.len() - accepted))
}

fn note_health(state: &AppState, records: &[UsageRecord]) {
    let Ok(mut health) = state.provider_health.lock() else {
        return;
    };
    for r in records {
        if r.provider.is_empty() {
            continue;
        }
        let at_ms = i64::try_from(r.created_at_ms).unwrap_or(i64::MAX);
        let entry = health.entry(r.provider.clone()).or_insert(ProviderHealth {
            last_status: r.status,
            at_ms,
            recent_errors: 0,
        });
        if at_ms >= entry.at_ms {
            entry.last_status = r.status;
            entry.at_ms = at_ms;
        }
        entry.recent_errors = if r.status >= 500 {
            entry.recent_errors.saturating_add(1)
        } else {
            0
        };
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub id: i64,
    pub request_id: String,
    pub key_id: String,
    pub model: String,
    pub status: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub estimated: i64,
    pub stream: i64,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub cost_nanos: i64,
    pub created_at_ms: i64,
}

pub const COLUMNS: &str = "id, request_id, key_id, model, status, input_tokens, output_tokens, \
                           estimated, stream, latency_ms, ttft_ms, cost_nanos, created_at_ms";

/// A usage record as API.md gives it.
#[derive(Debug, Serialize)]
pub struct Record {
    pub id: String,
    pub object: &'static str,
    pub request_id: String,
    pub model: String,
    pub key_id: String,
    pub source: &'static str,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub total_tokens: i64,
    pub cost_usd: f64,
    pub created_at: i64,
    pub status: i64,
    pub stream: bool,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub estimated: bool,
}

pub const ID_PREFIX: &str = "usage_";

impl From<Row> for Record {
    fn from(r: Row) -> Record {
        Record {
            id: format!("{ID_PREFIX}{}", r.id),
            object: "usage_record",
            request_id: r.request_id,
            model: r.model,
            key_id: r.key_id,
            source: "api_key",
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            total_tokens: r.input_tokens.saturating_add(r.output_tokens),
            cost_usd: nanos_to_usd(r.cost_nanos),
            created_at: r.created_at_ms / 1000,
            status: r.status,
            stream: r.stream != 0,
            latency_ms: r.latency_ms,
            ttft_ms: r.ttft_ms,
            estimated: r.estimated != 0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    model: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// `after=usage_<n>` to the row id; anything else is a 400.
pub fn cursor(after: Option<&str>) -> ApiResult<i64> {
    match after {
        None => Ok(i64::MAX),
        Some(s) => s
            .strip_prefix(ID_PREFIX)
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::invalid("`after` must be a usage record id", Some("after"))),
    }
}

/// The caller's own account only; newest first.
pub async fn list_own(
    caller: Caller,
    State(state): State<AppState>,
    Q(q): Q<UsageQuery>,
) -> ApiResult<Json<List<Record>>> {
    let limit = crate::util::PageQuery {
        limit: q.limit,
        after: None,
    }
    .limit()?;
    let before = cursor(q.after.as_deref())?;
    let rows = sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM usage_records WHERE account_id = $1 AND id < $2 AND ($3 = '' OR model = $3) \
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(&caller.account_id)
    .bind(before)
    .bind(q.model.unwrap_or_default())
    .bind(limit + 1)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(Json(List::page(
        rows.into_iter().map(Record::from).collect(),
        limit,
    )))
}
