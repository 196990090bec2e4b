//! Accounts: who pays. A balance of `null` means unlimited.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::auth::Admin;
use crate::db::accounts::Row;
use crate::db::{self, load, page as page_of};
use crate::error::{parse_json, ApiError, ApiResult, Q};
use crate::state::AppState;
use crate::util::{
    check_limit, check_text, double_option, nanos_to_usd, new_id, now_ms, usd_to_nanos, List,
    PageQuery, MAX_BALANCE_NANOS,
};

#[derive(Debug, Serialize)]
pub struct Account {
    id: String,
    object: &'static str,
    name: String,
    balance_usd: Option<f64>,
    spent_usd: f64,
    rpm: Option<i64>,
    tpm: Option<i64>,
    max_concurrent: Option<i64>,
    created_at: i64,
}

impl From<Row> for Account {
    fn from(r: Row) -> Account {
        Account {
            id: r.id,
            object: "account",
            name: r.name,
            balance_usd: r.balance_nanos.map(nanos_to_usd),
            spent_usd: nanos_to_usd(r.spent_nanos),
            rpm: r.rpm,
            tpm: r.tpm,
            max_concurrent: r.max_concurrent,
            created_at: r.created_at_ms / 1000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    name: String,
    balance_usd: Option<f64>,
    rpm: Option<u32>,
    tpm: Option<u32>,
    max_concurrent: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountPatch {
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    balance_usd: Option<Option<f64>>,
    #[serde(default, deserialize_with = "double_option")]
    rpm: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double_option")]
    tpm: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double_option")]
    max_concurrent: Option<Option<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Credit {
    amount_usd: f64,
}

pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Account>)> {
    let new: NewAccount = parse_json(&body)?;
    check_text(&new.name, "name", 200)?;
    let balance = new
        .balance_usd
        .map(|v| usd_to_nanos(v, "balance_usd"))
        .transpose()?;
    let row = Row {
        id: new_id("acct"),
        name: new.name,
        balance_nanos: balance,
        spent_nanos: 0,
        rpm: check_limit(new.rpm, "rpm")?,
        tpm: check_limit(new.tpm, "tpm")?,
        max_concurrent: check_limit(new.max_concurrent, "max_concurrent")?,
        created_at_ms: now_ms(),
    };
    db::accounts::insert(&state.db, &row).await?;
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
) -> ApiResult<Json<List<Account>>> {
    let (rows, limit) = page_of::<Row>(&state.db, page).await?;
    Ok(Json(List::page(
        rows.into_iter().map(Account::from).collect(),
        limit,
    )))
}

pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Account>> {
    Ok(Json(load::<Row>(&state.db, &id).await?.into()))
}

pub async fn patch(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Account>> {
    let p: AccountPatch = parse_json(&body)?;
    let mut row = load::<Row>(&state.db, &id).await?;
    if let Some(name) = p.name {
        check_text(&name, "name", 200)?;
        row.name = name;
    }
    if let Some(balance) = p.balance_usd {
        row.balance_nanos = balance
            .map(|v| usd_to_nanos(v, "balance_usd"))
            .transpose()?;
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
    db::accounts::update(&state.db, &row).await?;
    state.publish().await;
    Ok(Json(load::<Row>(&state.db, &id).await?.into()))
}

/// Adds to the balance (`db::accounts::credit`: one statement, bounded). An
/// account without a balance (unlimited) stays unlimited.
pub async fn credit(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Account>> {
    let c: Credit = parse_json(&body)?;
    let amount = usd_to_nanos(c.amount_usd, "amount_usd")?;
    if !db::accounts::credit(&state.db, &id, amount, MAX_BALANCE_NANOS).await? {
        load::<Row>(&state.db, &id).await?;
        return Err(ApiError::invalid(
            "`amount_usd` would take the balance over $1e9",
            Some("amount_usd"),
        ));
    }
    state.publish().await;
    Ok(Json(load::<Row>(&state.db, &id).await?.into()))
}

/// Only an account without live keys can go (its revoked keys go with it);
/// its usage records keep its id.
pub async fn delete(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    load::<Row>(&state.db, &id).await?;
    let live = db::keys::live_for_account(&state.db, &id).await?;
    if live > 0 {
        return Err(ApiError::Conflict(format!(
            "Account {id:?} still has {live} live key(s); revoke them first."
        )));
    }
    db::accounts::delete_with_keys(&state.db, &id).await?;
    state.publish().await;
    Ok(StatusCode::NO_CONTENT)
}
