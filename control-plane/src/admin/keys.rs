//! API keys. The secret is shown once, in the create and rotate answers; only
//! its SHA-256 is stored. `DELETE` revokes (the record stays for the ledger).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::load;
use crate::app::{Admin, AppState};
use crate::error::{parse_json, ApiError, ApiResult, Q};
use crate::util::{
    check_limit, check_slug, check_text, double_option, nanos_to_usd, new_id, now_ms, usd_to_nanos,
    List, PageQuery,
};

#[derive(Debug, sqlx::FromRow)]
struct Row {
    id: String,
    name: String,
    account_id: String,
    prefix: String,
    models: Option<String>,
    rpm: Option<i64>,
    tpm: Option<i64>,
    max_concurrent: Option<i64>,
    budget_nanos: Option<i64>,
    spent_nanos: i64,
    expires_at: Option<i64>,
    revoked_at_ms: Option<i64>,
    created_at_ms: i64,
}

const COLUMNS: &str =
    "id, name, account_id, prefix, models, rpm, tpm, max_concurrent, budget_nanos, \
                       spent_nanos, expires_at, revoked_at_ms, created_at_ms";

impl super::Table for Row {
    const TABLE: &'static str = "api_keys";
    const COLUMNS: &'static str = COLUMNS;
    const WHAT: &'static str = "key";
}

#[derive(Debug, Serialize)]
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
    spent_usd: f64,
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
        let models = r
            .models
            .as_deref()
            .map(serde_json::from_str::<Vec<String>>)
            .transpose()
            .map_err(|e| {
                ApiError::Internal(anyhow::anyhow!("key {} has a bad models column: {e}", r.id))
            })?;
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
            spent_usd: nanos_to_usd(r.spent_nanos),
            expires_at: r.expires_at,
            revoked: r.revoked_at_ms.is_some(),
            prefix: r.prefix,
            created_at: r.created_at_ms / 1000,
            key: None,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    #[serde(default)]
    name: String,
    account_id: String,
    models: Option<Vec<String>>,
    rpm: Option<u32>,
    tpm: Option<u32>,
    max_concurrent: Option<u32>,
    budget_usd: Option<f64>,
    expires_at: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyPatch {
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    models: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "double_option")]
    rpm: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double_option")]
    tpm: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double_option")]
    max_concurrent: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double_option")]
    budget_usd: Option<Option<f64>>,
    #[serde(default, deserialize_with = "double_option")]
    expires_at: Option<Option<i64>>,
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
async fn check_models(state: &AppState, models: &Option<Vec<String>>) -> ApiResult<Option<String>> {
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
        let found: Option<String> = sqlx::query_scalar("SELECT id FROM models WHERE id = $1")
            .bind(m)
            .fetch_optional(&state.db.pool)
            .await?;
        if found.is_none() {
            return Err(ApiError::invalid(
                format!("`models` names {m:?}, which is not in the catalog"),
                Some("models"),
            ));
        }
    }
    let mut sorted = models.clone();
    sorted.sort();
    sorted.dedup();
    Ok(Some(
        serde_json::to_string(&sorted).map_err(|e| ApiError::Internal(e.into()))?,
    ))
}

fn check_expiry(expires_at: Option<i64>) -> ApiResult<()> {
    match expires_at {
        Some(t) if !(0..=253_402_300_799).contains(&t) => Err(ApiError::invalid(
            "`expires_at` must be unix seconds",
            Some("expires_at"),
        )),
        _ => Ok(()),
    }
}

pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ApiKey>)> {
    let new: NewKey = parse_json(&body)?;
    check_text(&new.name, "name", 200)?;
    check_expiry(new.expires_at)?;
    if new.expires_at.is_some_and(|t| t <= now_ms() / 1000) {
        return Err(ApiError::invalid(
            "`expires_at` is in the past: the key would be born expired",
            Some("expires_at"),
        ));
    }
    let account: Option<String> = sqlx::query_scalar("SELECT id FROM accounts WHERE id = $1")
        .bind(&new.account_id)
        .fetch_optional(&state.db.pool)
        .await?;
    if account.is_none() {
        return Err(ApiError::invalid(
            format!("No account {:?}.", new.account_id),
            Some("account_id"),
        ));
    }
    let models = check_models(&state, &new.models).await?;
    let budget = new
        .budget_usd
        .map(|v| usd_to_nanos(v, "budget_usd"))
        .transpose()?;
    let secret = mint(&state.settings.key_prefix)?;
    let id = new_id("key");
    sqlx::query(
        "INSERT INTO api_keys (id, name, account_id, hash, prefix, models, rpm, tpm, max_concurrent, \
         budget_nanos, spent_nanos, expires_at, revoked_at_ms, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, NULL, $12)",
    )
    .bind(&id)
    .bind(&new.name)
    .bind(&new.account_id)
    .bind(tollgate_contract::key::hash(&secret))
    .bind(tollgate_contract::key::display_prefix(&secret))
    .bind(models)
    .bind(check_limit(new.rpm, "rpm")?)
    .bind(check_limit(new.tpm, "tpm")?)
    .bind(check_limit(new.max_concurrent, "max_concurrent")?)
    .bind(budget)
    .bind(new.expires_at)
    .bind(now_ms())
    .execute(&state.db.pool)
    .await?;
    state.config.publish(&state).await;
    let mut key = ApiKey::try_from(load::<Row>(&state, &id).await?)?;
    key.key = Some(secret);
    Ok((StatusCode::CREATED, Json(key)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyListQuery {
    account_id: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

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
    let rows = sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE id > $1 AND ($2 = '' OR account_id = $2) ORDER BY id LIMIT $3"
    ))
    .bind(page.after.unwrap_or_default())
    .bind(q.account_id.unwrap_or_default())
    .bind(limit + 1)
    .fetch_all(&state.db.pool)
    .await?;
    let keys = rows
        .into_iter()
        .map(ApiKey::try_from)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(List::page(keys, limit)))
}

pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKey>> {
    Ok(Json(load::<Row>(&state, &id).await?.try_into()?))
}

pub async fn patch(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<ApiKey>> {
    let p: KeyPatch = parse_json(&body)?;
    let mut row = load::<Row>(&state, &id).await?;
    if let Some(name) = p.name {
        check_text(&name, "name", 200)?;
        row.name = name;
    }
    if let Some(models) = p.models {
        row.models = check_models(&state, &models).await?;
    }
    if let Some(v) = p.rpm {
        row.rpm = check_limit(v, "rpm")?;
    }
    if let Some(v) = p.tpm {
        row.tpm = check_limit(v, "tpm")?;
    }
    if let Some(v) = p.max_concurrent {
        row.max_concurrent = check_limit(v, "max_concurrent")?;
    }
    if let Some(v) = p.budget_usd {
        row.budget_nanos = v.map(|v| usd_to_nanos(v, "budget_usd")).transpose()?;
    }
    if let Some(v) = p.expires_at {
        check_expiry(v)?;
        row.expires_at = v;
    }
    sqlx::query(
        "UPDATE api_keys SET name = $1, models = $2, rpm = $3, tpm = $4, max_concurrent = $5, \
         budget_nanos = $6, expires_at = $7 WHERE id = $8",
    )
    .bind(&row.name)
    .bind(&row.models)
    .bind(row.rpm)
    .bind(row.tpm)
    .bind(row.max_concurrent)
    .bind(row.budget_nanos)
    .bind(row.expires_at)
    .bind(&id)
    .execute(&state.db.pool)
    .await?;
    state.config.publish(&state).await;
    Ok(Json(load::<Row>(&state, &id).await?.try_into()?))
}

/// Revokes at once; revoking twice is not an error.
pub async fn revoke(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKey>> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at_ms = COALESCE(revoked_at_ms, $1) WHERE id = $2",
    )
    .bind(now_ms())
    .bind(&id)
    .execute(&state.db.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::NotFound(format!("No key {id:?}.")));
    }
    state.config.publish(&state).await;
    Ok(Json(load::<Row>(&state, &id).await?.try_into()?))
}

/// A new secret for the same key (same id, limits and spend); the old secret
/// stops working as soon as the filters have the new snapshot.
pub async fn rotate(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKey>> {
    let row = load::<Row>(&state, &id).await?;
    if row.revoked_at_ms.is_some() {
        return Err(ApiError::Conflict(format!(
            "Key {id:?} is revoked; create a new one."
        )));
    }
    let secret = mint(&state.settings.key_prefix)?;
    sqlx::query("UPDATE api_keys SET hash = $1, prefix = $2 WHERE id = $3")
        .bind(tollgate_contract::key::hash(&secret))
        .bind(tollgate_contract::key::display_prefix(&secret))
        .bind(&id)
        .execute(&state.db.pool)
        .await?;
    state.config.publish(&state).await;
    let mut key = ApiKey::try_from(load::<Row>(&state, &id).await?)?;
    key.key = Some(secret);
    Ok(Json(key))
}
