//! Admission of a request against every counter of its plan, and the
//! settling of what it really used at its end.

use super::*;

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

/// Tokens to give back to a bucket or lease at the end of a request: all of
/// the reservation when the request never went out (`used` is `None`), the
/// unused part (or, below 0, the overuse) of a `tpm` reservation, and
/// nothing of a request that went out.
pub(super) fn give_back(kind: Kind, reserved: u64, used: Option<u64>) -> i64 {
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
