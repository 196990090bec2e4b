//! `usage_rollup_<view>_<span>`: per day in three views and per hour in the
//! first two (per model; per key and account; per model, key and account), the records' counts, tokens,
//! cost and a latency histogram of fixed buckets (`rollup_sql::EDGES`),
//! added to by the rollup's one writer (`rollup_writer`, from the records
//! ingest queued) and read by the summaries for whole hours and days. Counts, tokens and cost are exact sums; a percentile
//! from the histogram is the upper edge of its bucket: never below the true
//! value, and at most 26% above it in the per-model views (60 buckets,
//! edges grow by 2^(1/3); latencies over 832 s all fall in the last
//! bucket), at most about twice it in the per-key views (20 buckets of three
//! fine ones each, migration 0006: fewer columns to bind at ingest and to
//! sum in a summary).

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Row as _, Transaction};

use super::rollup_sql::{
    ADD_ON_CONFLICT, ADD_ON_CONFLICT_COARSE, BUCKETS, COARSE, EDGES, SUMS, SUMS_COARSE,
};
use super::usage_filter::{value_rows, Filter, GroupBy, Sql, Value};
use super::{Backend, Db};
use crate::error::ApiResult;

/// The views: per model; per key and account; per model, key and account.
/// The most a cell's tokens or cost hold: a balance's bound in nano-dollars
/// (the upsert in `rollup_sql.rs` saturates there too).
pub const CELL_MAX: i64 = crate::money::MAX_BALANCE_NANOS;

const MODEL_VIEW: usize = 0;
const KEY_VIEW: usize = 1;
const ALL_VIEW: usize = 2;

/// The table of a view and span (constants only: no value is ever in a
/// table name). The per-model-key-and-account view has no hourly rows
/// (`has_hours`): they would hold about a row per record.
fn table(view: usize, span: i64) -> &'static str {
    match (view, span == HOUR_MS) {
        (MODEL_VIEW, true) => "usage_rollup_model_hour",
        (MODEL_VIEW, false) => "usage_rollup_model_day",
        (KEY_VIEW, true) => "usage_rollup_key_hour",
        (KEY_VIEW, false) => "usage_rollup_key_day",
        _ => "usage_rollup_all_day",
    }
}

/// Whether a summary's view has hourly rows; without them, the whole hours
/// at the edges are read from the records.
pub fn has_hours(f: &Filter, group: GroupBy) -> bool {
    view(f, group) != ALL_VIEW
}

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;
pub const BUCKET_COUNT: usize = EDGES.len();
/// Fine buckets per coarse one (the per-key views' histogram).
const COARSE_WIDTH: usize = 3;
const COARSE_COUNT: usize = BUCKET_COUNT / COARSE_WIDTH;

/// Whether a view keeps the coarse histogram (`c00..c19`) rather than the
/// fine one (`b00..b59`): all but the per-model view.
fn coarse(view: usize) -> bool {
    view != MODEL_VIEW
}

/// The fine bucket whose upper edge a coarse one has: the last of its three.
fn coarse_top(c: usize) -> usize {
    c * COARSE_WIDTH + COARSE_WIDTH - 1
}

/// The bucket a latency falls in.
pub fn bucket(latency_ms: i64) -> usize {
    EDGES
        .iter()
        .position(|&edge| latency_ms <= edge)
        .unwrap_or(BUCKET_COUNT - 1)
}

/// The latency a bucket stands for: its upper edge.
pub fn edge(bucket: usize) -> i64 {
    EDGES
        .get(bucket)
        .copied()
        .unwrap_or(EDGES[BUCKET_COUNT - 1])
}

/// Totals and the latency histogram of a set of records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sums {
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_nanos: i64,
    pub buckets: [i64; BUCKET_COUNT],
}

impl Default for Sums {
    fn default() -> Sums {
        Sums {
            requests: 0,
            errors: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost_nanos: 0,
            buckets: [0; BUCKET_COUNT],
        }
    }
}

impl Sums {
    pub fn merge(&mut self, o: &Sums) {
        self.requests = self.requests.saturating_add(o.requests);
        self.errors = self.errors.saturating_add(o.errors);
        self.input_tokens = self.input_tokens.saturating_add(o.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(o.output_tokens);
        self.cost_nanos = self.cost_nanos.saturating_add(o.cost_nanos).min(CELL_MAX);
        for (a, b) in self.buckets.iter_mut().zip(o.buckets.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    /// Takes `o` out again: `o` is a part of what was added (the hours of a
    /// day outside a range, read as the day less them).
    pub fn less(&mut self, o: &Sums) {
        self.requests = self.requests.saturating_sub(o.requests);
        self.errors = self.errors.saturating_sub(o.errors);
        self.input_tokens = self.input_tokens.saturating_sub(o.input_tokens);
        self.output_tokens = self.output_tokens.saturating_sub(o.output_tokens);
        self.cost_nanos = self.cost_nanos.saturating_sub(o.cost_nanos);
        for (a, b) in self.buckets.iter_mut().zip(o.buckets.iter()) {
            *a = a.saturating_sub(*b);
        }
    }

    /// The upper edge of the bucket the `p` quantile falls in.
    pub fn percentile(&self, p: f64) -> i64 {
        let total: i64 = self.buckets.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = ((total as f64) * p).ceil().max(1.0) as i64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return edge(i);
            }
        }
        edge(BUCKET_COUNT - 1)
    }
}

/// What the rollup keeps of a stored record (`rollup_writer` reads them
/// back from `usage_records`, so the values are the stored ones: a JSON
/// array of [`FACT_COLUMNS`] each, all of a run in one JSON text).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Fact {
    pub id: i64,
    pub created_at_ms: i64,
    pub model: String,
    pub key_id: String,
    pub account_id: String,
    pub status: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_nanos: i64,
    pub latency_ms: i64,
}

/// The columns of a [`Fact`], in `usage_records`.
pub const FACT_COLUMNS: &str = "id, created_at_ms, model, key_id, account_id, status, \
input_tokens, output_tokens, cost_nanos, latency_ms";

/// `(view, span, start, model, key, account)`: one row of the rollup, its
/// text borrowed from the records being added.
type Cell<'a> = (usize, i64, i64, &'a str, &'a str, &'a str);

/// Rows per upsert (69 values each in the per-model views, 29 in the
/// others).
const CELLS_PER_UPSERT: usize = 100;

fn values_per_cell(view: usize) -> usize {
    9 + if coarse(view) {
        COARSE_COUNT
    } else {
        BUCKET_COUNT
    }
}

impl Sums {
    /// Adds one record (its one latency bucket, not a whole histogram).
    fn count(&mut self, r: &Fact, bucket: usize) {
        self.requests = self.requests.saturating_add(1);
        self.errors = self.errors.saturating_add(i64::from(r.status >= 400));
        let add = |a: i64, v: i64| a.saturating_add(v.clamp(0, CELL_MAX)).min(CELL_MAX);
        self.input_tokens = add(self.input_tokens, r.input_tokens);
        self.output_tokens = add(self.output_tokens, r.output_tokens);
        self.cost_nanos = add(self.cost_nanos, r.cost_nanos);
        self.buckets[bucket] = self.buckets[bucket].saturating_add(1);
    }

    /// Adds the sums of other records, with `count`'s bounds.
    fn add(&mut self, o: &Sums) {
        let add = |a: i64, v: i64| a.saturating_add(v).min(CELL_MAX);
        self.requests = self.requests.saturating_add(o.requests);
        self.errors = self.errors.saturating_add(o.errors);
        self.input_tokens = add(self.input_tokens, o.input_tokens);
        self.output_tokens = add(self.output_tokens, o.output_tokens);
        self.cost_nanos = add(self.cost_nanos, o.cost_nanos);
        for (a, b) in self.buckets.iter_mut().zip(o.buckets.iter()) {
            *a = a.saturating_add(*b);
        }
    }
}

/// Adds the records to every cell they fall in (in the rollup writer's
/// transaction, `rollup_writer`): summed here first (cells keyed by the
/// records' own text, no copy per record), then one multi-row upsert per
/// hundred cells, in key order (so that two transactions lock rows in the
/// same order).
pub async fn add(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    records: &[Fact],
) -> ApiResult<()> {
    // Each record counted once, in its hour's cell of model, key and
    // account; those then added to the cells of the five tables.
    let mut hours: HashMap<(i64, &str, &str, &str), Sums> = HashMap::new();
    for r in records {
        let at = r.created_at_ms;
        let hour = at - at.rem_euclid(HOUR_MS);
        let key = (
            hour,
            r.model.as_str(),
            r.key_id.as_str(),
            r.account_id.as_str(),
        );
        hours.entry(key).or_default().count(r, bucket(r.latency_ms));
    }
    let mut cells: HashMap<Cell<'_>, Sums> = HashMap::new();
    for ((hour, model, key, account), sums) in &hours {
        let day = hour - hour.rem_euclid(DAY_MS);
        for cell in [
            (MODEL_VIEW, HOUR_MS, *hour, *model, "", ""),
            (MODEL_VIEW, DAY_MS, day, *model, "", ""),
            (KEY_VIEW, HOUR_MS, *hour, "", *key, *account),
            (KEY_VIEW, DAY_MS, day, "", *key, *account),
            (ALL_VIEW, DAY_MS, day, *model, *key, *account),
        ] {
            cells.entry(cell).or_default().add(sums);
        }
    }
    let mut cells: Vec<(Cell<'_>, Sums)> = cells.into_iter().collect();
    cells.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    // Cells are in (view, span) order: each table's run, a hundred at a time.
    let runs = cells.chunk_by(|a, b| (a.0 .0, a.0 .1) == (b.0 .0, b.0 .1));
    for chunk in runs.flat_map(|run| run.chunks(CELLS_PER_UPSERT)) {
        let Some(((view, span, ..), _)) = chunk.first() else {
            continue;
        };
        let mut sql = String::from("INSERT INTO ");
        sql.push_str(table(*view, *span));
        sql.push_str(
            " AS r (start_ms, model, key_id, account_id, requests, errors, \
             input_tokens, output_tokens, cost_nanos, ",
        );
        let is_coarse = coarse(*view);
        sql.push_str(if is_coarse { COARSE } else { BUCKETS });
        sql.push_str(") VALUES ");
        sql.push_str(&value_rows(backend, chunk.len(), values_per_cell(*view)));
        sql.push_str(" ON CONFLICT (start_ms, model, key_id, account_id) DO UPDATE SET ");
        sql.push_str(if is_coarse {
            ADD_ON_CONFLICT_COARSE
        } else {
            ADD_ON_CONFLICT
        });
        let mut q = sqlx::query(&sql);
        for ((_, _, start, model, key, account), s) in chunk {
            q = q
                .bind(*start)
                .bind(*model)
                .bind(*key)
                .bind(*account)
                .bind(s.requests)
                .bind(s.errors)
                .bind(s.input_tokens)
                .bind(s.output_tokens)
                .bind(s.cost_nanos);
            if is_coarse {
                for fine in s.buckets.chunks(COARSE_WIDTH) {
                    q = q.bind(fine.iter().fold(0i64, |a, n| a.saturating_add(*n)));
                }
            } else {
                for n in s.buckets {
                    q = q.bind(n);
                }
            }
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Which view of the rollup a summary reads: the smallest that has every
/// column its grouping and filters need.
fn view(f: &Filter, group: GroupBy) -> usize {
    let by_model = group == GroupBy::Model || f.model.is_some();
    let by_key = matches!(group, GroupBy::Key | GroupBy::Account)
        || f.key_id.is_some()
        || f.account_id.is_some();
    match (by_model, by_key) {
        (true, true) => ALL_VIEW,
        (true, false) | (false, false) => MODEL_VIEW,
        (false, true) => KEY_VIEW,
    }
}

/// Where a summary over its view counts a record of fine latency bucket
/// `b`: the coarse views keep each fine bucket's count at the top of its
/// three (what a record read back must be taken out at).
pub fn slot(f: &Filter, group: GroupBy, b: usize) -> usize {
    if coarse(view(f, group)) {
        coarse_top(b / COARSE_WIDTH)
    } else {
        b
    }
}

fn group_expr(group: GroupBy) -> &'static str {
    match group {
        GroupBy::Model => "model",
        GroupBy::Key => "key_id",
        GroupBy::Account => "account_id",
        GroupBy::Hour => "CAST(start_ms / 3600000 AS TEXT)",
        GroupBy::Day => "CAST(start_ms / 86400000 AS TEXT)",
    }
}

pub struct GroupSums {
    pub grp: String,
    pub sums: Sums,
}

impl<'r> sqlx::FromRow<'r, AnyRow> for GroupSums {
    fn from_row(row: &'r AnyRow) -> Result<GroupSums, sqlx::Error> {
        let mut sums = Sums {
            requests: row.try_get(1)?,
            errors: row.try_get(2)?,
            input_tokens: row.try_get(3)?,
            output_tokens: row.try_get(4)?,
            cost_nanos: row.try_get(5)?,
            ..Sums::default()
        };
        // A coarse histogram's count stands at the top fine bucket of its
        // three (its upper edge).
        let coarse = row.len() == 6 + COARSE_COUNT;
        let stored = if coarse { COARSE_COUNT } else { BUCKET_COUNT };
        for i in 0..stored {
            let at = if coarse { coarse_top(i) } else { i };
            sums.buckets[at] = row.try_get(6 + i)?;
        }
        Ok(GroupSums {
            grp: row.try_get(0)?,
            sums,
        })
    }
}

/// The sums per group of the cells of `span` that start in `[from, to)`,
/// under the filter's key, account and model.
pub async fn read(
    db: &Db,
    f: &Filter,
    group: GroupBy,
    span: i64,
    from_ms: i64,
    to_ms: i64,
) -> ApiResult<Vec<GroupSums>> {
    let g = group_expr(group);
    let v = view(f, group);
    let mut q = Sql::new("SELECT ");
    q.push(g)
        .push(" AS grp, ")
        .push(if coarse(v) { SUMS_COARSE } else { SUMS });
    q.push(" FROM ").push(table(v, span));
    q.push(" WHERE 1 = 1");
    q.push(" AND start_ms >= ").push_bind(Value::Int(from_ms));
    q.push(" AND start_ms < ").push_bind(Value::Int(to_ms));
    q.push_equals(f);
    q.push(" GROUP BY ").push(g);
    q.fetch_all(db).await
}

#[cfg(test)]
#[path = "rollup_tests.rs"]
mod tests;
