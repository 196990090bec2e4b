//! Rate limits, concurrency caps and budgets, kept in Envoy shared data so
//! that every worker of one Envoy sees the same counters.
//!
//! Every counter is read, changed and written back with compare-and-swap: a
//! write that lost a race is retried on the fresh value, so no admission is
//! lost between workers. Requests per minute and tokens per minute are token
//! buckets that refill continuously (`limit` per 60 s, in integer units of
//! 1/60000 token, so refill is exact); changing a limit keeps the bucket's
//! level, so it does not reset the window. Tokens are reserved when a request
//! is admitted (input estimate plus its `max_tokens`, or a default) and
//! settled with the real count when it ends, refunding or charging the
//! difference; a bucket may go into debt by at most one minute of its limit.
//!
//! With limits shared by several Envoys (`Mode::Leased`), the per-minute
//! buckets live in the control plane (in Redis when it has one): each Envoy
//! holds a lease, a balance of tokens granted to it, and admits from that
//! balance without waiting on anyone; when the balance runs low the request
//! asks for more (`LeaseWant`) and the root context fetches it in the
//! background. A bucket never leased yet admits its first request on credit,
//! claimed with the first lease. See docs/shared-limits.md.
//!
//! The logic is plain Rust over the `Store` trait; the host glue implements
//! it with `get_shared_data`/`set_shared_data`, the tests with a map.

use tollgate_contract::snapshot::{Account, Key};
use tollgate_contract::ErrorCode;

use crate::reply::Reply;

mod admit;
mod bucket;
mod lease;
mod refusal;
mod spend;

pub use admit::{admit, release, Used};
pub use bucket::Bucket;
use bucket::*;
pub use lease::grant;
use lease::*;
pub use refusal::duration;
use refusal::*;
use spend::*;

/// Units of a bucket per token: a bucket of `limit` per minute refills by
/// exactly `limit` units per millisecond.
const UNITS: i64 = 60_000;
/// Tokens reserved for the output of a request that sets no `max_tokens`.
pub const DEFAULT_OUTPUT_RESERVE: u64 = 256;
/// Compare-and-swap attempts before giving up on a counter.
const CAS_ATTEMPTS: usize = 64;
/// The version a counter's first write is made conditional on. Envoy's
/// shared data writes to a missing key whatever the version given, and
/// numbers every write from 1 up (one sequence for all keys), so a write
/// conditional on a version that no entry holds lands only while the key is
/// still missing: a create-if-absent. Without it two workers that both saw
/// the key missing both wrote, and the second erased the first's admission
/// (31 admitted of an rpm of 30, seen once in CI). The last version of the
/// sequence is held by one entry at a time, and only after 4e9 writes.
const FIRST_WRITE: u32 = u32::MAX;

/// A compare-and-swap store: Envoy shared data on the host.
pub trait Store {
    /// The value and its version (`None` when absent).
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Writes when `cas` still matches (`None`: unconditionally); `false`
    /// when another writer came first.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}

/// Applies `change` to the value at `key` with compare-and-swap. `change`
/// returns the new value, or `None` to leave it as it is (a refusal).
fn update<T>(
    store: &dyn Store,
    key: &str,
    mut change: impl FnMut(Option<&[u8]>) -> (Option<Vec<u8>>, T),
) -> Option<T> {
    for _ in 0..CAS_ATTEMPTS {
        let (value, cas) = store.get(key);
        let (next, out) = change(value.as_deref());
        match next {
            None => return Some(out),
            Some(bytes) => {
                if store.set(key, &bytes, Some(cas.unwrap_or(FIRST_WRITE))) {
                    return Some(out);
                }
            }
        }
    }
    None
}

/// Which counter: the key's or the account's, and of what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Key,
    Account,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Requests,
    Tokens,
    Concurrent,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::Requests => "rpm",
            Kind::Tokens => "tpm",
            Kind::Concurrent => "cc",
        }
    }
}

fn counter_key(scope: Scope, id: &str, kind: Kind) -> String {
    let s = match scope {
        Scope::Key => "k",
        Scope::Account => "a",
    };
    format!("tollgate:{s}:{id}:{}", kind.tag())
}

/// What was taken at admission, to be given back or settled at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Taken {
    Bucket {
        key: String,
        kind: Kind,
        limit: u64,
        tokens: u64,
    },
    Lease {
        key: String,
        kind: Kind,
        tokens: u64,
    },
    Slot {
        key: String,
    },
    Spend {
        key: String,
        nanos: u64,
    },
}

/// Where the per-minute buckets are: in this Envoy, or leased from the
/// control plane and shared by every Envoy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Local,
    Leased,
}

/// More tokens wanted for a leased bucket (the lease protocol's `Want`).
pub use tollgate_contract::lease::Want as LeaseWant;

/// The limits a request is held to, from its key and its account.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    mode: Mode,
    budgets: Vec<Budget>,
    checks: Vec<Check>,
}

/// A budget (key) or balance (account) as of the snapshot.
#[derive(Debug, Clone)]
struct Budget {
    scope: Scope,
    key: String,
    /// All this scope may ever spend: the key's budget, or the account's
    /// balance plus what it had spent (so that a credit raises it).
    total: i64,
    /// What the snapshot says was spent.
    spent: u64,
}

#[derive(Debug, Clone)]
struct Check {
    scope: Scope,
    kind: Kind,
    key: String,
    limit: u64,
}

impl Plan {
    pub fn leased(mut self, mode: Mode) -> Plan {
        self.mode = mode;
        self
    }

    pub fn new(key: &Key, account: Option<&Account>) -> Plan {
        let mut budgets = Vec::new();
        if let Some(budget) = key.budget_nanos {
            budgets.push(Budget {
                scope: Scope::Key,
                key: format!("tollgate:k:{}:spend", key.id),
                total: i64::try_from(budget).unwrap_or(i64::MAX),
                spent: key.spent_nanos,
            });
        }
        if let Some((a, balance)) = account.and_then(|a| a.balance_nanos.map(|b| (a, b))) {
            budgets.push(Budget {
                scope: Scope::Account,
                key: format!("tollgate:a:{}:spend", a.id),
                total: balance.saturating_add(i64::try_from(a.spent_nanos).unwrap_or(i64::MAX)),
                spent: a.spent_nanos,
            });
        }
        let mut checks = Vec::new();
        let mut add = |scope: Scope, id: &str, kind: Kind, limit: Option<u64>| {
            if let Some(limit) = limit {
                checks.push(Check {
                    scope,
                    kind,
                    key: counter_key(scope, id, kind),
                    limit,
                });
            }
        };
        add(Scope::Key, &key.id, Kind::Requests, key.rpm.map(u64::from));
        add(Scope::Key, &key.id, Kind::Tokens, key.tpm);
        add(
            Scope::Key,
            &key.id,
            Kind::Concurrent,
            key.max_concurrent.map(u64::from),
        );
        if let Some(a) = account {
            add(Scope::Account, &a.id, Kind::Requests, a.rpm.map(u64::from));
            add(Scope::Account, &a.id, Kind::Tokens, a.tpm);
            add(
                Scope::Account,
                &a.id,
                Kind::Concurrent,
                a.max_concurrent.map(u64::from),
            );
        }
        Plan {
            mode: Mode::Local,
            budgets,
            checks,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.checks.is_empty() && self.budgets.is_empty()
    }
}

/// A request let through: what it holds, and the rate-limit headers to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    taken: Vec<Taken>,
    pub headers: Vec<(&'static str, String)>,
}

impl Admission {
    /// The rate-limit headers of the first limit of each kind: the key's own
    /// limits come first in a plan, so they name the headers, and the
    /// account's only where the key has none of that kind.
    fn name_headers(&mut self, kind: Kind, limit: u64, bucket: Bucket) {
        let headers = headers_for(kind, limit, bucket);
        let named = headers
            .first()
            .is_some_and(|(name, _)| self.headers.iter().any(|(n, _)| n == name));
        if !named {
            self.headers.extend(headers);
        }
    }
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
