//! Changes to a provider's key pool, one credential at a time (issue 11,
//! rule 5; shown as `key_pool.rs` says). `POST /admin/providers/{id}/api_keys` adds one,
//! `PATCH .../api_keys/{key}` replaces its secret or re-enables it,
//! `DELETE .../api_keys/{key}` removes it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::key_pool::{new_credential, MAX_KEYS};
use super::providers::Provider;
use crate::auth::Admin;
use crate::db::providers::{Row, StoredCredential};
use crate::db::{self, load};
use crate::error::{parse_json, ApiError, ApiResult};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    api_key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    /// A new secret for this credential (its state starts afresh).
    api_key: Option<String>,
    /// `true` re-enables a disabled credential.
    enabled: Option<bool>,
}

async fn write(
    state: &AppState,
    mut row: Row,
    pool: &[StoredCredential],
) -> ApiResult<Json<Provider>> {
    row.set_pool(pool)?;
    db::providers::update(&state.db, &row).await?;
    super::providers::written(state, &row.id).await
}

/// `POST /admin/providers/{id}/api_keys`: one more credential.
pub async fn add(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Provider>)> {
    let new: NewKey = parse_json(&body)?;
    let row = load::<Row>(&state.db, &id).await?;
    let mut pool = row.pool()?;
    if pool.len() >= MAX_KEYS {
        return Err(ApiError::Conflict(format!(
            "Provider {id:?} holds {MAX_KEYS} credentials already; remove one first."
        )));
    }
    let credential = new_credential(&state, &new.api_key, "api_key")?;
    for c in &pool {
        if state.sealer.open(&c.secret_enc).ok().as_deref() == Some(new.api_key.as_str()) {
            return Err(ApiError::Conflict(format!(
                "Provider {id:?} holds this credential already (as {}).",
                c.id
            )));
        }
    }
    pool.push(credential);
    Ok((StatusCode::CREATED, write(&state, row, &pool).await?))
}

/// The credential `key` of the pool, or a 404 naming it.
fn find<'a>(
    pool: &'a mut [StoredCredential],
    id: &str,
    key: &str,
) -> ApiResult<&'a mut StoredCredential> {
    pool.iter_mut()
        .find(|c| c.id == key)
        .ok_or_else(|| ApiError::NotFound(format!("Provider {id:?} has no credential {key:?}.")))
}

/// `PATCH /admin/providers/{id}/api_keys/{key}`: a new secret, or
/// `{"enabled": true}` after a disable. Either raises its generation, so
/// that the gateways' marks on it no longer hold.
pub async fn patch(
    _: Admin,
    State(state): State<AppState>,
    Path((id, key)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Provider>> {
    let change: KeyPatch = parse_json(&body)?;
    let row = load::<Row>(&state.db, &id).await?;
    let mut pool = row.pool()?;
    let stored = find(&mut pool, &id, &key)?;
    match (change.api_key, change.enabled) {
        (None, None) => {
            return Err(ApiError::invalid(
                "give `api_key` (a new secret) or `enabled: true`",
                None,
            ))
        }
        (_, Some(false)) => {
            return Err(ApiError::invalid(
                "`enabled` may only be true (DELETE removes a credential)",
                Some("enabled"),
            ))
        }
        (secret, _) => {
            if let Some(secret) = secret {
                let fresh = new_credential(&state, &secret, "api_key")?;
                stored.secret_enc = fresh.secret_enc;
                stored.hint = fresh.hint;
            }
            stored.disabled_at_ms = None;
            stored.disabled_reason = None;
            stored.generation = stored.generation.wrapping_add(1);
        }
    }
    write(&state, row, &pool).await
}

/// `DELETE /admin/providers/{id}/api_keys/{key}`.
pub async fn remove(
    _: Admin,
    State(state): State<AppState>,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Json<Provider>> {
    let row = load::<Row>(&state.db, &id).await?;
    let mut pool = row.pool()?;
    find(&mut pool, &id, &key)?;
    pool.retain(|c| c.id != key);
    write(&state, row, &pool).await
}
