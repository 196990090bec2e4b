//! The dashboard's sessions (`ui_sessions`, migration 0011): a row per
//! signed-in browser, keyed by the SHA-256 of its session token (the
//! cookie's value is never stored), with who signed in and when the session
//! ends. In the database, so that a restart signs no one out and several
//! control planes on one PostgreSQL share them.

use super::Db;
use crate::error::ApiResult;

/// Sessions kept at most; past it, those that end first go.
pub const MAX_SESSIONS: i64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Row {
    /// `operator` or `key_holder`.
    pub kind: String,
    pub key_id: Option<String>,
    pub account_id: Option<String>,
    /// A named operator's id (`ui_operators`); none for the admin token.
    pub operator_id: Option<String>,
    /// Its name, read with the session (not stored here).
    pub operator_name: Option<String>,
    pub expires_at_ms: i64,
}

/// Stores a new session; ended ones go first, and past [`MAX_SESSIONS`]
/// those that end soonest.
pub async fn insert(db: &Db, token_hash: &str, row: &Row, now_ms: i64) -> ApiResult<()> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("DELETE FROM ui_sessions WHERE expires_at_ms <= $1")
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO ui_sessions (token_hash, kind, key_id, account_id, operator_id, \
         created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(token_hash)
    .bind(&row.kind)
    .bind(&row.key_id)
    .bind(&row.account_id)
    .bind(&row.operator_id)
    .bind(now_ms)
    .bind(row.expires_at_ms)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM ui_sessions WHERE token_hash IN (SELECT token_hash FROM ui_sessions \
         ORDER BY expires_at_ms DESC, token_hash LIMIT 9223372036854775807 OFFSET $1)",
    )
    .bind(MAX_SESSIONS)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The session of this token hash if it has not ended by `now_ms` (a named
/// operator's only while the operator exists).
pub async fn live(db: &Db, token_hash: &str, now_ms: i64) -> ApiResult<Option<Row>> {
    Ok(sqlx::query_as::<_, Row>(
        "SELECT s.kind, s.key_id, s.account_id, s.operator_id, o.name AS operator_name, \
         s.expires_at_ms FROM ui_sessions s LEFT JOIN ui_operators o ON o.id = s.operator_id \
         WHERE s.token_hash = $1 AND s.expires_at_ms > $2 \
         AND (s.operator_id IS NULL OR o.id IS NOT NULL)",
    )
    .bind(token_hash)
    .bind(now_ms)
    .fetch_optional(&db.pool)
    .await?)
}

/// Ends a session (signing out); whether there was one.
pub async fn delete(db: &Db, token_hash: &str) -> ApiResult<bool> {
    let done = sqlx::query("DELETE FROM ui_sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Ends every session of a key (revoked, rotated or expired).
pub async fn delete_of_key(db: &Db, key_id: &str) -> ApiResult<()> {
    sqlx::query("DELETE FROM ui_sessions WHERE key_id = $1")
        .bind(key_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}
