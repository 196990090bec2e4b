//! What keyed callers read through the gateway, after the filter checked
//! their key (or a key holder's dashboard session): the models their key may
//! use, the catalog, their own usage, balance and limits.

mod me;
mod models;
mod usage;

use axum::routing::get;
use axum::Router;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/models", get(models::list))
        .route("/v1/models/catalog", get(models::catalog))
        .route("/v1/models/{*id}", get(models::get))
        .route("/v1/usage", get(usage::list_own))
        .route("/v1/usage/summary", get(usage::summary_own))
        .route("/v1/me", get(me::get))
        .route("/v1/dashboard/billing/subscription", get(me::subscription))
        .route("/v1/dashboard/billing/usage", get(me::usage))
}
