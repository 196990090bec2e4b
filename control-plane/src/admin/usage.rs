//! Usage for operators: every record with filters, and summaries grouped by
//! model, key, account or day, with latency percentiles.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::auth::Admin;
use crate::db::rollup::Sums;
use crate::db::usage_report::{self, Filter, GroupBy, StatusFilter};
use crate::db::usage_streams;
use crate::error::{ApiError, ApiResult, Q};
use crate::money::nanos_to_usd;
use crate::pages::{List, PageQuery};
use crate::state::AppState;
use crate::usage_record::{cursor, Record};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageFilter {
    key_id: Option<String>,
    account_id: Option<String>,
    model: Option<String>,
    /// Unix seconds, inclusive.
    since: Option<i64>,
    /// Unix seconds, exclusive.
    until: Option<i64>,
    pub(super) limit: Option<String>,
    pub(super) after: Option<String>,
    pub(super) group_by: Option<String>,
    /// `ok` (< 400), `error` (>= 400) or one status code.
    status: Option<String>,
}

impl UsageFilter {
    /// The filter as the queries take it; unix seconds become milliseconds.
    pub(super) fn parsed(&self) -> ApiResult<Filter> {
        let ms = |s: Option<i64>, name: &str| {
            s.map(|s| {
                s.checked_mul(1000).ok_or_else(|| {
                    ApiError::invalid(format!("`{name}` must be unix seconds"), Some(name))
                })
            })
            .transpose()
        };
        Ok(Filter {
            key_id: self.key_id.clone(),
            account_id: self.account_id.clone(),
            model: self.model.clone(),
            since_ms: ms(self.since, "since")?,
            until_ms: ms(self.until, "until")?,
            status: match self.status.as_deref() {
                None | Some("") => None,
                Some("ok") => Some(StatusFilter::Ok),
                Some("error") => Some(StatusFilter::Error),
                Some(code) => match code.parse::<i64>() {
                    Ok(c) if (100..=999).contains(&c) => Some(StatusFilter::Exactly(c)),
                    _ => {
                        return Err(ApiError::invalid(
                            "`status` must be ok, error or an HTTP status",
                            Some("status"),
                        ))
                    }
                },
            },
        })
    }
}

#[derive(Debug, Serialize)]
pub struct AdminRecord {
    #[serde(flatten)]
    record: Record,
    account_id: String,
    upstream_model: String,
    provider: String,
}

#[utoipa::path(get, path = "/admin/usage", tag = "usage", params(UsageFilter), responses((status = 200, description = "A page of usage records"), crate::openapi::Errors))]
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    Q(f): Q<UsageFilter>,
) -> ApiResult<Json<List<AdminRecord>>> {
    if f.group_by.is_some() {
        return Err(ApiError::invalid(
            "`group_by` belongs to /admin/usage/summary",
            Some("group_by"),
        ));
    }
    let limit = PageQuery {
        limit: f.limit.clone(),
        after: None,
    }
    .limit()?;
    let before = cursor(f.after.as_deref())?;
    let rows = usage_report::list(&state.db, &f.parsed()?, before, limit + 1).await?;
    let data = rows
        .into_iter()
        .map(|r| AdminRecord {
            record: Record::from(r.row),
            account_id: r.account_id,
            upstream_model: r.upstream_model,
            provider: r.provider,
        })
        .collect();
    Ok(Json(List::page(data, limit)))
}

fn parse_group(s: Option<&str>) -> ApiResult<GroupBy> {
    match s.unwrap_or("model") {
        "model" => Ok(GroupBy::Model),
        "key" => Ok(GroupBy::Key),
        "account" => Ok(GroupBy::Account),
        "hour" => Ok(GroupBy::Hour),
        "day" => Ok(GroupBy::Day),
        _ => Err(ApiError::invalid(
            "`group_by` must be model, key, account, hour or day",
            Some("group_by"),
        )),
    }
}

fn label(group: GroupBy, raw: String) -> String {
    match group {
        GroupBy::Day => raw.parse::<i64>().map(day_string).unwrap_or(raw),
        GroupBy::Hour => raw
            .parse::<i64>()
            .map(|h| {
                format!(
                    "{}T{:02}:00Z",
                    day_string(h.div_euclid(24)),
                    h.rem_euclid(24)
                )
            })
            .unwrap_or(raw),
        _ => raw,
    }
}

/// Days since 1970-01-01 as `YYYY-MM-DD` (civil-from-days, Howard Hinnant).
pub fn day_string(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[derive(Debug, Serialize)]
pub struct SummaryRow {
    group: String,
    requests: i64,
    errors: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost_usd: f64,
    latency_p50_ms: i64,
    latency_p95_ms: i64,
}

/// Totals per group (exact) and latency percentiles (from the rollup's
/// histogram: see `summary`).
#[utoipa::path(get, path = "/admin/usage/summary", tag = "usage", params(UsageFilter), responses((status = 200, description = "Sums grouped by `group_by`"), crate::openapi::Errors))]
pub async fn summary(
    _: Admin,
    State(state): State<AppState>,
    Q(f): Q<UsageFilter>,
) -> ApiResult<Json<serde_json::Value>> {
    if f.limit.is_some() || f.after.is_some() {
        return Err(ApiError::invalid(
            "a summary is not paginated",
            Some("limit"),
        ));
    }
    let filter = f.parsed()?;
    Ok(Json(
        summary_answer(&state, &filter, f.group_by.as_deref()).await?,
    ))
}

/// A summary's answer: a row per group, sorted, and the whole range's
/// `total` (every group's sums and histogram added up). Operators' and key
/// holders' summaries both answer it.
pub async fn summary_answer(
    state: &AppState,
    filter: &Filter,
    group_by: Option<&str>,
) -> ApiResult<serde_json::Value> {
    let group = parse_group(group_by)?;
    let sums = super::summary::summarise(&state.db, filter, group).await?;
    let mut all = Sums::default();
    for t in sums.values() {
        all.merge(t);
    }
    let mut rows: Vec<SummaryRow> = sums
        .into_iter()
        .map(|(grp, t)| SummaryRow::of(label(group, grp), &t))
        .collect();
    rows.sort_by(|a, b| a.group.cmp(&b.group));
    Ok(serde_json::json!({
        "object": "list",
        "group_by": group_by.unwrap_or("model"),
        "data": rows,
        "total": SummaryRow::of("total".into(), &all),
    }))
}

impl SummaryRow {
    fn of(group: String, t: &Sums) -> SummaryRow {
        SummaryRow {
            latency_p50_ms: t.percentile(0.50),
            latency_p95_ms: t.percentile(0.95),
            group,
            requests: t.requests,
            errors: t.errors,
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
            cost_usd: nanos_to_usd(t.cost_nanos),
        }
    }
}

/// The nearest-rank `p` quantile of `(value, count)` pairs in value order.
fn quantile(counts: &[(i64, i64)], p: f64) -> Option<i64> {
    let total: i64 = counts.iter().map(|c| c.1).sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * p).ceil().max(1.0) as i64;
    let mut seen = 0;
    counts.iter().find_map(|&(v, n)| {
        seen += n;
        (seen >= rank).then_some(v)
    })
}

/// `GET /admin/usage/streams`: what the rollup does not keep, over the
/// filter's range from the records: the time to first token of streams
/// (exact p50/p95) and the tokens that were estimated.
#[utoipa::path(get, path = "/admin/usage/streams", tag = "usage", params(UsageFilter), responses((status = 200, description = "Streaming usage"), crate::openapi::Errors))]
pub async fn streams(
    _: Admin,
    State(state): State<AppState>,
    Q(f): Q<UsageFilter>,
) -> ApiResult<Json<serde_json::Value>> {
    for (set, name) in [
        (f.limit.is_some(), "limit"),
        (f.after.is_some(), "after"),
        (f.group_by.is_some(), "group_by"),
    ] {
        if set {
            return Err(ApiError::invalid(
                format!("`{name}` does not apply to /admin/usage/streams"),
                Some(name),
            ));
        }
    }
    let filter = f.parsed()?;
    let counts: Vec<(i64, i64)> = usage_streams::ttft_counts(&state.db, &filter)
        .await?
        .into_iter()
        .map(|c| (c.ttft_ms, c.n))
        .collect();
    let share = usage_streams::token_share(&state.db, &filter).await?;
    Ok(Json(serde_json::json!({
        "object": "usage.streams",
        "streams": counts.iter().map(|c| c.1).sum::<i64>(),
        "ttft_p50_ms": quantile(&counts, 0.50),
        "ttft_p95_ms": quantile(&counts, 0.95),
        "tokens": share.tokens(),
        "estimated_tokens": share.estimated(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_the_nearest_rank() {
        let counts = [(10, 50), (20, 45), (900, 5)];
        assert_eq!(quantile(&counts, 0.50), Some(10));
        assert_eq!(quantile(&counts, 0.95), Some(20));
        assert_eq!(quantile(&counts, 0.96), Some(900));
        assert_eq!(quantile(&[(7, 1)], 0.95), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn days_are_dates() {
        assert_eq!(day_string(0), "1970-01-01");
        assert_eq!(day_string(19_723), "2024-01-01");
        assert_eq!(day_string(20_783), "2026-11-26");
        assert_eq!(day_string(-1), "1969-12-31");
    }
}
