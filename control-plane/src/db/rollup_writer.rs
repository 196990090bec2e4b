//! The rollup's one writer (migration 0010). Ingest only queues the ids of
//! the records it really inserted (`usage_rollup_pending`, insert only); the
//! writer deletes a run of them, reads their records, sums them into cells
//! and upserts the cells (`rollup::add`), all in one transaction: a record
//! is added exactly once, when its queue row is deleted, and a redelivered
//! record that ingest did not insert is never queued.
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
//! PostgreSQL) take disjoint runs: a queue row is deleted once.

use std::time::Duration;

use super::rollup::{self, Fact, FACT_COLUMNS};
use super::Db;
use crate::error::ApiResult;

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

/// One transaction: the oldest `RUN` queue rows out, their records in.
async fn drain_run(db: &Db) -> ApiResult<usize> {
    let mut tx = db.pool.begin().await?;
    // The DELETE comes first: on SQLite it takes the write lock before
    // anything is read; on PostgreSQL a row another drain deleted first is
    // skipped once that one commits.
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "DELETE FROM usage_rollup_pending WHERE record_id IN \
         (SELECT record_id FROM usage_rollup_pending ORDER BY record_id LIMIT $1) \
         RETURNING record_id",
    )
    .bind(RUN)
    .fetch_all(&mut *tx)
    .await?;
    let (Some(&lo), Some(&hi)) = (ids.iter().min(), ids.iter().max()) else {
        return Ok(0);
    };
    ids.sort_unstable();
    // Their records, by id range (the ids in between that are not queued,
    // already added or another transaction's, are left out here).
    let facts: Vec<Fact> = sqlx::query_as(&format!(
        "SELECT {FACT_COLUMNS} FROM usage_records WHERE id >= $1 AND id <= $2"
    ))
    .bind(lo)
    .bind(hi)
    .fetch_all(&mut *tx)
    .await?;
    let facts: Vec<Fact> = facts
        .into_iter()
        .filter(|f| ids.binary_search(&f.id).is_ok())
        .collect();
    rollup::add(&mut tx, db.backend, &facts).await?;
    tx.commit().await?;
    Ok(ids.len())
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
