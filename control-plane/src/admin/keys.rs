//! API keys. The secret is shown once, in the create and rotate answers; only
//! its SHA-256 is stored. `DELETE` revokes (the record stays for the ledger).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::resource::{written, Resource};
use crate::auth::Admin;
use crate::clock::now_ms;
use crate::db::keys::Row;
use crate::db::{self, load, Db};
use crate::error::{parse_json, ApiError, ApiResult, Q};
use crate::ids::{new_id, Account, Id};
use crate::money::{nanos_to_usd, Usd};
use crate::pages::{List, PageQuery};
use crate::patch::{double_option, set};
use crate::period::Period;
use crate::state::AppState;
use crate::validate::{check_slug, patch_limits, stored, Limit, Name, UnixSeconds};

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKey {
    id: String,
    object: &'static str,
    name: String,
    account_id: String,
    models: Option<Vec<String>>,
    rpm: Option<i64>,
    tpm: Option<i64>,
    max_concurrent: Option<i64>,
    budget_usd: Option<f64>,
    /// Spent in the current period (since the last reset).
    spent_usd: f64,
    /// Spent over the key's whole life.
    lifetime_spent_usd: f64,
    budget_period: Option<String>,
    /// Unix seconds of the next reset, for a key with a period.
    budget_reset_at: Option<i64>,
    expires_at: Option<i64>,
    revoked: bool,
    prefix: String,
    created_at: i64,
    /// The secret: only in the create and rotate answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

impl TryFrom<Row> for ApiKey {
    type Error = ApiError;

    fn try_from(r: Row) -> ApiResult<ApiKey> {
        let models = r.models()?;
        Ok(ApiKey {
            id: r.id,
            object: "api_key",
            name: r.name,
            account_id: r.account_id,
            models,
            rpm: r.rpm,
            tpm: r.tpm,
            max_concurrent: r.max_concurrent,
            budget_usd: r.budget_nanos.map(nanos_to_usd),
            spent_usd: nanos_to_usd(r.spent_nanos.saturating_sub(r.spent_base_nanos).max(0)),
            lifetime_spent_usd: nanos_to_usd(r.spent_nanos),
            budget_reset_at: match (r.budget_period.as_deref(), r.period_start_ms) {
                (Some(p), Some(start)) => {
                    Some(Period::parse(p, "budget_period")?.next(start) / 1000)
                }
                _ => None,
            },
            budget_period: r.budget_period,
            expires_at: r.expires_at,
            revoked: r.revoked_at_ms.is_some(),
            prefix: r.prefix,
            created_at: r.created_at_ms / 1000,
            key: None,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    #[serde(default)]
    name: Name,
    #[schema(value_type = String)]
    account_id: Id<Account>,
    models: Option<Vec<String>>,
    rpm: Option<Limit>,
    tpm: Option<Limit>,
    max_concurrent: Option<Limit>,
    budget_usd: Option<Usd>,
    budget_period: Option<String>,
    expires_at: Option<UnixSeconds>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    name: Option<Name>,
    #[serde(default, deserialize_with = "double_option")]
    models: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "double_option")]
    rpm: Option<Option<Limit>>,
    #[serde(default, deserialize_with = "double_option")]
    tpm: Option<Option<Limit>>,
    #[serde(default, deserialize_with = "double_option")]
    max_concurrent: Option<Option<Limit>>,
    #[serde(default, deserialize_with = "double_option")]
    budget_usd: Option<Option<Usd>>,
    #[serde(default, deserialize_with = "double_option")]
    budget_period: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    expires_at: Option<Option<UnixSeconds>>,
}

fn mint(prefix: &str) -> ApiResult<String> {
    // 64 bytes are far more than the 32 draws rejection sampling needs
    // (each byte is kept with probability 248/256).
    let mut random = [0u8; 64];
    rand::rngs::OsRng.fill_bytes(&mut random);
    tollgate_contract::key::format_key(prefix, &random)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("could not format a key")))
}

/// Every listed model must exist: a typo would otherwise lock a key out.
pub(super) async fn check_models(
    state: &AppState,
    models: &Option<Vec<String>>,
) -> ApiResult<Option<String>> {
    let Some(models) = models else {
        return Ok(None);
    };
    if models.len() > 1000 {
        return Err(ApiError::invalid(
            "`models` may list at most 1000 models",
            Some("models"),
        ));
    }
    for m in models {
        check_slug(m, "models")?;
        if !db::exists::<db::models::Row>(&state.db, m).await? {
            return Err(ApiError::invalid(
                format!("`models` names {m:?}, which is not in the catalog"),
                Some("models"),
            ));
        }
    }
    let mut sorted = models.clone();
    sorted.sort();
    sorted.dedup();
    Ok(Some(db::keys::encode_models(&sorted)?))
}

/// A period (400 naming `budget_period` if not one) and the start of the
/// one `now_ms` is in.
fn check_period(period: Option<String>, now_ms: i64) -> ApiResult<(Option<String>, Option<i64>)> {
    match period {
        None => Ok((None, None)),
        Some(p) => {
            let start = Period::parse(&p, "budget_period")?.start(now_ms);
            Ok((Some(p), Some(start)))
        }
    }
}

#[utoipa::path(post, path = "/admin/keys", tag = "keys", request_body = NewKey, responses((status = 201, description = "Created, with its secret (shown once)", body = ApiKey), crate::openapi::Errors))]
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ApiKey>)> {
    let new: NewKey = parse_json(&body)?;
    let account_id = new.account_id.into_string();
    let expires_at = new.expires_at.map(UnixSeconds::get);
    if expires_at.is_some_and(|t| t <= now_ms() / 1000) {
        return Err(ApiError::invalid(
            "`expires_at` is in the past: the key would be born expired",
            Some("expires_at"),
        ));
    }
    if !db::exists::<db::accounts::Row>(&state.db, &account_id).await? {
        return Err(ApiError::invalid(
            format!("No account {account_id:?}."),
            Some("account_id"),
        ));
    }
    let models = check_models(&state, &new.models).await?;
    let (budget_period, period_start_ms) = check_period(new.budget_period, state.clock.now_ms())?;
    let secret = mint(&state.settings.key_prefix)?;
    let row = Row {
        id: new_id("key"),
        name: new.name.into_string(),
        account_id,
        prefix: tollgate_contract::key::display_prefix(&secret),
        models_json: models,
        rpm: stored(new.rpm),
        tpm: stored(new.tpm),
        max_concurrent: stored(new.max_concurrent),
        budget_nanos: new.budget_usd.map(Usd::nanos),
        spent_nanos: 0,
        budget_period,
        spent_base_nanos: 0,
        period_start_ms,
        expires_at,
        revoked_at_ms: None,
        created_at_ms: now_ms(),
    };
    db::keys::insert(&state.db, &row, &tollgate_contract::key::hash(&secret)).await?;
    Ok((
        StatusCode::CREATED,
        with_secret(&state, &row.id, secret).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KeyListQuery {
    account_id: Option<String>,
    /// Keys whose name, id, prefix or account id contains this, in any case.
    search: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

#[utoipa::path(get, path = "/admin/keys", tag = "keys", params(KeyListQuery), responses((status = 200, description = "A page, in id order", body = [ApiKey]), crate::openapi::Errors))]
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    Q(q): Q<KeyListQuery>,
) -> ApiResult<Json<List<ApiKey>>> {
    let page = PageQuery {
        limit: q.limit,
        after: q.after,
    };
    let limit = page.limit()?;
    if q.search.as_ref().is_some_and(|s| s.chars().count() > 200) {
        return Err(ApiError::invalid(
            "`search` must be at most 200 characters",
            Some("search"),
        ));
    }
    let rows = db::keys::list(
        &state.db,
        page.after.as_deref().unwrap_or_default(),
        q.account_id.as_deref().unwrap_or_default(),
        q.search.as_deref().unwrap_or_default().trim(),
        limit + 1,
    )
    .await?;
    let keys = rows
        .into_iter()
        .map(ApiKey::try_from)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(List::page(keys, limit)))
}

impl Resource for Row {
    type Shown = ApiKey;
    type Patch = KeyPatch;

    fn show(self) -> ApiResult<ApiKey> {
        self.try_into()
    }

    async fn apply(&mut self, p: KeyPatch, state: &AppState) -> ApiResult<()> {
        set(&mut self.name, p.name, |v| Ok(v.into_string()))?;
        if let Some(models) = p.models {
            self.models_json = check_models(state, &models).await?;
        }
        let limits = [&mut self.rpm, &mut self.tpm, &mut self.max_concurrent];
        patch_limits(limits, [p.rpm, p.tpm, p.max_concurrent]);
        set(&mut self.budget_nanos, p.budget_usd, |v| {
            Ok(v.map(Usd::nanos))
        })?;
        // A new period starts counting at the start of the current one; the
        // spend so far is not reset (POST .../reset-spend does that).
        if let Some(period) = p.budget_period {
            if period != self.budget_period {
                (self.budget_period, self.period_start_ms) =
                    check_period(period, state.clock.now_ms())?;
            }
        }
        set(&mut self.expires_at, p.expires_at, |v| {
            Ok(v.map(UnixSeconds::get))
        })
    }

    async fn update(&self, db: &Db) -> ApiResult<()> {
        db::keys::update(db, self).await
    }
}

super::resource::shared_handlers!(one: Row, "keys", "/admin/keys/{id}", KeyPatch, ApiKey);

/// Revokes at once; revoking twice is not an error.
#[utoipa::path(delete, path = "/admin/keys/{id}", tag = "keys", params(("id" = String, Path)), responses((status = 200, description = "Revoked; the record stays", body = ApiKey), crate::openapi::Errors))]
pub async fn revoke(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKey>> {
    if !db::keys::revoke(&state.db, &id, now_ms()).await? {
        return Err(ApiError::NotFound(format!("No key {id:?}.")));
    }
    crate::ui::session::close_key(&state.db, &id).await?;
    written::<Row>(&state, &id).await
}

/// `POST /admin/keys/{id}/reset-spend`: the key's spend starts again from 0
/// now (its lifetime spend stays); the filters get it with the snapshot.
#[utoipa::path(post, path = "/admin/keys/{id}/reset-spend", tag = "keys", params(("id" = String, Path)), responses((status = 200, description = "As stored", body = ApiKey), crate::openapi::Errors))]
pub async fn reset_spend(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKey>> {
    if !db::keys::reset_spend(&state.db, &id).await? {
        return Err(ApiError::NotFound(format!("No key {id:?}.")));
    }
    written::<Row>(&state, &id).await
}

/// A new secret for the same key (same id, limits and spend); the old secret
/// stops working as soon as the filters have the new snapshot.
#[utoipa::path(post, path = "/admin/keys/{id}/rotate", tag = "keys", params(("id" = String, Path)), responses((status = 200, description = "With its new secret (shown once)", body = ApiKey), crate::openapi::Errors))]
pub async fn rotate(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKey>> {
    let row = load::<Row>(&state.db, &id).await?;
    if row.revoked_at_ms.is_some() {
        return Err(ApiError::Conflict(format!(
            "Key {id:?} is revoked; create a new one."
        )));
    }
    let secret = mint(&state.settings.key_prefix)?;
    db::keys::set_secret(
        &state.db,
        &id,
        &tollgate_contract::key::hash(&secret),
        &tollgate_contract::key::display_prefix(&secret),
    )
    .await?;
    crate::ui::session::close_key(&state.db, &id).await?;
    with_secret(&state, &id, secret).await
}

/// The create and rotate answer: the key as stored, with its secret (the
/// only time it is shown).
async fn with_secret(state: &AppState, id: &str, secret: String) -> ApiResult<Json<ApiKey>> {
    let Json(mut key) = written::<Row>(state, id).await?;
    key.key = Some(secret);
    Ok(Json(key))
}
