//! A provider's key pool as the admin API shows and takes it (issue 11,
//! rule 5): the credentials are write-only; each is shown by id, a hint
//! (its last 4 characters) and its state, `active`, `benched` (until when,
//! as the gateways report it) or `disabled` (why and when, until an admin
//! changes it).

use serde::Serialize;

use crate::clock::now_ms;
use crate::db::providers::{hint, StoredCredential};
use crate::error::{ApiError, ApiResult};
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
