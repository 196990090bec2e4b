//! Who is calling: typed extractors for the admin, the filter and a keyed
//! data-path caller. A handler that takes one cannot run without its check.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::secrets::same;
use crate::state::AppState;

pub const FILTER_SECRET_HEADER: &str = "x-tollgate-filter-secret";
pub const KEY_ID_HEADER: &str = "x-tollgate-key-id";
pub const ACCOUNT_ID_HEADER: &str = "x-tollgate-account-id";

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
