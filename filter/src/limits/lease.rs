//! Leases of buckets shared by several Envoys (`Mode::Leased`): the tokens
//! granted to this Envoy, spent without waiting on anyone.

use super::*;

pub(super) fn lease_key(counter: &str) -> String {
    format!("{counter}:lease")
}

/// The bucket's name for the control plane: `k:<id>:rpm`.
pub(super) fn bucket_name(counter: &str) -> &str {
    counter.strip_prefix("tollgate:").unwrap_or(counter)
}

/// A lease: the tokens this Envoy may still spend (below 0 after a `tpm`
/// request used more than it reserved), and the tokens it took on credit
/// and still owes the shared bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lease {
    pub(super) balance: i64,
    pub(super) owed: u64,
}

impl Lease {
    pub(super) fn decode(raw: Option<&[u8]>) -> Option<Lease> {
        let raw = raw?;
        Some(Lease {
            balance: i64::from_le_bytes(raw.get(..8)?.try_into().ok()?),
            owed: u64::from_le_bytes(raw.get(8..16)?.try_into().ok()?),
        })
    }

    pub(super) fn encode(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&self.balance.to_le_bytes());
        out.extend_from_slice(&self.owed.to_le_bytes());
        out
    }
}

/// How much to ask for at a time: a tenth of the limit, at least one
/// request's worth. Smaller leases share the limit more fairly between
/// Envoys; larger ones ask less often.
pub(super) fn lease_size(limit: u64, want: u64) -> u64 {
    limit.div_ceil(10).max(want).max(1)
}

/// Takes `want` from the lease; `Ok(left)` or `Err` when the lease is short.
/// A bucket this Envoy never leased starts with one lease on credit, so that
/// its first requests do not wait for the control plane; the credit is paid
/// back from the first grants. Asks for more when the balance is under half
/// a lease or something is owed.
pub(super) fn take_lease(
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

pub(super) fn decode_count(raw: Option<&[u8]>) -> u64 {
    raw.and_then(|r| r.get(..8))
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}
