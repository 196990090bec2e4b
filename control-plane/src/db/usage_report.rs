//! The operators' usage queries: every record with filters, and totals and
//! latency histograms grouped by model, key, account or day. Both backends
//! run the same SQL.

use super::usage::{Row, COLUMNS};
use super::Db;
use crate::error::ApiResult;

pub use super::usage_filter::{Filter, GroupBy, StatusFilter};
use super::usage_filter::{Sql, Value};

/// A record with what only operators see.
#[derive(Debug, sqlx::FromRow)]
pub struct AdminRow {
    #[sqlx(flatten)]
    pub row: Row,
    pub account_id: String,
    pub upstream_model: String,
    pub provider: String,
}

/// Records before the row id `before`, newest first.
pub async fn list(db: &Db, f: &Filter, before: i64, rows: i64) -> ApiResult<Vec<AdminRow>> {
    let mut q = Sql::new(format!(
        "SELECT {COLUMNS}, account_id, upstream_model, provider FROM usage_records"
    ));
    q.push_where(f);
    q.push(" AND id < ").push_bind(Value::Int(before));
    q.push(" ORDER BY id DESC LIMIT ")
        .push_bind(Value::Int(rows));
    q.fetch_all(db).await
}

#[derive(Debug, sqlx::FromRow)]
pub struct Totals {
    pub grp: String,
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_nanos: i64,
}

/// Totals per group, in one grouped scan.
pub async fn totals(db: &Db, f: &Filter, group: GroupBy) -> ApiResult<Vec<Totals>> {
    let g = group.expr();
    let mut q = Sql::new(format!(
        "SELECT {g} AS grp, COUNT(*) AS requests, \
         CAST(COALESCE(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors, \
         CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens, \
         CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, \
         CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost_nanos FROM usage_records"
    ));
    q.push_where(f).push(" GROUP BY ").push(g);
    q.fetch_all(db).await
}

#[derive(Debug, sqlx::FromRow)]
pub struct LatencyCount {
    pub grp: String,
    pub latency_ms: i64,
    pub n: i64,
}

/// How many records of each group took each latency, in (group, latency)
/// order: milliseconds take few distinct values, so this stays small however
/// many records there are (SQLite has no percentile function).
pub async fn latency_counts(db: &Db, f: &Filter, group: GroupBy) -> ApiResult<Vec<LatencyCount>> {
    let g = group.expr();
    let mut q = Sql::new(format!(
        "SELECT {g} AS grp, latency_ms, COUNT(*) AS n FROM usage_records"
    ));
    q.push_where(f)
        .push(" GROUP BY ")
        .push(g)
        .push(", latency_ms ORDER BY 1, 2");
    q.fetch_all(db).await
}
