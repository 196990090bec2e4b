//! The admin API (API.md section 2). Every handler takes the `Admin`
//! extractor, so that no admin route can be added without the token check.

mod accounts;
mod keys;
pub mod models;
mod providers;
mod upstream_url;
mod usage;

pub use models::all as all_models;

use axum::routing::{get, post};
use axum::Router;

use sqlx::any::AnyRow;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::util::PageQuery;

/// A stored resource: its table, its columns and what people call it.
pub trait Table: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin {
    const TABLE: &'static str;
    const COLUMNS: &'static str;
    const WHAT: &'static str;
}

/// One row by id, or a 404 that names it.
pub async fn load<T: Table>(state: &AppState, id: &str) -> ApiResult<T> {
    sqlx::query_as::<_, T>(&format!(
        "SELECT {} FROM {} WHERE id = $1",
        T::COLUMNS,
        T::TABLE
    ))
    .bind(id)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("No {} {id:?}.", T::WHAT)))
}

/// A page of rows in id order after the cursor, one more than the limit (so
/// that `List::page` can tell `has_more`), and the limit.
pub async fn page<T: Table>(state: &AppState, page: PageQuery) -> ApiResult<(Vec<T>, i64)> {
    let limit = page.limit()?;
    let rows = sqlx::query_as::<_, T>(&format!(
        "SELECT {} FROM {} WHERE id > $1 ORDER BY id LIMIT $2",
        T::COLUMNS,
        T::TABLE
    ))
    .bind(page.after.unwrap_or_default())
    .bind(limit + 1)
    .fetch_all(&state.db.pool)
    .await?;
    Ok((rows, limit))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/accounts",
            post(accounts::create).get(accounts::list),
        )
        .route(
            "/admin/accounts/{id}",
            get(accounts::get)
                .patch(accounts::patch)
                .delete(accounts::delete),
        )
        .route("/admin/accounts/{id}/credit", post(accounts::credit))
        .route("/admin/keys", post(keys::create).get(keys::list))
        .route(
            "/admin/keys/{id}",
            get(keys::get).patch(keys::patch).delete(keys::revoke),
        )
        .route("/admin/keys/{id}/rotate", post(keys::rotate))
        .route(
            "/admin/providers",
            post(providers::create).get(providers::list),
        )
        .route(
            "/admin/providers/{id}",
            get(providers::get)
                .patch(providers::patch)
                .delete(providers::delete),
        )
        .route("/admin/openapi.json", get(crate::openapi::get))
        .route("/admin/usage", get(usage::list))
        .route("/admin/usage/summary", get(usage::summary))
        .route("/admin/models", post(models::create).get(models::list))
        .route(
            "/admin/models/{*id}",
            get(models::get).patch(models::patch).delete(models::delete),
        )
}
