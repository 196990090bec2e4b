//! The snapshot as the filter uses it: compiled once when it arrives (keys
//! indexed by hash, provider URLs taken apart, credentials pre-formatted), then
//! shared read-only by every request until the next one replaces it whole. A
//! snapshot that does not compile is refused and the previous one stays.

use std::collections::HashMap;
use std::sync::Arc;

use tollgate_contract::key::KeyHash;
use tollgate_contract::snapshot::{Account, Key, Model, Settings, Snapshot};

use crate::routing::{parse_base_url, BaseUrl, ProviderKind};

#[derive(Debug)]
pub struct Upstream {
    pub id: String,
    pub kind: ProviderKind,
    pub base: BaseUrl,
    /// The credential header and its value (`authorization: Bearer <key>`,
    /// `x-api-key`, `api-key`), or `None` when the provider needs no key.
    pub credential: Option<(&'static str, String)>,
    /// The key pool's credentials not disabled, in order (`credential` is
    /// the first); empty for a provider with one `api_key` or none.
    pub pool: Vec<PoolKey>,
    /// It has a key pool and every credential of it is disabled: none of
    /// its deployments is chosen.
    pub exhausted: bool,
}

/// One credential of a provider's key pool (`credentials.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolKey {
    pub id: String,
    pub generation: u32,
    /// The header it goes in and its value.
    pub header: (&'static str, String),
}

#[derive(Debug)]
pub struct Compiled {
    pub version: u64,
    /// By the SHA-256 of the secret, as bytes (the hex form is dropped once
    /// parsed: at 100k keys the strings alone are ~13 MB).
    pub keys: HashMap<KeyHash, Arc<Key>>,
    pub accounts: HashMap<String, Account>,
    pub models: HashMap<String, Model>,
    pub upstreams: HashMap<String, Upstream>,
    pub settings: Settings,
    /// The models of each group, by group id.
    pub groups: HashMap<String, Vec<String>>,
}

impl Compiled {
    pub fn from_json(raw: &[u8]) -> Result<Compiled, String> {
        let snapshot: Snapshot =
            serde_json::from_slice(raw).map_err(|e| format!("snapshot: {e}"))?;
        Compiled::new(snapshot)
    }

    pub fn new(mut snapshot: Snapshot) -> Result<Compiled, String> {
        let mut keys = HashMap::with_capacity(snapshot.keys.len());
        index_keys(&mut keys, std::mem::take(&mut snapshot.keys))?;
        Compiled::with_keys(snapshot, keys)
    }

    /// Compiles a snapshot whose keys were indexed already (a paged one).
    pub fn with_keys(
        snapshot: Snapshot,
        keys: HashMap<KeyHash, Arc<Key>>,
    ) -> Result<Compiled, String> {
        let mut upstreams = HashMap::with_capacity(snapshot.providers.len());
        for p in snapshot.providers {
            let base =
                parse_base_url(&p.base_url).map_err(|e| format!("provider {}: {e}", p.id))?;
            // A kind this filter does not know (a newer control plane's) takes
            // that provider out, not the whole snapshot: its models answer
            // that they have no provider.
            let Some(kind) = ProviderKind::parse(&p.kind) else {
                log::warn!(
                    "tollgate: provider {} has a kind this filter does not know ({:?}); left out",
                    p.id,
                    p.kind
                );
                continue;
            };
            let header = |key: &str| {
                if key.bytes().all(|b| b.is_ascii_graphic()) {
                    Ok(kind.credential(key))
                } else {
                    Err(format!(
                        "provider {}: a credential has characters a header cannot carry",
                        p.id
                    ))
                }
            };
            let mut pool = Vec::new();
            for c in p.credentials.iter().filter(|c| !c.disabled) {
                pool.push(PoolKey {
                    id: c.id.clone(),
                    generation: c.generation,
                    header: header(&c.key)?,
                });
            }
            let exhausted = !p.credentials.is_empty() && pool.is_empty();
            let credential = match pool.first() {
                Some(first) => Some(first.header.clone()),
                None if p.api_key.is_empty() || exhausted => None,
                None => Some(header(&p.api_key)?),
            };
            upstreams.insert(
                p.id.clone(),
                Upstream {
                    id: p.id,
                    kind,
                    base,
                    credential,
                    pool,
                    exhausted,
                },
            );
        }
        let models = snapshot
            .models
            .into_iter()
            .map(|m| (m.id.clone(), m))
            .collect();
        let accounts = snapshot
            .accounts
            .into_iter()
            .map(|a| (a.id.clone(), a))
            .collect();
        let groups = snapshot
            .groups
            .into_iter()
            .map(|g| (g.id, g.models))
            .collect();
        Ok(Compiled {
            groups,
            version: snapshot.version,
            keys,
            accounts,
            models,
            upstreams,
            settings: snapshot.settings,
        })
    }
}

/// Adds keys to an index by the binary SHA-256 of their secret, dropping the
/// hex form (at 100k keys the strings alone are ~13 MB).
pub fn index_keys(index: &mut HashMap<KeyHash, Arc<Key>>, keys: Vec<Key>) -> Result<(), String> {
    for mut k in keys {
        let hash = parse_hex32(&k.hash)
            .ok_or_else(|| format!("key {}: hash is not 64 hex digits", k.id))?;
        k.hash = String::new();
        index.insert(KeyHash(hash), Arc::new(k));
    }
    Ok(())
}

/// 64 hex digits to 32 bytes (the contract's, from the `hex` crate).
pub fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    tollgate_contract::sha256::parse_hex_digest(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_compiles_with_keys_by_hash_and_credentials_formatted() {
        let raw = br#"{"version":3,
            "keys":[{"id":"k1","hash":"00000000000000000000000000000000000000000000000000000000000000ab","account_id":"a1","models":null,"expires_at":null}],
            "models":[{"id":"m","deployments":[{"provider":"p","upstream_model":"u","weight":1,"priority":0}]}],
            "providers":[{"id":"p","kind":"openai","base_url":"http://127.0.0.1:9/v1","api_key":"sk-up"},
                         {"id":"q","kind":"openai","base_url":"https://x.example","api_key":""}]}"#;
        let c = Compiled::from_json(raw).expect("compiles");
        assert_eq!(c.version, 3);
        let mut hash = [0u8; 32];
        hash[31] = 0xab;
        assert_eq!(
            c.keys.get(&KeyHash(hash)).map(|k| k.id.as_str()),
            Some("k1")
        );
        assert!(parse_hex32("ab").is_none());
        assert!(parse_hex32(&"g".repeat(64)).is_none());
        let p = c.upstreams.get("p").expect("p");
        assert_eq!(
            p.credential,
            Some(("authorization", "Bearer sk-up".to_string()))
        );
        assert_eq!(p.base.path, "/v1");
        assert!(c.upstreams.get("q").expect("q").credential.is_none());
        assert_eq!(c.settings.max_body_bytes, 4 * 1024 * 1024);
    }

    #[test]
    fn a_bad_snapshot_is_refused_whole() {
        let cases: &[&[u8]] = &[
            b"",
            b"[]",
            br#"{"version":1,"keys":[],"models":[],"providers":[],"extra":1}"#,
            br#"{"version":1,"keys":[],"models":[],"providers":[{"id":"p","kind":"openai","base_url":"gopher://x","api_key":""}]}"#,
            br#"{"version":1,"keys":[],"models":[],"providers":[{"id":"p","kind":"openai","base_url":"http://x","api_key":"a\nb"}]}"#,
        ];
        for raw in cases {
            assert!(
                Compiled::from_json(raw).is_err(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
