//! `model_groups`: a set of models (the `models` column, a JSON list) and
//! default limits for the keys of the accounts in the group.

use super::model_list::decode_models;
use super::{Db, Table};
use crate::error::ApiResult;

#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub id: String,
    pub name: String,
    /// The `models` column as stored; read it with [`Row::models`].
    #[sqlx(rename = "models")]
    pub models_json: String,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub max_concurrent: Option<i64>,
    pub created_at_ms: i64,
}

const COLUMNS: &str = "id, name, models, CAST(rpm AS BIGINT) AS rpm, CAST(tpm AS BIGINT) AS tpm, \
     CAST(max_concurrent AS BIGINT) AS max_concurrent, created_at_ms";

impl Table for Row {
    const TABLE: &'static str = "model_groups";
    const EXISTS: &'static str = "SELECT id FROM model_groups WHERE id = $1";
    const COLUMNS: &'static str = COLUMNS;
    const WHAT: &'static str = "group";
}

impl Row {
    pub fn models(&self) -> ApiResult<Vec<String>> {
        Ok(decode_models(&self.id, Some(&self.models_json))?.unwrap_or_default())
    }
}

pub async fn insert(db: &Db, row: &Row) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO model_groups (id, name, models, rpm, tpm, max_concurrent, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(&row.models_json)
    .bind(row.rpm)
    .bind(row.tpm)
    .bind(row.max_concurrent)
    .bind(row.created_at_ms)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Writes what a PATCH may change.
pub async fn update(db: &Db, row: &Row) -> ApiResult<()> {
    sqlx::query(
        "UPDATE model_groups SET name = $1, models = $2, rpm = $3, tpm = $4, max_concurrent = $5 \
         WHERE id = $6",
    )
    .bind(&row.name)
    .bind(&row.models_json)
    .bind(row.rpm)
    .bind(row.tpm)
    .bind(row.max_concurrent)
    .bind(&row.id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// How many accounts are in the group.
pub async fn members(db: &Db, id: &str) -> ApiResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE group_id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await?,
    )
}

/// Deletes the group unless an account is in it (checked in the same
/// statement, so an account joining meanwhile keeps it); whether it went.
pub async fn delete_unused(db: &Db, id: &str) -> ApiResult<bool> {
    let done = sqlx::query(
        "DELETE FROM model_groups WHERE id = $1 \
         AND NOT EXISTS (SELECT 1 FROM accounts WHERE group_id = $1)",
    )
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Every group, for the snapshot.
pub async fn all(db: &Db) -> ApiResult<Vec<Row>> {
    Ok(sqlx::query_as::<_, Row>(
        "SELECT id, name, models, CAST(rpm AS BIGINT) AS rpm, CAST(tpm AS BIGINT) AS tpm, \
         CAST(max_concurrent AS BIGINT) AS max_concurrent, created_at_ms \
         FROM model_groups ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await?)
}

/// `account id -> group id` for every account in a group.
pub async fn memberships(db: &Db) -> ApiResult<Vec<(String, String)>> {
    Ok(sqlx::query_as::<_, (String, String)>(
        "SELECT id, group_id FROM accounts WHERE group_id IS NOT NULL",
    )
    .fetch_all(&db.pool)
    .await?)
}

/// The set a key may use: the group's models narrowed by the key's own list
/// (`None` on either side: no narrowing from that side; `None` on both:
/// every model).
pub fn effective(group: Option<&[String]>, key: Option<Vec<String>>) -> Option<Vec<String>> {
    match (group, key) {
        (None, key) => key,
        (Some(g), None) => Some(g.to_vec()),
        (Some(g), Some(k)) => Some(k.into_iter().filter(|m| g.contains(m)).collect()),
    }
}
