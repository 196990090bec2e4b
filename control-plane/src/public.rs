//! What data-path callers read through the gateway: the model list and
//! catalog (only the models their key may use) and the open status page.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::admin::models::{Pricing, Row as ModelRow};
use crate::app::{AppState, Caller};
use crate::error::{ApiError, ApiResult, Q};
use crate::util::now_ms;

#[derive(Debug, Serialize)]
pub struct OpenAiModel {
    id: String,
    object: &'static str,
    created: i64,
    owned_by: &'static str,
}

/// The models this caller's key may use, in id order.
async fn visible_models(state: &AppState, caller: &Caller) -> ApiResult<Vec<ModelRow>> {
    let allowed: Option<Option<String>> =
        sqlx::query_scalar("SELECT models FROM api_keys WHERE id = $1 AND revoked_at_ms IS NULL")
            .bind(&caller.key_id)
            .fetch_optional(&state.db.pool)
            .await?;
    // The filter admitted this key against its snapshot; if the key is gone
    // from the database since, it sees nothing.
    let Some(allowed) = allowed else {
        return Ok(Vec::new());
    };
    let allowed: Option<Vec<String>> = allowed
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("key {}: models: {e}", caller.key_id)))?;
    let all = crate::admin::all_models(state).await?;
    Ok(match allowed {
        None => all,
        Some(list) => all.into_iter().filter(|m| list.contains(&m.id)).collect(),
    })
}

fn openai_model(m: &ModelRow) -> OpenAiModel {
    OpenAiModel {
        id: m.id.clone(),
        object: "model",
        created: m.created_at_ms / 1000,
        owned_by: "tollgate",
    }
}

pub async fn list_models(caller: Caller, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let models: Vec<OpenAiModel> = visible_models(&state, &caller)
        .await?
        .iter()
        .map(openai_model)
        .collect();
    Ok(Json(json!({"object": "list", "data": models})))
}

pub async fn get_model(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<OpenAiModel>> {
    visible_models(&state, &caller)
        .await?
        .iter()
        .find(|m| m.id == id)
        .map(|m| Json(openai_model(m)))
        .ok_or_else(|| {
            ApiError::ModelNotFound(format!(
                "The model {id:?} does not exist or you do not have access to it."
            ))
        })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogQuery {
    provider: Option<String>,
    search: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CatalogEntry {
    id: String,
    object: &'static str,
    name: String,
    description: String,
    category: String,
    context_window: Option<i64>,
    providers: Vec<String>,
    pricing: Pricing,
}

pub async fn catalog(
    caller: Caller,
    State(state): State<AppState>,
    Q(q): Q<CatalogQuery>,
) -> ApiResult<Json<Value>> {
    let names: HashMap<String, String> =
        sqlx::query_as::<_, (String, String)>("SELECT id, name FROM providers")
            .fetch_all(&state.db.pool)
            .await?
            .into_iter()
            .collect();
    let search = q
        .search
        .as_deref()
        .map(str::to_lowercase)
        .filter(|s| !s.is_empty());
    let mut data = Vec::new();
    for m in visible_models(&state, &caller).await? {
        let mut providers: Vec<String> = m.deployments()?.into_iter().map(|d| d.provider).collect();
        providers.dedup();
        if let Some(p) = q.provider.as_deref().filter(|p| !p.is_empty()) {
            if !providers.iter().any(|x| x == p) {
                continue;
            }
        }
        if let Some(s) = &search {
            let label = |id: &String| names.get(id).map(|n| n.to_lowercase()).unwrap_or_default();
            let hit = m.id.to_lowercase().contains(s)
                || m.name.to_lowercase().contains(s)
                || providers
                    .iter()
                    .any(|p| p.to_lowercase().contains(s) || label(p).contains(s));
            if !hit {
                continue;
            }
        }
        data.push(CatalogEntry {
            pricing: m.pricing(),
            id: m.id,
            object: "model",
            name: m.name,
            description: m.description,
            category: m.category,
            context_window: m.context_window,
            providers,
        });
    }
    Ok(Json(json!({"object": "list", "data": data})))
}

/// Open (no key): nothing in it is secret. The control plane is `ok` when its
/// database answers; the gateway is `ok` when a filter asked for config in the
/// last minute; each provider's state comes from the statuses of its latest
/// requests.
pub async fn status(State(state): State<AppState>) -> Json<Value> {
    let db_ok = sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(&state.db.pool)
        .await
        .is_ok();
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
    let (limits_backend, limits_status) = state.leases.status();
    Json(json!({
        "object": "status",
        "version": env!("CARGO_PKG_VERSION"),
        "gateway": {"status": gateway, "last_config_poll": if last_poll == 0 { Value::Null } else { json!(last_poll / 1000) }},
        "control_plane": {
            "status": if db_ok { "ok" } else { "degraded" },
            "database": if db_ok { "ok" } else { "unavailable" },
            "uptime_s": state.started.elapsed().as_secs(),
            "config_version": config.version.to_string(),
        },
        "upstreams": upstreams,
        "limits": {"backend": limits_backend, "status": limits_status},
    }))
}
