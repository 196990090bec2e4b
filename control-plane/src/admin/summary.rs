//! `GET /admin/usage/summary`: whole days and hours from the rollup
//! (`db::rollup`; no hours per model and key at once), only the partial
//! hours at the edges from the records. Counts,
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
    /// Hours taken out again: a day's part of more than 12 whole hours is
    /// read as the whole day (in `days`) less its other hours (fewer rows).
    pub less: Vec<(i64, i64)>,
    /// Whole days: from the daily rollup.
    pub days: Option<(i64, i64)>,
}

/// The most whole hours of one day read hour by hour; more are read as the
/// day less the others.
const MOST_HOURS: i64 = 12 * HOUR_MS;

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
/// whole hours and whole days; with `whole_days_less_hours`, a day's part of
/// more than 12 hours becomes the day less its other hours.
pub fn plan(since_ms: Option<i64>, until_ms: Option<i64>, whole_days_less_hours: bool) -> Plan {
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
    p.days = (d1 < d2).then_some((d1, d2));
    // The whole hours outside whole days, each part within one day.
    let parts = if d1 <= d2 {
        [(h1, d1), (d2, h2)]
    } else {
        [(h1, h2), (h2, h2)]
    };
    for (a, b) in parts {
        if a >= b {
            continue;
        }
        if !whole_days_less_hours || b - a <= MOST_HOURS {
            p.hours.push((a, b));
            continue;
        }
        // The part's day, next to the whole days (or the first day read).
        let (day, next) = (floor_to(a, DAY_MS), floor_to(a, DAY_MS) + DAY_MS);
        p.days = Some(match p.days {
            Some((x, y)) => (x.min(day), y.max(next)),
            None => (day, next),
        });
        for (x, y) in [(day, a), (b, next)] {
            if x < y {
                p.less.push((x, y));
            }
        }
    }
    p
}

/// The sums per group over the filter's time range.
pub async fn summarise(db: &Db, f: &Filter, group: GroupBy) -> ApiResult<BTreeMap<String, Sums>> {
    // Every record committed before now, in the rollup.
    rollup_writer::drain(db).await?;
    let hourly = rollup::has_hours(f, group);
    // A partial hour at an edge that is more than half of its hour: the
    // whole hour from the rollup, less the records of its other part.
    let (mut since, mut until, mut cut_out) = (f.since_ms, f.until_ms, Vec::new());
    if hourly && f.status.is_none() {
        (since, until, cut_out) = widen_to_hours(since, until);
    }
    let mut plan = plan(since, until, hourly && group != GroupBy::Hour);
    if f.status.is_some() || (group == GroupBy::Hour && !hourly) {
        // The rollup keeps no status, and no hours per model and key: such
        // a summary reads the records.
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
    } else if !hourly {
        // Per model and key the whole hours at the edges come from the
        // records too.
        let hours = std::mem::take(&mut plan.hours);
        plan.raw.extend(hours);
    }
    let mut out: BTreeMap<String, Sums> = BTreeMap::new();
    for range in &plan.raw {
        for (grp, sums) in from_records(db, f, group, *range, |b| b).await? {
            out.entry(grp).or_default().merge(&sums);
        }
    }
    for range in &cut_out {
        let slot = |b| rollup::slot(f, group, b);
        for (grp, sums) in from_records(db, f, group, *range, slot).await? {
            out.entry(grp).or_default().less(&sums);
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
    for (a, b) in &plan.less {
        for g in rollup::read(db, f, group, HOUR_MS, *a, *b).await? {
            out.entry(g.grp).or_default().less(&g.sums);
        }
    }
    // A group whose records all fell in the hours taken out.
    out.retain(|_, s| s.requests > 0);
    Ok(out)
}

/// `[since, until)` widened to the whole hour at each edge where the part
/// outside the range is the shorter, and those parts (to take out again,
/// read from the records). Not within one hour.
fn widen_to_hours(
    since: Option<i64>,
    until: Option<i64>,
) -> (Option<i64>, Option<i64>, Vec<(i64, i64)>) {
    let mut out = Vec::new();
    let (Some(s), Some(u)) = (since, until) else {
        return (since, until, out);
    };
    if s < 0 || floor_to(s, HOUR_MS) == floor_to(u.saturating_sub(1), HOUR_MS) {
        return (since, until, out);
    }
    let (mut s2, mut u2) = (s, u);
    if s - floor_to(s, HOUR_MS) < ceil_to(s, HOUR_MS) - s {
        s2 = floor_to(s, HOUR_MS);
        out.push((s2, s));
    }
    if u < END_OF_TIME && ceil_to(u, HOUR_MS) - u < u - floor_to(u, HOUR_MS) {
        u2 = ceil_to(u, HOUR_MS);
        out.push((u, u2));
    }
    (Some(s2), Some(u2), out)
}

/// The sums per group of the records in `[a, b)` (under the filter), each
/// latency bucket counted at `slot(bucket)`.
async fn from_records(
    db: &Db,
    f: &Filter,
    group: GroupBy,
    (a, b): (i64, i64),
    slot: impl Fn(usize) -> usize,
) -> ApiResult<BTreeMap<String, Sums>> {
    let edge = Filter {
        since_ms: Some(a),
        until_ms: Some(b),
        ..f.clone()
    };
    let mut out: BTreeMap<String, Sums> = BTreeMap::new();
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
        let b = &mut sums.buckets[slot(rollup::bucket(c.latency_ms))];
        *b = b.saturating_add(c.n);
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
        let raw = vec![(since, 3 * D + 6 * H), (13 * D + 7 * H, until)];
        assert_eq!(
            plan(Some(since), Some(until), false),
            Plan {
                raw: raw.clone(),
                hours: vec![(3 * D + 6 * H, 4 * D), (13 * D, 13 * D + 7 * H)],
                days: Some((4 * D, 13 * D)),
                ..Plan::default()
            }
        );
        // The 18 hours of day 3 as the day less its first 6.
        assert_eq!(
            plan(Some(since), Some(until), true),
            Plan {
                raw,
                hours: vec![(13 * D, 13 * D + 7 * H)],
                less: vec![(3 * D, 3 * D + 6 * H)],
                days: Some((3 * D, 13 * D)),
            }
        );
        // A day cut mid-hour at both ends (10:20 to 09:40 the next day): 14
        // whole hours of the first day (the day less 10), 9 of the second.
        let (since, until) = (2 * D + 10 * H + H / 3, 3 * D + 9 * H + 2 * H / 3);
        assert_eq!(
            plan(Some(since), Some(until), true),
            Plan {
                raw: vec![(since, 2 * D + 11 * H), (3 * D + 9 * H, until)],
                hours: vec![(3 * D, 3 * D + 9 * H)],
                less: vec![(2 * D, 2 * D + 11 * H)],
                days: Some((2 * D, 3 * D)),
            }
        );
        // Within one day, 20 of its hours: the day less 4.
        assert_eq!(
            plan(Some(D + 3 * H), Some(D + 23 * H), true),
            Plan {
                less: vec![(D, D + 3 * H), (D + 23 * H, 2 * D)],
                days: Some((D, 2 * D)),
                ..Plan::default()
            }
        );
        // Within one hour: only records.
        assert_eq!(
            plan(Some(H + 1), Some(H + 9), true),
            Plan {
                raw: vec![(H + 1, H + 9)],
                ..Plan::default()
            }
        );
        // 12 whole hours within a day: hour by hour, no edges.
        assert_eq!(
            plan(Some(2 * H), Some(14 * H), true),
            Plan {
                hours: vec![(2 * H, 14 * H)],
                ..Plan::default()
            }
        );
        // Open ends: whole days from 0 to the end of time.
        assert_eq!(plan(None, None, true).days, Some((0, END_OF_TIME)));
        assert!(plan(None, None, true).raw.is_empty());
        assert_eq!(plan(Some(5), Some(5), true), Plan::default());
    }

    #[test]
    fn an_edge_past_half_its_hour_is_the_whole_hour_less_the_rest() {
        // 05:10 to 07:55: both edges widened, 05:00-05:10 and 07:55-08:00 out.
        let (s, u) = (5 * H + H / 6, 7 * H + 11 * H / 12);
        assert_eq!(
            widen_to_hours(Some(s), Some(u)),
            (Some(5 * H), Some(8 * H), vec![(5 * H, s), (u, 8 * H)])
        );
        // 05:50 to 07:05: neither.
        let (s, u) = (5 * H + 5 * H / 6, 7 * H + H / 12);
        assert_eq!(widen_to_hours(Some(s), Some(u)), (Some(s), Some(u), vec![]));
        // Within one hour, or an open end: as they are.
        assert_eq!(widen_to_hours(Some(H + 1), Some(2 * H - 1)).2, vec![]);
        assert_eq!(
            widen_to_hours(None, Some(H + 9)),
            (None, Some(H + 9), vec![])
        );
    }

    #[test]
    fn every_millisecond_is_read_once() {
        let within = |parts: &[(i64, i64)], t: i64| {
            parts.iter().filter(|(a, b)| *a <= t && t < *b).count() as i64
        };
        for (since, until) in [
            (1, 3 * D + 7),
            (H, 2 * D),
            (D - 1, D + 1),
            (7, 7 + H),
            (D + 3 * H + 5, D + 23 * H + 5),
            (2 * D + 10 * H + 9, 3 * D + 14 * H + 1),
            (5 * H - 1, 4 * D + 20 * H + 1),
        ] {
            for less in [false, true] {
                let p = plan(Some(since), Some(until), less);
                let days: Vec<(i64, i64)> = p.days.into_iter().collect();
                let points = (since - 2 * D..until + 2 * D).step_by(997_001);
                for t in points.chain([since - 1, since, until - 1, until]) {
                    let n = within(&p.raw, t) + within(&p.hours, t) + within(&days, t)
                        - within(&p.less, t);
                    let want = i64::from(since <= t && t < until);
                    assert_eq!(n, want, "{since}..{until} at {t}: {p:?}");
                    assert!(within(&p.less, t) <= within(&days, t), "{p:?}");
                }
            }
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
