//! What the handlers of every stored resource share: get one, list a page,
//! answer after a write, and the PATCH skeleton (parse, load, apply each
//! field, write, publish, answer). Each resource says only what differs.

use std::future::Future;

use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::db::{self, load, Db, Table};
use crate::error::{parse_json, ApiResult};
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

pub async fn get_one<R: Resource>(state: &AppState, id: &str) -> ApiResult<Json<R::Shown>> {
    Ok(Json(load::<R>(&state.db, id).await?.show()?))
}

pub async fn list_page<R: Resource>(
    state: &AppState,
    page: PageQuery,
) -> ApiResult<Json<List<R::Shown>>> {
    let (rows, limit) = db::page::<R>(&state.db, page).await?;
    let shown = rows
        .into_iter()
        .map(R::show)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(List::page(shown, limit)))
}

/// After a write: the new snapshot published, the row answered as stored.
pub async fn written<R: Resource>(state: &AppState, id: &str) -> ApiResult<Json<R::Shown>> {
    state.publish().await;
    get_one::<R>(state, id).await
}

pub async fn patch_one<R: Resource>(
    state: &AppState,
    id: &str,
    body: &[u8],
) -> ApiResult<Json<R::Shown>> {
    let patch: R::Patch = parse_json(body)?;
    let mut row = load::<R>(&state.db, id).await?;
    row.apply(patch, state).await?;
    row.update(&state.db).await?;
    written::<R>(state, id).await
}
