//! The operators' usage queries: every record with filters, and totals and
//! latency histograms grouped by model, key, account or day. Both backends
//! run the same SQL.

use sqlx::any::AnyRow;

use super::usage::{Row, COLUMNS};
use super::Db;
use crate::error::ApiResult;

/// Which records: each field that is set narrows them.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub key_id: Option<String>,
    pub account_id: Option<String>,
    pub model: Option<String>,
    /// Inclusive.
    pub since_ms: Option<i64>,
    /// Exclusive.
    pub until_ms: Option<i64>,
    pub status: Option<StatusFilter>,
}

/// Which answers: successes (< 400), errors (>= 400), or one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Ok,
    Error,
    Exactly(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Model,
    Key,
    Account,
    Hour,
    Day,
}

impl GroupBy {
    /// A text expression, the same on both backends; `Day` is days since
    /// 1970-01-01, `Hour` hours since.
    fn expr(self) -> &'static str {
        match self {
            GroupBy::Model => "model",
            GroupBy::Key => "key_id",
            GroupBy::Account => "account_id",
            GroupBy::Hour => "CAST(created_at_ms / 3600000 AS TEXT)",
            GroupBy::Day => "CAST(created_at_ms / 86400000 AS TEXT)",
        }
    }
}

/// A query with `$n` placeholders numbered as values are pushed. (sqlx's
/// `QueryBuilder` writes `?` for the Any driver, which PostgreSQL refuses.)
pub(super) struct Sql {
    text: String,
    values: Vec<Value>,
}

pub(super) enum Value {
    Text(String),
    Int(i64),
}

impl Sql {
    pub(super) fn new(text: impl Into<String>) -> Sql {
        Sql {
            text: text.into(),
            values: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    pub(super) fn push_bind(&mut self, value: Value) -> &mut Sql {
        self.values.push(value);
        self.text.push_str(&format!("${}", self.values.len()));
        self
    }

    fn push_where(&mut self, f: &Filter) -> &mut Sql {
        self.push(" WHERE 1 = 1");
        self.push_equals(f);
        if let Some(ms) = f.since_ms {
            self.push(" AND created_at_ms >= ")
                .push_bind(Value::Int(ms));
        }
        if let Some(ms) = f.until_ms {
            self.push(" AND created_at_ms < ").push_bind(Value::Int(ms));
        }
        match f.status {
            None => {}
            Some(StatusFilter::Ok) => {
                self.push(" AND status < 400");
            }
            Some(StatusFilter::Error) => {
                self.push(" AND status >= 400");
            }
            Some(StatusFilter::Exactly(code)) => {
                self.push(" AND status = ").push_bind(Value::Int(code));
            }
        }
        self
    }

    /// ` AND column = value` for each of the key, account and model set.
    pub(super) fn push_equals(&mut self, f: &Filter) -> &mut Sql {
        for (column, value) in [
            ("key_id", &f.key_id),
            ("account_id", &f.account_id),
            ("model", &f.model),
        ] {
            if let Some(v) = value {
                // Column names are this list's constants; the value is bound.
                self.push(" AND ")
                    .push(column)
                    .push(" = ")
                    .push_bind(Value::Text(v.clone()));
            }
        }
        self
    }

    pub(super) async fn fetch_all<T>(&self, db: &Db) -> ApiResult<Vec<T>>
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
        Ok(q.fetch_all(&db.pool).await?)
    }
}

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
