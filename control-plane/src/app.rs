//! The shared state, the caller extractors and the router.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::config_channel::ConfigChannel;
use crate::db::Db;
use crate::error::ApiError;
use crate::secrets::{same, Sealer};
use crate::settings::Settings;
use crate::{admin, config_channel, public, usage};

pub const FILTER_SECRET_HEADER: &str = "x-tollgate-filter-secret";
pub const KEY_ID_HEADER: &str = "x-tollgate-key-id";
pub const ACCOUNT_ID_HEADER: &str = "x-tollgate-account-id";

pub struct State {
    pub db: Db,
    pub settings: Settings,
    pub admin_token: String,
    pub filter_secret: String,
    pub sealer: Sealer,
    pub leases: crate::leases::Broker,
    pub config: ConfigChannel,
    pub started: Instant,
    /// When a filter last asked for config (unix ms), for `/api/status`.
    pub last_poll_ms: AtomicI64,
    /// The last status each provider answered, from ingested usage.
    pub provider_health: Mutex<HashMap<String, ProviderHealth>>,
}

#[derive(Debug, Clone, Copy)]
pub struct ProviderHealth {
    pub last_status: u16,
    pub at_ms: i64,
    pub recent_errors: u32,
}

pub type AppState = Arc<State>;

impl State {
    pub fn saw_poll(&self) {
        self.last_poll_ms
            .store(crate::util::now_ms(), Ordering::Relaxed);
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// An admin caller: `Authorization: Bearer <admin token>`.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        match bearer(parts) {
            Some(token) if same(token, &state.admin_token) => Ok(Admin),
            _ => Err(ApiError::Unauthorized),
        }
    }
}

/// The filter itself: the shared secret from its plugin configuration.
pub struct Filter;

fn has_filter_secret(parts: &Parts, state: &AppState) -> bool {
    parts
        .headers
        .get(FILTER_SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| same(v, &state.filter_secret))
}

impl FromRequestParts<AppState> for Filter {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Filter, ApiError> {
        if has_filter_secret(parts, state) {
            Ok(Filter)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

/// A data-path caller whose key the filter checked: the identity headers are
/// trusted only together with the filter secret (the filter strips any
/// `x-tollgate-*` header a client sends).
pub struct Caller {
    pub key_id: String,
    pub account_id: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        if !has_filter_secret(parts, state) {
            return Err(ApiError::Unauthorized);
        }
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        match (header(KEY_ID_HEADER), header(ACCOUNT_ID_HEADER)) {
            (Some(key_id), Some(account_id)) => Ok(Caller { key_id, account_id }),
            _ => Err(ApiError::Unauthorized),
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("No such endpoint.".to_string())
}

/// Every answer says it is not to be cached: they carry accounts and secrets.
async fn no_store(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    res
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(admin::routes())
        // The filter channel: the filter secret, never the gateway listener
        // (Envoy answers 404 for /internal/ there).
        .route("/internal/config", get(config_channel::get_config))
        .route("/internal/config/keys", get(config_channel::get_key_page))
        .route("/internal/usage", post(usage::ingest))
        .route("/internal/leases", post(crate::leases::lease))
        // Data-path reads, reached through Envoy after the filter's key check.
        .route("/v1/models", get(public::list_models))
        .route("/v1/models/catalog", get(public::catalog))
        .route("/v1/models/{id}", get(public::get_model))
        .route("/v1/usage", get(usage::list_own))
        // Open routes: no credentials, nothing secret in them.
        .route("/api/status", get(public::status))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(not_found)
        .method_not_allowed_fallback(|| async {
            ApiError::invalid("Method not allowed on this endpoint.", None)
        })
        .layer(axum::middleware::from_fn(no_store))
        .with_state(state)
}
