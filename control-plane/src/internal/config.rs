//! `GET /internal/config`: filters long-poll with the version they have.
//! They get the snapshot at once when it differs, else the request waits
//! until it changes or `wait_ms` ends (304). A snapshot with many keys comes
//! as a head and pages (`GET /internal/config/keys`).

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::Filter;
use crate::config_channel::Published;
use crate::error::{ApiError, ApiResult, Q};
use crate::state::AppState;

/// The longest a poll is held open.
pub const MAX_WAIT_MS: u64 = 60_000;

/// `GET /internal/config/keys?version=&page=`: one page of a paged snapshot;
/// 409 when that version is no longer the current one (the filter then
/// polls for the new head).
pub async fn get_key_page(
    _: Filter,
    State(state): State<AppState>,
    Q(query): Q<HashMap<String, String>>,
) -> ApiResult<Response> {
    let number = |name: &str| -> ApiResult<u64> {
        query
            .get(name)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| ApiError::invalid(format!("`{name}` must be an integer"), Some(name)))
    };
    let (version, page) = (number("version")?, number("page")?);
    let current = state.config.current();
    if current.version != version {
        return Err(ApiError::Conflict(format!(
            "version {version} is no longer current; poll /internal/config again"
        )));
    }
    let body = usize::try_from(page)
        .ok()
        .and_then(|i| current.pages.get(i))
        .ok_or_else(|| ApiError::invalid(format!("no key page {page}"), Some("page")))?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body.clone()),
    )
        .into_response())
}

fn snapshot_response(p: &Published) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(p.body.clone()),
    )
        .into_response()
}

pub async fn get_config(
    _: Filter,
    State(state): State<AppState>,
    Q(query): Q<HashMap<String, String>>,
) -> ApiResult<Response> {
    state.saw_poll();
    let number = |name: &str| -> ApiResult<Option<u64>> {
        query
            .get(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::invalid(format!("`{name}` must be an integer"), Some(name))
                })
            })
            .transpose()
    };
    let have = number("version")?;
    let wait = Duration::from_millis(number("wait_ms")?.unwrap_or(0).min(MAX_WAIT_MS));
    let mut rx = state.config.subscribe();
    let current = rx.borrow_and_update().clone();
    if have != Some(current.version) {
        return Ok(snapshot_response(&current));
    }
    let _held = crate::metrics::Held::new(&state.metrics.polls_held);
    tokio::select! {
        changed = rx.changed() => {
            if changed.is_ok() {
                let next = rx.borrow_and_update().clone();
                if Some(next.version) != have {
                    return Ok(snapshot_response(&next));
                }
            }
        }
        _ = tokio::time::sleep(wait) => {}
        _ = state.config.closed() => {}
    }
    Ok(StatusCode::NOT_MODIFIED.into_response())
}
