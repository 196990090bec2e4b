//! Tollgate's control plane: the catalog, keys, accounts, providers and usage
//! behind an admin API, and the channel that gives the filter its config and
//! takes its usage records back.
//!
//! `main.rs` reads the settings and serves; everything else is here, so that
//! tests build the same state and call the same router with `oneshot`.

mod admin;
mod app;
mod config_channel;
mod db;
mod error;
mod leases;
pub mod openapi;
mod public;
mod secrets;
pub mod settings;
mod usage;
mod util;

use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use crate::app::{AppState, State};
use crate::config_channel::{ConfigChannel, Published};
use crate::secrets::{load_or_create, Sealer};
use crate::settings::Settings;

/// The whole HTTP surface: admin API, filter channel, data-path reads and
/// the open routes.
pub fn app(state: AppState) -> axum::Router {
    app::router(state)
}

/// Everything the router needs, from the settings: the data directory and
/// the secrets in it, the migrated database, the limits backend and the
/// first config snapshot (a filter never gets an empty config from a
/// control plane that is still starting).
pub async fn state(settings: Settings) -> anyhow::Result<AppState> {
    use anyhow::Context;
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "creating the data directory {}",
            settings.data_dir.display()
        )
    })?;
    let (admin_token, new_admin) = load_or_create(
        settings.admin_token.as_deref(),
        &settings.data_dir,
        "admin_token",
        secrets::token,
    )?;
    if new_admin {
        tracing::info!(path = %settings.data_dir.join("admin_token").display(), "generated an admin token");
    }
    let (filter_secret, new_filter) = load_or_create(
        settings.filter_secret.as_deref(),
        &settings.data_dir,
        "filter_secret",
        secrets::token,
    )?;
    if new_filter {
        tracing::info!(
            path = %settings.data_dir.join("filter_secret").display(),
            "generated a filter secret: put it in the filter's plugin configuration"
        );
    }
    if filter_secret.len() < 16 {
        anyhow::bail!("TOLLGATE_FILTER_SECRET must be at least 16 characters");
    }
    let (data_key, _) = load_or_create(
        settings.secret_key.as_deref(),
        &settings.data_dir,
        "secret_key",
        Sealer::generate_base64,
    )?;
    let sealer = Sealer::from_base64(&data_key)?;

    let db = db::Db::open(settings.database_url.as_deref(), &settings.data_dir).await?;
    tracing::info!(backend = ?db.backend, "database ready");

    let leases =
        leases::Broker::connect(settings.redis_url.as_deref(), settings.lease_fail_open).await?;
    if settings.redis_url.is_some() {
        tracing::info!("shared limits: buckets in Redis");
    }
    let state = Arc::new(State {
        db,
        settings,
        admin_token,
        filter_secret,
        sealer,
        leases,
        config: ConfigChannel::new(Published {
            version: 0,
            body: Default::default(),
            pages: Vec::new(),
            keys: 0,
        }),
        started: Instant::now(),
        last_poll_ms: AtomicI64::new(0),
        provider_health: Mutex::new(Default::default()),
    });
    state
        .config
        .try_publish(&state)
        .await
        .map_err(|e| anyhow::anyhow!("building the first config snapshot: {e}"))?;
    Ok(state)
}

/// The loops that keep the snapshot current: a periodic rebuild, and on
/// PostgreSQL a `LISTEN` for the other control planes' changes.
pub fn spawn_background(state: &AppState) {
    tokio::spawn(config_channel::refresh_forever(state.clone()));
    if let (db::Backend::Postgres, Some(url)) =
        (state.db.backend, state.settings.database_url.clone())
    {
        tokio::spawn(config_channel::listen_forever(state.clone(), url));
    }
}

/// Closes what outlives the server: held config polls end at once.
pub fn closing(state: &AppState) {
    state.config.close();
}

/// Closes the database pool after the server stopped.
pub async fn close(state: &AppState) {
    state.db.pool.close().await;
}
