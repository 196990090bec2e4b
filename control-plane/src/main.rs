//! Tollgate's control plane: the catalog, keys, accounts, providers and usage
//! behind an admin API, and the channel that gives the filter its config and
//! takes its usage records back.

mod admin;
mod app;
mod config_channel;
mod db;
mod error;
mod leases;
mod openapi;
mod public;
mod secrets;
mod settings;
mod usage;
mod util;

use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::config_channel::{ConfigChannel, Published};
use crate::secrets::{load_or_create, Sealer};

/// How long a graceful shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let settings = settings::Settings::from_env()?;
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
    let listen = settings.listen;
    let state = Arc::new(app::State {
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
    // The first snapshot before the first poll can arrive: a filter never
    // gets an empty config from a control plane that is still starting.
    state
        .config
        .try_publish(&state)
        .await
        .map_err(|e| anyhow::anyhow!("building the first config snapshot: {e}"))?;
    tokio::spawn(config_channel::refresh_forever(state.clone()));
    if let (crate::db::Backend::Postgres, Some(url)) =
        (state.db.backend, state.settings.database_url.clone())
    {
        tokio::spawn(config_channel::listen_forever(state.clone(), url));
    }

    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let app = app::router(state.clone());
    let bound = listener.local_addr()?;
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    println!("tollgate-control-plane listening on http://{bound}");
    use std::io::Write;
    std::io::stdout().flush()?;

    let closing = state.clone();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        // Held config polls end at once; other requests get SHUTDOWN_GRACE.
        closing.config.close();
        let _ = stop_tx.send(true);
    });
    let forced = async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result.context("serving")?,
        _ = forced => tracing::warn!("requests still in flight after the grace period; exiting"),
    }
    state.db.pool.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
