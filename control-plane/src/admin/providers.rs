//! Providers: where models are served. The credential is write-only: it is
//! sealed at rest and never returned (only `has_api_key`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::upstream_url::check_base_url;
use crate::auth::Admin;
use crate::db::providers::{Row, KINDS};
use crate::db::{self, load, page as page_of};
use crate::error::{parse_json, ApiError, ApiResult, Q};
use crate::state::AppState;
use crate::util::{check_slug, check_text, new_id, now_ms, List, PageQuery};

#[derive(Debug, Serialize)]
pub struct Provider {
    id: String,
    object: &'static str,
    name: String,
    kind: String,
    base_url: String,
    has_api_key: bool,
    created_at: i64,
}

impl From<Row> for Provider {
    fn from(r: Row) -> Provider {
        Provider {
            id: r.id,
            object: "provider",
            name: r.name,
            kind: r.kind,
            base_url: r.base_url,
            has_api_key: !r.api_key_enc.is_empty(),
            created_at: r.created_at_ms / 1000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProvider {
    id: Option<String>,
    name: Option<String>,
    #[serde(default = "default_kind")]
    kind: String,
    base_url: String,
    #[serde(default)]
    api_key: String,
}

fn default_kind() -> String {
    "openai".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderPatch {
    name: Option<String>,
    kind: Option<String>,
    base_url: Option<String>,
    api_key: Option<String>,
}

fn check_kind(kind: &str) -> ApiResult<()> {
    if KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            format!("`kind` must be one of {KINDS:?}"),
            Some("kind"),
        ))
    }
}

fn check_api_key(key: &str) -> ApiResult<()> {
    // It becomes an HTTP header value: visible ASCII only.
    if key.len() > 4096 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "`api_key` must be at most 4096 visible ASCII characters",
            Some("api_key"),
        ));
    }
    Ok(())
}

pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Provider>)> {
    let new: NewProvider = parse_json(&body)?;
    let id = match new.id {
        Some(id) => {
            check_slug(&id, "id")?;
            id
        }
        None => new_id("prov"),
    };
    let name = new.name.unwrap_or_else(|| id.clone());
    check_text(&name, "name", 200)?;
    check_kind(&new.kind)?;
    let base_url = check_base_url(&new.base_url, state.settings.allow_private_upstreams)?;
    check_api_key(&new.api_key)?;
    let sealed = state.sealer.seal(&new.api_key)?;
    let row = Row {
        id,
        name,
        kind: new.kind,
        base_url,
        api_key_enc: sealed,
        created_at_ms: now_ms(),
    };
    db::providers::insert(&state.db, &row).await?;
    state.publish().await;
    Ok((
        StatusCode::CREATED,
        Json(load::<Row>(&state.db, &row.id).await?.into()),
    ))
}

pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    Q(page): Q<PageQuery>,
) -> ApiResult<Json<List<Provider>>> {
    let (rows, limit) = page_of::<Row>(&state.db, page).await?;
    Ok(Json(List::page(
        rows.into_iter().map(Provider::from).collect(),
        limit,
    )))
}

pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Provider>> {
    Ok(Json(load::<Row>(&state.db, &id).await?.into()))
}

pub async fn patch(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Provider>> {
    let p: ProviderPatch = parse_json(&body)?;
    let mut row = load::<Row>(&state.db, &id).await?;
    if let Some(name) = p.name {
        check_text(&name, "name", 200)?;
        row.name = name;
    }
    if let Some(kind) = p.kind {
        check_kind(&kind)?;
        row.kind = kind;
    }
    if let Some(url) = p.base_url {
        row.base_url = check_base_url(&url, state.settings.allow_private_upstreams)?;
    }
    if let Some(key) = p.api_key {
        check_api_key(&key)?;
        row.api_key_enc = state.sealer.seal(&key)?;
    }
    db::providers::update(&state.db, &row).await?;
    state.publish().await;
    Ok(Json(load::<Row>(&state.db, &id).await?.into()))
}

/// Refused while a model still deploys on it.
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
