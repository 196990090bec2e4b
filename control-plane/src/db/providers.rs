//! `providers`: where models are served, the credential sealed at rest.

use std::collections::HashMap;

use super::{Db, Table};
use crate::error::ApiResult;

#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub base_url: String,
    /// The credential sealed by `secrets::Sealer`; empty when there is none.
    pub api_key_enc: String,
    pub created_at_ms: i64,
}

const COLUMNS: &str = "id, name, kind, base_url, api_key_enc, created_at_ms";

impl Table for Row {
    const TABLE: &'static str = "providers";
    const EXISTS: &'static str = "SELECT id FROM providers WHERE id = $1";
    const COLUMNS: &'static str = COLUMNS;
    const WHAT: &'static str = "provider";
}

/// The API dialects a provider may speak.
/// What a provider speaks: OpenAI's API (and every compatible one),
/// Anthropic's Messages API, or Azure OpenAI's deployments. The filter
/// translates between them (`crates/translate`).
pub const KINDS: &[&str] = &["openai", "anthropic", "azure_openai"];

pub async fn insert(db: &Db, row: &Row) -> ApiResult<()> {
    sqlx::query("INSERT INTO providers (id, name, kind, base_url, api_key_enc, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.kind)
        .bind(&row.base_url)
        .bind(&row.api_key_enc)
        .bind(row.created_at_ms)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Writes what a PATCH may change.
pub async fn update(db: &Db, row: &Row) -> ApiResult<()> {
    sqlx::query(
        "UPDATE providers SET name = $1, kind = $2, base_url = $3, api_key_enc = $4 WHERE id = $5",
    )
    .bind(&row.name)
    .bind(&row.kind)
    .bind(&row.base_url)
    .bind(&row.api_key_enc)
    .bind(&row.id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn delete(db: &Db, id: &str) -> ApiResult<()> {
    sqlx::query("DELETE FROM providers WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Every provider, in id order.
pub async fn all(db: &Db) -> ApiResult<Vec<Row>> {
    Ok(sqlx::query_as::<_, Row>(
        "SELECT id, name, kind, base_url, api_key_enc, created_at_ms FROM providers ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await?)
}

/// Provider id to display name.
pub async fn names(db: &Db) -> ApiResult<HashMap<String, String>> {
    Ok(
        sqlx::query_as::<_, (String, String)>("SELECT id, name FROM providers")
            .fetch_all(&db.pool)
            .await?
            .into_iter()
            .collect(),
    )
}
