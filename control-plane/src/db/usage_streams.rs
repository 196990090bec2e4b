//! What the rollup does not keep, read from the records over a range: the
//! time to first token of streams (counts per millisecond value, like
//! `usage_report::latency_counts`) and how many tokens were estimated.
//! One grouped scan each of the range's records (`usage_created` index).

use super::usage_filter::{Filter, Sql};
use super::Db;
use crate::error::ApiResult;

#[derive(Debug, sqlx::FromRow)]
pub struct TtftCount {
    pub ttft_ms: i64,
    pub n: i64,
}

/// How many streams of the range had each time to first token.
pub async fn ttft_counts(db: &Db, f: &Filter) -> ApiResult<Vec<TtftCount>> {
    let mut q = Sql::new("SELECT ttft_ms, COUNT(*) AS n FROM usage_records");
    q.push_where(f)
        .push(" AND ttft_ms IS NOT NULL GROUP BY ttft_ms ORDER BY 1");
    q.fetch_all(db).await
}

#[derive(Debug, Default, sqlx::FromRow)]
pub struct TokenShare {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub estimated_input: i64,
    pub estimated_output: i64,
}

impl TokenShare {
    pub fn tokens(&self) -> i64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    pub fn estimated(&self) -> i64 {
        self.estimated_input.saturating_add(self.estimated_output)
    }
}

/// The tokens of the range, and those of them that were estimated (no
/// usage from the upstream). Summed per column, never added per row (a
/// record's counts may be near the BIGINT bound).
pub async fn token_share(db: &Db, f: &Filter) -> ApiResult<TokenShare> {
    let mut q = Sql::new(
        "SELECT CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens, \
         CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, \
         CAST(COALESCE(SUM(CASE WHEN estimated <> 0 THEN input_tokens ELSE 0 END), 0) AS BIGINT) \
         AS estimated_input, \
         CAST(COALESCE(SUM(CASE WHEN estimated <> 0 THEN output_tokens ELSE 0 END), 0) AS BIGINT) \
         AS estimated_output FROM usage_records",
    );
    q.push_where(f);
    let mut rows: Vec<TokenShare> = q.fetch_all(db).await?;
    Ok(rows.pop().unwrap_or_default())
}
