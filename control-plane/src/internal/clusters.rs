//! `POST /v3/discovery:clusters`: Envoy's REST-JSON CDS poll (about once a
//! second). The answer is the failover clusters of the snapshot being
//! published, so that the clusters a filter's routes name are the ones
//! Envoy gets. It holds addresses and deployment indices, never a
//! credential, and takes no secret: Envoy's REST config source sends no
//! header of ours (the control plane's port is not behind the gateway).

use axum::extract::State;
use axum::Json;
use serde_json::Value;

use crate::cds::{self, Node};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub async fn discover(
    State(state): State<AppState>,
    Json(request): Json<Value>,
) -> ApiResult<Json<Value>> {
    let node = Node::from_request(&request).map_err(|m| ApiError::invalid(m, Some("node")))?;
    let current = state.config.current();
    Ok(Json(cds::discovery_response(
        &current.clusters,
        current.version,
        &node,
    )))
}
