//! The usage queries' filter and the SQL builder they share (the reports in
//! `usage_report.rs`, the rollup in `rollup.rs`): `$n` placeholders on both
//! backends.

use sqlx::any::AnyRow;

use super::{Backend, Db};
use crate::error::ApiResult;

/// `(…), (…)`: the placeholders of a multi-row `VALUES` of `rows` rows of
/// `per_row` values. SQLite gets anonymous `?`: sqlx-sqlite looks up every
/// named parameter's name by index (`sqlite3_bind_parameter_name`, a linear
/// walk of the statement's name list), so binding n `$n` values costs n²/2
/// steps, most of ingest's time at 100 rows of 69 values.
pub(super) fn value_rows(backend: Backend, rows: usize, per_row: usize) -> String {
    let mut sql = String::with_capacity(rows * per_row * 6);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for j in 0..per_row {
            if j > 0 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&(i * per_row + j + 1).to_string());
                }
            }
        }
        sql.push(')');
    }
    sql
}

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
    pub(super) fn expr(self) -> &'static str {
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

    pub(super) fn push_where(&mut self, f: &Filter) -> &mut Sql {
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
