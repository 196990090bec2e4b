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

use std::sync::Arc;

use axum::{Extension, Router};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The usage summary's sums over a range (the key holder's billing route
/// reads them too).
pub use summary::summarise;
pub use usage::summary_answer;

/// Every admin route, each registered with its OpenAPI operation in one
/// `routes!` call (one call a path): a route cannot be added without being
/// documented, nor documented without being routed.
pub fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(accounts::create, accounts::list))
        .routes(routes!(accounts::get, accounts::patch, accounts::delete))
        .routes(routes!(accounts::credit))
        .routes(routes!(groups::create, groups::list))
        .routes(routes!(groups::get, groups::patch, groups::delete))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::get, keys::patch, keys::revoke))
        .routes(routes!(keys::rotate))
        .routes(routes!(keys::reset_spend))
        .routes(routes!(operators::create, operators::list))
        .routes(routes!(operators::delete))
        .routes(routes!(providers::create, providers::list))
        .routes(routes!(providers::get, providers::patch, providers::delete))
        .routes(routes!(provider_keys::add))
        .routes(routes!(provider_keys::patch, provider_keys::remove))
        .routes(routes!(crate::openapi::get))
        .routes(routes!(usage::list))
        .routes(routes!(usage::summary))
        .routes(routes!(usage::streams))
        .routes(routes!(usage_export::export))
        .routes(routes!(models::create, models::list))
        .routes(routes!(models::get, models::patch, models::delete))
}

/// The admin routes, and the document they make served at
/// `/admin/openapi.json`.
pub fn routes() -> Router<AppState> {
    let (router, api) = documented().split_for_parts();
    router.layer(Extension(Arc::new(crate::openapi::finish(api))))
}

/// The document the admin routes make (for tests).
pub fn document() -> serde_json::Value {
    crate::openapi::finish(documented().split_for_parts().1)
}
