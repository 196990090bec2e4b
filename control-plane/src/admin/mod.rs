//! The admin API (API.md section 2), one module per resource; get, list and
//! PATCH are `resource`'s, for every resource. Every handler takes the
//! `Admin` extractor, so that no admin route can be added without the token
//! check.

mod accounts;
mod groups;
mod key_pool;
mod keys;
mod models;
mod operators;
mod provider_keys;
mod providers;
mod resource;
mod summary;
mod upstream_url;
mod usage;
mod usage_export;

use axum::routing::{get, post};
use axum::Router;

use crate::db::accounts::Row as AccountRow;
use crate::db::groups::Row as GroupRow;
use crate::db::keys::Row as KeyRow;
use crate::db::models::Row as ModelRow;
use crate::state::AppState;

/// The usage summary's sums over a range (the key holder's billing route
/// reads them too).
pub use summary::summarise;
pub use usage::summary_answer;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/accounts",
            post(resource::create::<AccountRow>).get(resource::list::<AccountRow>),
        )
        .route(
            "/admin/accounts/{id}",
            get(resource::get::<AccountRow>)
                .patch(resource::patch::<AccountRow>)
                .delete(accounts::delete),
        )
        .route("/admin/accounts/{id}/credit", post(accounts::credit))
        .route(
            "/admin/groups",
            post(resource::create::<GroupRow>).get(resource::list::<GroupRow>),
        )
        .route(
            "/admin/groups/{id}",
            get(resource::get::<GroupRow>)
                .patch(resource::patch::<GroupRow>)
                .delete(groups::delete),
        )
        .route("/admin/keys", post(keys::create).get(keys::list))
        .route(
            "/admin/operators",
            post(operators::create).get(operators::list),
        )
        .route(
            "/admin/operators/{id}",
            axum::routing::delete(operators::delete),
        )
        .route(
            "/admin/keys/{id}",
            get(resource::get::<KeyRow>)
                .patch(resource::patch::<KeyRow>)
                .delete(keys::revoke),
        )
        .route("/admin/keys/{id}/rotate", post(keys::rotate))
        .route("/admin/keys/{id}/reset-spend", post(keys::reset_spend))
        .route(
            "/admin/providers",
            post(providers::create).get(providers::list),
        )
        .route(
            "/admin/providers/{id}",
            get(providers::get)
                .patch(providers::patch)
                .delete(providers::delete),
        )
        .route("/admin/providers/{id}/api_keys", post(provider_keys::add))
        .route(
            "/admin/providers/{id}/api_keys/{key}",
            axum::routing::patch(provider_keys::patch).delete(provider_keys::remove),
        )
        .route("/admin/openapi.json", get(crate::openapi::get))
        .route("/admin/usage", get(usage::list))
        .route("/admin/usage/summary", get(usage::summary))
        .route("/admin/usage/export.csv", get(usage_export::export))
        .route("/admin/usage/streams", get(usage::streams))
        .route(
            "/admin/models",
            post(resource::create::<ModelRow>).get(resource::list::<ModelRow>),
        )
        .route(
            "/admin/models/{*id}",
            get(resource::get::<ModelRow>)
                .patch(resource::patch::<ModelRow>)
                .delete(models::delete),
        )
}
