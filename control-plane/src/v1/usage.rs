//! `GET /v1/usage`: a keyed caller's own account's usage, newest first.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use crate::auth::Caller;
use crate::db;
use crate::error::{ApiResult, Q};
use crate::pages::{List, PageQuery};
use crate::state::AppState;
use crate::usage_record::{cursor, Record};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    model: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// The caller's own account only; newest first.
pub async fn list_own(
    caller: Caller,
    State(state): State<AppState>,
    Q(q): Q<UsageQuery>,
) -> ApiResult<Json<List<Record>>> {
    let limit = PageQuery {
        limit: q.limit,
        after: None,
    }
    .limit()?;
    let before = cursor(q.after.as_deref())?;
    let rows = db::usage::for_account(
        &state.db,
        &caller.account_id,
        before,
        q.model.as_deref().unwrap_or_default(),
        limit + 1,
    )
    .await?;
    Ok(Json(List::page(
        rows.into_iter().map(Record::from).collect(),
        limit,
    )))
}
