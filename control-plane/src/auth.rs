//! Who is calling: typed extractors for the admin, the filter and a keyed
//! data-path caller. A handler that takes one cannot run without its check.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::secrets::same;
use crate::state::AppState;
use crate::ui::session::{self, Who};

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

/// An admin caller: `Authorization: Bearer <admin token>`, or an operator's
/// dashboard session (with its CSRF token on every change).
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        if let Some(token) = bearer(parts) {
            return if same(token, &state.admin_token) {
                Ok(Admin)
            } else {
                Err(ApiError::Unauthorized)
            };
        }
        let s = session::of_request(parts, &state.db)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        match s.who {
            Who::Operator(_) => {
                session::check_csrf(parts, &s)?;
                Ok(Admin)
            }
            Who::KeyHolder { .. } => Err(ApiError::Forbidden {
                code: "permission_denied",
                message: "A key holder's session cannot use the admin API.".to_string(),
            }),
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
            return from_session(parts, state).await;
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

/// A key holder's dashboard session, while its key is still live (a revoked
/// or expired key ends the session at once, whatever its TTL).
async fn from_session(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let s = session::of_request(parts, &state.db)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    session::check_csrf(parts, &s)?;
    let Who::KeyHolder { key_id, account_id } = s.who else {
        return Err(ApiError::Unauthorized);
    };
    let live = crate::db::load::<crate::db::keys::Row>(&state.db, &key_id)
        .await
        .ok()
        .is_some_and(|row| crate::ui::api::key_is_live(&row));
    if !live {
        session::close_key(&state.db, &key_id).await?;
        return Err(ApiError::Unauthorized);
    }
    Ok(Caller { key_id, account_id })
}
