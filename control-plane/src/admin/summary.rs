//! `GET /admin/usage/summary`: whole days and hours from the rollup
//! (`db::rollup`; hours only per model), the rest from the records. Counts,
//! tokens and cost are exact; p50/p95 are the upper edge of the histogram
//! bucket they fall in (never below the true value, at most 26% above).

use std::collections::BTreeMap;

use crate::db::rollup::{self, Sums, DAY_MS, HOUR_MS};
use crate::db::rollup_writer;
use crate::db::usage_report::{self, Filter, GroupBy};
use crate::db::Db;
use crate::error::ApiResult;

/// Where each part of `[since, until)` is read from.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Partial hours: from the records.
    pub raw: Vec<(i64, i64)>,
    /// Whole hours outside whole days: from the hourly rollup.
    pub hours: Vec<(i64, i64)>,
    /// Whole days: from the daily rollup.
    pub days: Option<(i64, i64)>,
}

fn floor_to(t: i64, span: i64) -> i64 {
    t - t.rem_euclid(span)
}

fn ceil_to(t: i64, span: i64) -> i64 {
    let f = floor_to(t, span);
    if f == t {
        t
    } else {
        f.saturating_add(span)
    }
}

/// Farther than any record (the year 2243), and a whole day, so that an
/// open end needs no raw edge.
const END_OF_TIME: i64 = 100_000 * DAY_MS;

/// Splits `[since, until)` (ms; open ends: all of time) into raw edges,
/// whole hours and whole days.
pub fn plan(since_ms: Option<i64>, until_ms: Option<i64>) -> Plan {
    let since = since_ms.unwrap_or(0).max(0);
    let until = until_ms.unwrap_or(END_OF_TIME).min(END_OF_TIME);
    let mut p = Plan::default();
    if since >= until {
        return p;
    }
    let (h1, h2) = (ceil_to(since, HOUR_MS), floor_to(until, HOUR_MS));
    if h1 >= h2 {
        p.raw.push((since, until));
        return p;
    }
    if since < h1 {
        p.raw.push((since, h1));
    }
    if h2 < until {
        p.raw.push((h2, until));
    }
    let (d1, d2) = (ceil_to(h1, DAY_MS), floor_to(h2, DAY_MS));
    if d1 < d2 {
        p.days = Some((d1, d2));
        for (a, b) in [(h1, d1), (d2, h2)] {
            if a < b {
                p.hours.push((a, b));
            }
        }
    } else {
        p.hours.push((h1, h2));
    }
    p
}

/// The sums per group over the filter's time range.
pub async fn summarise(db: &Db, f: &Filter, group: GroupBy) -> ApiResult<BTreeMap<String, Sums>> {
    // Every record committed before now, in the rollup.
    rollup_writer::drain(db).await?;
    let mut plan = plan(f.since_ms, f.until_ms);
    if f.status.is_some() || (group == GroupBy::Hour && !rollup::has_hours(f, group)) {
        // The rollup keeps no status, and no hours per key: such a summary
        // reads the records.
        plan = Plan {
            raw: vec![(
                f.since_ms.unwrap_or(0).max(0),
                f.until_ms.unwrap_or(END_OF_TIME),
            )],
            ..Plan::default()
        };
    } else if group == GroupBy::Hour {
        // By hour: whole days from the hourly cells too.
        if let Some(days) = plan.days.take() {
            plan.hours.push(days);
        }
    } else if !rollup::has_hours(f, group) {
        // Per key the whole hours at the edges come from the records too.
        let hours = std::mem::take(&mut plan.hours);
        plan.raw.extend(hours);
    }
    let mut out: BTreeMap<String, Sums> = BTreeMap::new();
    for (a, b) in &plan.raw {
        let edge = Filter {
            since_ms: Some(*a),
            until_ms: Some(*b),
            ..f.clone()
        };
        for t in usage_report::totals(db, &edge, group).await? {
            out.entry(t.grp).or_default().merge(&Sums {
                requests: t.requests,
                errors: t.errors,
                input_tokens: t.input_tokens,
                output_tokens: t.output_tokens,
                cost_nanos: t.cost_nanos,
                ..Sums::default()
            });
        }
        for c in usage_report::latency_counts(db, &edge, group).await? {
            let sums = out.entry(c.grp).or_default();
            let b = &mut sums.buckets[rollup::bucket(c.latency_ms)];
            *b = b.saturating_add(c.n);
        }
    }
    let spans = plan
        .hours
        .iter()
        .map(|r| (HOUR_MS, *r))
        .chain(plan.days.map(|r| (DAY_MS, r)));
    for (span, (a, b)) in spans {
        for g in rollup::read(db, f, group, span, a, b).await? {
            out.entry(g.grp).or_default().merge(&g.sums);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = HOUR_MS;
    const D: i64 = DAY_MS;

    #[test]
    fn a_range_splits_into_raw_edges_whole_hours_and_whole_days() {
        // 10 days from 05:30 on day 3 to 07:15 on day 13.
        let (since, until) = (3 * D + 5 * H + H / 2, 13 * D + 7 * H + H / 4);
        assert_eq!(
            plan(Some(since), Some(until)),
            Plan {
                raw: vec![(since, 3 * D + 6 * H), (13 * D + 7 * H, until)],
                hours: vec![(3 * D + 6 * H, 4 * D), (13 * D, 13 * D + 7 * H)],
                days: Some((4 * D, 13 * D)),
            }
        );
        // Within one hour: only records.
        assert_eq!(
            plan(Some(H + 1), Some(H + 9)),
            Plan {
                raw: vec![(H + 1, H + 9)],
                ..Plan::default()
            }
        );
        // Whole hours within a day: no days, no edges.
        assert_eq!(
            plan(Some(2 * H), Some(5 * H)),
            Plan {
                hours: vec![(2 * H, 5 * H)],
                ..Plan::default()
            }
        );
        // Open ends: whole days from 0 to the end of time.
        assert_eq!(plan(None, None).days, Some((0, END_OF_TIME)));
        assert!(plan(None, None).raw.is_empty());
        assert_eq!(plan(Some(5), Some(5)), Plan::default());
    }

    #[test]
    fn every_millisecond_is_read_once() {
        for (since, until) in [(1, 3 * D + 7), (H, 2 * D), (D - 1, D + 1), (7, 7 + H)] {
            let p = plan(Some(since), Some(until));
            let mut parts: Vec<(i64, i64)> = p.raw.iter().chain(p.hours.iter()).copied().collect();
            parts.extend(p.days);
            parts.sort();
            assert_eq!(parts.first().map(|r| r.0), Some(since));
            assert_eq!(parts.last().map(|r| r.1), Some(until));
            assert!(parts.windows(2).all(|w| w[0].1 == w[1].0), "{parts:?}");
        }
    }

    #[test]
    fn percentiles_are_the_upper_edge_of_their_bucket() {
        let mut s = Sums::default();
        for (latency, n) in [(1, 50), (2, 45), (100, 5)] {
            s.buckets[rollup::bucket(latency)] += n;
        }
        assert_eq!(s.percentile(0.50), 1);
        assert_eq!(s.percentile(0.95), 2);
        assert_eq!(s.percentile(0.96), 101);
        assert_eq!(Sums::default().percentile(0.5), 0);
        for latency in [0, 1, 3, 30, 999, 65_536, 800_000] {
            let e = rollup::edge(rollup::bucket(latency));
            assert!(
                e >= latency && (e as f64) <= (latency.max(1) as f64) * 1.26 + 1.0,
                "{latency} -> {e}"
            );
        }
        assert_eq!(rollup::bucket(10_000_000), rollup::BUCKET_COUNT - 1);
    }
}
