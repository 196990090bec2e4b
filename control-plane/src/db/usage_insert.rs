//! Ingest's writes to `usage_records`, idempotent on the filter-minted
//! `request_id`: `INSERT ... ON CONFLICT DO NOTHING`, and only the rows
//! really inserted move money and reach the rollup (`rollup_writer`, which
//! adds them after the commit: on PostgreSQL from a queue row each, on
//! SQLite from above its mark). Money moves in one `UPDATE` per key and per
//! account, summed.
//!
//! The values go in as the backend takes many rows cheapest: on SQLite a
//! multi-row `VALUES` of anonymous `?` (`value_rows`), on PostgreSQL one
//! text array per column, `UNNEST`ed: 19 values bound for the whole group
//! instead of 19 per record, and one short statement text instead of one
//! of 30 kB per 200 rows that sqlx hashed and compared on every execution.

use std::collections::{BTreeMap, HashSet};

use sqlx::{Any, Row as _, Transaction};
use tollgate_contract::usage::UsageRecord;

use super::usage_filter::value_rows;
use super::{Backend, Db};
use crate::error::ApiResult;
use crate::money::MAX_BALANCE_NANOS;

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A record's cost as money moved: at most the stored maximum, so that sums
/// stay far from overflowing.
fn cost_of(v: u64) -> i64 {
    clamp(v).min(MAX_BALANCE_NANOS)
}

/// Values a row of the INSERT binds.
const VALUES_PER_ROW: usize = 19;
/// Rows per INSERT statement on SQLite: a whole batch of the filter's (200;
/// 19 values each, well under its parameter limit).
const ROWS_PER_INSERT: usize = 200;

const INSERT_RECORDS: &str = "INSERT INTO usage_records (request_id, key_id, account_id, model, \
     upstream_model, provider, status, input_tokens, output_tokens, cache_read_tokens, \
     cache_creation_tokens, estimated, stream, latency_ms, ttft_ms, cost_nanos, created_at_ms, \
     attempts, cut) ";

/// PostgreSQL: the columns as arrays, in `INSERT_RECORDS`' order.
const UNNEST: &str = "SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], \
     $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], \
     $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[], \
     $17::bigint[], $18::bigint[], $19::bigint[])";

/// A statement that inserts `records` (`tail` after its `ON CONFLICT`): on
/// PostgreSQL all of them, on SQLite at most `ROWS_PER_INSERT`.
struct Insert {
    sql: String,
    /// PostgreSQL: the column arrays' literals.
    arrays: Vec<String>,
}

impl Insert {
    fn new(backend: Backend, records: &[&UsageRecord], head: &str, tail: &str) -> Insert {
        let mut sql = String::with_capacity(head.len() + records.len() * 100 + 400);
        sql.push_str(head);
        sql.push_str(INSERT_RECORDS);
        let arrays = match backend {
            Backend::Sqlite => {
                sql.push_str("VALUES ");
                sql.push_str(&value_rows(backend, records.len(), VALUES_PER_ROW));
                Vec::new()
            }
            Backend::Postgres => {
                sql.push_str(UNNEST);
                column_arrays(records)
            }
        };
        sql.push_str(" ON CONFLICT (request_id) DO NOTHING");
        sql.push_str(tail);
        Insert { sql, arrays }
    }

    /// The statement with its values bound (text borrowed, not copied).
    fn query<'q>(
        &'q self,
        records: &[&'q UsageRecord],
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
        let mut q = sqlx::query(&self.sql);
        if !self.arrays.is_empty() {
            for a in &self.arrays {
                q = q.bind(a.as_str());
            }
            return q;
        }
        for r in records {
            q = q
                .bind(r.request_id.as_str())
                .bind(r.key_id.as_str())
                .bind(r.account_id.as_str())
                .bind(r.model.as_str())
                .bind(r.upstream_model.as_str())
                .bind(r.provider.as_str())
                .bind(i64::from(r.status))
                .bind(clamp(r.input_tokens))
                .bind(clamp(r.output_tokens))
                .bind(clamp(r.cache_read_tokens))
                .bind(clamp(r.cache_creation_tokens))
                .bind(i64::from(r.estimated))
                .bind(i64::from(r.stream))
                .bind(clamp(r.latency_ms))
                .bind(r.ttft_ms.map(clamp))
                .bind(clamp(r.cost_nanos))
                .bind(clamp(r.created_at_ms))
                .bind(i64::from(r.attempts))
                .bind(i64::from(r.cut));
        }
        q
    }
}

/// The records as one PostgreSQL array literal per column (`{"a","b"}`,
/// `{1,NULL}`): text quoted, with `"` and `\` escaped.
fn column_arrays(records: &[&UsageRecord]) -> Vec<String> {
    let mut arrays: Vec<String> = (0..VALUES_PER_ROW)
        .map(|i| String::with_capacity(2 + records.len() * if i < 6 { 24 } else { 8 }))
        .collect();
    for a in &mut arrays {
        a.push('{');
    }
    let mut digits = itoa::Buffer::new();
    for (n, r) in records.iter().enumerate() {
        let texts = [
            &r.request_id,
            &r.key_id,
            &r.account_id,
            &r.model,
            &r.upstream_model,
            &r.provider,
        ];
        let ints = [
            Some(i64::from(r.status)),
            Some(clamp(r.input_tokens)),
            Some(clamp(r.output_tokens)),
            Some(clamp(r.cache_read_tokens)),
            Some(clamp(r.cache_creation_tokens)),
            Some(i64::from(r.estimated)),
            Some(i64::from(r.stream)),
            Some(clamp(r.latency_ms)),
            r.ttft_ms.map(clamp),
            Some(clamp(r.cost_nanos)),
            Some(clamp(r.created_at_ms)),
            Some(i64::from(r.attempts)),
            Some(i64::from(r.cut)),
        ];
        let (text_arrays, int_arrays) = arrays.split_at_mut(texts.len());
        for (a, text) in text_arrays.iter_mut().zip(texts) {
            if n > 0 {
                a.push(',');
            }
            a.push('"');
            if text.contains(['"', '\\']) {
                for c in text.chars() {
                    if c == '"' || c == '\\' {
                        a.push('\\');
                    }
                    a.push(c);
                }
            } else {
                a.push_str(text);
            }
            a.push('"');
        }
        for (a, v) in int_arrays.iter_mut().zip(ints) {
            if n > 0 {
                a.push(',');
            }
            match v {
                Some(v) => a.push_str(digits.format(v)),
                None => a.push_str("NULL"),
            }
        }
    }
    for a in &mut arrays {
        a.push('}');
    }
    arrays
}

/// One batch in its own transaction; returns (inserted, already there).
pub async fn insert_batch(db: &Db, records: &[UsageRecord]) -> ApiResult<(usize, usize)> {
    if insert_all_new(db, &[records]).await? {
        return Ok((records.len(), 0));
    }
    insert_some_new(db, records).await
}

/// Inserts the batches in one transaction if none of their records is
/// stored yet (and commits); false, with nothing changed, otherwise. Most
/// batches are new records: they go in without reading anything back (on
/// PostgreSQL queued in the same statement).
pub async fn insert_all_new(db: &Db, batches: &[&[UsageRecord]]) -> ApiResult<bool> {
    let records: Vec<&UsageRecord> = batches.iter().flat_map(|b| b.iter()).collect();
    let mut tx = db.writer.begin().await?;
    let mut inserted = 0u64;
    let per_statement = match db.backend {
        Backend::Sqlite => ROWS_PER_INSERT,
        Backend::Postgres => records.len().max(1),
    };
    for chunk in records.chunks(per_statement) {
        let insert = match db.backend {
            Backend::Sqlite => Insert::new(db.backend, chunk, "", ""),
            Backend::Postgres => Insert::new(
                db.backend,
                chunk,
                "WITH ins AS (",
                " RETURNING id) INSERT INTO usage_rollup_pending (record_id) SELECT id FROM ins",
            ),
        };
        inserted += insert.query(chunk).execute(&mut *tx).await?.rows_affected();
    }
    if usize::try_from(inserted).ok() != Some(records.len()) {
        // Dropped: rolled back.
        return Ok(false);
    }
    add_spend(&mut tx, records.iter().copied()).await?;
    tx.commit().await?;
    if !records.is_empty() {
        db.rollup_due.notify_one();
    }
    Ok(true)
}

/// A batch with records already stored (a redelivery, or a request id
/// twice): inserted reading back the rows that went in, so that only those
/// move money (and, on PostgreSQL, are queued).
pub async fn insert_some_new(db: &Db, records: &[UsageRecord]) -> ApiResult<(usize, usize)> {
    let records: Vec<&UsageRecord> = records.iter().collect();
    let mut tx = db.writer.begin().await?;
    let mut inserted: HashSet<String> = HashSet::new();
    let mut ids: Vec<i64> = Vec::with_capacity(records.len());
    let per_statement = match db.backend {
        Backend::Sqlite => ROWS_PER_INSERT,
        Backend::Postgres => records.len().max(1),
    };
    for chunk in records.chunks(per_statement) {
        let insert = Insert::new(db.backend, chunk, "", " RETURNING id, request_id");
        for row in insert.query(chunk).fetch_all(&mut *tx).await? {
            ids.push(row.try_get(0)?);
            inserted.insert(row.try_get(1)?);
        }
    }
    if db.backend == Backend::Postgres && !ids.is_empty() {
        ids.sort_unstable();
        let mut array = String::from("{");
        for (n, id) in ids.iter().enumerate() {
            if n > 0 {
                array.push(',');
            }
            array.push_str(itoa::Buffer::new().format(*id));
        }
        array.push('}');
        sqlx::query(
            "INSERT INTO usage_rollup_pending (record_id) SELECT * FROM UNNEST($1::bigint[])",
        )
        .bind(array)
        .execute(&mut *tx)
        .await?;
    }
    // A request id twice in one batch counts once (its first record is the
    // one the database kept).
    let mut seen: HashSet<&str> = HashSet::new();
    add_spend(
        &mut tx,
        records.iter().copied().filter(|r| {
            inserted.contains(r.request_id.as_str()) && seen.insert(r.request_id.as_str())
        }),
    )
    .await?;
    tx.commit().await?;
    if !ids.is_empty() {
        db.rollup_due.notify_one();
    }
    let accepted = inserted.len();
    Ok((accepted, records.len() - accepted))
}

/// The records' cost added to their keys' and accounts' spend (and taken
/// from prepaid balances), one `UPDATE` per key and per account.
async fn add_spend<'r>(
    tx: &mut Transaction<'_, Any>,
    records: impl Iterator<Item = &'r UsageRecord>,
) -> ApiResult<()> {
    let mut by_key: BTreeMap<&str, i64> = BTreeMap::new();
    let mut by_account: BTreeMap<&str, i64> = BTreeMap::new();
    for r in records {
        let cost = cost_of(r.cost_nanos);
        if cost > 0 {
            let key = by_key.entry(&r.key_id).or_default();
            *key = key.saturating_add(cost).min(MAX_BALANCE_NANOS);
            let account = by_account.entry(&r.account_id).or_default();
            *account = account.saturating_add(cost).min(MAX_BALANCE_NANOS);
        }
    }
    for (key, cost) in by_key {
        // Capped at the stored maximum, compared before adding: never an
        // overflow (which SQLite turns into a REAL that no snapshot decodes).
        sqlx::query(
            "UPDATE api_keys SET spent_nanos = CASE WHEN spent_nanos > $3 THEN $4 \
             ELSE spent_nanos + $1 END WHERE id = $2",
        )
        .bind(cost)
        .bind(key)
        .bind(MAX_BALANCE_NANOS - cost)
        .bind(MAX_BALANCE_NANOS)
        .execute(&mut **tx)
        .await?;
    }
    for (account, cost) in by_account {
        sqlx::query(
            "UPDATE accounts SET \
             spent_nanos = CASE WHEN spent_nanos > $3 THEN $4 ELSE spent_nanos + $1 END, \
             balance_nanos = CASE WHEN balance_nanos IS NULL THEN NULL \
             WHEN balance_nanos < $5 THEN -$4 ELSE balance_nanos - $1 END \
             WHERE id = $2",
        )
        .bind(cost)
        .bind(account)
        .bind(MAX_BALANCE_NANOS - cost)
        .bind(MAX_BALANCE_NANOS)
        .bind(cost - MAX_BALANCE_NANOS)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
