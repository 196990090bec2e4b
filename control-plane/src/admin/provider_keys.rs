//! A provider's key pool in the admin API (issue 11, rule 5): its
//! credentials are write-only; each is shown by id, a hint (its last 4
//! characters) and its state, `active`, `benched` (until when, as the
//! gateways report it) or `disabled` (why and when, until an admin
//! changes it). `POST /admin/providers/{id}/api_keys` adds one,
//! `PATCH .../api_keys/{key}` replaces its secret or re-enables it,
//! `DELETE .../api_keys/{key}` removes it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::providers::Provider;
use crate::auth::Admin;
use crate::clock::now_ms;
use crate::db::providers::{hint, Row, StoredCredential};
use crate::db::{self, load};
use crate::error::{parse_json, ApiError, ApiResult};
use crate::ids::new_id;
use crate::state::AppState;

/// The most credentials one provider holds.
pub const MAX_KEYS: usize = 16;

#[derive(Debug, Serialize)]
pub struct KeyShown {
    id: String,
    object: &'static str,
    hint: String,
    /// `active`, `benched` or `disabled`.
    state: &'static str,
    /// Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    benched_until: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_at: Option<i64>,
    created_at: i64,
    #[serde(skip)]
    generation: u32,
}

/// The pool as shown, without benches (`with_benches` adds them).
pub fn show(pool: &[StoredCredential]) -> Vec<KeyShown> {
    pool.iter()
        .map(|c| KeyShown {
            id: c.id.clone(),
            object: "provider.api_key",
            hint: c.hint.clone(),
            state: if c.disabled_at_ms.is_some() {
                "disabled"
            } else {
                "active"
            },
            benched_until: None,
            disabled_reason: c.disabled_reason.clone(),
            disabled_at: c.disabled_at_ms.map(|ms| ms / 1000),
            created_at: c.created_at_ms / 1000,
            generation: c.generation,
        })
        .collect()
}

/// Marks the active credentials a gateway reports benched.
pub fn with_benches(state: &AppState, provider: &str, shown: &mut [KeyShown]) {
    let now = now_ms();
    for key in shown.iter_mut().filter(|k| k.state == "active") {
        if let Some(until) =
            state
                .credential_health
                .benched_until(provider, &key.id, key.generation, now)
        {
            key.state = "benched";
            key.benched_until = Some(until / 1000);
        }
    }
}

/// A new credential: checked, sealed, with its hint.
pub fn new_credential(state: &AppState, secret: &str, param: &str) -> ApiResult<StoredCredential> {
    // It becomes an HTTP header value: visible ASCII only.
    if secret.is_empty() || secret.len() > 4096 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            format!("`{param}` must be 1 to 4096 visible ASCII characters"),
            Some(param),
        ));
    }
    Ok(StoredCredential {
        id: new_id("cred"),
        secret_enc: state.sealer.seal(secret)?,
        hint: hint(secret),
        generation: 0,
        created_at_ms: now_ms(),
        disabled_at_ms: None,
        disabled_reason: None,
    })
}

/// A whole pool from `api_keys` (or the one `api_key`): at most
/// [`MAX_KEYS`], no secret twice.
pub fn new_pool(
    state: &AppState,
    secrets: &[String],
    param: &str,
) -> ApiResult<Vec<StoredCredential>> {
    if secrets.len() > MAX_KEYS {
        return Err(ApiError::invalid(
            format!("`{param}` holds at most {MAX_KEYS} credentials"),
            Some(param),
        ));
    }
    for (i, s) in secrets.iter().enumerate() {
        if secrets[..i].contains(s) {
            return Err(ApiError::invalid(
                format!("`{param}` lists one credential twice"),
                Some(param),
            ));
        }
    }
    secrets
        .iter()
        .map(|s| new_credential(state, s, param))
        .collect()
}

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
