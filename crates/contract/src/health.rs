//! What `POST /internal/health` takes: the deployments of failover models
//! that have a health mark in one Envoy's shared data (every other
//! deployment is healthy as that Envoy sees it).

use serde::{Deserialize, Serialize};

/// The most deployments one report names; the rest are left out.
pub const MAX_REPORTED: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthReport {
    /// The worker reporting (a random id per VM): its next report replaces
    /// this one.
    pub reporter: String,
    pub deployments: Vec<DeploymentHealth>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentHealth {
    pub model: String,
    /// Index into the model's `deployments`.
    pub deployment: u32,
    pub state: State,
    /// Cooling until then (Unix ms); 0 when not cooling.
    pub until_ms: u64,
    /// Attempts on it that failed in a row.
    pub failures: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Healthy,
    Cooling,
    Probing,
}
