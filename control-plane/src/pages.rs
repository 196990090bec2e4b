//! List pages: `?limit=&after=` in, `{"object":"list",...}` out.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

/// `?limit=&after=` on every list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// The last id of the page before.
    pub after: Option<String>,
}

impl PageQuery {
    /// The page size (default 20, at most 100).
    pub fn limit(&self) -> ApiResult<i64> {
        match self.limit.as_deref() {
            None => Ok(20),
            Some(s) => match s.parse::<i64>() {
                Ok(n) if (1..=100).contains(&n) => Ok(n),
                _ => Err(ApiError::invalid(
                    "`limit` must be an integer from 1 to 100",
                    Some("limit"),
                )),
            },
        }
    }
}

/// `{"object":"list","data":[...],"has_more":bool}`; the caller fetched
/// `limit + 1` rows so that `has_more` needs no second query.
#[derive(Debug, Serialize)]
pub struct List<T> {
    pub object: &'static str,
    pub data: Vec<T>,
    pub has_more: bool,
}

impl<T> List<T> {
    pub fn page(mut rows: Vec<T>, limit: i64) -> List<T> {
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        List {
            object: "list",
            data: rows,
            has_more,
        }
    }
}
