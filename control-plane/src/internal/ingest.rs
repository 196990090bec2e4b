//! `POST /internal/usage`: the filter's usage batches.
//!
//! Ingestion is idempotent on the filter-minted `request_id`: each record is
//! `INSERT ... ON CONFLICT DO NOTHING`, and only a record that was really
//! inserted moves money, in the same transaction, and reaches the rollup
//! (`db::usage_insert`; batches that arrive together share a transaction,
//! `db::usage_commit`; `db::rollup_writer` adds the records to the rollup
//! after the commit).
//! The batch is acknowledged (200) only after the commit, so a batch whose
//! answer was lost is simply sent again and counts once.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use tollgate_contract::usage::{UsageBatch, UsageRecord};

use crate::auth::Filter;
use crate::db;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::metrics::Outcome;
use crate::state::{AppState, ProviderHealth};
use crate::validate::at_most;

/// More than the filter ever sends (200); a bigger batch is refused whole.
pub const MAX_BATCH: usize = 1000;

#[derive(Debug, Serialize)]
pub struct IngestAnswer {
    accepted: usize,
    duplicates: usize,
}

pub async fn ingest(
    _: Filter,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Json<IngestAnswer>> {
    let started = std::time::Instant::now();
    let batch: UsageBatch = parse_json(&body)?;
    at_most(
        batch.records.len(),
        MAX_BATCH,
        "records per batch",
        "records",
    )?;
    for r in &batch.records {
        if r.request_id.is_empty() || r.request_id.len() > 128 {
            return Err(ApiError::invalid(
                "every record needs a request_id of at most 128 bytes",
                Some("request_id"),
            ));
        }
    }
    let (records, stored) = db::usage_commit::insert(&state.db, batch.records).await;
    let (accepted, duplicates) = stored?;
    let m = &state.metrics;
    m.ingest_batch_seconds
        .observe(started.elapsed().as_secs_f64());
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    m.ingest_records
        .get_or_create(&Outcome { result: "inserted" })
        .inc_by(count(accepted));
    m.ingest_records
        .get_or_create(&Outcome {
            result: "duplicate",
        })
        .inc_by(count(duplicates));
    let now = crate::clock::now_ms();
    for r in &records {
        let lag_ms = now.saturating_sub(i64::try_from(r.created_at_ms).unwrap_or(i64::MAX));
        m.usage_lag_seconds.observe(lag_ms.max(0) as f64 / 1000.0);
    }
    note_health(&state, &records);
    if accepted > 0 && records.iter().any(|r| r.cost_nanos > 0) {
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

fn note_health(state: &AppState, records: &[UsageRecord]) {
    let Ok(mut health) = state.provider_health.lock() else {
        return;
    };
    for r in records {
        if r.provider.is_empty() {
            continue;
        }
        let at_ms = i64::try_from(r.created_at_ms).unwrap_or(i64::MAX);
        // The provider's name copied only the first time it is seen.
        if !health.contains_key(&r.provider) {
            health.insert(
                r.provider.clone(),
                ProviderHealth {
                    last_status: r.status,
                    at_ms,
                    recent_errors: 0,
                },
            );
        }
        let Some(entry) = health.get_mut(&r.provider) else {
            continue;
        };
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
