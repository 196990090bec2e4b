//! `GET /v1/usage`: a keyed caller's own account's usage, newest first;
//! `GET /v1/usage/summary`: its totals by hour, day, model or key over a
//! range, as operators' summaries answer them (from the usage rollup).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use crate::auth::Caller;
use crate::db;
use crate::db::usage_report::Filter;
use crate::error::{ApiError, ApiResult, Q};
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    group_by: Option<String>,
    /// Unix seconds, inclusive.
    since: Option<i64>,
    /// Unix seconds, exclusive.
    until: Option<i64>,
}

/// The caller's own account only (`group_by=account` would be one row).
pub async fn summary_own(
    caller: Caller,
    State(state): State<AppState>,
    Q(q): Q<SummaryQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let group_by = q.group_by.as_deref().unwrap_or("hour");
    if group_by == "account" {
        return Err(ApiError::invalid(
            "`group_by` must be hour, day, model or key",
            Some("group_by"),
        ));
    }
    let ms = |s: Option<i64>, name: &str| {
        s.map(|s| {
            s.checked_mul(1000).ok_or_else(|| {
                ApiError::invalid(format!("`{name}` must be unix seconds"), Some(name))
            })
        })
        .transpose()
    };
    let filter = Filter {
        account_id: Some(caller.account_id.clone()),
        since_ms: ms(q.since, "since")?,
        until_ms: ms(q.until, "until")?,
        ..Filter::default()
    };
    let answer = crate::admin::summary_answer(&state, &filter, Some(group_by)).await?;
    Ok(Json(answer))
}
