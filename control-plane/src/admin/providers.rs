//! Providers: where models are served. The credential is write-only: it is
//! sealed at rest and never returned (only `has_api_key`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::resource::{written, Resource};
use super::upstream_url::check_base_url;
use crate::auth::Admin;
use crate::clock::now_ms;
use crate::db::providers::{Row, KINDS};
use crate::db::{self, load, Db};
use crate::error::{parse_json, ApiError, ApiResult};
use crate::ids::new_id;
use crate::patch::set;
use crate::state::AppState;
use crate::validate::{check_slug, name};

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
pub struct ProviderPatch {
    name: Option<String>,
    kind: Option<String>,
    base_url: Option<String>,
    api_key: Option<String>,
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

/// The credential checked and sealed for storage.
fn seal_api_key(state: &AppState, key: &str) -> ApiResult<String> {
    // It becomes an HTTP header value: visible ASCII only.
    if key.len() > 4096 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "`api_key` must be at most 4096 visible ASCII characters",
            Some("api_key"),
        ));
    }
    Ok(state.sealer.seal(key)?)
}

fn base_url(state: &AppState, url: &str) -> ApiResult<String> {
    check_base_url(url, state.settings.allow_private_upstreams)
}

impl Resource for Row {
    type Shown = Provider;
    type Patch = ProviderPatch;

    fn show(self) -> ApiResult<Provider> {
        Ok(self.into())
    }

    async fn apply(&mut self, p: ProviderPatch, state: &AppState) -> ApiResult<()> {
        set(&mut self.name, p.name, |v| name(v, "name"))?;
        set(&mut self.kind, p.kind, check_kind)?;
        set(&mut self.base_url, p.base_url, |v| base_url(state, &v))?;
        set(&mut self.api_key_enc, p.api_key, |v| {
            seal_api_key(state, &v)
        })
    }

    async fn update(&self, db: &Db) -> ApiResult<()> {
        db::providers::update(db, self).await
    }
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
    let row = Row {
        name: name(new.name.unwrap_or_else(|| id.clone()), "name")?,
        id,
        kind: check_kind(new.kind)?,
        base_url: base_url(&state, &new.base_url)?,
        api_key_enc: seal_api_key(&state, &new.api_key)?,
        created_at_ms: now_ms(),
    };
    db::providers::insert(&state.db, &row).await?;
    Ok((StatusCode::CREATED, written::<Row>(&state, &row.id).await?))
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
