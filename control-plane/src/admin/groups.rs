//! Model groups: an account belongs to at most one; the group enables a set
//! of models and may set default limits (`rpm`, `tpm`, `max_concurrent`)
//! for the keys of its accounts. A key's own list narrows the group's set
//! further; a key's own limit wins over the group's default.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::keys::check_models;
use super::resource::{Creatable, Resource};
use crate::auth::Admin;
use crate::clock::now_ms;
use crate::db::groups::Row;
use crate::db::{self, load, Db};
use crate::error::{ApiError, ApiResult};
use crate::ids::new_id;
use crate::patch::{double_option, set};
use crate::state::AppState;
use crate::validate::{patch_limits, stored, Limit, Name};

#[derive(Debug, Serialize, ToSchema)]
pub struct Group {
    id: String,
    object: &'static str,
    name: String,
    models: Vec<String>,
    rpm: Option<i64>,
    tpm: Option<i64>,
    max_concurrent: Option<i64>,
    created_at: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    name: Name,
    /// The models the group's accounts may use; a key's own list narrows it.
    models: Vec<String>,
    rpm: Option<Limit>,
    tpm: Option<Limit>,
    /// Defaults for keys without a limit of their own.
    max_concurrent: Option<Limit>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    name: Option<Name>,
    models: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    rpm: Option<Option<Limit>>,
    #[serde(default, deserialize_with = "double_option")]
    tpm: Option<Option<Limit>>,
    #[serde(default, deserialize_with = "double_option")]
    max_concurrent: Option<Option<Limit>>,
}

/// The `models` column: every model in the catalog (400 naming `models`
/// otherwise), sorted, without duplicates.
async fn models_column(state: &AppState, models: Vec<String>) -> ApiResult<String> {
    check_models(state, &Some(models))
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a checked list encodes to a list")))
}

impl Resource for Row {
    type Shown = Group;
    type Patch = GroupPatch;

    fn show(self) -> ApiResult<Group> {
        Ok(Group {
            models: self.models()?,
            id: self.id,
            object: "group",
            name: self.name,
            rpm: self.rpm,
            tpm: self.tpm,
            max_concurrent: self.max_concurrent,
            created_at: self.created_at_ms / 1000,
        })
    }

    async fn apply(&mut self, p: GroupPatch, state: &AppState) -> ApiResult<()> {
        set(&mut self.name, p.name, |v| Ok(v.into_string()))?;
        if let Some(models) = p.models {
            self.models_json = models_column(state, models).await?;
        }
        let limits = [&mut self.rpm, &mut self.tpm, &mut self.max_concurrent];
        patch_limits(limits, [p.rpm, p.tpm, p.max_concurrent]);
        Ok(())
    }

    async fn update(&self, db: &Db) -> ApiResult<()> {
        db::groups::update(db, self).await
    }
}

impl Creatable for Row {
    type New = NewGroup;

    async fn create(new: NewGroup, state: &AppState) -> ApiResult<Row> {
        Ok(Row {
            id: new_id("grp"),
            name: new.name.into_string(),
            models_json: models_column(state, new.models).await?,
            rpm: stored(new.rpm),
            tpm: stored(new.tpm),
            max_concurrent: stored(new.max_concurrent),
            created_at_ms: now_ms(),
        })
    }

    async fn insert(&self, db: &Db) -> ApiResult<String> {
        db::groups::insert(db, self).await?;
        Ok(self.id.clone())
    }
}

super::resource::shared_handlers!(many: Row, "groups", "/admin/groups", NewGroup, Group);
super::resource::shared_handlers!(one: Row, "groups", "/admin/groups/{id}", GroupPatch, Group);

/// Only a group no account is in can go (409 saying how many are): move
/// its accounts out first (`PATCH /admin/accounts/{id}` with
/// `"group_id": null` or another group).
#[utoipa::path(delete, path = "/admin/groups/{id}", tag = "groups", params(("id" = String, Path)), responses((status = 204, description = "Deleted"), crate::openapi::Errors))]
pub async fn delete(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    load::<Row>(&state.db, &id).await?;
    if !db::groups::delete_unused(&state.db, &id).await? {
        let members = db::groups::members(&state.db, &id).await?;
        return Err(ApiError::Conflict(format!(
            "Group {id:?} still has {members} account(s); move them out first."
        )));
    }
    state.publish().await;
    Ok(StatusCode::NO_CONTENT)
}
