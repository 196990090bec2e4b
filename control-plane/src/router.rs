//! The router: each group of routes from its own module, merged here, with
//! the layers every answer goes through (OpenAI-format errors, `no-store`).

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tollgate_contract::error::ErrorCode;

use crate::error::ApiError;
use crate::state::AppState;

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

/// Every answer says it is not to be cached: they carry accounts and secrets
/// (the dashboard's static files say `no-cache` of their own).
async fn no_store(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    res.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

pub fn router(state: AppState) -> Router {
    Router::new()
        // The admin token.
        .merge(crate::admin::routes())
        // The filter secret.
        .merge(crate::internal::routes())
        // Keyed callers, through Envoy after the filter's key check.
        .merge(crate::v1::routes())
        // The dashboard: its files and its sessions.
        .merge(crate::ui::routes())
        // Open routes: no credentials, nothing secret in them.
        .route("/api/status", get(crate::status::get))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(crate::status::metrics))
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
        .layer(axum::middleware::from_fn(crate::ui::security_headers))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(crate::telemetry::request_span)
                .on_request(())
                .on_response(
                    |res: &Response, _: std::time::Duration, span: &tracing::Span| {
                        crate::telemetry::record_status(res.status().as_u16(), span)
                    },
                )
                .on_failure(()),
        )
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, Bytes};
    use axum::extract::Path;
    use axum::routing::post;
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
