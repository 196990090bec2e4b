//! `GET /v1/models`, `/v1/models/{id}` and `/v1/models/catalog`: only the
//! models the caller's key may use.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::db;
use crate::db::keys::Allowed;
use crate::db::models::{Pricing, Row as ModelRow};
use crate::error::{ApiError, ApiResult, Q};
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct OpenAiModel {
    id: String,
    object: &'static str,
    created: i64,
    /// The name of the provider that serves the model first.
    owned_by: String,
}

/// Who serves a model first: the provider of its lowest priority (the
/// heaviest within it), by its display name; `tollgate` when it has none.
fn provider_label(m: &ModelRow, names: &HashMap<String, String>) -> String {
    let first = m.deployments().ok().and_then(|ds| {
        ds.into_iter()
            .min_by_key(|d| (d.priority, std::cmp::Reverse(d.weight)))
            .map(|d| d.provider)
    });
    first
        .map(|p| names.get(&p).cloned().unwrap_or(p))
        .unwrap_or_else(|| "tollgate".to_string())
}

/// The models this caller's key may use, in id order.
async fn visible_models(state: &AppState, caller: &Caller) -> ApiResult<Vec<ModelRow>> {
    // The filter admitted this key against its snapshot; if the key is gone
    // from the database since, it sees nothing.
    let allowed = db::keys::allowed_models(&state.db, &caller.key_id).await?;
    if let Allowed::Gone = allowed {
        return Ok(Vec::new());
    }
    let all = db::models::all(&state.db).await?;
    Ok(match allowed {
        Allowed::Only(list) => all.into_iter().filter(|m| list.contains(&m.id)).collect(),
        Allowed::All | Allowed::Gone => all,
    })
}

fn openai_model(m: &ModelRow, names: &HashMap<String, String>) -> OpenAiModel {
    OpenAiModel {
        id: m.id.clone(),
        object: "model",
        created: m.created_at_ms / 1000,
        owned_by: provider_label(m, names),
    }
}

pub async fn list(caller: Caller, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let names = db::providers::names(&state.db).await?;
    let models: Vec<OpenAiModel> = visible_models(&state, &caller)
        .await?
        .iter()
        .map(|m| openai_model(m, &names))
        .collect();
    Ok(Json(json!({"object": "list", "data": models})))
}

pub async fn get(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<OpenAiModel>> {
    let names = db::providers::names(&state.db).await?;
    visible_models(&state, &caller)
        .await?
        .iter()
        .find(|m| m.id == id)
        .map(|m| Json(openai_model(m, &names)))
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
    /// The display name of the provider that serves it first.
    provider: String,
    /// The ids of every provider that serves it.
    providers: Vec<String>,
    pricing: Pricing,
}

pub async fn catalog(
    caller: Caller,
    State(state): State<AppState>,
    Q(q): Q<CatalogQuery>,
) -> ApiResult<Json<Value>> {
    let names: HashMap<String, String> = db::providers::names(&state.db).await?;
    let search = q
        .search
        .as_deref()
        .map(str::to_lowercase)
        .filter(|s| !s.is_empty());
    let mut data = Vec::new();
    for m in visible_models(&state, &caller).await? {
        let mut providers: Vec<String> = m.deployments()?.into_iter().map(|d| d.provider).collect();
        providers.dedup();
        let provider = provider_label(&m, &names);
        // `provider=` takes a provider's id or its display name (any case).
        if let Some(p) = q.provider.as_deref().filter(|p| !p.is_empty()) {
            let named = |id: &String| {
                id.eq_ignore_ascii_case(p)
                    || names.get(id).is_some_and(|n| n.eq_ignore_ascii_case(p))
            };
            if !providers.iter().any(named) {
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
            provider,
            providers,
        });
    }
    Ok(Json(json!({"object": "list", "data": data})))
}
