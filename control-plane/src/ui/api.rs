//! `/ui/api/session`: sign in with the admin token or a named operator's
//! name and password (an operator), or an API key (a key holder); read the
//! session, sign out.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::password;
use super::session::{self, Named, Session, Who};
use crate::clock::now_ms;
use crate::db;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::secrets::same;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    token: Option<String>,
    name: Option<String>,
    password: Option<String>,
}

fn shown(s: &Session, state: &AppState) -> Value {
    let left = (s.expires_at_ms - now_ms()).max(0) / 1000;
    let mut v = json!({
        "object": "session",
        "kind": match s.who { Who::Operator(_) => "operator", Who::KeyHolder { .. } => "key_holder" },
        "csrf_token": s.csrf,
        "expires_in": left,
        "gateway_url": state.settings.gateway_url,
    });
    match &s.who {
        Who::KeyHolder { key_id, account_id } => {
            v["key_id"] = json!(key_id);
            v["account_id"] = json!(account_id);
        }
        Who::Operator(named) => {
            v["operator"] = json!(named.as_ref().map(|n| json!({"id": n.id, "name": n.name})));
        }
    }
    v
}

/// Whether a key row may sign in now: not revoked, not expired.
pub fn key_is_live(row: &db::keys::Row) -> bool {
    row.revoked_at_ms.is_none() && row.expires_at.is_none_or(|t| t > now_ms() / 1000)
}

async fn who_is(state: &AppState, token: &str) -> ApiResult<Who> {
    if same(token, &state.admin_token) {
        return Ok(Who::Operator(None));
    }
    if tollgate_contract::key::check(token.as_bytes()).is_err() {
        return Err(ApiError::Unauthorized);
    }
    match db::keys::by_hash(&state.db, &tollgate_contract::key::hash(token)).await? {
        Some(row) if key_is_live(&row) => Ok(Who::KeyHolder {
            key_id: row.id,
            account_id: row.account_id,
        }),
        _ => Err(ApiError::Unauthorized),
    }
}

/// A named operator, by name and password (a wrong password and an unknown
/// name are the same 401, after the same work; too many of them for one
/// name of late, a 429: `throttle`).
async fn operator_is(state: &AppState, name: &str, password: String) -> ApiResult<Who> {
    state.sign_ins.check(name, now_ms())?;
    let row = db::operators::by_name(&state.db, name).await?;
    let phc = row.as_ref().map(|r| r.password_hash.clone());
    let right = password::matches(password, phc).await;
    match row {
        Some(r) if right => {
            state.sign_ins.cleared(name);
            Ok(Who::Operator(Some(Named {
                id: r.id,
                name: r.name,
            })))
        }
        _ => {
            state.sign_ins.failed(name, now_ms());
            Err(ApiError::Unauthorized)
        }
    }
}

/// A JSON body only: a cross-site form cannot send `application/json`
/// without a CORS preflight, which this server never grants.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_body {
        return Err(ApiError::invalid(
            "Send the sign-in as application/json.",
            None,
        ));
    }
    let who = match parse_json::<SignIn>(&body)? {
        SignIn {
            token: Some(token),
            name: None,
            password: None,
        } => who_is(&state, token.trim()).await?,
        SignIn {
            token: None,
            name: Some(name),
            password: Some(password),
        } => operator_is(&state, name.trim(), password).await?,
        _ => {
            return Err(ApiError::invalid(
                "Send either `token`, or an operator's `name` and `password`.",
                Some("token"),
            ))
        }
    };
    let ttl = state.settings.ui_session_ttl;
    let (id, s) = session::open(&state.db, who, ttl).await?;
    let secure = session::over_tls(&headers, state.settings.ui_secure_cookie);
    let cookie = session::set_cookie(&id, ttl, secure);
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, cookie)],
        Json(shown(&s, &state)),
    )
        .into_response())
}

/// The current session (the page reads its CSRF token from here after a
/// reload; a cross-site page cannot read this answer), or `kind: null`
/// when signed out (a 200, so that the sign-in page loads without an error
/// in the browser's console).
pub async fn current(State(state): State<AppState>, parts: Parts) -> ApiResult<Json<Value>> {
    Ok(Json(match session::of_request(&parts, &state.db).await? {
        Some(s) => shown(&s, &state),
        None => json!({"object": "session", "kind": null}),
    }))
}

/// Signs out: the session is gone from the store and the cookie cleared.
pub async fn sign_out(State(state): State<AppState>, parts: Parts) -> ApiResult<Response> {
    let id = session::cookie_id(&parts).ok_or(ApiError::Unauthorized)?;
    let s = session::get(&state.db, &id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    session::check_csrf(&parts, &s)?;
    session::close(&state.db, &id).await?;
    let secure = session::over_tls(&parts.headers, state.settings.ui_secure_cookie);
    let cookie = session::set_cookie("", Duration::ZERO, secure);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}
