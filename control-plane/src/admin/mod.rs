//! The admin API (API.md section 2). Every handler takes the `Admin`
//! extractor, so that no admin route can be added without the token check.

mod accounts;
mod keys;
mod models;
mod providers;
mod upstream_url;
mod usage;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

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
