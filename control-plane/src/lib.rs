//! Tollgate's control plane: the catalog, keys, accounts, providers and usage
//! behind an admin API, and the channel that gives the filter its config and
//! takes its usage records back.
//!
//! `main.rs` reads the settings and serves; everything else is here, so that
//! tests build the same state and call the same router with `oneshot`.
//!
//! Layers, each using only those below it: handlers by caller (`admin/`
//! with the admin token, `internal/` with the filter secret, `v1/` for keyed
//! callers, `status`), then `auth` and `state`, then the snapshot and its
//! channel, then the queries in `db/`, then the small pieces every layer
//! uses (`clock`, `ids`, `money`, `pages`, `patch`, `validate`, `error`).

mod admin;
mod auth;
mod background;
mod cds;
mod clock;
mod config_channel;
mod credential_health;
mod db;
mod deployment_health;
mod error;
mod ids;
mod internal;
mod leases;
mod metrics;
mod money;
mod openapi;
mod pages;
mod patch;
mod period;
mod router;
mod secrets;
pub mod settings;
mod snapshot;
mod state;
mod status;
pub mod telemetry;
mod ui;
mod usage_record;
mod v1;
mod validate;

use crate::settings::Settings;
pub use crate::state::{AppState, State};

/// The whole HTTP surface: admin API, filter channel, data-path reads and
/// the open routes.
pub fn app(state: AppState) -> axum::Router {
    router::router(state)
}

/// The admin API's OpenAPI document, as `/admin/openapi.json` serves it:
/// generated from the routes `admin::documented` registers.
pub fn openapi_document() -> serde_json::Value {
    admin::document()
}

/// Everything the router needs, built from the settings (see
/// [`State::from_settings`]).
pub async fn state(settings: Settings) -> anyhow::Result<AppState> {
    State::from_settings(settings).await
}

/// The loops that keep the snapshot current (see `background`).
pub fn spawn_background(state: &AppState) {
    background::spawn(state);
}

/// Resets the spend of keys whose budget period ended (what the background
/// loop does every second); whether any was. For tests that move the clock.
pub async fn roll_budget_periods(state: &AppState) -> bool {
    background::roll_periods(state).await
}

/// For a graceful shutdown: held config polls end at once.
pub fn closing(state: &AppState) {
    state.config.close();
}

/// Closes the database pool after the server stopped.
pub async fn close(state: &AppState) {
    state.db.pool.close().await;
}
