//! The rollup's one writer (migrations 0010 and 0012). On PostgreSQL ingest
//! queues the ids of the records it really inserted (`usage_rollup_pending`,
//! insert only); the writer deletes a run of them, reads their records, sums
//! them into cells and upserts the cells (`rollup::add`), all in one
//! transaction: a record is added exactly once, when its queue row is
//! deleted, and a redelivered record that ingest did not insert is never
//! queued. On SQLite, whose ids commit in order, the writer adds the records
//! above a mark (`usage_rollup_mark`) and moves it, in one transaction: no
//! queue row per record.
//!
//! Why not in the ingest transaction: every batch adds to the same few
//! hundred cells (the hour's and day's per model), so on PostgreSQL the
//! concurrent ingest transactions waited on each other's row locks until
//! each committed. The writer sums many batches into one upsert per cell.
//!
//! The writer runs soon after each ingest (`Db::rollup_due`, gathered for
//! [`GATHER`]) and every [`IDLE_EVERY`]; a summary drains the queue itself
//! before it reads, so it sees every record committed before it started.
//! Two drains at once (this process or another control plane on the same
//! PostgreSQL) take turns: a queue row is deleted once.

use std::time::Duration;

use super::rollup::{self, Fact, FACT_COLUMNS};
use super::{Backend, Db};
use crate::error::{ApiError, ApiResult};

/// The advisory lock of the PostgreSQL drains ("tollgate rollup").
const DRAIN_LOCK: i64 = 0x746f_6c6c_726f_6c6c;
/// Queue rows per writer transaction.
const RUN: i64 = 5000;
/// How long the writer waits after an ingest, for more to gather.
pub const GATHER: Duration = Duration::from_millis(100);
/// The writer also runs this often with no ingest (what a restart left).
pub const IDLE_EVERY: Duration = Duration::from_secs(2);

/// Adds every queued record to the rollup; returns how many.
pub async fn drain(db: &Db) -> ApiResult<usize> {
    let mut total = 0;
    loop {
        let n = drain_run(db).await?;
        total += n;
        if n < RUN as usize {
            return Ok(total);
        }
    }
}

/// One transaction: the oldest `RUN` records not yet added, in.
async fn drain_run(db: &Db) -> ApiResult<usize> {
    match db.backend {
        Backend::Sqlite => drain_run_after_mark(db).await,
        Backend::Postgres => drain_run_queued(db).await,
    }
}

/// SQLite (migration 0012): the records above the mark. The first statement
/// writes, so the transaction holds the write lock before it reads: no
/// record can commit meanwhile, and ids commit in order.
async fn drain_run_after_mark(db: &Db) -> ApiResult<usize> {
    let mut tx = db.writer.begin().await?;
    let mark: i64 = sqlx::query_scalar(
        "UPDATE usage_rollup_mark SET last_id = last_id WHERE id = 1 RETURNING last_id",
    )
    .fetch_one(&mut *tx)
    .await?;
    let facts: String = sqlx::query_scalar(&format!(
        "SELECT json_group_array(json_array({FACT_COLUMNS})) FROM \
         (SELECT {FACT_COLUMNS} FROM usage_records WHERE id > $1 ORDER BY id LIMIT $2)"
    ))
    .bind(mark)
    .bind(RUN)
    .fetch_one(&mut *tx)
    .await?;
    let facts = decode(&facts)?;
    let Some(last) = facts.iter().map(|f| f.id).max() else {
        return Ok(0);
    };
    rollup::add(&mut tx, db.backend, &facts).await?;
    sqlx::query("UPDATE usage_rollup_mark SET last_id = $1 WHERE id = 1")
        .bind(last)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(facts.len())
}

/// PostgreSQL: the oldest `RUN` queue rows deleted and their records read,
/// in one statement, one drain at a time (every control plane on the
/// database). Without that lock, a drain blocked on the rows another was
/// deleting found them gone once it committed and stopped short, although
/// rows after them were left: a summary then missed up to a batch (the
/// bench saw 172,000 of 172,200 records).
async fn drain_run_queued(db: &Db) -> ApiResult<usize> {
    let mut tx = db.writer.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(DRAIN_LOCK)
        .execute(&mut *tx)
        .await?;
    let facts: String = sqlx::query_scalar(&format!(
        "WITH done AS (DELETE FROM usage_rollup_pending WHERE record_id IN \
         (SELECT record_id FROM usage_rollup_pending ORDER BY record_id LIMIT $1) \
         RETURNING record_id) \
         SELECT COALESCE(json_agg(json_build_array({FACT_COLUMNS}))::text, '[]') \
         FROM usage_records WHERE id IN (SELECT record_id FROM done)"
    ))
    .bind(RUN)
    .fetch_one(&mut *tx)
    .await?;
    let facts = decode(&facts)?;
    if facts.is_empty() {
        return Ok(0);
    }
    rollup::add(&mut tx, db.backend, &facts).await?;
    tx.commit().await?;
    Ok(facts.len())
}

/// A run's records, read as one JSON text (an array of [`FACT_COLUMNS`]
/// arrays) rather than a row each: through sqlx's Any driver each row was
/// converted to an `AnyRow` (its text copied), then each column looked up
/// by name and its text copied again.
fn decode(facts: &str) -> ApiResult<Vec<Fact>> {
    serde_json::from_str(facts).map_err(|e| ApiError::Internal(e.into()))
}

/// The writer: after each ingest (gathered) and every `IDLE_EVERY`.
pub async fn run_forever(db: Db) {
    loop {
        tokio::select! {
            _ = db.rollup_due.notified() => tokio::time::sleep(GATHER).await,
            _ = tokio::time::sleep(IDLE_EVERY) => {}
        }
        if let Err(e) = drain(&db).await {
            tracing::warn!(error = ?e, "adding usage records to the rollup failed; retrying");
        }
    }
}
