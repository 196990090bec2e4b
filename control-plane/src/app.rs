//! The shared state, the caller extractors and the router.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tollgate_contract::error::ErrorCode;

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

/// The code an error status gets when something other than a handler
/// (axum's own rejections: a bad path segment, a body over the limit, a
/// wrong method) answered it.
fn code_for(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::InvalidApiKey,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        413 => ErrorCode::RequestTooLarge,
        500..=599 => ErrorCode::Internal,
        _ => ErrorCode::InvalidRequest,
    }
}

fn is_json(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Every error answer in the OpenAI format: an error that is not JSON yet
/// (axum's plain-text rejections) gets the body its status calls for; a
/// client error stays a client error.
async fn openai_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&res) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let code = code_for(status);
    let message = if text.trim().is_empty() || code == ErrorCode::Internal {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text.chars().take(300).collect()
    };
    let body = tollgate_contract::error::body(code, &message, None);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
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
        .route("/v1/models/{*id}", get(public::get_model))
        .route("/v1/usage", get(usage::list_own))
        // Open routes: no credentials, nothing secret in them.
        .route("/api/status", get(public::status))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(not_found)
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::CONTENT_TYPE, "application/json")],
                tollgate_contract::error::body(
                    ErrorCode::MethodNotAllowed,
                    "Method not allowed on this endpoint.",
                    None,
                ),
            )
        })
        .layer(axum::middleware::from_fn(openai_errors))
        .layer(axum::middleware::from_fn(no_store))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, Bytes};
    use axum::extract::Path;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new()
            .route(
                "/v1/models/catalog",
                get(|| async { "catalog".to_string() }),
            )
            .route(
                "/v1/models/{*id}",
                get(|Path(id): Path<String>| async move { id }),
            )
            .route("/admin/x", post(|_: Bytes| async { "ok" }))
            .layer(axum::middleware::from_fn(openai_errors))
    }

    async fn call(method: &str, uri: &str, body: Vec<u8>) -> (u16, String, Vec<u8>) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::from(body))
            .expect("request");
        let res = app().oneshot(req).await.expect("answer");
        let status = res.status().as_u16();
        let ct = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or_default().to_string())
            .unwrap_or_default();
        let body = res.into_body().collect().await.expect("body").to_bytes();
        (status, ct, body.to_vec())
    }

    #[tokio::test]
    async fn model_ids_with_a_slash_reach_the_handler() {
        let (status, _, body) =
            call("GET", "/v1/models/Qwen/Qwen2.5-VL-72B-Instruct", vec![]).await;
        assert_eq!(
            (status, body.as_slice()),
            (200, &b"Qwen/Qwen2.5-VL-72B-Instruct"[..])
        );
        let (_, _, body) = call("GET", "/v1/models/catalog", vec![]).await;
        assert_eq!(body, b"catalog");
    }

    #[tokio::test]
    async fn axum_rejections_become_openai_errors() {
        for (method, uri, body, want) in [
            ("GET", "/v1/models/%ff", vec![], 400),
            ("POST", "/admin/x", vec![b'x'; 3 << 20], 413),
        ] {
            let (status, ct, body) = call(method, uri, body).await;
            assert_eq!(status, want, "{uri}");
            assert_eq!(ct, "application/json", "{uri}");
            let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            assert!(v["error"]["message"].is_string(), "{v}");
            assert!(v["error"]["code"].is_string(), "{v}");
        }
        let (_, _, body) = call("POST", "/admin/x", vec![b'x'; 3 << 20]).await;
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["error"]["code"], "request_too_large");
    }
}
