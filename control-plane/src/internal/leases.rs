//! `POST /internal/leases`: an Envoy asks for tokens of shared per-minute
//! limits; each grant comes out of the bucket `leases::Broker` keeps.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::auth::Filter;
use crate::clock::now_ms;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::state::AppState;
use crate::validate::at_most;

const MAX_LEASES: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaseRequest {
    leases: Vec<Want>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Want {
    bucket: String,
    limit: u64,
    want: u64,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Grant {
    bucket: String,
    granted: u64,
}

#[derive(Debug, Serialize)]
pub struct Grants {
    grants: Vec<Grant>,
}

fn valid_bucket(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("k:").or_else(|| name.strip_prefix("a:")) else {
        return false;
    };
    let Some(id) = rest
        .strip_suffix(":rpm")
        .or_else(|| rest.strip_suffix(":tpm"))
    else {
        return false;
    };
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/@".contains(&b))
}

pub async fn lease(
    _: Filter,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Json<Grants>> {
    let req: LeaseRequest = parse_json(&body)?;
    at_most(req.leases.len(), MAX_LEASES, "leases per request", "leases")?;
    let now = now_ms();
    let mut grants = Vec::with_capacity(req.leases.len());
    for w in req.leases {
        if !valid_bucket(&w.bucket) || w.limit == 0 || w.limit > u64::from(u32::MAX) {
            return Err(ApiError::invalid(
                format!("bad lease {:?}", w.bucket),
                Some("leases"),
            ));
        }
        let granted = state
            .leases
            .take(&w.bucket, w.limit, w.want.min(w.limit), now)
            .await?;
        state.metrics.lease_tokens.inc_by(granted);
        grants.push(Grant {
            bucket: w.bucket,
            granted,
        });
    }
    Ok(Json(Grants { grants }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_are_checked() {
        assert!(valid_bucket("k:key_123:rpm"));
        assert!(valid_bucket("a:acct_1:tpm"));
        for bad in [
            "x:key:rpm",
            "k::rpm",
            "k:key:rph",
            "k:a b:rpm",
            "tollgate:k:key:rpm",
        ] {
            assert!(!valid_bucket(bad), "{bad}");
        }
    }
}
