//! What a key holder reads about themselves: `GET /v1/me` (balance, spend,
//! limits and what is left of them now, the models the key may use), and the
//! legacy OpenAI billing routes chat front-ends read a balance from
//! (`/v1/dashboard/billing/subscription` and `/usage`, shaped as one-api and
//! new-api answer them).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use time::macros::format_description;
use time::Date;

use crate::admin::summarise;
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::db::keys::{Allowed, Row as KeyRow};
use crate::db::usage_report::{Filter, GroupBy};
use crate::db::{self, load};
use crate::error::{ApiError, ApiResult, Q};
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
/// (balance + spent), else unlimited. `hard_limit - used` is what is left.
struct Binding {
    limit: f64,
    used: f64,
    /// Whether the key's budget is the limit (its spend is what counts),
    /// else the account's.
    key_binds: bool,
    expires_at: Option<i64>,
}

async fn binding(state: &AppState, caller: &Caller) -> ApiResult<Binding> {
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
    Ok(Binding {
        limit,
        used,
        key_binds,
        expires_at: key.expires_at,
    })
}

pub async fn subscription(caller: Caller, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let b = binding(&state, &caller).await?;
    Ok(Json(json!({
        "object": "billing_subscription",
        "has_payment_method": true,
        "soft_limit_usd": b.limit,
        "hard_limit_usd": b.limit,
        "system_hard_limit_usd": b.limit,
        "access_until": b.expires_at.unwrap_or(0),
    })))
}

/// `start_date` and `end_date`: `YYYY-MM-DD`, UTC, the end exclusive.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dates {
    start_date: Option<String>,
    end_date: Option<String>,
}

/// A `YYYY-MM-DD` date as the unix milliseconds of its UTC midnight.
fn day_ms(value: Option<&str>, name: &str) -> ApiResult<Option<i64>> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let date = Date::parse(value, format_description!("[year]-[month]-[day]")).map_err(|_| {
        ApiError::invalid(
            format!("`{name}` must be a date as YYYY-MM-DD, not {value:?}"),
            Some(name),
        )
    })?;
    Ok(Some(date.midnight().assume_utc().unix_timestamp() * 1000))
}

/// `total_usage` in cents. Without dates, all time from the spend counters,
/// so that `hard_limit_usd - total_usage / 100` is the balance left; with
/// them, the cost of the records in `[start_date, end_date)` (either end
/// may be left open), of the key when its budget is the limit, else of its
/// account (from the usage summary).
pub async fn usage(
    caller: Caller,
    State(state): State<AppState>,
    Q(q): Q<Dates>,
) -> ApiResult<Json<Value>> {
    let since = day_ms(q.start_date.as_deref(), "start_date")?;
    let until = day_ms(q.end_date.as_deref(), "end_date")?;
    if let (Some(a), Some(b)) = (since, until) {
        if b <= a {
            return Err(ApiError::invalid(
                "`end_date` must be after `start_date` (the end is exclusive)",
                Some("end_date"),
            ));
        }
    }
    let b = binding(&state, &caller).await?;
    let cents = if since.is_none() && until.is_none() {
        b.used * 100.0
    } else {
        let (filter, group) = if b.key_binds {
            let f = Filter {
                key_id: Some(caller.key_id.clone()),
                ..Filter::default()
            };
            (f, GroupBy::Key)
        } else {
            let f = Filter {
                account_id: Some(caller.account_id.clone()),
                ..Filter::default()
            };
            (f, GroupBy::Account)
        };
        let f = Filter {
            since_ms: since,
            until_ms: until,
            ..filter
        };
        let sums = summarise(&state.db, &f, group).await?;
        let nanos = sums
            .values()
            .fold(0i64, |a, s| a.saturating_add(s.cost_nanos));
        nanos_to_usd(nanos) * 100.0
    };
    Ok(Json(json!({
        "object": "list",
        "total_usage": (cents * 1e6).round() / 1e6,
    })))
}
