//! The config snapshot: everything the filter needs to decide a request, sent
//! whole by the control plane on `GET /internal/config` and swapped whole by
//! the filter. Unknown fields are refused so that a filter never half-reads a
//! snapshot from a newer control plane without saying so.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Opaque to the filter: it asks for any version other than the one it has.
    pub version: u64,
    pub keys: Vec<Key>,
    /// Accounts that have a balance or limits; others need no entry.
    #[serde(default)]
    pub accounts: Vec<Account>,
    pub models: Vec<Model>,
    pub providers: Vec<Provider>,
    #[serde(default)]
    pub settings: Settings,
    /// When not 0, `keys` is empty and the keys come in this many pages
    /// (`KeyPage`) from `GET /internal/config/keys?version=&page=`, so that a
    /// filter applies a large snapshot a page at a time instead of parsing it
    /// all in one go on a thread that serves requests.
    #[serde(default)]
    pub key_pages: u32,
    /// The model groups keys belong to (`Key::group`), so that a model
    /// outside a key's group answers as one that does not exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
}

/// A model group: the models its accounts' keys may see at all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub id: String,
    pub models: Vec<String>,
}

/// One page of a paged snapshot's keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPage {
    pub keys: Vec<Key>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Key {
    pub id: String,
    /// Lower-case hex SHA-256 of the secret (`key::hash`).
    pub hash: String,
    pub account_id: String,
    /// Public model ids this key may use; `None` means every model.
    pub models: Option<Vec<String>>,
    /// Unix seconds; the key stops working at this time.
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub rpm: Option<u32>,
    #[serde(default)]
    pub tpm: Option<u64>,
    #[serde(default)]
    pub max_concurrent: Option<u32>,
    /// Nano-dollars this key may spend in all; `None`: no budget.
    #[serde(default)]
    pub budget_nanos: Option<u64>,
    /// Nano-dollars spent as of this snapshot.
    #[serde(default)]
    pub spent_nanos: u64,
    /// The group of the key's account; `models` is already narrowed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// Limits over all of an account's keys, and its balance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub id: String,
    /// Nano-dollars left as of this snapshot (may be below 0 after the last
    /// requests were billed); `None`: unlimited.
    #[serde(default)]
    pub balance_nanos: Option<i64>,
    /// Nano-dollars spent as of this snapshot (what the balance went down by:
    /// the filter tells new spend from a credit with it).
    #[serde(default)]
    pub spent_nanos: u64,
    #[serde(default)]
    pub rpm: Option<u32>,
    #[serde(default)]
    pub tpm: Option<u64>,
    #[serde(default)]
    pub max_concurrent: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub id: String,
    pub deployments: Vec<Deployment>,
    /// Prices in nano-dollars per million tokens.
    #[serde(default)]
    pub input_nanos_per_1m: u64,
    #[serde(default)]
    pub output_nanos_per_1m: u64,
    /// Failover routes, one per deployment (`routes[k]` starts at
    /// `deployments[k]`); empty where the control plane serves no clusters
    /// (then the request goes to its one deployment through the forward proxy).
    /// The most deployments one request to this model tries (1 to
    /// [`MAX_ATTEMPTS`]; 1: no failover). Left out at the default.
    #[serde(
        default = "default_attempts",
        skip_serializing_if = "is_default_attempts"
    )]
    pub max_attempts: u32,
    /// How the first choice is made among the usable deployments of the
    /// best priority. Left out at the default.
    #[serde(default, skip_serializing_if = "Strategy::is_default")]
    pub strategy: Strategy,
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// An Envoy cluster the control plane serves over CDS for one first choice
/// of a model: the deployments it tries, in order, one per priority level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The cluster's name: a hash of everything in it, so that a changed
    /// deployment is a new name (the filter waits until Envoy has it).
    pub cluster: String,
    /// Indices into the model's `deployments`, the first choice first.
    pub attempts: Vec<u32>,
}

/// The most deployments one request tries, whatever a model says.
pub const MAX_ATTEMPTS: usize = 5;

/// How a model's first choice is made among the usable deployments of its
/// best priority.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Shared by weight.
    #[default]
    Weighted,
    /// The first in the model's list, always (weights ignored).
    Priority,
    /// The one with the lowest moving average of time to the response
    /// headers, with one request in ten chosen by weight so that the others
    /// keep being measured.
    LeastLatency,
}

impl Strategy {
    pub fn is_default(&self) -> bool {
        *self == Strategy::Weighted
    }

    pub fn parse(s: &str) -> Option<Strategy> {
        match s {
            "weighted" => Some(Strategy::Weighted),
            "priority" => Some(Strategy::Priority),
            "least_latency" => Some(Strategy::LeastLatency),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Weighted => "weighted",
            Strategy::Priority => "priority",
            Strategy::LeastLatency => "least_latency",
        }
    }
}

/// Deployments a request tries when its model does not say.
pub const DEFAULT_ATTEMPTS: u32 = 3;

fn default_attempts() -> u32 {
    DEFAULT_ATTEMPTS
}

fn is_default_attempts(n: &u32) -> bool {
    *n == DEFAULT_ATTEMPTS
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    pub provider: String,
    pub upstream_model: String,
    pub weight: u32,
    /// Lower is tried first; weights share traffic within one priority.
    pub priority: u32,
    /// Response headers must come within this long, else the request is
    /// tried on the next deployment (504 when none is left).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_timeout_ms: Option<u32>,
    /// Once response headers came, the longest silence between two pieces
    /// of the body before the gateway ends the response (a stalled stream
    /// ends without its last event, and its usage record says `cut`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub id: String,
    pub kind: String,
    /// `http(s)://host[:port][/path]`, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The credential sent upstream as `Authorization: Bearer`; empty for
    /// none. Unused when `credentials` is not empty.
    pub api_key: String,
    /// The provider's key pool, in order (issue 11, rule 5): requests
    /// rotate over the ones not disabled. Empty: `api_key` alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<Credential>,
}

/// One credential of a provider's key pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// Its id in the admin API (not secret).
    pub id: String,
    pub key: String,
    /// Goes up each time an admin changes the credential, so that a mark
    /// the filter set on an older one (benched, disabled) no longer holds.
    pub generation: u32,
    /// Disabled after a 401/403 until an admin changes it: never sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub max_body_bytes: u64,
    /// Refuse to connect a provider whose name resolves to a loopback or
    /// private address (link-local is refused always).
    #[serde(default)]
    pub refuse_private_upstreams: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_body_bytes: 4 * 1024 * 1024,
            refuse_private_upstreams: false,
        }
    }
}
