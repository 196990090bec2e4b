//! The handlers every stored resource shares (get one, list a page, PATCH)
//! and the answer after a write. Each resource says only what differs, in
//! its `Resource` impl.

use std::future::Future;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::Admin;
use crate::db::{self, load, Db, Table};
use crate::error::{parse_json, ApiResult, Q};
use crate::pages::{List, PageQuery};
use crate::state::AppState;

pub trait Resource: Table {
    /// The resource as the API shows it.
    type Shown: Serialize;
    /// The PATCH body: every field optional.
    type Patch: DeserializeOwned + Send;

    fn show(self) -> ApiResult<Self::Shown>;

    /// Checks each field of a PATCH and sets it on the stored row.
    fn apply(
        &mut self,
        patch: Self::Patch,
        state: &AppState,
    ) -> impl Future<Output = ApiResult<()>> + Send;

    /// Writes the fields a PATCH may change.
    fn update(&self, db: &Db) -> impl Future<Output = ApiResult<()>> + Send;
}

/// `GET` one, by id.
pub async fn get<R: Resource>(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<R::Shown>> {
    shown::<R>(&state, &id).await
}

/// `GET` a page, in id order.
pub async fn list<R: Resource>(
    _: Admin,
    State(state): State<AppState>,
    Q(page): Q<PageQuery>,
) -> ApiResult<Json<List<R::Shown>>> {
    let (rows, limit) = db::page::<R>(&state.db, page).await?;
    let shown = rows
        .into_iter()
        .map(R::show)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(List::page(shown, limit)))
}

/// `PATCH`: parse, load, apply each field, write, publish, answer.
pub async fn patch<R: Resource>(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<R::Shown>> {
    let patch: R::Patch = parse_json(&body)?;
    let mut row = load::<R>(&state.db, &id).await?;
    row.apply(patch, &state).await?;
    row.update(&state.db).await?;
    written::<R>(&state, &id).await
}

/// After a write: the new snapshot published, the row answered as stored.
pub async fn written<R: Resource>(state: &AppState, id: &str) -> ApiResult<Json<R::Shown>> {
    state.publish().await;
    shown::<R>(state, id).await
}

async fn shown<R: Resource>(state: &AppState, id: &str) -> ApiResult<Json<R::Shown>> {
    Ok(Json(load::<R>(&state.db, id).await?.show()?))
}
