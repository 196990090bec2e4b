//! A list of model ids as a JSON column (a key's allowlist, a group's
//! models), read the same way wherever it is stored.

use crate::error::{ApiError, ApiResult};

/// The `models` column: `None` for every model, else the JSON list.
pub fn decode_models(key_id: &str, raw: Option<&str>) -> ApiResult<Option<Vec<String>>> {
    raw.map(serde_json::from_str::<Vec<String>>)
        .transpose()
        .map_err(|e| {
            ApiError::Internal(anyhow::anyhow!("key {key_id} has a bad models column: {e}"))
        })
}
