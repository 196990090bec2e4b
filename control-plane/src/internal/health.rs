//! `POST /internal/health`: a filter's report of the deployments with a
//! health mark in its Envoy (`deployment_health.rs`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use tollgate_contract::health::{HealthReport, MAX_REPORTED};

use crate::auth::Filter;
use crate::clock::now_ms;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::state::AppState;

pub async fn report(
    _: Filter,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let report: HealthReport = parse_json(&body)?;
    if report.deployments.len() > MAX_REPORTED {
        return Err(ApiError::invalid(
            format!("`deployments` must list at most {MAX_REPORTED}"),
            Some("deployments"),
        ));
    }
    if report.reporter.is_empty() || report.reporter.len() > 64 {
        return Err(ApiError::invalid(
            "`reporter` must be 1 to 64 bytes",
            Some("reporter"),
        ));
    }
    if report.deployments.iter().any(|d| d.model.len() > 256) {
        return Err(ApiError::invalid(
            "`model` must be at most 256 bytes",
            Some("deployments"),
        ));
    }
    state
        .deployment_health
        .record(&report.reporter, report.deployments, now_ms());
    Ok(StatusCode::NO_CONTENT)
}
