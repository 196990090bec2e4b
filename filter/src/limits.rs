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

/// A token bucket: its level in units, and when it was last refilled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub level: i64,
    pub at_ms: u64,
}

impl Bucket {
    fn decode(raw: Option<&[u8]>, limit: u64, now_ms: u64) -> Bucket {
        let full = Bucket {
            level: full_level(limit),
            at_ms: now_ms,
        };
        let Some(raw) = raw else {
            return full;
        };
        let (Ok(level), Ok(at)) = (
            raw.get(..8)
                .unwrap_or_default()
                .try_into()
                .map(i64::from_le_bytes),
            raw.get(8..16)
                .unwrap_or_default()
                .try_into()
                .map(u64::from_le_bytes),
        ) else {
            return full;
        };
        Bucket { level, at_ms: at }.refilled(limit, now_ms)
    }

    fn encode(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&self.level.to_le_bytes());
        out.extend_from_slice(&self.at_ms.to_le_bytes());
        out
    }

    fn refilled(self, limit: u64, now_ms: u64) -> Bucket {
        let elapsed = now_ms.saturating_sub(self.at_ms);
        let add = i64::try_from(elapsed)
            .unwrap_or(i64::MAX)
            .saturating_mul(i64::try_from(limit).unwrap_or(i64::MAX));
        Bucket {
            level: self.level.saturating_add(add).min(full_level(limit)),
            at_ms: now_ms.max(self.at_ms),
        }
    }

    /// Whole tokens available now.
    pub fn remaining(self) -> u64 {
        u64::try_from(self.level.max(0) / UNITS).unwrap_or(0)
    }

    /// Milliseconds until `tokens` are available (0: now).
    fn wait_ms(self, tokens: u64, limit: u64) -> u64 {
        let need = units(tokens).saturating_sub(self.level);
        if need <= 0 || limit == 0 {
            return 0;
        }
        let rate = i64::try_from(limit).unwrap_or(i64::MAX);
        u64::try_from((need + rate - 1) / rate).unwrap_or(u64::MAX)
    }
}

fn units(tokens: u64) -> i64 {
    i64::try_from(tokens)
        .unwrap_or(i64::MAX)
        .saturating_mul(UNITS)
}

fn full_level(limit: u64) -> i64 {
    units(limit)
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

/// OpenAI's duration format for `x-ratelimit-reset-*`: `20ms`, `1.5s`, `6m0s`.
pub fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let tenths = ms.div_ceil(100);
        if tenths % 10 == 0 {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        }
    } else {
        let s = ms.div_ceil(1000);
        format!("{}m{}s", s / 60, s % 60)
    }
}

fn headers_for(kind: Kind, limit: u64, bucket: Bucket) -> [(&'static str, String); 3] {
    let reset = duration(bucket.wait_ms(limit, limit));
    let remaining = bucket.remaining().to_string();
    match kind {
        Kind::Tokens => [
            ("x-ratelimit-limit-tokens", limit.to_string()),
            ("x-ratelimit-remaining-tokens", remaining),
            ("x-ratelimit-reset-tokens", reset),
        ],
        _ => [
            ("x-ratelimit-limit-requests", limit.to_string()),
            ("x-ratelimit-remaining-requests", remaining),
            ("x-ratelimit-reset-requests", reset),
        ],
    }
}

fn what(scope: Scope, kind: Kind) -> &'static str {
    match (scope, kind) {
        (Scope::Key, Kind::Requests) => "requests per minute of this API key",
        (Scope::Key, Kind::Tokens) => "tokens per minute of this API key",
        (Scope::Key, Kind::Concurrent) => "concurrent requests of this API key",
        (Scope::Account, Kind::Requests) => "requests per minute of this account",
        (Scope::Account, Kind::Tokens) => "tokens per minute of this account",
        (Scope::Account, Kind::Concurrent) => "concurrent requests of this account",
    }
}

fn refusal(
    scope: Scope,
    kind: Kind,
    limit: u64,
    retry_ms: u64,
    headers: Vec<(&'static str, String)>,
) -> Reply {
    let param = match kind {
        Kind::Requests => "rpm",
        Kind::Tokens => "tpm",
        Kind::Concurrent => "max_concurrent",
    };
    if limit == 0 {
        // Waiting does not help: no `retry-after`, and the message says so.
        let message = format!(
            "Rate limit reached: the {} limit is 0, so no request is admitted until an administrator raises it.",
            what(scope, kind)
        );
        let mut reply = Reply::with_param(ErrorCode::RateLimitExceeded, &message, param);
        reply.headers.extend(headers);
        return reply;
    }
    let retry_s = retry_ms.div_ceil(1000).max(1);
    let message = format!(
        "Rate limit reached: {} (limit {limit}). Try again in {}.",
        what(scope, kind),
        duration(retry_ms.max(1))
    );
    let mut reply = Reply::with_param(ErrorCode::RateLimitExceeded, &message, param);
    reply.headers.push(("retry-after", retry_s.to_string()));
    reply.headers.extend(headers);
    reply
}

/// The local spend of a budget: the snapshot's `spent` it was counted
/// against, and what was spent or reserved here since.
fn decode_spend(raw: Option<&[u8]>) -> Option<(u64, i64)> {
    let raw = raw?;
    let base = u64::from_le_bytes(raw.get(..8)?.try_into().ok()?);
    let local = i64::from_le_bytes(raw.get(8..16)?.try_into().ok()?);
    Some((base, local))
}

fn encode_spend(base: u64, local: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&base.to_le_bytes());
    out.extend_from_slice(&local.to_le_bytes());
    out
}

/// Brings the local count up to a snapshot: what the snapshot newly counts as
/// spent was counted here already, so it leaves the local part. (With several
/// Envoys the snapshot also holds the others' spend; the local part then
/// only reaches 0 early, never goes below.)
fn rebase(stored: Option<(u64, i64)>, snapshot_spent: u64) -> (u64, i64) {
    match stored {
        None => (snapshot_spent, 0),
        Some((base, local)) if snapshot_spent > base => {
            let newly = i64::try_from(snapshot_spent - base).unwrap_or(i64::MAX);
            (snapshot_spent, local.saturating_sub(newly).max(0))
        }
        // A worker with an older snapshot: the stored base is newer.
        Some(stored) => stored,
    }
}

fn budget_refusal(scope: Scope) -> Reply {
    let message = match scope {
        Scope::Key => "This API key has used up its budget.",
        Scope::Account => "This account's balance is used up; add credit to continue.",
    };
    Reply::error(ErrorCode::InsufficientBalance, message)
}

/// Takes one request, `reserve` tokens and `reserve_nanos` of spend from
/// every counter of the plan, or none of them: on the first refusal what was
/// already taken is given back. A budget admits while anything is left, so
/// it is overspent by at most the last request admitted on each worker.
pub fn admit(
    store: &dyn Store,
    plan: &Plan,
    reserve: u64,
    reserve_nanos: u64,
    now_ms: u64,
    wants: &mut Vec<LeaseWant>,
) -> Result<Admission, Reply> {
    let mut admission = Admission::default();
    let reserve_spend = i64::try_from(reserve_nanos).unwrap_or(i64::MAX);
    for budget in &plan.budgets {
        let outcome = update(store, &budget.key, |raw| {
            let (base, local) = rebase(decode_spend(raw), budget.spent);
            let left = budget
                .total
                .saturating_sub(i64::try_from(base).unwrap_or(i64::MAX))
                .saturating_sub(local);
            if left <= 0 {
                (None, false)
            } else {
                (
                    Some(encode_spend(base, local.saturating_add(reserve_spend))),
                    true,
                )
            }
        });
        match outcome {
            Some(false) => {
                release(store, &admission, None, now_ms);
                return Err(budget_refusal(budget.scope));
            }
            Some(true) => admission.taken.push(Taken::Spend {
                key: budget.key.clone(),
                nanos: reserve_nanos,
            }),
            None => log::warn!(
                "tollgate: counter {} is contended; not enforced",
                budget.key
            ),
        }
    }
    for check in &plan.checks {
        let outcome = match check.kind {
            Kind::Requests | Kind::Tokens if plan.mode == Mode::Leased => {
                let want = if check.kind == Kind::Requests {
                    1
                } else {
                    reserve.min(check.limit)
                };
                match take_lease(store, check, want, wants) {
                    Ok(left) => {
                        admission.taken.push(Taken::Lease {
                            key: lease_key(&check.key),
                            kind: check.kind,
                            tokens: want,
                        });
                        let bucket = Bucket {
                            level: units(left),
                            at_ms: now_ms,
                        };
                        admission.name_headers(check.kind, check.limit, bucket);
                        continue;
                    }
                    Err(()) => {
                        release(store, &admission, None, now_ms);
                        // A lease is refilled within a tick or two; the real
                        // wait is the shared bucket's, one request's worth.
                        let retry_ms = 60_000 / check.limit.max(1);
                        return Err(refusal(
                            check.scope,
                            check.kind,
                            check.limit,
                            retry_ms,
                            Vec::new(),
                        ));
                    }
                }
            }
            Kind::Requests | Kind::Tokens => {
                // A request bigger than the whole bucket waits for a full one.
                let want = if check.kind == Kind::Requests {
                    1
                } else {
                    reserve.min(check.limit)
                };
                update(store, &check.key, |raw| {
                    let bucket = Bucket::decode(raw, check.limit, now_ms);
                    if bucket.level < units(want) || check.limit == 0 {
                        (None, Err((bucket.wait_ms(want, check.limit), bucket)))
                    } else {
                        let after = Bucket {
                            level: bucket.level - units(want),
                            at_ms: bucket.at_ms,
                        };
                        (Some(after.encode()), Ok((want, after)))
                    }
                })
                .map(|r| r.map(|(tokens, bucket)| (Some((tokens, bucket)), check)))
            }
            Kind::Concurrent => update(store, &check.key, |raw| {
                let n = decode_count(raw);
                if n >= check.limit {
                    (
                        None,
                        Err((
                            1000,
                            Bucket {
                                level: 0,
                                at_ms: now_ms,
                            },
                        )),
                    )
                } else {
                    (
                        Some((n + 1).to_le_bytes().to_vec()),
                        Ok((
                            0,
                            Bucket {
                                level: 0,
                                at_ms: now_ms,
                            },
                        )),
                    )
                }
            })
            .map(|r| r.map(|_| (None, check))),
        };
        match outcome {
            // The counter could not be written in CAS_ATTEMPTS: let the
            // request through rather than refuse it for contention.
            None => log::warn!("tollgate: counter {} is contended; not enforced", check.key),
            Some(Ok((bucket, check))) => match bucket {
                Some((tokens, after)) => {
                    admission.taken.push(Taken::Bucket {
                        key: check.key.clone(),
                        kind: check.kind,
                        limit: check.limit,
                        tokens,
                    });
                    admission.name_headers(check.kind, check.limit, after);
                }
                None => admission.taken.push(Taken::Slot {
                    key: check.key.clone(),
                }),
            },
            Some(Err((retry_ms, bucket))) => {
                release(store, &admission, None, now_ms);
                let headers = if check.kind == Kind::Concurrent {
                    Vec::new()
                } else {
                    headers_for(check.kind, check.limit, bucket).to_vec()
                };
                return Err(refusal(
                    check.scope,
                    check.kind,
                    check.limit,
                    retry_ms,
                    headers,
                ));
            }
        }
    }
    Ok(admission)
}

fn lease_key(counter: &str) -> String {
    format!("{counter}:lease")
}

/// The bucket's name for the control plane: `k:<id>:rpm`.
fn bucket_name(counter: &str) -> &str {
    counter.strip_prefix("tollgate:").unwrap_or(counter)
}

/// A lease: the tokens this Envoy may still spend (below 0 after a `tpm`
/// request used more than it reserved), and the tokens it took on credit
/// and still owes the shared bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lease {
    balance: i64,
    owed: u64,
}

impl Lease {
    fn decode(raw: Option<&[u8]>) -> Option<Lease> {
        let raw = raw?;
        Some(Lease {
            balance: i64::from_le_bytes(raw.get(..8)?.try_into().ok()?),
            owed: u64::from_le_bytes(raw.get(8..16)?.try_into().ok()?),
        })
    }

    fn encode(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&self.balance.to_le_bytes());
        out.extend_from_slice(&self.owed.to_le_bytes());
        out
    }
}

/// How much to ask for at a time: a tenth of the limit, at least one
/// request's worth. Smaller leases share the limit more fairly between
/// Envoys; larger ones ask less often.
fn lease_size(limit: u64, want: u64) -> u64 {
    limit.div_ceil(10).max(want).max(1)
}

/// Takes `want` from the lease; `Ok(left)` or `Err` when the lease is short.
/// A bucket this Envoy never leased starts with one lease on credit, so that
/// its first requests do not wait for the control plane; the credit is paid
/// back from the first grants. Asks for more when the balance is under half
/// a lease or something is owed.
fn take_lease(
    store: &dyn Store,
    check: &Check,
    want: u64,
    wants: &mut Vec<LeaseWant>,
) -> Result<u64, ()> {
    let key = lease_key(&check.key);
    let size = lease_size(check.limit, want);
    let want_i = i64::try_from(want).unwrap_or(i64::MAX);
    let outcome = update(store, &key, |raw| {
        let lease = Lease::decode(raw).unwrap_or(Lease {
            balance: i64::try_from(size).unwrap_or(i64::MAX),
            owed: size,
        });
        if lease.balance >= want_i {
            let after = Lease {
                balance: lease.balance - want_i,
                owed: lease.owed,
            };
            (Some(after.encode()), (true, after))
        } else {
            (None, (false, lease))
        }
    });
    let (admitted, lease) = match outcome {
        Some(result) => result,
        None => (
            false,
            Lease::decode(store.get(&key).0.as_deref()).unwrap_or(Lease {
                balance: 0,
                owed: 0,
            }),
        ),
    };
    let half = i64::try_from(size / 2).unwrap_or(i64::MAX);
    if lease.balance < half.max(1) || lease.owed > 0 {
        let short = u64::try_from(lease.balance.min(0).saturating_neg()).unwrap_or(0);
        wants.push(LeaseWant {
            bucket: bucket_name(&check.key).to_string(),
            limit: check.limit,
            want: size.saturating_add(lease.owed).saturating_add(short),
        });
    }
    if admitted {
        Ok(u64::try_from(lease.balance.max(0)).unwrap_or(0))
    } else {
        Err(())
    }
}

/// Adds what the control plane granted to a lease, paying what it owes first.
pub fn grant(store: &dyn Store, bucket: &str, tokens: u64) {
    let key = lease_key(&format!("tollgate:{bucket}"));
    update(store, &key, |raw| {
        let lease = Lease::decode(raw).unwrap_or(Lease {
            balance: 0,
            owed: 0,
        });
        let paid = tokens.min(lease.owed);
        let after = Lease {
            balance: lease
                .balance
                .saturating_add(i64::try_from(tokens - paid).unwrap_or(i64::MAX)),
            owed: lease.owed - paid,
        };
        (Some(after.encode()), ())
    });
}

fn decode_count(raw: Option<&[u8]>) -> u64 {
    raw.and_then(|r| r.get(..8))
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

/// Tokens to give back to a bucket or lease at the end of a request: all of
/// the reservation when the request never went out (`used` is `None`), the
/// unused part (or, below 0, the overuse) of a `tpm` reservation, and
/// nothing of a request that went out.
fn give_back(kind: Kind, reserved: u64, used: Option<u64>) -> i64 {
    let reserved = i64::try_from(reserved).unwrap_or(i64::MAX);
    match (kind, used) {
        (_, None) => reserved,
        (Kind::Tokens, Some(used)) => {
            reserved.saturating_sub(i64::try_from(used).unwrap_or(i64::MAX))
        }
        _ => 0,
    }
}

/// What a finished request really used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Used {
    pub tokens: u64,
    pub nanos: u64,
}

/// The end of a request: concurrency slots are given back, and token buckets
/// and spend settled with the real count (`None`: give back the whole
/// reservation, for a request that never reached the upstream).
pub fn release(store: &dyn Store, admission: &Admission, used: Option<Used>, now_ms: u64) {
    let used_tokens = used.map(|u| u.tokens);
    for taken in &admission.taken {
        match taken {
            Taken::Spend { key, nanos } => {
                let delta = i64::try_from(used.map_or(0, |u| u.nanos))
                    .unwrap_or(i64::MAX)
                    .saturating_sub(i64::try_from(*nanos).unwrap_or(i64::MAX));
                if delta == 0 {
                    continue;
                }
                update(store, key, |raw| match decode_spend(raw) {
                    Some((base, local)) => (
                        Some(encode_spend(base, local.saturating_add(delta).max(0))),
                        (),
                    ),
                    None => (None, ()),
                });
            }
            Taken::Lease { key, kind, tokens } => {
                let back = give_back(*kind, *tokens, used_tokens);
                if back != 0 {
                    update(store, key, |raw| match Lease::decode(raw) {
                        Some(lease) => {
                            let after = Lease {
                                balance: lease.balance.saturating_add(back),
                                owed: lease.owed,
                            };
                            (Some(after.encode()), ())
                        }
                        None => (None, ()),
                    });
                }
            }
            Taken::Slot { key } => {
                update(store, key, |raw| {
                    let n = decode_count(raw);
                    (Some(n.saturating_sub(1).to_le_bytes().to_vec()), ())
                });
            }
            Taken::Bucket {
                key,
                kind,
                limit,
                tokens,
            } => {
                let back = give_back(*kind, *tokens, used_tokens).saturating_mul(UNITS);
                if back == 0 {
                    continue;
                }
                update(store, key, |raw| {
                    let bucket = Bucket::decode(raw, *limit, now_ms);
                    let floor = -full_level(*limit);
                    let level = bucket
                        .level
                        .saturating_add(back)
                        .clamp(floor, full_level(*limit));
                    (
                        Some(
                            Bucket {
                                level,
                                at_ms: bucket.at_ms,
                            }
                            .encode(),
                        ),
                        (),
                    )
                });
            }
        }
    }
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
