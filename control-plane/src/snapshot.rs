//! The config snapshot the filter runs on, read whole from the database:
//! live keys, accounts with a balance or a limit, models with their
//! deployments, providers with their credentials opened. A row that cannot
//! be read is left out (and logged) rather than stopping every other change
//! from being published.

use std::collections::HashMap;

use axum::body::Bytes;
use tollgate_contract::snapshot::{
    Account, Credential, Deployment, Key, KeyPage, Model, Provider, Settings, Snapshot, Strategy,
    DEFAULT_ATTEMPTS,
};

use crate::config_channel::Published;
use crate::db::{self, Db};
use crate::error::{ApiError, ApiResult};
use crate::secrets::Sealer;

/// Reads everything the filter needs, in pages of `page_keys` keys when
/// there are more, and stamps it with the hash of its content.
#[tracing::instrument(name = "snapshot.build", skip_all)]
pub async fn build(
    db: &Db,
    sealer: &Sealer,
    page_keys: usize,
    refuse_private_upstreams: bool,
) -> ApiResult<Published> {
    let groups = Groups::read(db).await?;
    let keys: Vec<Key> = db::keys::live(db)
        .await?
        .into_iter()
        .filter_map(|k| key(k, &groups))
        .collect();
    let providers: Vec<Provider> = db::providers::all(db)
        .await?
        .into_iter()
        .filter_map(|p| provider(p, sealer))
        .collect();
    let mut models: Vec<Model> = db::models::all(db)
        .await?
        .into_iter()
        .filter_map(model)
        .collect();
    let accounts = db::accounts::limited(db)
        .await?
        .into_iter()
        .map(account)
        .collect();
    let clusters = crate::cds::plan(&mut models, &providers);
    let key_count = keys.len();
    let (keys, pages) = paginate(keys, page_keys)?;
    let snapshot = Snapshot {
        version: 0,
        keys,
        accounts,
        models,
        providers,
        settings: Settings {
            refuse_private_upstreams,
            ..Settings::default()
        },
        key_pages: u32::try_from(pages.len()).map_err(|_| internal("too many key pages"))?,
        groups: groups.snapshot(),
    };
    stamp(&snapshot, pages, key_count, clusters)
}

fn internal(what: &str) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("{what}"))
}

/// A stored limit as the filter takes it: 0 (a paused key or account) and
/// up; a negative value from an older row reads as 0, the safe direction,
/// and one out of range is clamped, never wrapped.
fn limit_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

fn limit_u64(v: i64) -> u64 {
    u64::try_from(v.max(0)).unwrap_or(0)
}

fn key(live: db::keys::Live, groups: &Groups) -> Option<Key> {
    let k = live.key;
    let models = match k.models() {
        Ok(models) => models,
        Err(e) => {
            tracing::error!(key = %k.id, error = %e, "key left out of the snapshot: bad models column");
            return None;
        }
    };
    let group = groups.of(&k.account_id);
    if group.is_none() && groups.member(&k.account_id) {
        // The account's group could not be read: leaving the key out is
        // the safe side (its models would otherwise widen to all).
        tracing::error!(key = %k.id, "key left out of the snapshot: its group does not read");
        return None;
    }
    // A key's own limit wins; the group's default applies where it has none.
    let default = |own: Option<i64>, pick: fn(&db::groups::Row) -> Option<i64>| {
        own.or_else(|| group.and_then(|g| pick(&g.row)))
    };
    Some(Key {
        models: db::groups::effective(group.map(|g| g.models.as_slice()), models),
        group: group.map(|g| g.row.id.clone()),
        rpm: default(k.rpm, |g| g.rpm).map(limit_u32),
        tpm: default(k.tpm, |g| g.tpm).map(limit_u64),
        max_concurrent: default(k.max_concurrent, |g| g.max_concurrent).map(limit_u32),
        id: k.id,
        hash: live.hash,
        account_id: k.account_id,
        expires_at: k.expires_at,
        // The spend the filter counts against only grows (its local count
        // rebases on it); a reset raises the budget by the spend before the
        // reset instead, so the filter needs no notion of periods.
        budget_nanos: k
            .budget_nanos
            .map(|v| (v.max(0) as u64).saturating_add(k.spent_base_nanos.max(0) as u64)),
        // Only where a budget needs it, so that spend on keys without a
        // budget does not change the snapshot at every request.
        spent_nanos: if k.budget_nanos.is_some() {
            k.spent_nanos.max(0) as u64
        } else {
            0
        },
    })
}

/// A group as the keys of its accounts take it.
struct Group {
    row: db::groups::Row,
    models: Vec<String>,
}

/// The groups and which account is in which.
struct Groups {
    by_id: HashMap<String, Group>,
    account_group: HashMap<String, String>,
}

impl Groups {
    async fn read(db: &Db) -> ApiResult<Groups> {
        let mut by_id = HashMap::new();
        for row in db::groups::all(db).await? {
            match row.models() {
                Ok(models) => {
                    by_id.insert(row.id.clone(), Group { row, models });
                }
                Err(e) => tracing::error!(group = %row.id, error = %e, "group does not read"),
            }
        }
        let account_group = db::groups::memberships(db).await?.into_iter().collect();
        Ok(Groups {
            by_id,
            account_group,
        })
    }

    /// Every group that has a member, as the filter takes it.
    fn snapshot(&self) -> Vec<tollgate_contract::snapshot::Group> {
        let used: std::collections::BTreeSet<&String> = self.account_group.values().collect();
        used.into_iter()
            .filter_map(|id| self.by_id.get(id))
            .map(|g| tollgate_contract::snapshot::Group {
                id: g.row.id.clone(),
                models: g.models.clone(),
            })
            .collect()
    }

    fn member(&self, account: &str) -> bool {
        self.account_group.contains_key(account)
    }

    fn of(&self, account: &str) -> Option<&Group> {
        self.account_group
            .get(account)
            .and_then(|g| self.by_id.get(g))
    }
}

fn account(a: db::accounts::Limited) -> Account {
    Account {
        id: a.id,
        spent_nanos: if a.balance_nanos.is_some() {
            a.spent_nanos.max(0) as u64
        } else {
            0
        },
        balance_nanos: a.balance_nanos,
        rpm: a.rpm.map(limit_u32),
        tpm: a.tpm.map(limit_u64),
        max_concurrent: a.max_concurrent.map(limit_u32),
    }
}

/// A provider with its key pool opened (a disabled credential is sent
/// marked so, for the filter to know a pool that has none left).
fn provider(p: db::providers::Row, sealer: &Sealer) -> Option<Provider> {
    let left_out = |e: String| {
        tracing::error!(provider = %p.id, error = e, "provider left out of the snapshot: credential does not open");
    };
    let pool = match p.pool() {
        Ok(pool) => pool,
        Err(e) => {
            left_out(e.to_string());
            return None;
        }
    };
    let mut credentials = Vec::with_capacity(pool.len());
    for c in pool {
        match sealer.open(&c.secret_enc) {
            Ok(key) => credentials.push(Credential {
                id: c.id,
                key,
                generation: c.generation,
                disabled: c.disabled_at_ms.is_some(),
            }),
            Err(e) => {
                left_out(format!("{e:#}"));
                return None;
            }
        }
    }
    Some(Provider {
        id: p.id,
        kind: p.kind,
        base_url: p.base_url,
        api_key: String::new(),
        credentials,
    })
}

fn model(m: db::models::Row) -> Option<Model> {
    let deployments = match m.deployments() {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(model = %m.id, error = %e, "model left out of the snapshot");
            return None;
        }
    };
    Some(Model {
        deployments: deployments
            .into_iter()
            .map(|d| Deployment {
                provider: d.provider,
                upstream_model: d.upstream_model,
                weight: d.weight,
                priority: d.priority,
                first_byte_timeout_ms: d.first_byte_timeout_ms,
                idle_timeout_ms: d.idle_timeout_ms,
            })
            .collect(),
        id: m.id,
        input_nanos_per_1m: m.input_nanos_per_1m.max(0) as u64,
        output_nanos_per_1m: m.output_nanos_per_1m.max(0) as u64,
        max_attempts: u32::try_from(m.max_attempts).unwrap_or(DEFAULT_ATTEMPTS),
        // Checked at write time; an unknown one reads as the default.
        strategy: Strategy::parse(&m.strategy).unwrap_or_default(),
        routes: Vec::new(),
    })
}

/// Many keys go in pages, which the filter applies one at a time between
/// requests instead of parsing them all in one go: the keys left in the head
/// (none when paged) and the pages.
fn paginate(keys: Vec<Key>, page_keys: usize) -> ApiResult<(Vec<Key>, Vec<Vec<u8>>)> {
    if keys.len() <= page_keys {
        return Ok((keys, Vec::new()));
    }
    let pages = keys
        .chunks(page_keys)
        .map(|chunk| {
            serde_json::to_vec(&KeyPage {
                keys: chunk.to_vec(),
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok((Vec::new(), pages))
}

/// Serialised once: `version` is the first field, so the body with version
/// 0 is hashed (with its pages) and then only its opening is rewritten.
fn stamp(
    snapshot: &Snapshot,
    pages: Vec<Vec<u8>>,
    keys: usize,
    clusters: Vec<crate::cds::ClusterSpec>,
) -> ApiResult<Published> {
    let unversioned = serde_json::to_vec(snapshot).map_err(|e| ApiError::Internal(e.into()))?;
    let version = if pages.is_empty() {
        version_of(&unversioned)
    } else {
        let mut all = unversioned.clone();
        for page in &pages {
            all.extend_from_slice(page);
        }
        version_of(&all)
    };
    const OPENING: &[u8] = b"{\"version\":0,";
    let rest = unversioned
        .strip_prefix(OPENING)
        .ok_or_else(|| internal("snapshot does not start with its version"))?;
    let mut body = format!("{{\"version\":{version},").into_bytes();
    body.extend_from_slice(rest);
    Ok(Published {
        version,
        body: Bytes::from(body),
        pages: pages.into_iter().map(Bytes::from).collect(),
        keys,
        clusters,
    })
}

fn version_of(body: &[u8]) -> u64 {
    let digest = tollgate_contract::sha256::digest(body);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // Never 0, which a filter might read as "none yet";
    // 53 bits, so that JSON tools that read numbers as doubles keep it exact.
    (u64::from_be_bytes(first) >> 11).max(1)
}
