//! What a key holder reads about themselves: `GET /v1/me` (balance, spend,
//! limits and what is left of them now, the models the key may use), and the
//! legacy OpenAI billing routes chat front-ends read a balance from
//! (`/v1/dashboard/billing/subscription` and `/usage`, shaped as one-api and
//! new-api answer them).

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::clock::now_ms;
use crate::db::keys::{Allowed, Row as KeyRow};
use crate::db::{self, load};
use crate::error::ApiResult;
use crate::money::nanos_to_usd;
use crate::state::AppState;

/// What one-api answers as the hard limit of an unlimited account.
const UNLIMITED_USD: f64 = 100_000_000.0;
/// The window of the per-minute limits.
const WINDOW_MS: i64 = 60_000;

/// `{"limit", "used", "remaining"}`; `null` for no limit.
fn left(limit: Option<i64>, used: i64) -> Value {
    match limit {
        None => Value::Null,
        Some(l) => json!({"limit": l, "used": used, "remaining": (l - used).max(0)}),
    }
}

async fn models_of(state: &AppState, key_id: &str) -> ApiResult<Vec<String>> {
    let allowed = db::keys::allowed_models(&state.db, key_id).await?;
    let all = db::models::all(&state.db).await?;
    Ok(all
        .into_iter()
        .map(|m| m.id)
        .filter(|id| match &allowed {
            Allowed::All => true,
            Allowed::Only(list) => list.contains(id),
            Allowed::Gone => false,
        })
        .collect())
}

pub async fn get(caller: Caller, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let key = load::<KeyRow>(&state.db, &caller.key_id).await?;
    let account = load::<db::accounts::Row>(&state.db, &caller.account_id).await?;
    let since = now_ms() - WINDOW_MS;
    let by_key = db::usage::recent_of_key(&state.db, &key.id, since).await?;
    let by_account = db::usage::recent_of_account(&state.db, &account.id, since).await?;
    let budget_left = key
        .budget_nanos
        .map(|b| nanos_to_usd((b - key.spent_nanos).max(0)));
    Ok(Json(json!({
        "object": "me",
        "key": {
            "id": key.id,
            "name": key.name,
            "prefix": key.prefix,
            "models": key.models()?,
            "rpm": key.rpm,
            "tpm": key.tpm,
            "max_concurrent": key.max_concurrent,
            "budget_usd": key.budget_nanos.map(nanos_to_usd),
            "spent_usd": nanos_to_usd(key.spent_nanos),
            "budget_remaining_usd": budget_left,
            "expires_at": key.expires_at,
        },
        "account": {
            "id": account.id,
            "name": account.name,
            "balance_usd": account.balance_nanos.map(nanos_to_usd),
            "spent_usd": nanos_to_usd(account.spent_nanos),
            "rpm": account.rpm,
            "tpm": account.tpm,
            "max_concurrent": account.max_concurrent,
        },
        // From the usage recorded in the last minute (it reaches the control
        // plane within about a second); the gateway enforces the limits.
        "limits_now": {
            "window_s": WINDOW_MS / 1000,
            "key": {"rpm": left(key.rpm, by_key.requests), "tpm": left(key.tpm, by_key.tokens)},
            "account": {
                "rpm": left(account.rpm, by_account.requests),
                "tpm": left(account.tpm, by_account.tokens),
            },
        },
        "models": models_of(&state, &key.id).await?,
    })))
}

/// The binding limit and what was spent against it, in USD: the key's
/// budget when it binds before the account's money, else the account's
/// (balance + spent), else unlimited. `hard_limit - usage` is what is left.
async fn limit_and_used(state: &AppState, caller: &Caller) -> ApiResult<(f64, f64, Option<i64>)> {
    let key = load::<KeyRow>(&state.db, &caller.key_id).await?;
    let account = load::<db::accounts::Row>(&state.db, &caller.account_id).await?;
    let account_total = account
        .balance_nanos
        .map(|b| b.saturating_add(account.spent_nanos));
    let key_left = key.budget_nanos.map(|b| b - key.spent_nanos);
    let key_binds = match (key_left, account.balance_nanos) {
        (Some(_), None) => true,
        (Some(k), Some(a)) => k < a,
        (None, _) => false,
    };
    let (limit, used) = match (key_binds, key.budget_nanos, account_total) {
        (true, Some(budget), _) => (nanos_to_usd(budget), nanos_to_usd(key.spent_nanos)),
        (_, _, Some(total)) => (nanos_to_usd(total), nanos_to_usd(account.spent_nanos)),
        _ => (UNLIMITED_USD, nanos_to_usd(account.spent_nanos)),
    };
    Ok((limit, used, key.expires_at))
}

pub async fn subscription(caller: Caller, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let (limit, _, expires_at) = limit_and_used(&state, &caller).await?;
    Ok(Json(json!({
        "object": "billing_subscription",
        "has_payment_method": true,
        "soft_limit_usd": limit,
        "hard_limit_usd": limit,
        "system_hard_limit_usd": limit,
        "access_until": expires_at.unwrap_or(0),
    })))
}

/// `total_usage` in cents, all time (the `start_date`/`end_date` that
/// front-ends send are accepted and not applied, as one-api does, so that
/// `hard_limit_usd - total_usage / 100` is the balance left).
pub async fn usage(caller: Caller, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let (_, used, _) = limit_and_used(&state, &caller).await?;
    Ok(Json(json!({
        "object": "list",
        "total_usage": (used * 100.0 * 1e6).round() / 1e6,
    })))
}
