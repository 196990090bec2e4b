//! The handlers every stored resource shares (create, get one, list a page,
//! PATCH)
//! and the answer after a write. Each resource says only what differs, in
//! its `Resource` impl.

use std::future::Future;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
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

/// A resource created from a body of its own (keys are not: their answer
/// carries the secret).
pub trait Creatable: Resource {
    /// The create body.
    type New: DeserializeOwned + Send;

    /// Checks each field of a create body; the row to insert.
    fn create(new: Self::New, state: &AppState) -> impl Future<Output = ApiResult<Self>> + Send;

    /// Inserts the row; its id.
    fn insert(&self, db: &Db) -> impl Future<Output = ApiResult<String>> + Send;
}

/// `POST`: parse, check, insert, publish, answer 201.
pub async fn create<R: Creatable>(
    _: Admin,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<R::Shown>)> {
    let new: R::New = parse_json(&body)?;
    let id = R::create(new, &state).await?.insert(&state.db).await?;
    Ok((StatusCode::CREATED, written::<R>(&state, &id).await?))
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

/// The shared handlers of one resource as plain functions, each with its
/// OpenAPI operation (`utoipa_axum::routes!` takes no generic handler):
/// `many` makes `create` and `list` on the collection's path, `one` makes
/// `get` and `patch` on the item's.
macro_rules! shared_handlers {
    (many: $row:ty, $tag:tt, $path:tt, $new:ident, $shown:ident) => {
        #[utoipa::path(post, path = $path, tag = $tag, request_body = $new,
            responses((status = 201, description = "Created", body = $shown), $crate::openapi::Errors))]
        pub async fn create(
            admin: $crate::auth::Admin,
            state: axum::extract::State<$crate::state::AppState>,
            body: axum::body::Bytes,
        ) -> $crate::error::ApiResult<(axum::http::StatusCode, axum::Json<$shown>)> {
            $crate::admin::resource::create::<$row>(admin, state, body).await
        }

        #[utoipa::path(get, path = $path, tag = $tag, params($crate::pages::PageQuery),
            responses((status = 200, description = "A page, in id order", body = [$shown]), $crate::openapi::Errors))]
        pub async fn list(
            admin: $crate::auth::Admin,
            state: axum::extract::State<$crate::state::AppState>,
            page: $crate::error::Q<$crate::pages::PageQuery>,
        ) -> $crate::error::ApiResult<axum::Json<$crate::pages::List<$shown>>> {
            $crate::admin::resource::list::<$row>(admin, state, page).await
        }
    };
    (one: $row:ty, $tag:tt, $path:tt, $patch:ident, $shown:ident) => {
        #[utoipa::path(get, path = $path, tag = $tag, params(("id" = String, Path)),
            responses((status = 200, description = "OK", body = $shown), $crate::openapi::Errors))]
        pub async fn get(
            admin: $crate::auth::Admin,
            state: axum::extract::State<$crate::state::AppState>,
            id: axum::extract::Path<String>,
        ) -> $crate::error::ApiResult<axum::Json<$shown>> {
            $crate::admin::resource::get::<$row>(admin, state, id).await
        }

        #[utoipa::path(patch, path = $path, tag = $tag, params(("id" = String, Path)), request_body = $patch,
            responses((status = 200, description = "As stored", body = $shown), $crate::openapi::Errors))]
        pub async fn patch(
            admin: $crate::auth::Admin,
            state: axum::extract::State<$crate::state::AppState>,
            id: axum::extract::Path<String>,
            body: axum::body::Bytes,
        ) -> $crate::error::ApiResult<axum::Json<$shown>> {
            $crate::admin::resource::patch::<$row>(admin, state, id, body).await
        }
    };
}

pub(crate) use shared_handlers;
