//! `accounts`: who pays. A `NULL` balance is unlimited.

use super::{Db, Table};
use crate::error::ApiResult;

#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub balance_nanos: Option<i64>,
    pub spent_nanos: i64,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub max_concurrent: Option<i64>,
    pub group_id: Option<String>,
    pub created_at_ms: i64,
}

const COLUMNS: &str =
    "id, name, balance_nanos, spent_nanos, rpm, tpm, max_concurrent, group_id, created_at_ms";

impl Table for Row {
    const TABLE: &'static str = "accounts";
    const EXISTS: &'static str = "SELECT id FROM accounts WHERE id = $1";
    const COLUMNS: &'static str = COLUMNS;
    const WHAT: &'static str = "account";
}

/// A new account; `spent_nanos` starts at 0 whatever the row says.
pub async fn insert(db: &Db, row: &Row) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO accounts (id, name, balance_nanos, spent_nanos, rpm, tpm, max_concurrent, group_id, created_at_ms) \
         VALUES ($1, $2, $3, 0, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(row.balance_nanos)
    .bind(row.rpm)
    .bind(row.tpm)
    .bind(row.max_concurrent)
    .bind(&row.group_id)
    .bind(row.created_at_ms)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Writes what a PATCH may change.
pub async fn update(db: &Db, row: &Row) -> ApiResult<()> {
    sqlx::query("UPDATE accounts SET name = $1, balance_nanos = $2, rpm = $3, tpm = $4, max_concurrent = $5, group_id = $6 WHERE id = $7")
        .bind(&row.name)
        .bind(row.balance_nanos)
        .bind(row.rpm)
        .bind(row.tpm)
        .bind(row.max_concurrent)
        .bind(&row.group_id)
        .bind(&row.id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Adds to the balance in one statement (never read-then-write), unless the
/// sum would pass `max`; whether it did. The bound is checked in the same
/// statement, so the sum never overflows (SQLite would turn it into a REAL).
/// An account without a balance (unlimited) stays unlimited.
pub async fn credit(db: &Db, id: &str, amount: i64, max: i64) -> ApiResult<bool> {
    let done = sqlx::query(
        "UPDATE accounts SET balance_nanos = balance_nanos + $1 \
         WHERE id = $2 AND (balance_nanos IS NULL OR balance_nanos <= $3)",
    )
    .bind(amount)
    .bind(id)
    .bind(max - amount)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes the account and its (revoked) keys in one transaction.
pub async fn delete_with_keys(db: &Db, id: &str) -> ApiResult<()> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("DELETE FROM api_keys WHERE account_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM accounts WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// An account as the snapshot carries it.
#[derive(sqlx::FromRow)]
pub struct Limited {
    pub id: String,
    pub balance_nanos: Option<i64>,
    pub spent_nanos: i64,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub max_concurrent: Option<i64>,
}

/// Only accounts with a balance or a limit: the rest need no entry in the
/// snapshot.
pub async fn limited(db: &Db) -> ApiResult<Vec<Limited>> {
    Ok(sqlx::query_as::<_, Limited>(
        "SELECT id, CAST(balance_nanos AS BIGINT) AS balance_nanos, CAST(spent_nanos AS BIGINT) AS spent_nanos, \
         CAST(rpm AS BIGINT) AS rpm, CAST(tpm AS BIGINT) AS tpm, \
         CAST(max_concurrent AS BIGINT) AS max_concurrent FROM accounts \
         WHERE balance_nanos IS NOT NULL OR rpm IS NOT NULL OR tpm IS NOT NULL OR max_concurrent IS NOT NULL \
         ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await?)
}
