//! A budget's local spend in shared data, counted against the snapshot's.

/// The local spend of a budget: the snapshot's `spent` it was counted
/// against, and what was spent or reserved here since.
pub(super) fn decode_spend(raw: Option<&[u8]>) -> Option<(u64, i64)> {
    let raw = raw?;
    let base = u64::from_le_bytes(raw.get(..8)?.try_into().ok()?);
    let local = i64::from_le_bytes(raw.get(8..16)?.try_into().ok()?);
    Some((base, local))
}

pub(super) fn encode_spend(base: u64, local: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&base.to_le_bytes());
    out.extend_from_slice(&local.to_le_bytes());
    out
}

/// Brings the local count up to a snapshot: what the snapshot newly counts as
/// spent was counted here already, so it leaves the local part. (With several
/// Envoys the snapshot also holds the others' spend; the local part then
/// only reaches 0 early, never goes below.)
pub(super) fn rebase(stored: Option<(u64, i64)>, snapshot_spent: u64) -> (u64, i64) {
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
