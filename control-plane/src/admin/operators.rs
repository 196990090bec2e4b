//! Named operator accounts for the dashboard (`/admin/operators`): an
//! operator (admin token or an operator's session) creates one with a name
//! and a password, lists them (never a password or its hash), deletes one
//! (its sessions end with it). They sign in at `/ui/api/session` with
//! `{"name", "password"}` and may do what the admin token does.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::Admin;
use crate::clock::now_ms;
use crate::db::operators::{self, Row};
use crate::error::{parse_json, ApiError, ApiResult};
use crate::ids::new_id;
use crate::state::AppState;
use crate::ui::password;

pub const MIN_PASSWORD: usize = 12;
pub const MAX_PASSWORD: usize = 256;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Operator {
    id: String,
    #[schema(value_type = String)]
    object: &'static str,
    name: String,
    created_at: i64,
}

impl From<Row> for Operator {
    fn from(r: Row) -> Operator {
        Operator {
            id: r.id,
            object: "operator",
            name: r.name,
            created_at: r.created_at_ms / 1000,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewOperator {
    /// 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
    #[schema(pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    name: String,
    /// 12 to 256 characters; kept as its Argon2id hash, never answered.
    #[schema(min_length = 12, max_length = 256, write_only)]
    password: String,
}

/// 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
fn check_name(name: &str) -> ApiResult<()> {
    let ok = (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "`name` must be 1 to 64 letters, digits, `.`, `_`, `-` or `@`",
            Some("name"),
        ))
    }
}

fn check_password(password: &str) -> ApiResult<()> {
    let n = password.chars().count();
    if (MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            format!("`password` must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
            Some("password"),
        ))
    }
}

#[utoipa::path(post, path = "/admin/operators", tag = "operators", request_body = NewOperator, responses((status = 201, description = "Created (the password is never answered)", body = Operator), crate::openapi::Errors))]
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Operator>)> {
    let NewOperator { name, password } = parse_json(&body)?;
    check_name(&name)?;
    check_password(&password)?;
    let row = Row {
        id: new_id("op"),
        name,
        password_hash: password::hash(password).await?,
        created_at_ms: now_ms(),
    };
    operators::insert(&state.db, &row).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

#[utoipa::path(get, path = "/admin/operators", tag = "operators", responses((status = 200, description = "Every operator (names, never passwords)"), crate::openapi::Errors))]
pub async fn list(_: Admin, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let data: Vec<Operator> = operators::all(&state.db)
        .await?
        .into_iter()
        .map(Operator::from)
        .collect();
    Ok(Json(
        json!({"object": "list", "data": data, "has_more": false}),
    ))
}

#[utoipa::path(delete, path = "/admin/operators/{id}", tag = "operators", params(("id" = String, Path)), responses((status = 204, description = "Deleted; its sessions end"), crate::openapi::Errors))]
pub async fn delete(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if operators::delete(&state.db, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("No operator {id:?}.")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_passwords_are_checked() {
        for good in ["ada", "ops.team-1_x@example", &"a".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "<b>", "名前", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_password(&"x".repeat(12)).is_ok());
        assert!(check_password(&"x".repeat(11)).is_err());
        assert!(check_password(&"x".repeat(257)).is_err());
    }
}
