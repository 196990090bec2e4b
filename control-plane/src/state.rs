//! The state every handler shares, how it is built from the settings, and
//! how a change reaches the filters (rebuild the snapshot, publish it, tell
//! the other control planes).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;

use crate::clock::{now_ms, Clock};
use crate::config_channel::{ConfigChannel, Published};
use crate::db::Db;
use crate::error::ApiResult;
use crate::leases::Broker;
use crate::metrics::Metrics;
use crate::secrets::{load_or_create, token, Sealer};
use crate::settings::Settings;
use crate::snapshot;

pub struct State {
    pub db: Db,
    pub settings: Settings,
    pub admin_token: String,
    pub filter_secret: String,
    pub sealer: Sealer,
    pub leases: Broker,
    pub config: ConfigChannel,
    pub started: Instant,
    /// When a filter last asked for config (unix ms), for `/api/status`.
    pub last_poll_ms: AtomicI64,
    /// The last status each provider answered, from ingested usage.
    pub provider_health: Mutex<HashMap<String, ProviderHealth>>,
    pub metrics: Metrics,
    /// The clock budget periods follow (`clock::Clock`).
    pub clock: Clock,
    /// When this process last published a new config version (unix ms).
    pub config_changed_ms: AtomicI64,
    /// Wrong operator passwords per name, for the sign-in's lockout.
    pub sign_ins: crate::ui::throttle::Throttle,
    /// The deployments' health as the gateways report it.
    pub deployment_health: crate::deployment_health::Book,
    /// The provider credentials the gateways report benched.
    pub credential_health: crate::credential_health::Book,
}

#[derive(Debug, Clone, Copy)]
pub struct ProviderHealth {
    pub last_status: u16,
    pub at_ms: i64,
    pub recent_errors: u32,
}

pub type AppState = Arc<State>;

impl State {
    /// The data directory and the secrets in it, the migrated database, the
    /// limits backend and the first config snapshot (a filter never gets an
    /// empty config from a control plane that is still starting).
    pub async fn from_settings(settings: Settings) -> anyhow::Result<AppState> {
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
            token,
        )?;
        if new_admin {
            tracing::info!(path = %settings.data_dir.join("admin_token").display(), "generated an admin token");
        }
        let (filter_secret, new_filter) = load_or_create(
            settings.filter_secret.as_deref(),
            &settings.data_dir,
            "filter_secret",
            token,
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

        let db = Db::open(settings.database_url.as_deref(), &settings.data_dir).await?;
        tracing::info!(backend = ?db.backend, "database ready");
        crate::db::providers::adopt_single_keys(&db, &sealer)
            .await
            .context("moving the providers' single credentials into their key pools")?;

        let leases =
            Broker::connect(settings.redis_url.as_deref(), settings.lease_fail_open).await?;
        if settings.redis_url.is_some() {
            tracing::info!("shared limits: buckets in Redis");
        }
        let settings_offset = settings.clock_offset_ms;
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
                clusters: Vec::new(),
            }),
            started: Instant::now(),
            last_poll_ms: AtomicI64::new(0),
            provider_health: Mutex::new(Default::default()),
            metrics: Metrics::new(),
            clock: Clock::new(settings_offset),
            config_changed_ms: AtomicI64::new(0),
            sign_ins: Default::default(),
            deployment_health: Default::default(),
            credential_health: Default::default(),
        });
        state
            .try_publish()
            .await
            .map_err(|e| anyhow::anyhow!("building the first config snapshot: {e}"))?;
        Ok(state)
    }

    pub fn saw_poll(&self) {
        self.last_poll_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Rebuilds the snapshot from the database and publishes it; whether the
    /// version changed.
    pub async fn try_publish(&self) -> ApiResult<bool> {
        let started = Instant::now();
        let next = snapshot::build(
            &self.db,
            &self.sealer,
            self.settings.snapshot_page_keys,
            !self.settings.allow_private_upstreams,
        );
        let changed = self.config.try_publish(next).await?;
        if changed {
            self.config_changed_ms.store(now_ms(), Ordering::Relaxed);
        }
        self.metrics
            .snapshot_build_seconds
            .observe(started.elapsed().as_secs_f64());
        let current = self.config.current();
        let bytes = current.body.len() + current.pages.iter().map(|p| p.len()).sum::<usize>();
        self.metrics
            .snapshot_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.metrics
            .snapshot_keys
            .set(i64::try_from(current.keys).unwrap_or(i64::MAX));
        self.metrics
            .snapshot_version
            .set(i64::try_from(current.version).unwrap_or(i64::MAX));
        Ok(changed)
    }

    /// After a change made here: rebuild, publish, and tell the other control
    /// planes on the same PostgreSQL (`NOTIFY`), so that their filters get
    /// the change as fast as ours. A failure is logged and left to the
    /// periodic refresh: the admin write itself is already committed.
    pub async fn publish(&self) {
        self.publish_from(true).await;
    }

    pub async fn publish_from(&self, tell_others: bool) {
        if let Err(e) = self.try_publish().await {
            tracing::warn!(error = %e, "config snapshot not rebuilt; retrying on the next refresh");
        }
        // Told even when this rebuild found nothing new: a concurrent local
        // rebuild (the periodic one, which tells no one) may have published
        // this change first.
        if tell_others {
            self.notify_others().await;
        }
    }

    async fn notify_others(&self) {
        if let Err(e) = self.db.notify_config_changed().await {
            tracing::warn!(error = %e, "could not notify the other control planes; they catch up on their refresh");
        }
    }
}
