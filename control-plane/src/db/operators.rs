//! Named operator accounts (`ui_operators`, migration 0011): a name and the
//! Argon2id hash of a password (`ui::password`), for signing in to the
//! dashboard besides the admin token.

use super::Db;
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub password_hash: String,
    pub created_at_ms: i64,
}

/// Stores a new operator; a name already taken is a 409.
pub async fn insert(db: &Db, row: &Row) -> ApiResult<()> {
    if by_name(db, &row.name).await?.is_some() {
        return Err(taken(&row.name));
    }
    sqlx::query(
        "INSERT INTO ui_operators (id, name, password_hash, created_at_ms) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(&row.password_hash)
    .bind(row.created_at_ms)
    .execute(&db.pool)
    .await
    .map_err(|e| match ApiError::from(e) {
        // Another insert of the same name between the check and this one.
        ApiError::Conflict(_) => taken(&row.name),
        other => other,
    })?;
    Ok(())
}

fn taken(name: &str) -> ApiError {
    ApiError::Conflict(format!("An operator named {name:?} exists already."))
}

pub async fn by_name(db: &Db, name: &str) -> ApiResult<Option<Row>> {
    Ok(sqlx::query_as::<_, Row>(
        "SELECT id, name, password_hash, created_at_ms FROM ui_operators WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&db.pool)
    .await?)
}

/// Every operator, oldest first.
pub async fn all(db: &Db) -> ApiResult<Vec<Row>> {
    Ok(sqlx::query_as::<_, Row>(
        "SELECT id, name, password_hash, created_at_ms FROM ui_operators ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await?)
}

/// Deletes an operator and ends its sessions, in one transaction; whether
/// it existed.
pub async fn delete(db: &Db, id: &str) -> ApiResult<bool> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("DELETE FROM ui_sessions WHERE operator_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let done = sqlx::query("DELETE FROM ui_operators WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}
