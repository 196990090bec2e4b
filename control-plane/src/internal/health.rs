//! `POST /internal/health`: a filter's report of the deployments with a
//! health mark in its Envoy (`deployment_health.rs`) and of the provider
//! credentials it benched or disabled (`credential_health.rs`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use tollgate_contract::health::{CredentialHealth, CredentialState, HealthReport, MAX_REPORTED};

use crate::auth::Filter;
use crate::clock::now_ms;
use crate::db;
use crate::db::providers::PoolChange;
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
    if report.credentials.len() > MAX_REPORTED {
        return Err(ApiError::invalid(
            format!("`credentials` must list at most {MAX_REPORTED}"),
            Some("credentials"),
        ));
    }
    if report
        .credentials
        .iter()
        .any(|c| c.provider.len() > 256 || c.credential.len() > 256)
    {
        return Err(ApiError::invalid(
            "`provider` and `credential` must be at most 256 bytes",
            Some("credentials"),
        ));
    }
    let now = now_ms();
    state
        .credential_health
        .record(&report.reporter, &report.credentials, now);
    disable_reported(&state, &report.credentials).await?;
    state
        .deployment_health
        .record(&report.reporter, report.deployments, now);
    Ok(StatusCode::NO_CONTENT)
}

/// Writes the disables a report names to their providers' key pools (a
/// credential an admin changed since has another generation and is left
/// alone); publishes when one was written.
pub async fn disable_reported(state: &AppState, report: &[CredentialHealth]) -> ApiResult<()> {
    let mut changed = false;
    for c in report
        .iter()
        .filter(|c| c.state == CredentialState::Disabled)
    {
        changed |= disable_one(state, c).await?;
    }
    if changed {
        state.publish().await;
    }
    Ok(())
}

/// Marks one reported credential disabled, read and written as one
/// compare-and-set of the pool: an admin's change made meanwhile is read
/// again, never overwritten. True when it was written.
async fn disable_one(state: &AppState, c: &CredentialHealth) -> ApiResult<bool> {
    let now = now_ms();
    let disable = |pool: &mut Vec<db::providers::StoredCredential>| {
        let Some(stored) = pool
            .iter_mut()
            .find(|s| s.id == c.credential && s.generation == c.generation)
            .filter(|s| s.disabled_at_ms.is_none())
        else {
            return Ok(false);
        };
        stored.disabled_at_ms = Some(now);
        stored.disabled_reason = Some(format!("the upstream answered {}", c.status));
        Ok(true)
    };
    match db::providers::change_pool(&state.db, &c.provider, disable).await {
        Ok(PoolChange::Written) => {
            tracing::warn!(provider = %c.provider, credential = %c.credential, status = c.status, "provider credential disabled");
            Ok(true)
        }
        // Still changing under us: the filter reports it again with its
        // next health report (its mark stays until the generation moves).
        Ok(PoolChange::Unchanged | PoolChange::KeptChanging) | Err(ApiError::NotFound(_)) => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
