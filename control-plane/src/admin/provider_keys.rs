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
use crate::db;
use crate::db::providers::{PoolChange, StoredCredential};
use crate::error::{parse_json, ApiError, ApiResult};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ProviderApiKey)]
pub struct NewKey {
    #[schema(write_only)]
    api_key: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ProviderApiKeyPatch)]
pub struct KeyPatch {
    /// A new secret for this credential (its state starts afresh).
    #[schema(write_only)]
    api_key: Option<String>,
    /// `true` re-enables a disabled credential.
    enabled: Option<bool>,
}

/// One change of the pool (`db::providers::change_pool`), then the
/// provider as stored.
async fn change_pool(
    state: &AppState,
    id: &str,
    change: impl Fn(&mut Vec<StoredCredential>) -> ApiResult<()>,
) -> ApiResult<Json<Provider>> {
    match db::providers::change_pool(&state.db, id, |pool| change(pool).map(|()| true)).await? {
        PoolChange::KeptChanging => Err(ApiError::Conflict(format!(
            "Provider {id:?}'s key pool kept changing while this change was written; try again."
        ))),
        PoolChange::Written | PoolChange::Unchanged => super::providers::written(state, id).await,
    }
}

/// `POST /admin/providers/{id}/api_keys`: one more credential.
#[utoipa::path(post, path = "/admin/providers/{id}/api_keys", tag = "providers", params(("id" = String, Path)), request_body = NewKey, responses((status = 201, description = "The provider, with the credential added", body = Provider), crate::openapi::Errors))]
pub async fn add(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Provider>)> {
    let new: NewKey = parse_json(&body)?;
    let credential = new_credential(&state, &new.api_key, "api_key")?;
    let shown = change_pool(&state, &id, |pool| {
        if pool.len() >= MAX_KEYS {
            return Err(ApiError::Conflict(format!(
                "Provider {id:?} holds {MAX_KEYS} credentials already; remove one first."
            )));
        }
        for c in pool.iter() {
            if state.sealer.open(&c.secret_enc).ok().as_deref() == Some(new.api_key.as_str()) {
                return Err(ApiError::Conflict(format!(
                    "Provider {id:?} holds this credential already (as {}).",
                    c.id
                )));
            }
        }
        pool.push(credential.clone());
        Ok(())
    })
    .await?;
    Ok((StatusCode::CREATED, shown))
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
#[utoipa::path(patch, path = "/admin/providers/{id}/api_keys/{key}", tag = "providers", params(("id" = String, Path), ("key" = String, Path, description = "the credential's id")), request_body = KeyPatch, responses((status = 200, description = "The provider as stored", body = Provider), crate::openapi::Errors))]
pub async fn patch(
    _: Admin,
    State(state): State<AppState>,
    Path((id, key)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Provider>> {
    let change: KeyPatch = parse_json(&body)?;
    let fresh = match (change.api_key, change.enabled) {
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
        (secret, _) => secret
            .map(|s| new_credential(&state, &s, "api_key"))
            .transpose()?,
    };
    change_pool(&state, &id, |pool| {
        let stored = find(pool, &id, &key)?;
        if let Some(fresh) = &fresh {
            stored.secret_enc = fresh.secret_enc.clone();
            stored.hint = fresh.hint.clone();
        }
        stored.disabled_at_ms = None;
        stored.disabled_reason = None;
        stored.generation = stored.generation.wrapping_add(1);
        Ok(())
    })
    .await
}

/// `DELETE /admin/providers/{id}/api_keys/{key}`.
#[utoipa::path(delete, path = "/admin/providers/{id}/api_keys/{key}", tag = "providers", params(("id" = String, Path), ("key" = String, Path, description = "the credential's id")), responses((status = 200, description = "The provider as stored", body = Provider), crate::openapi::Errors))]
pub async fn remove(
    _: Admin,
    State(state): State<AppState>,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Json<Provider>> {
    change_pool(&state, &id, |pool| {
        find(pool, &id, &key)?;
        pool.retain(|c| c.id != key);
        Ok(())
    })
    .await
}
