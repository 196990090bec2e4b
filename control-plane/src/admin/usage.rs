//! Usage for operators: every record with filters, and summaries grouped by
//! model, key, account or day, with latency percentiles.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use crate::auth::Admin;
use crate::db::usage::{Row, COLUMNS};
use crate::error::{ApiError, ApiResult, Q};
use crate::state::AppState;
use crate::usage_record::{cursor, Record};
use crate::util::{nanos_to_usd, List, PageQuery};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageFilter {
    key_id: Option<String>,
    account_id: Option<String>,
    model: Option<String>,
    /// Unix seconds, inclusive.
    since: Option<i64>,
    /// Unix seconds, exclusive.
    until: Option<i64>,
    limit: Option<String>,
    after: Option<String>,
    group_by: Option<String>,
}

/// A query with `$n` placeholders numbered as values are pushed. (sqlx's
/// `QueryBuilder` writes `?` for the Any driver, which PostgreSQL refuses.)
struct Sql {
    text: String,
    values: Vec<Value>,
}

enum Value {
    Text(String),
    Int(i64),
}

impl Sql {
    fn new(text: impl Into<String>) -> Sql {
        Sql {
            text: text.into(),
            values: Vec::new(),
        }
    }

    fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    fn push_bind(&mut self, value: Value) -> &mut Sql {
        self.values.push(value);
        self.text.push_str(&format!("${}", self.values.len()));
        self
    }

    async fn fetch_all<T>(&self, state: &AppState) -> ApiResult<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin,
    {
        let mut q = sqlx::query_as::<_, T>(&self.text);
        for v in &self.values {
            q = match v {
                Value::Text(s) => q.bind(s.clone()),
                Value::Int(i) => q.bind(*i),
            };
        }
        Ok(q.fetch_all(&state.db.pool).await?)
    }
}

impl UsageFilter {
    fn push_where(&self, q: &mut Sql) -> ApiResult<()> {
        q.push(" WHERE 1 = 1");
        for (column, value) in [
            ("key_id", &self.key_id),
            ("account_id", &self.account_id),
            ("model", &self.model),
        ] {
            if let Some(v) = value {
                // Column names are this list's constants; the value is bound.
                q.push(" AND ")
                    .push(column)
                    .push(" = ")
                    .push_bind(Value::Text(v.clone()));
            }
        }
        let ms = |s: i64, name: &str| {
            s.checked_mul(1000).ok_or_else(|| {
                ApiError::invalid(format!("`{name}` must be unix seconds"), Some(name))
            })
        };
        if let Some(s) = self.since {
            q.push(" AND created_at_ms >= ")
                .push_bind(Value::Int(ms(s, "since")?));
        }
        if let Some(s) = self.until {
            q.push(" AND created_at_ms < ")
                .push_bind(Value::Int(ms(s, "until")?));
        }
        Ok(())
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

#[derive(Debug, sqlx::FromRow)]
struct AdminRow {
    #[sqlx(flatten)]
    row: Row,
    account_id: String,
    upstream_model: String,
    provider: String,
}

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
    let mut q = Sql::new(format!(
        "SELECT {COLUMNS}, account_id, upstream_model, provider FROM usage_records"
    ));
    f.push_where(&mut q)?;
    q.push(" AND id < ").push_bind(Value::Int(before));
    q.push(" ORDER BY id DESC LIMIT ")
        .push_bind(Value::Int(limit + 1));
    let rows: Vec<AdminRow> = q.fetch_all(&state).await?;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupBy {
    Model,
    Key,
    Account,
    Day,
}

impl GroupBy {
    fn parse(s: Option<&str>) -> ApiResult<GroupBy> {
        match s.unwrap_or("model") {
            "model" => Ok(GroupBy::Model),
            "key" => Ok(GroupBy::Key),
            "account" => Ok(GroupBy::Account),
            "day" => Ok(GroupBy::Day),
            _ => Err(ApiError::invalid(
                "`group_by` must be model, key, account or day",
                Some("group_by"),
            )),
        }
    }

    /// A text expression, the same on both backends.
    fn expr(self) -> &'static str {
        match self {
            GroupBy::Model => "model",
            GroupBy::Key => "key_id",
            GroupBy::Account => "account_id",
            GroupBy::Day => "CAST(created_at_ms / 86400000 AS TEXT)",
        }
    }

    fn label(self, raw: String) -> String {
        match self {
            GroupBy::Day => raw.parse::<i64>().map(day_string).unwrap_or(raw),
            _ => raw,
        }
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

#[derive(Debug, sqlx::FromRow)]
struct Totals {
    grp: String,
    requests: i64,
    errors: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost_nanos: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct LatencyCount {
    grp: String,
    latency_ms: i64,
    n: i64,
}

/// The smallest latency at or above the `p` quantile of a sorted histogram.
fn percentile(histogram: &[(i64, i64)], total: i64, p: f64) -> i64 {
    let rank = ((total as f64) * p).ceil().max(1.0) as i64;
    let mut seen = 0;
    for &(latency, n) in histogram {
        seen += n;
        if seen >= rank {
            return latency;
        }
    }
    histogram.last().map_or(0, |&(l, _)| l)
}

/// Totals in one grouped scan, and exact latency percentiles from a second
/// grouped scan by (group, latency): milliseconds take few distinct values,
/// so the histogram stays small however many records there are, and both
/// backends run the same SQL (SQLite has no percentile function).
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
    let group = GroupBy::parse(f.group_by.as_deref())?;
    let g = group.expr();
    let mut q = Sql::new(format!(
        "SELECT {g} AS grp, COUNT(*) AS requests, \
         CAST(COALESCE(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors, \
         CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens, \
         CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, \
         CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost_nanos FROM usage_records"
    ));
    f.push_where(&mut q)?;
    q.push(" GROUP BY ").push(g);
    let totals: Vec<Totals> = q.fetch_all(&state).await?;

    let mut q = Sql::new(format!(
        "SELECT {g} AS grp, latency_ms, COUNT(*) AS n FROM usage_records"
    ));
    f.push_where(&mut q)?;
    q.push(" GROUP BY ")
        .push(g)
        .push(", latency_ms ORDER BY 1, 2");
    let counts: Vec<LatencyCount> = q.fetch_all(&state).await?;
    let mut histograms: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for c in counts {
        histograms
            .entry(c.grp)
            .or_default()
            .push((c.latency_ms, c.n));
    }

    let mut rows: Vec<SummaryRow> = totals
        .into_iter()
        .map(|t| {
            let h = histograms
                .get(&t.grp)
                .map(Vec::as_slice)
                .unwrap_or_default();
            SummaryRow {
                latency_p50_ms: percentile(h, t.requests, 0.50),
                latency_p95_ms: percentile(h, t.requests, 0.95),
                group: group.label(t.grp),
                requests: t.requests,
                errors: t.errors,
                input_tokens: t.input_tokens,
                output_tokens: t.output_tokens,
                cost_usd: nanos_to_usd(t.cost_nanos),
            }
        })
        .collect();
    rows.sort_by(|a, b| a.group.cmp(&b.group));
    Ok(Json(
        serde_json::json!({"object": "list", "group_by": f.group_by.as_deref().unwrap_or("model"), "data": rows}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_dates() {
        assert_eq!(day_string(0), "1970-01-01");
        assert_eq!(day_string(19_723), "2024-01-01");
        assert_eq!(day_string(20_783), "2026-11-26");
        assert_eq!(day_string(-1), "1969-12-31");
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let h = [(1, 50), (2, 45), (100, 5)];
        assert_eq!(percentile(&h, 100, 0.50), 1);
        assert_eq!(percentile(&h, 100, 0.95), 2);
        assert_eq!(percentile(&h, 100, 0.96), 100);
        assert_eq!(percentile(&[], 0, 0.5), 0);
        assert_eq!(percentile(&[(7, 1)], 1, 0.95), 7);
    }
}
