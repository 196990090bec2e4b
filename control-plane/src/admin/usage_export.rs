//! `GET /admin/usage/export.csv`: every record the usage list's filters
//! match (key, account, model, status, time range), newest first, as CSV,
//! streamed a thousand rows at a time: no cap on how many. The dashboard's
//! Export CSV downloads it with the session cookie.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};

use super::usage::UsageFilter;
use crate::auth::Admin;
use crate::db::usage_report::{self, AdminRow, Filter};
use crate::db::Db;
use crate::error::{ApiError, ApiResult, Q};
use crate::money::nanos_to_usd;
use crate::state::AppState;

const BATCH: i64 = 1000;

pub const HEADER: [&str; 16] = [
    "created_at",
    "request_id",
    "key_id",
    "account_id",
    "model",
    "provider",
    "upstream_model",
    "status",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "stream",
    "estimated",
];

/// A text cell a spreadsheet would read as a formula (`=`, `+`, `-`, `@`,
/// a tab or a carriage return first) gets a leading `'`.
fn text(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    }
}

fn cells(r: &AdminRow) -> [String; 16] {
    let row = &r.row;
    [
        (row.created_at_ms / 1000).to_string(),
        text(&row.request_id),
        text(&row.key_id),
        text(&r.account_id),
        text(&row.model),
        text(&r.provider),
        text(&r.upstream_model),
        row.status.to_string(),
        row.input_tokens.to_string(),
        row.output_tokens.to_string(),
        row.cache_read_tokens.to_string(),
        nanos_to_usd(row.cost_nanos).to_string(),
        row.latency_ms.to_string(),
        row.ttft_ms.map(|t| t.to_string()).unwrap_or_default(),
        (row.stream != 0).to_string(),
        (row.estimated != 0).to_string(),
    ]
}

/// CSV lines (the csv crate quotes what needs it).
fn csv_of<'a>(lines: impl Iterator<Item = Vec<String>> + 'a) -> ApiResult<Bytes> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for line in lines {
        w.write_record(&line)
            .map_err(|e| ApiError::Internal(e.into()))?;
    }
    w.into_inner()
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("csv: {e}")))
}

fn chunk(rows: &[AdminRow]) -> ApiResult<Bytes> {
    csv_of(rows.iter().map(|r| cells(r).to_vec()))
}

struct Next {
    db: Db,
    filter: Filter,
    /// The next batch's `before` cursor; `None` when the last was short.
    before: Option<i64>,
}

async fn next_chunk(mut s: Next) -> Option<(Result<Bytes, std::io::Error>, Next)> {
    let before = s.before?;
    match usage_report::list(&s.db, &s.filter, before, BATCH).await {
        Ok(rows) => {
            s.before = match rows.last() {
                Some(last) if rows.len() as i64 == BATCH => Some(last.row.id),
                _ => None,
            };
            if rows.is_empty() {
                return None;
            }
            Some((chunk(&rows).map_err(std::io::Error::other), s))
        }
        // Past the first batch the answer has started: the download ends
        // cut (the client sees a broken transfer, not a short file as if
        // complete).
        Err(e) => {
            tracing::warn!(error = %e, "usage export cut short");
            Some((
                Err(std::io::Error::other(e.to_string())),
                Next { before: None, ..s },
            ))
        }
    }
}

#[utoipa::path(get, path = "/admin/usage/export.csv", tag = "usage", params(UsageFilter), responses((status = 200, description = "Every matching record as CSV (text/csv), streamed", content_type = "text/csv"), crate::openapi::Errors))]
pub async fn export(
    _: Admin,
    State(state): State<AppState>,
    Q(f): Q<UsageFilter>,
) -> ApiResult<Response> {
    if f.limit.is_some() || f.after.is_some() || f.group_by.is_some() {
        return Err(ApiError::invalid(
            "the export takes the usage list's filters only (no `limit`, `after` or `group_by`)",
            Some(if f.group_by.is_some() {
                "group_by"
            } else {
                "limit"
            }),
        ));
    }
    let filter = f.parsed()?;
    // The first batch before answering, so that a database error is a 503.
    let first = usage_report::list(&state.db, &filter, i64::MAX, BATCH).await?;
    let head = csv_of(std::iter::once(
        HEADER.iter().map(|h| (*h).to_string()).collect(),
    ))?;
    let first_chunk = chunk(&first)?;
    let before = match first.last() {
        Some(last) if first.len() as i64 == BATCH => Some(last.row.id),
        _ => None,
    };
    let rest = stream::unfold(
        Next {
            db: state.db.clone(),
            filter,
            before,
        },
        next_chunk,
    );
    let body = stream::iter([Ok::<Bytes, std::io::Error>(head), Ok(first_chunk)]).chain(rest);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tollgate-usage.csv\"",
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused_and_quoting_is_the_csv_crates() {
        assert_eq!(text("=cmd()"), "'=cmd()");
        assert_eq!(text("-1"), "'-1");
        assert_eq!(text("@x"), "'@x");
        assert_eq!(text("demo-chat"), "demo-chat");
        let out = csv_of(std::iter::once(vec![
            "a,b".to_string(),
            "say \"hi\"".to_string(),
            "line\nbreak".to_string(),
        ]))
        .expect("csv");
        assert_eq!(
            std::str::from_utf8(&out).expect("utf-8"),
            "\"a,b\",\"say \"\"hi\"\"\",\"line\nbreak\"\n"
        );
    }
}
