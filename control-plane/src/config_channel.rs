//! The filter channel, control plane to filter: `GET /internal/config`.
//!
//! The whole snapshot is rebuilt from the database after every admin write
//! (and every few seconds, to pick up what another control plane on the same
//! PostgreSQL wrote) and published on a watch channel. Its version is a hash
//! of its content, so that a restart or a second replica publishes the same
//! version for the same content and filters do not swap for nothing.
//! Filters long-poll with the version they have: they get the snapshot at once
//! when it differs, else the request waits until it changes or `wait_ms` ends
//! (304).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::{watch, Mutex};
use tollgate_contract::snapshot::{
    Account, Deployment, Key, KeyPage, Model, Provider, Settings, Snapshot,
};

use crate::app::{AppState, Filter};
use crate::error::{ApiError, ApiResult, Q};

/// The longest a poll is held open.
pub const MAX_WAIT_MS: u64 = 60_000;
/// How often the snapshot is rebuilt without an admin write.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);
/// The shortest gap between two rebuilds for spend. The filter counts spend
/// locally in between, so this bounds work, not accuracy.
pub const SPEND_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct Published {
    pub version: u64,
    pub body: Bytes,
    /// The key pages of a paged snapshot (`key_pages` in its head).
    pub pages: Vec<Bytes>,
    pub keys: usize,
}

pub struct ConfigChannel {
    tx: watch::Sender<Arc<Published>>,
    /// Set when spend changed: the next rebuild comes within `SPEND_EVERY`.
    spend_changed: tokio::sync::Notify,
    /// Rebuilds run one at a time, so that versions are published in the
    /// order of the database states they were read from.
    rebuild: Mutex<()>,
    shutdown: watch::Sender<bool>,
}

impl ConfigChannel {
    pub fn new(first: Published) -> ConfigChannel {
        ConfigChannel {
            tx: watch::Sender::new(Arc::new(first)),
            spend_changed: tokio::sync::Notify::new(),
            rebuild: Mutex::new(()),
            shutdown: watch::Sender::new(false),
        }
    }

    pub fn current(&self) -> Arc<Published> {
        self.tx.borrow().clone()
    }

    /// Rebuilds and publishes after a change. A failure is logged and left to
    /// the periodic refresh: the admin write itself is already committed.
    /// After a change made here: rebuild, publish, and tell the other control
    /// planes on the same PostgreSQL (`NOTIFY`), so that their filters get
    /// the change as fast as ours.
    pub async fn publish(&self, state: &AppState) {
        self.publish_from(state, true).await;
    }

    async fn publish_from(&self, state: &AppState, tell_others: bool) {
        if let Err(e) = self.try_publish(state).await {
            tracing::warn!(error = %e, "config snapshot not rebuilt; retrying on the next refresh");
        }
        // Told even when this rebuild found nothing new: a concurrent local
        // rebuild (the periodic one, which tells no one) may have published
        // this change first.
        if tell_others {
            notify_others(state).await;
        }
    }

    /// Rebuilds and publishes; whether the version changed.
    pub async fn try_publish(&self, state: &AppState) -> ApiResult<bool> {
        let _one_at_a_time = self.rebuild.lock().await;
        let next = build(state).await?;
        Ok(self.tx.send_if_modified(|current| {
            if current.version == next.version {
                return false;
            }
            let bytes = next.body.len() + next.pages.iter().map(Bytes::len).sum::<usize>();
            tracing::info!(
                version = next.version,
                keys = next.keys,
                pages = next.pages.len(),
                bytes,
                "config published"
            );
            *current = Arc::new(next);
            true
        }))
    }

    /// Spend moved (usage was ingested): republish soon, at most once per
    /// `SPEND_EVERY`, rather than once per batch.
    pub fn spend_changed(&self) {
        self.spend_changed.notify_one();
    }

    /// Ends every held poll (for a quick graceful shutdown).
    pub fn close(&self) {
        self.shutdown.send_replace(true);
    }
}

fn version_of(body: &[u8]) -> u64 {
    let digest = tollgate_contract::sha256::digest(body);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // Never 0, which a filter might read as "none yet";
    // 53 bits, so that JSON tools that read numbers as doubles keep it exact.
    (u64::from_be_bytes(first) >> 11).max(1)
}

/// A stored limit as the snapshot carries it: out-of-range values (only an
/// old or hand-edited row has them) are clamped, never wrapped.
/// A stored limit as the filter takes it: 0 (a paused key or account) and
/// up; a negative value from an older row reads as 0, the safe direction.
fn limit_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

fn limit_u64(v: i64) -> u64 {
    u64::try_from(v.max(0)).unwrap_or(0)
}

/// Reads everything the filter needs from the database.
pub async fn build(state: &AppState) -> ApiResult<Published> {
    #[derive(sqlx::FromRow)]
    struct KeyRow {
        id: String,
        hash: String,
        account_id: String,
        models: Option<String>,
        expires_at: Option<i64>,
        rpm: Option<i64>,
        tpm: Option<i64>,
        max_concurrent: Option<i64>,
        budget_nanos: Option<i64>,
        spent_nanos: i64,
    }
    #[derive(sqlx::FromRow)]
    struct AccountRow {
        id: String,
        balance_nanos: Option<i64>,
        spent_nanos: i64,
        rpm: Option<i64>,
        tpm: Option<i64>,
        max_concurrent: Option<i64>,
    }
    #[derive(sqlx::FromRow)]
    struct ProviderRow {
        id: String,
        kind: String,
        base_url: String,
        api_key_enc: String,
    }
    let pool = &state.db.pool;
    let key_rows = sqlx::query_as::<_, KeyRow>(
        "SELECT id, hash, account_id, models, CAST(expires_at AS BIGINT) AS expires_at, \
         CAST(rpm AS BIGINT) AS rpm, CAST(tpm AS BIGINT) AS tpm, \
         CAST(max_concurrent AS BIGINT) AS max_concurrent, CAST(budget_nanos AS BIGINT) AS budget_nanos, \
         CAST(spent_nanos AS BIGINT) AS spent_nanos \
         FROM api_keys WHERE revoked_at_ms IS NULL ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    let provider_rows = sqlx::query_as::<_, ProviderRow>(
        "SELECT id, kind, base_url, api_key_enc FROM providers ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    let model_rows = crate::admin::all_models(state).await?;
    // Only accounts with a balance or a limit: the rest need no entry.
    let account_rows = sqlx::query_as::<_, AccountRow>(
        "SELECT id, CAST(balance_nanos AS BIGINT) AS balance_nanos, CAST(spent_nanos AS BIGINT) AS spent_nanos, \
         CAST(rpm AS BIGINT) AS rpm, CAST(tpm AS BIGINT) AS tpm, \
         CAST(max_concurrent AS BIGINT) AS max_concurrent FROM accounts \
         WHERE balance_nanos IS NOT NULL OR rpm IS NOT NULL OR tpm IS NOT NULL OR max_concurrent IS NOT NULL \
         ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    let accounts = account_rows
        .into_iter()
        .map(|a| Account {
            id: a.id,
            spent_nanos: if a.balance_nanos.is_some() {
                a.spent_nanos.max(0) as u64
            } else {
                0
            },
            balance_nanos: a.balance_nanos,
            rpm: a.rpm.map(limit_u32),
            tpm: a.tpm.map(limit_u64),
            max_concurrent: a.max_concurrent.map(limit_u32),
        })
        .collect();

    let bad = |what: String| ApiError::Internal(anyhow::anyhow!(what));
    let mut keys = Vec::with_capacity(key_rows.len());
    for k in key_rows {
        // A key whose row cannot be read is left out (refused by the filter)
        // rather than stopping every other change from being published.
        let models = match k
            .models
            .as_deref()
            .map(serde_json::from_str::<Vec<String>>)
            .transpose()
        {
            Ok(models) => models,
            Err(e) => {
                tracing::error!(key = %k.id, error = %e, "key left out of the snapshot: bad models column");
                continue;
            }
        };
        keys.push(Key {
            id: k.id,
            hash: k.hash,
            account_id: k.account_id,
            models,
            expires_at: k.expires_at,
            rpm: k.rpm.map(limit_u32),
            tpm: k.tpm.map(limit_u64),
            max_concurrent: k.max_concurrent.map(limit_u32),
            budget_nanos: k.budget_nanos.map(|v| v.max(0) as u64),
            // Only where a budget needs it, so that spend on keys without a
            // budget does not change the snapshot at every request.
            spent_nanos: if k.budget_nanos.is_some() {
                k.spent_nanos.max(0) as u64
            } else {
                0
            },
        });
    }
    let mut providers = Vec::with_capacity(provider_rows.len());
    for p in provider_rows {
        let api_key = match state.sealer.open(&p.api_key_enc) {
            Ok(key) => key,
            Err(e) => {
                tracing::error!(provider = %p.id, error = format!("{e:#}"), "provider left out of the snapshot: credential does not open");
                continue;
            }
        };
        providers.push(Provider {
            id: p.id,
            kind: p.kind,
            base_url: p.base_url,
            api_key,
        });
    }
    let mut models = Vec::with_capacity(model_rows.len());
    for m in model_rows {
        let deployments = match m.deployments() {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(model = %m.id, error = %e, "model left out of the snapshot");
                continue;
            }
        };
        let deployments = deployments
            .into_iter()
            .map(|d| Deployment {
                provider: d.provider,
                upstream_model: d.upstream_model,
                weight: d.weight,
                priority: d.priority,
            })
            .collect();
        models.push(Model {
            id: m.id,
            deployments,
            input_nanos_per_1m: m.input_nanos_per_1m.max(0) as u64,
            output_nanos_per_1m: m.output_nanos_per_1m.max(0) as u64,
        });
    }
    let key_count = keys.len();
    // Many keys go in pages, which the filter applies one at a time between
    // requests instead of parsing them all in one go.
    let page_keys = state.settings.snapshot_page_keys;
    let pages: Vec<Vec<u8>> = if key_count > page_keys {
        keys.chunks(page_keys)
            .map(|chunk| {
                serde_json::to_vec(&KeyPage {
                    keys: chunk.to_vec(),
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError::Internal(e.into()))?
    } else {
        Vec::new()
    };
    let snapshot = Snapshot {
        version: 0,
        keys: if pages.is_empty() { keys } else { Vec::new() },
        accounts,
        models,
        providers,
        settings: Settings::default(),
        key_pages: u32::try_from(pages.len()).map_err(|_| bad("too many key pages".to_string()))?,
    };
    // Serialised once: `version` is the first field, so the body with
    // version 0 is hashed (with its pages) and then only its opening is
    // rewritten.
    let unversioned = serde_json::to_vec(&snapshot).map_err(|e| ApiError::Internal(e.into()))?;
    let version = if pages.is_empty() {
        version_of(&unversioned)
    } else {
        let mut all = unversioned.clone();
        for page in &pages {
            all.extend_from_slice(page);
        }
        version_of(&all)
    };
    const OPENING: &[u8] = b"{\"version\":0,";
    let rest = unversioned
        .strip_prefix(OPENING)
        .ok_or_else(|| bad("snapshot does not start with its version".to_string()))?;
    let mut body = format!("{{\"version\":{version},").into_bytes();
    body.extend_from_slice(rest);
    Ok(Published {
        version,
        body: Bytes::from(body),
        pages: pages.into_iter().map(Bytes::from).collect(),
        keys: key_count,
    })
}

/// `GET /internal/config/keys?version=&page=`: one page of a paged snapshot;
/// 409 when that version is no longer the current one (the filter then
/// polls for the new head).
pub async fn get_key_page(
    _: Filter,
    State(state): State<AppState>,
    Q(query): Q<HashMap<String, String>>,
) -> ApiResult<Response> {
    let number = |name: &str| -> ApiResult<u64> {
        query
            .get(name)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| ApiError::invalid(format!("`{name}` must be an integer"), Some(name)))
    };
    let (version, page) = (number("version")?, number("page")?);
    let current = state.config.current();
    if current.version != version {
        return Err(ApiError::Conflict(format!(
            "version {version} is no longer current; poll /internal/config again"
        )));
    }
    let body = usize::try_from(page)
        .ok()
        .and_then(|i| current.pages.get(i))
        .ok_or_else(|| ApiError::invalid(format!("no key page {page}"), Some("page")))?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body.clone()),
    )
        .into_response())
}

const CHANNEL: &str = "tollgate_config";

async fn notify_others(state: &AppState) {
    if state.db.backend != crate::db::Backend::Postgres {
        return;
    }
    if let Err(e) = sqlx::raw_sql("NOTIFY tollgate_config")
        .execute(&state.db.pool)
        .await
    {
        tracing::warn!(error = %e, "could not notify the other control planes; they catch up on their refresh");
    }
}

/// On PostgreSQL: rebuild as soon as another control plane says it changed
/// something (`LISTEN tollgate_config`); reconnects with a backoff.
pub async fn listen_forever(state: AppState, url: String) {
    let mut delay = Duration::from_millis(200);
    loop {
        match sqlx::postgres::PgListener::connect(&url).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(CHANNEL).await {
                    tracing::warn!(error = %e, "LISTEN failed");
                } else {
                    delay = Duration::from_millis(200);
                    // Whatever changed while not listening.
                    state.config.publish_from(&state, false).await;
                    while listener.recv().await.is_ok() {
                        tracing::debug!("another control plane changed the config");
                        state.config.publish_from(&state, false).await;
                    }
                    tracing::warn!("lost the LISTEN connection; reconnecting");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot LISTEN for other control planes' changes"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// Rebuilds every few seconds (expiries, writes by another replica) and soon
/// after spend changed.
pub async fn refresh_forever(state: AppState) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let spend = tokio::select! {
            _ = tick.tick() => false,
            _ = state.config.spend_changed.notified() => true,
        };
        // Spend moved here: the others' filters need it too. A periodic
        // rebuild only catches up with what others did: nothing to tell.
        state.config.publish_from(&state, spend).await;
        tokio::time::sleep(SPEND_EVERY).await;
    }
}

fn snapshot_response(p: &Published) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(p.body.clone()),
    )
        .into_response()
}

pub async fn get_config(
    _: Filter,
    State(state): State<AppState>,
    Q(query): Q<HashMap<String, String>>,
) -> ApiResult<Response> {
    state.saw_poll();
    let number = |name: &str| -> ApiResult<Option<u64>> {
        query
            .get(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::invalid(format!("`{name}` must be an integer"), Some(name))
                })
            })
            .transpose()
    };
    let have = number("version")?;
    let wait = Duration::from_millis(number("wait_ms")?.unwrap_or(0).min(MAX_WAIT_MS));
    let mut rx = state.config.tx.subscribe();
    let current = rx.borrow_and_update().clone();
    if have != Some(current.version) {
        return Ok(snapshot_response(&current));
    }
    let mut shutdown = state.config.shutdown.subscribe();
    tokio::select! {
        changed = rx.changed() => {
            if changed.is_ok() {
                let next = rx.borrow_and_update().clone();
                if Some(next.version) != have {
                    return Ok(snapshot_response(&next));
                }
            }
        }
        _ = tokio::time::sleep(wait) => {}
        _ = shutdown.wait_for(|closing| *closing) => {}
    }
    Ok(StatusCode::NOT_MODIFIED.into_response())
}
