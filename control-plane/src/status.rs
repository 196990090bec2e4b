//! `GET /api/status`, open (no key): nothing in it is secret.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::clock::now_ms;
use crate::state::AppState;

/// The control plane is `ok` when its
/// database answers; the gateway is `ok` when a filter asked for config in the
/// last minute; each provider's state comes from the statuses of its latest
/// requests.
pub async fn get(State(state): State<AppState>) -> Json<Value> {
    let db_ok = state.db.ping().await;
    let last_poll = state.last_poll_ms.load(Ordering::Relaxed);
    let now = now_ms();
    let gateway = if last_poll == 0 {
        "unknown"
    } else if now - last_poll <= 60_000 {
        "ok"
    } else {
        "degraded"
    };
    let upstreams: Vec<Value> = match state.provider_health.lock() {
        Ok(health) => {
            let mut list: Vec<Value> = health
                .iter()
                .map(|(id, h)| {
                    let status = if h.recent_errors >= 3 { "degraded" } else { "ok" };
                    json!({"provider": id, "status": status, "last_status": h.last_status, "last_seen": h.at_ms / 1000})
                })
                .collect();
            list.sort_by(|a, b| a["provider"].as_str().cmp(&b["provider"].as_str()));
            list
        }
        Err(_) => Vec::new(),
    };
    let config = state.config.current();
    let deployments = deployments(&state, &config.clusters, now).await;
    let credentials = credentials(&state, now).await;
    let (limits_backend, limits_status) = state.leases.status().await;
    Json(json!({
        "object": "status",
        "version": env!("CARGO_PKG_VERSION"),
        "gateway": {"status": gateway, "last_config_poll": if last_poll == 0 { Value::Null } else { json!(last_poll / 1000) }},
        "control_plane": {
            "status": if db_ok { "ok" } else { "degraded" },
            "database": if db_ok { "ok" } else { "unavailable" },
            "uptime_s": state.started.elapsed().as_secs(),
            "config_version": config.version.to_string(),
            "config_published_at": match state.config_changed_ms.load(Ordering::Relaxed) {
                0 => Value::Null,
                ms => json!(ms / 1000),
            },
        },
        "upstreams": upstreams,
        "deployments": deployments,
        "credentials": credentials,
        "limits": {
            "backend": limits_backend,
            "status": limits_status,
            // What shared limits do when their Redis fails (TOLLGATE_LEASE_FAIL).
            "fail_mode": if state.settings.lease_fail_open { "open" } else { "closed" },
        },
    }))
}

/// Each deployment of a failover model, as the gateways report it: `state`
/// `healthy`, `cooling` (until `cooling_until`, Unix seconds) or `probing`
/// (its cool-down is over: one request tries it first).
async fn deployments(
    state: &AppState,
    clusters: &[crate::cds::ClusterSpec],
    now: i64,
) -> Vec<Value> {
    let shown = state.deployment_health.show(clusters, now);
    if shown.is_empty() {
        return Vec::new();
    }
    // The provider of each, where the catalog still has it.
    let models = crate::db::models::all(&state.db).await.unwrap_or_default();
    let provider = |model: &str, index: u32| {
        models
            .iter()
            .find(|m| m.id == model)
            .and_then(|m| m.deployments().ok())
            .and_then(|d| d.into_iter().nth(index as usize))
            .map(|d| (d.provider, d.upstream_model))
    };
    shown
        .into_iter()
        .map(|s| {
            let (provider, upstream_model) = provider(&s.model, s.deployment).unzip();
            json!({
                "model": s.model,
                "deployment": s.deployment,
                "provider": provider,
                "upstream_model": upstream_model,
                "state": s.state,
                "cooling_until": (s.until_ms > 0).then_some(s.until_ms / 1000),
                "failures": s.failures,
            })
        })
        .collect()
}

/// The provider credentials that are not active: `benched` (until
/// `benched_until`, Unix seconds, as the gateways report it) or `disabled`
/// (`reason`, `disabled_at`). Ids only: no hint of a secret here.
async fn credentials(state: &AppState, now: i64) -> Vec<Value> {
    let providers = crate::db::providers::all(&state.db)
        .await
        .unwrap_or_default();
    let mut out = Vec::new();
    for p in providers {
        for c in p.pool().unwrap_or_default() {
            let entry = if let Some(at) = c.disabled_at_ms {
                json!({"provider": p.id, "credential": c.id, "state": "disabled",
                       "reason": c.disabled_reason, "disabled_at": at / 1000})
            } else if let Some(until) =
                state
                    .credential_health
                    .benched_until(&p.id, &c.id, c.generation, now)
            {
                json!({"provider": p.id, "credential": c.id, "state": "benched",
                       "benched_until": until / 1000})
            } else {
                continue;
            };
            out.push(entry);
        }
    }
    out
}

/// `GET /metrics`: the control plane's metrics (`metrics.rs`), with the
/// database and the limits backend asked at scrape time.
pub async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    let published = state.config_changed_ms.load(Ordering::Relaxed);
    let deployments = state
        .deployment_health
        .show(&state.config.current().clusters, now_ms());
    let text = crate::metrics::render(
        &state.metrics,
        crate::metrics::Scraped {
            database_up: state.db.ping().await,
            limits_up: state.leases.status().await.1 == "ok",
            // Milliseconds to seconds; a clock step back reads as 0.
            snapshot_age_seconds: (now_ms() - published).max(0) as f64 / 1000.0,
            deployments: &deployments,
        },
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}
