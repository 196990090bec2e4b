//! What `POST /internal/health` takes: the deployments of failover models
//! that have a health mark in one Envoy's shared data (every other
//! deployment is healthy as that Envoy sees it).

use serde::{Deserialize, Serialize};

/// Failures in a row that cool a deployment down; when its cool-down is
/// over it is probing (the filter's `health.rs`, the control plane's view).
pub const FAILURES_TO_COOL: u32 = 3;

/// The most deployments one report names; the rest are left out.
pub const MAX_REPORTED: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthReport {
    /// The worker reporting (a random id per VM): its next report replaces
    /// this one.
    pub reporter: String,
    pub deployments: Vec<DeploymentHealth>,
    /// Provider credentials with a mark in that Envoy's shared data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<CredentialHealth>,
}

/// A credential of a provider's key pool as one Envoy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialHealth {
    pub provider: String,
    pub credential: String,
    /// The `Credential::generation` the mark was set on.
    pub generation: u32,
    pub state: CredentialState,
    /// Benched until then (Unix ms); 0 when disabled.
    pub until_ms: u64,
    /// The upstream status that set the mark (429, 401, 403).
    pub status: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialState {
    /// Answered 429: not used until `until_ms`.
    Benched,
    /// Answered 401/403: not used until an admin changes it.
    Disabled,
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

impl State {
    /// As it is written in JSON and in metric labels.
    pub fn name(self) -> &'static str {
        match self {
            State::Healthy => "healthy",
            State::Cooling => "cooling",
            State::Probing => "probing",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::State;

    #[test]
    fn a_states_name_is_how_serde_writes_it() {
        for s in [State::Healthy, State::Cooling, State::Probing] {
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(serde_json::json!(s.name()))
            );
        }
    }
}
