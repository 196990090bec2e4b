//! Accounts: who pays. A balance of `null` means unlimited.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::resource::{written, Creatable, Resource};
use crate::auth::Admin;
use crate::clock::now_ms;
use crate::db::accounts::Row;
use crate::db::{self, load, Db};
use crate::error::{parse_json, ApiError, ApiResult};
use crate::ids::{new_id, Group, Id};
use crate::money::{nanos_to_usd, Usd, MAX_BALANCE_NANOS};
use crate::patch::{double_option, set};
use crate::state::AppState;
use crate::validate::{patch_limits, stored, Limit, Name};

#[derive(Debug, Serialize, ToSchema)]
pub struct Account {
    id: String,
    object: &'static str,
    name: String,
    balance_usd: Option<f64>,
    spent_usd: f64,
    rpm: Option<i64>,
    tpm: Option<i64>,
    max_concurrent: Option<i64>,
    /// The model group, if any: its models and default limits apply.
    group_id: Option<String>,
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
            group_id: r.group_id,
            created_at: r.created_at_ms / 1000,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    name: Name,
    balance_usd: Option<Usd>,
    rpm: Option<Limit>,
    tpm: Option<Limit>,
    max_concurrent: Option<Limit>,
    /// The model group: its models and default limits apply to the
    /// account's keys.
    #[schema(value_type = Option<String>)]
    group_id: Option<Id<Group>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    name: Option<Name>,
    #[serde(default, deserialize_with = "double_option")]
    balance_usd: Option<Option<Usd>>,
    #[serde(default, deserialize_with = "double_option")]
    rpm: Option<Option<Limit>>,
    #[serde(default, deserialize_with = "double_option")]
    tpm: Option<Option<Limit>>,
    #[serde(default, deserialize_with = "double_option")]
    max_concurrent: Option<Option<Limit>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    group_id: Option<Option<Id<Group>>>,
}

/// A group id must name a group (else 400 naming `group_id`).
async fn check_group(state: &AppState, group: Option<Id<Group>>) -> ApiResult<Option<String>> {
    let group = group.map(Id::into_string);
    if let Some(g) = &group {
        if !db::exists::<db::groups::Row>(&state.db, g).await? {
            return Err(ApiError::invalid(
                format!("`group_id` names {g:?}, which is not a group"),
                Some("group_id"),
            ));
        }
    }
    Ok(group)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credit {
    amount_usd: Usd,
}

impl Resource for Row {
    type Shown = Account;
    type Patch = AccountPatch;

    fn show(self) -> ApiResult<Account> {
        Ok(self.into())
    }

    async fn apply(&mut self, p: AccountPatch, state: &AppState) -> ApiResult<()> {
        if let Some(group) = p.group_id {
            self.group_id = check_group(state, group).await?;
        }
        set(&mut self.name, p.name, |v| Ok(v.into_string()))?;
        set(&mut self.balance_nanos, p.balance_usd, |v| {
            Ok(v.map(Usd::nanos))
        })?;
        let limits = [&mut self.rpm, &mut self.tpm, &mut self.max_concurrent];
        patch_limits(limits, [p.rpm, p.tpm, p.max_concurrent]);
        Ok(())
    }

    async fn update(&self, db: &Db) -> ApiResult<()> {
        db::accounts::update(db, self).await
    }
}

impl Creatable for Row {
    type New = NewAccount;

    async fn create(new: NewAccount, state: &AppState) -> ApiResult<Row> {
        let group_id = check_group(state, new.group_id).await?;
        Ok(Row {
            group_id,
            id: new_id("acct"),
            name: new.name.into_string(),
            balance_nanos: new.balance_usd.map(Usd::nanos),
            spent_nanos: 0,
            rpm: stored(new.rpm),
            tpm: stored(new.tpm),
            max_concurrent: stored(new.max_concurrent),
            created_at_ms: now_ms(),
        })
    }

    async fn insert(&self, db: &Db) -> ApiResult<String> {
        db::accounts::insert(db, self).await?;
        Ok(self.id.clone())
    }
}

super::resource::shared_handlers!(many: Row, "accounts", "/admin/accounts", NewAccount, Account);
super::resource::shared_handlers!(one: Row, "accounts", "/admin/accounts/{id}", AccountPatch, Account);

/// Adds to the balance (`db::accounts::credit`: one statement, bounded). An
/// account without a balance (unlimited) stays unlimited.
#[utoipa::path(post, path = "/admin/accounts/{id}/credit", tag = "accounts", params(("id" = String, Path)), request_body = Credit, responses((status = 200, description = "As stored", body = Account), crate::openapi::Errors))]
pub async fn credit(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Account>> {
    let c: Credit = parse_json(&body)?;
    let amount = c.amount_usd.nanos();
    if !db::accounts::credit(&state.db, &id, amount, MAX_BALANCE_NANOS).await? {
        load::<Row>(&state.db, &id).await?;
        return Err(ApiError::invalid(
            "`amount_usd` would take the balance over $1e9",
            Some("amount_usd"),
        ));
    }
    written::<Row>(&state, &id).await
}

/// Only an account without live keys can go (its revoked keys go with it);
/// its usage records keep its id.
#[utoipa::path(delete, path = "/admin/accounts/{id}", tag = "accounts", params(("id" = String, Path)), responses((status = 204, description = "Deleted"), crate::openapi::Errors))]
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
