//! The filter channel: every route takes the filter secret, and none is
//! reachable through the gateway listener (Envoy answers 404 for
//! `/internal/` there).

mod clusters;
mod config;
mod health;
mod ingest;
mod leases;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/internal/config", get(config::get_config))
        .route("/internal/config/keys", get(config::get_key_page))
        .route("/internal/usage", post(ingest::ingest))
        .route("/internal/leases", post(leases::lease))
        .route("/internal/health", post(health::report))
        .route("/v3/discovery:clusters", post(clusters::discover))
}
