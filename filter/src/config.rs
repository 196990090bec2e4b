//! The plugin configuration, from the `configuration` of the wasm filter in
//! Envoy's config. Checked once, when it arrives: a bad one is refused (Envoy
//! then refuses the listener), never discovered by a later request.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Envoy cluster of the control plane (`/internal/config`).
    pub control_plane_cluster: String,
    /// `:authority` sent with the control-plane calls.
    #[serde(default = "default_authority")]
    pub control_plane_authority: String,
    /// Shared secret for the filter channel and the identity headers. Best
    /// left out: then it is read from the VM's environment variable
    /// `TOLLGATE_FILTER_SECRET` (`vm_config.environment_variables`), so that
    /// it is in no config file, config dump or `WasmPlugin`.
    #[serde(default)]
    pub filter_secret: String,
    /// Cluster for plaintext providers (a dynamic forward proxy cluster).
    #[serde(default = "default_plain_cluster")]
    pub upstream_cluster: String,
    /// Cluster for TLS providers (a dynamic forward proxy cluster with TLS).
    #[serde(default = "default_tls_cluster")]
    pub upstream_tls_cluster: String,
    /// How long the control plane may hold a config poll open.
    #[serde(default = "default_poll_wait_ms")]
    pub poll_wait_ms: u64,
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
    /// Per-minute limits shared by every Envoy through leases from the
    /// control plane (Redis behind it), instead of counted in this Envoy.
    #[serde(default)]
    pub shared_limits: bool,
    /// Each usage record also goes into Envoy filter state
    /// (`wasm.tollgate_usage`) for the access log: a copy on disk if Envoy
    /// dies with records not yet shipped. It costs about 5-10 us of Envoy CPU
    /// per request (bench/README.md); `false` saves that.
    #[serde(default = "default_true")]
    pub usage_in_access_log: bool,
    /// Send models with several deployments to the failover clusters the
    /// control plane serves over CDS (docs/routing.md); only where Envoy
    /// takes its clusters from the control plane (not under Istio).
    #[serde(default)]
    pub failover: bool,
    /// Where this copy of the filter runs.
    #[serde(default)]
    pub role: Role,
    /// Per-model metrics in Envoy's stats (docs/metrics.md); `false` saves
    /// their host calls (bench/README.md has the cost).
    #[serde(default = "default_true")]
    pub metrics: bool,
    /// Also requests, tokens and cost per key (`tollgate_key_*`): one series
    /// per key and label, so off unless asked for; the per-worker bound on
    /// series (`metrics::MAX_SERIES`) holds for them too.
    #[serde(default)]
    pub metrics_per_key: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The listener's HTTP filter: the whole pipeline.
    #[default]
    Downstream,
    /// A failover cluster's upstream filter: the per-attempt rewrite.
    Upstream,
}

fn default_true() -> bool {
    true
}

fn default_authority() -> String {
    "tollgate-control-plane".to_string()
}
fn default_plain_cluster() -> String {
    "tollgate_upstream".to_string()
}
fn default_tls_cluster() -> String {
    "tollgate_upstream_tls".to_string()
}
fn default_poll_wait_ms() -> u64 {
    20_000
}
fn default_tick_ms() -> u64 {
    100
}

/// The environment variable the filter secret comes from when the plugin
/// configuration does not carry it.
pub const SECRET_ENV: &str = "TOLLGATE_FILTER_SECRET";

impl PluginConfig {
    /// Parses the configuration; the secret comes from the process
    /// environment Envoy gives the VM when the configuration has none.
    pub fn parse(raw: &[u8]) -> Result<PluginConfig, String> {
        PluginConfig::parse_with_env(raw, |name| std::env::var(name).ok())
    }

    pub fn parse_with_env(
        raw: &[u8],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<PluginConfig, String> {
        let mut config: PluginConfig =
            serde_json::from_slice(raw).map_err(|e| format!("plugin configuration: {e}"))?;
        if config.filter_secret.is_empty() {
            config.filter_secret = env(SECRET_ENV).unwrap_or_default();
        }
        if config.filter_secret.len() < 16 {
            return Err(format!(
                "plugin configuration: filter_secret (or the environment variable {SECRET_ENV}) must have at least 16 characters"
            ));
        }
        if config.control_plane_cluster.is_empty() {
            return Err("plugin configuration: control_plane_cluster is empty".into());
        }
        if !(10..=10_000).contains(&config.tick_ms) {
            return Err("plugin configuration: tick_ms must be within 10..=10000".into());
        }
        if !(1_000..=60_000).contains(&config.poll_wait_ms) {
            return Err("plugin configuration: poll_wait_ms must be within 1000..=60000".into());
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_configuration_takes_the_defaults() {
        let c = PluginConfig::parse(
            br#"{"control_plane_cluster":"cp","filter_secret":"0123456789abcdef"}"#,
        )
        .expect("config");
        assert_eq!(c.upstream_cluster, "tollgate_upstream");
        assert_eq!(c.poll_wait_ms, 20_000);
        assert!(
            c.usage_in_access_log,
            "the access-log copy is on unless turned off"
        );
        let off = PluginConfig::parse(
            br#"{"control_plane_cluster":"cp","filter_secret":"0123456789abcdef","usage_in_access_log":false}"#,
        )
        .expect("config");
        assert!(!off.usage_in_access_log);
    }

    #[test]
    fn bad_configurations_are_refused_with_the_field_named() {
        let cases: &[(&[u8], &str)] = &[
            (b"{", "plugin configuration"),
            (br#"{"control_plane_cluster":"cp"}"#, "filter_secret"),
            (
                br#"{"control_plane_cluster":"cp","filter_secret":"short"}"#,
                "at least 16",
            ),
            (
                br#"{"control_plane_cluster":"cp","filter_secret":"0123456789abcdef","typo":1}"#,
                "typo",
            ),
            (
                br#"{"control_plane_cluster":"cp","filter_secret":"0123456789abcdef","tick_ms":0}"#,
                "tick_ms",
            ),
        ];
        for (raw, want) in cases {
            let err = PluginConfig::parse_with_env(raw, |_| None).expect_err("refused");
            assert!(err.contains(want), "{err} should mention {want}");
        }
    }

    #[test]
    fn the_secret_comes_from_the_environment_when_the_configuration_has_none() {
        let raw = br#"{"control_plane_cluster":"cp"}"#;
        let env =
            |name: &str| (name == SECRET_ENV).then(|| "from-the-environment-0123".to_string());
        let c = PluginConfig::parse_with_env(raw, env).expect("config");
        assert_eq!(c.filter_secret, "from-the-environment-0123");
        // The configuration's own wins; a short one from either is refused.
        let own = br#"{"control_plane_cluster":"cp","filter_secret":"0123456789abcdef"}"#;
        assert_eq!(
            PluginConfig::parse_with_env(own, env)
                .expect("config")
                .filter_secret,
            "0123456789abcdef"
        );
        let short = |_: &str| Some("short".to_string());
        assert!(PluginConfig::parse_with_env(raw, short).is_err());
    }
}
