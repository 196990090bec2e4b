//! The dashboard: static files built into the binary (`control-plane/ui/`,
//! no build step, nothing fetched at run time) served at `/ui/`, and its
//! sessions (`session`, `api`). The pages call the admin API and `/v1/me`
//! with the session cookie standing in for the admin token or the key
//! (`auth`), so there is one handler per thing, not two.

pub mod api;
mod assets;
pub mod password;
pub mod session;
pub mod throttle;

use axum::extract::{Path, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

/// No inline script or style attribute injection point: scripts and styles
/// only from this origin, no plugins, no framing, no `<base>`.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; object-src 'none'; \
                       frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(|| async { file("index.html") }))
        .route(
            "/ui/api/session",
            post(api::sign_in).get(api::current).delete(api::sign_out),
        )
        .route(
            "/ui/{*path}",
            get(|Path(path): Path<String>| async move { file(&path) }),
        )
}

fn file(path: &str) -> Response {
    match assets::find(path) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                // Revalidated on every load (the files change with the
                // binary and carry no hash in their names); small anyway.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            a.body,
        )
            .into_response(),
        None => ApiError::NotFound("No such dashboard file.".to_string()).into_response(),
    }
}

/// The headers every answer carries: the dashboard's CSP and the usual
/// hardening (harmless on the JSON API).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}
