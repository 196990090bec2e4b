//! Providers: where models are served. Their credentials (a key pool,
//! `key_pool.rs`, `provider_keys.rs`) are write-only: sealed at rest, never returned (an
//! id, a hint and a state each, and `has_api_key`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use axum::body::Bytes;
use axum::Json;

use super::key_pool::{self, KeyShown};
use super::resource::{self, Creatable, Resource};
use super::upstream_url::BaseUrl;
use crate::auth::Admin;
use crate::clock::now_ms;
use crate::db::providers::{Row, StoredCredential, KINDS};
use crate::db::{self, load, Db};
use crate::error::{ApiError, ApiResult, Q};
use crate::ids::new_id;
use crate::pages::{List, PageQuery};
use crate::patch::set;
use crate::state::AppState;
use crate::validate::{Name, Slug};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Provider {
    id: String,
    object: &'static str,
    name: String,
    kind: String,
    #[schema(format = "uri")]
    base_url: String,
    has_api_key: bool,
    /// Each credential as id, hint and state (never the secret).
    #[schema(value_type = Vec<Object>)]
    api_keys: Vec<KeyShown>,
    created_at: i64,
}

impl Provider {
    /// The benches the gateways report on its active credentials.
    fn add_benches(mut self, state: &AppState) -> Provider {
        key_pool::with_benches(state, &self.id, &mut self.api_keys);
        self
    }
}

/// After a write: published, and answered with the benches.
pub async fn written(state: &AppState, id: &str) -> ApiResult<Json<Provider>> {
    let Json(shown) = resource::written::<Row>(state, id).await?;
    Ok(Json(shown.add_benches(state)))
}

#[utoipa::path(get, path = "/admin/providers/{id}", tag = "providers", params(("id" = String, Path)), responses((status = 200, description = "OK", body = Provider), crate::openapi::Errors))]
pub async fn get(
    admin: Admin,
    State(state): State<AppState>,
    id: Path<String>,
) -> ApiResult<Json<Provider>> {
    let Json(shown) = resource::get::<Row>(admin, State(state.clone()), id).await?;
    Ok(Json(shown.add_benches(&state)))
}

#[utoipa::path(get, path = "/admin/providers", tag = "providers", params(crate::pages::PageQuery), responses((status = 200, description = "A page, in id order", body = [Provider]), crate::openapi::Errors))]
pub async fn list(
    admin: Admin,
    State(state): State<AppState>,
    page: Q<PageQuery>,
) -> ApiResult<Json<List<Provider>>> {
    let Json(mut list) = resource::list::<Row>(admin, State(state.clone()), page).await?;
    list.data = list
        .data
        .into_iter()
        .map(|p| p.add_benches(&state))
        .collect();
    Ok(Json(list))
}

#[utoipa::path(post, path = "/admin/providers", tag = "providers", request_body = NewProvider, responses((status = 201, description = "Created", body = Provider), crate::openapi::Errors))]
pub async fn create(
    admin: Admin,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Provider>)> {
    let (status, Json(shown)) = resource::create::<Row>(admin, State(state.clone()), body).await?;
    Ok((status, Json(shown.add_benches(&state))))
}

#[utoipa::path(patch, path = "/admin/providers/{id}", tag = "providers", params(("id" = String, Path)), request_body = ProviderPatch, responses((status = 200, description = "As stored", body = Provider), crate::openapi::Errors))]
pub async fn patch(
    admin: Admin,
    State(state): State<AppState>,
    id: Path<String>,
    body: Bytes,
) -> ApiResult<Json<Provider>> {
    let Json(shown) = resource::patch::<Row>(admin, State(state.clone()), id, body).await?;
    Ok(Json(shown.add_benches(&state)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProvider {
    id: Option<Slug>,
    name: Option<Name>,
    #[serde(default = "default_kind")]
    kind: String,
    #[schema(format = "uri")]
    base_url: String,
    /// One credential (a pool of one).
    #[serde(default)]
    #[schema(write_only)]
    api_key: String,
    /// A key pool (instead of `api_key`): requests rotate over it.
    #[schema(write_only, max_items = 16)]
    api_keys: Option<Vec<String>>,
}

fn default_kind() -> String {
    "openai".to_string()
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderPatch {
    name: Option<Name>,
    kind: Option<String>,
    #[schema(format = "uri")]
    base_url: Option<String>,
    /// Replaces the pool with this one credential.
    #[schema(write_only)]
    api_key: Option<String>,
    /// Replaces the pool.
    #[schema(write_only)]
    api_keys: Option<Vec<String>>,
}

fn check_kind(kind: String) -> ApiResult<String> {
    if KINDS.contains(&kind.as_str()) {
        Ok(kind)
    } else {
        Err(ApiError::invalid(
            format!("`kind` must be one of {KINDS:?}"),
            Some("kind"),
        ))
    }
}

/// The pool a create or PATCH body gives: `api_keys`, or the one
/// `api_key` (`None`: neither was given).
fn pool_of(
    state: &AppState,
    api_key: Option<String>,
    api_keys: Option<Vec<String>>,
) -> ApiResult<Option<Vec<StoredCredential>>> {
    match (api_key, api_keys) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "give `api_key` or `api_keys`, not both",
            Some("api_keys"),
        )),
        (None, Some(keys)) => Ok(Some(key_pool::new_pool(state, &keys, "api_keys")?)),
        (Some(key), None) if key.is_empty() => Ok(Some(Vec::new())),
        (Some(key), None) => Ok(Some(key_pool::new_pool(state, &[key], "api_key")?)),
        (None, None) => Ok(None),
    }
}

fn base_url(state: &AppState, url: &str) -> ApiResult<String> {
    BaseUrl::parse(url, state.settings.allow_private_upstreams).map(BaseUrl::into_string)
}

impl Resource for Row {
    type Shown = Provider;
    type Patch = ProviderPatch;

    fn show(self) -> ApiResult<Provider> {
        let pool = self.pool()?;
        Ok(Provider {
            object: "provider",
            has_api_key: !pool.is_empty(),
            api_keys: key_pool::show(&pool),
            id: self.id,
            name: self.name,
            kind: self.kind,
            base_url: self.base_url,
            created_at: self.created_at_ms / 1000,
        })
    }

    async fn apply(&mut self, p: ProviderPatch, state: &AppState) -> ApiResult<()> {
        set(&mut self.name, p.name, |v| Ok(v.into_string()))?;
        set(&mut self.kind, p.kind, check_kind)?;
        set(&mut self.base_url, p.base_url, |v| base_url(state, &v))?;
        if let Some(pool) = pool_of(state, p.api_key, p.api_keys)? {
            self.set_pool(&pool)?;
        }
        Ok(())
    }

    async fn update(&self, db: &Db) -> ApiResult<()> {
        db::providers::update(db, self).await
    }
}

impl Creatable for Row {
    type New = NewProvider;

    async fn create(new: NewProvider, state: &AppState) -> ApiResult<Row> {
        let id = new.id.map_or_else(|| new_id("prov"), Slug::into_string);
        let api_key = (!new.api_key.is_empty()).then_some(new.api_key);
        let mut row = Row {
            name: new.name.map_or_else(|| id.clone(), Name::into_string),
            id,
            kind: check_kind(new.kind)?,
            base_url: base_url(state, &new.base_url)?,
            api_key_enc: String::new(),
            created_at_ms: now_ms(),
            credentials: "[]".to_string(),
            pool_replaced: false,
        };
        row.set_pool(&pool_of(state, api_key, new.api_keys)?.unwrap_or_default())?;
        Ok(row)
    }

    async fn insert(&self, db: &Db) -> ApiResult<String> {
        db::providers::insert(db, self).await?;
        Ok(self.id.clone())
    }
}

/// Refused while a model still deploys on it.
#[utoipa::path(delete, path = "/admin/providers/{id}", tag = "providers", params(("id" = String, Path)), responses((status = 204, description = "Deleted"), crate::openapi::Errors))]
pub async fn delete(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    load::<Row>(&state.db, &id).await?;
    let users = db::models::deployed_on(&state.db, &id).await?;
    if !users.is_empty() {
        return Err(ApiError::Conflict(format!(
            "Provider {id:?} still serves models {users:?}; change them first."
        )));
    }
    db::providers::delete(&state.db, &id).await?;
    state.publish().await;
    Ok(StatusCode::NO_CONTENT)
}
