//! The summary from the rollup (whole hours and days) and the records (the
//! edges) equals a brute-force sum over the records it was given, for ranges
//! cut anywhere and every grouping and filter; percentiles are the upper
//! edge of their bucket: at or above the exact one, at most 26% above from
//! the per-model views, at most twice (+1 ms) from the per-key ones (by key
//! or account, or filtered by either: a coarse histogram); the summary's
//! `total` (the whole range in one histogram) likewise.

mod helpers;

use std::collections::BTreeMap;

use helpers::{backends, record_json, spawn_app, Auth};
use serde_json::{json, Value};

const H: i64 = 3_600_000;
const D: i64 = 86_400_000;
/// 2026-11-01 00:00 UTC.
const T0: i64 = 1_793_491_200_000;

/// requests, errors, input, output, cost, latencies.
type Want = (i64, i64, u64, u64, u64, Vec<i64>);

struct Rec {
    key: usize,
    model: usize,
    status: u16,
    input: u64,
    output: u64,
    latency: i64,
    cost: u64,
    at: i64,
}

/// A small deterministic generator (no dependency).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn records() -> Vec<Rec> {
    let mut rng = Lcg(42);
    (0..1500)
        .map(|_| Rec {
            key: rng.next(6) as usize,
            model: rng.next(3) as usize,
            status: if rng.next(10) == 0 { 500 } else { 200 },
            input: rng.next(1000),
            output: rng.next(500),
            latency: [3, 40, 250, 1200, 7][rng.next(5) as usize] + rng.next(20) as i64,
            cost: rng.next(1_000_000),
            // Over 4 days and a bit.
            at: T0 + rng.next((4 * D + 5 * H) as u64) as i64,
        })
        .collect()
}

fn exact_percentile(mut l: Vec<i64>, p: f64) -> i64 {
    l.sort();
    let rank = ((l.len() as f64) * p).ceil().max(1.0) as usize;
    l[rank - 1]
}

#[tokio::test]
async fn summaries_over_any_range_are_exact_for_counts_tokens_and_cost() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let recs = records();
        let key_account = |k: usize| (format!("key_{k}"), format!("acct_{}", k % 2));
        for (n, chunk) in recs.chunks(200).enumerate() {
            let batch: Vec<Value> = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let (key, account) = key_account(r.key);
                    json!({
                        "request_id": format!("req-{n}-{i}"), "key_id": key, "account_id": account,
                        "model": format!("m{}", r.model), "upstream_model": "u", "provider": "p",
                        "status": r.status, "input_tokens": r.input, "output_tokens": r.output,
                        "estimated": false, "stream": false, "latency_ms": r.latency,
                        "ttft_ms": null, "cost_nanos": r.cost, "created_at_ms": r.at,
                    })
                })
                .collect();
            let a = app
                .call(
                    "POST",
                    "/internal/usage",
                    &Auth::FilterSecret,
                    Some(&json!({"records": batch})),
                )
                .await;
            assert_eq!(a.status, 200, "{}", a.body);
        }
        // A batch sent twice adds nothing.
        let again = json!({"records": [{
            "request_id": "req-0-0", "key_id": "key_0", "account_id": "acct_0", "model": "m0",
            "upstream_model": "u", "provider": "p", "status": 200, "input_tokens": 5, "output_tokens": 5,
            "estimated": false, "stream": false, "latency_ms": 1, "ttft_ms": null, "cost_nanos": 5,
            "created_at_ms": T0,
        }]});
        app.call("POST", "/internal/usage", &Auth::FilterSecret, Some(&again))
            .await;

        let ranges: [(Option<i64>, Option<i64>); 11] = [
            (None, None),
            // Edges near an hour's end (until) or start (both): read as the
            // whole hour less the records outside the range.
            (
                Some(T0 + D + 11 * H - 3000),
                Some(T0 + 3 * D + 2 * H - 4000),
            ),
            (
                Some(T0 + 2 * D + 5 * H + 60_000),
                Some(T0 + 2 * D + 7 * H - 60_000),
            ),
            // A day cut mid-hour: 14 whole hours of one day (the day less
            // its first 10), 9 of the next.
            (
                Some(T0 + D + 10 * H + 1234),
                Some(T0 + 2 * D + 9 * H + 2100),
            ),
            // 20 whole hours within one day, cut mid-hour at both ends.
            (
                Some(T0 + 2 * D + 3 * H + 7000),
                Some(T0 + 2 * D + 23 * H + 9000),
            ),
            // 13 hours, then 4 days, then 13 hours.
            (Some(T0 + 11 * H), Some(T0 + 4 * D + 13 * H + 500)),
            (Some(T0 + 5 * H + 1234), Some(T0 + 3 * D + 7 * H + 99)),
            (Some(T0 + H), Some(T0 + 2 * D)),
            (Some(T0 + D + 10), Some(T0 + D + 20 * 60_000)),
            (Some(T0 + 2 * D + 3 * H), None),
            (None, Some(T0 + 36 * H + 1)),
        ];
        let filters = [
            "",
            "&model=m1",
            "&key_id=key_3",
            "&account_id=acct_1",
            "&model=m2&account_id=acct_0",
        ];
        for (since, until) in ranges {
            for group in ["model", "key", "account", "day", "hour"] {
                for filter in filters {
                    let mut uri = format!("/admin/usage/summary?group_by={group}{filter}");
                    // The API takes seconds: ranges cut at whole seconds.
                    let since = since.map(|s| s / 1000 * 1000);
                    let until = until.map(|u| u / 1000 * 1000);
                    if let Some(s) = since {
                        uri.push_str(&format!("&since={}", s / 1000));
                    }
                    if let Some(u) = until {
                        uri.push_str(&format!("&until={}", u / 1000));
                    }
                    let mut want: BTreeMap<String, Want> = BTreeMap::new();
                    for r in &recs {
                        let (key, account) = key_account(r.key);
                        let model = format!("m{}", r.model);
                        let inside =
                            since.is_none_or(|s| r.at >= s) && until.is_none_or(|u| r.at < u);
                        let kept = (filter.is_empty()
                            || (filter == "&model=m1" && model == "m1")
                            || (filter == "&key_id=key_3" && key == "key_3")
                            || (filter == "&account_id=acct_1" && account == "acct_1")
                            || (filter == "&model=m2&account_id=acct_0"
                                && model == "m2"
                                && account == "acct_0"))
                            && inside;
                        if !kept {
                            continue;
                        }
                        let grp = match group {
                            "model" => model,
                            "key" => key,
                            "account" => account,
                            "hour" => (r.at / H).to_string(),
                            _ => (r.at / D).to_string(),
                        };
                        let w = want.entry(grp).or_default();
                        w.0 += 1;
                        w.1 += i64::from(r.status >= 400);
                        w.2 += r.input;
                        w.3 += r.output;
                        w.4 += r.cost;
                        w.5.push(r.latency);
                    }
                    let got = app.admin_ok("GET", &uri, None, 200).await;
                    // The total: every group's records, one histogram.
                    let total = &got["total"];
                    let all: Vec<i64> = want.values().flat_map(|w| w.5.clone()).collect();
                    let requests: i64 = want.values().map(|w| w.0).sum();
                    let cost: u64 = want.values().map(|w| w.4).sum();
                    assert_eq!(
                        total["requests"],
                        json!(requests),
                        "{backend:?} {uri}: {got}"
                    );
                    let got_cost = total["cost_usd"].as_f64().unwrap_or(-1.0);
                    assert!(
                        (got_cost - cost as f64 / 1e9).abs() < 1e-9,
                        "{uri}: {got_cost}"
                    );
                    for (p, field) in [(0.5, "latency_p50_ms"), (0.95, "latency_p95_ms")] {
                        let est = total[field].as_i64().unwrap_or(-1);
                        if all.is_empty() {
                            assert_eq!(est, 0, "{uri}: {field} of nothing");
                            continue;
                        }
                        let exact = exact_percentile(all.clone(), p);
                        // From the per-key views' coarse histogram when the
                        // grouping or a filter needs them.
                        let per_key = matches!(group, "key" | "account")
                            || filter.contains("key_id")
                            || filter.contains("account_id");
                        let most = if per_key { 2.0 } else { 1.26 };
                        assert!(
                            est >= exact && (est as f64) <= exact as f64 * most + 1.0,
                            "{backend:?} {uri}: total {field} {est} vs exact {exact}"
                        );
                    }
                    let rows = got["data"].as_array().cloned().unwrap_or_default();
                    assert_eq!(rows.len(), want.len(), "{backend:?} {uri}: {got}");
                    for (row, (_, w)) in rows.iter().zip(want.iter()) {
                        assert_eq!(
                            (
                                &row["requests"],
                                &row["errors"],
                                &row["input_tokens"],
                                &row["output_tokens"]
                            ),
                            (&json!(w.0), &json!(w.1), &json!(w.2), &json!(w.3)),
                            "{backend:?} {uri}: {row}"
                        );
                        let cost = row["cost_usd"].as_f64().unwrap_or(-1.0);
                        assert!(
                            (cost - w.4 as f64 / 1e9).abs() < 1e-9,
                            "{uri}: {cost} vs {}",
                            w.4
                        );
                        for (p, field) in [(0.5, "latency_p50_ms"), (0.95, "latency_p95_ms")] {
                            let exact = exact_percentile(w.5.clone(), p);
                            let est = row[field].as_i64().unwrap_or(-1);
                            let per_key = matches!(group, "key" | "account")
                                || filter.contains("key_id")
                                || filter.contains("account_id");
                            let most = if per_key { 2.0 } else { 1.26 };
                            assert!(
                                est >= exact && (est as f64) <= exact as f64 * most + 1.0,
                                "{backend:?} {uri}: {field} {est} vs exact {exact}"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Batches that land in the same hour's cells, sent at once and sent again
/// at once while a summary reads: every record is in the rollup once, the
/// summary over a range cut mid-hour equals the sum of its records.
#[tokio::test]
async fn concurrent_batches_and_their_redeliveries_are_each_counted_once() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let at = |b: usize, i: usize| T0 + 5 * H + ((b * 150 + i) as i64) * 20_000;
        let batches: Vec<Value> = (0..4)
            .map(|b| {
                let recs: Vec<Value> = (0..150)
                    .map(|i| {
                        record_json(
                            &format!("c-{b}-{i}"),
                            i % 2,
                            i % 3,
                            at(b, i),
                            1000 + i as u64,
                        )
                    })
                    .collect();
                json!({ "records": recs })
            })
            .collect();
        let post = |b: usize| {
            app.call(
                "POST",
                "/internal/usage",
                &Auth::FilterSecret,
                Some(&batches[b]),
            )
        };
        let (a, b, c, d) = tokio::join!(post(0), post(1), post(2), post(3));
        for answer in [a, b, c, d] {
            assert_eq!(answer.status, 200, "{backend:?}: {}", answer.body);
            assert_eq!(
                answer.body["accepted"],
                json!(150),
                "{backend:?}: {}",
                answer.body
            );
        }
        let summary = app.admin_ok("GET", "/admin/usage/summary?group_by=model", None, 200);
        let (a, b, _) = tokio::join!(post(0), post(3), summary);
        for answer in [a, b] {
            assert_eq!(
                answer.body["duplicates"],
                json!(150),
                "{backend:?}: {}",
                answer.body
            );
        }
        // From 05:10:00 to 07:55:00: the records of 05:10-05:59 and 07:00-07:55
        // from the records, 06:00-07:00 from the hourly rows.
        let (since, until) = (T0 + 5 * H + 600_000, T0 + 7 * H + 3_300_000);
        let uri = format!(
            "/admin/usage/summary?group_by=key&since={}&until={}",
            since / 1000,
            until / 1000
        );
        let got = app.admin_ok("GET", &uri, None, 200).await;
        let mut want: BTreeMap<String, (i64, u64, u64)> = BTreeMap::new();
        for b in 0..4 {
            for i in 0..150 {
                let t = at(b, i);
                if t >= since && t < until {
                    let w = want.entry(format!("key_{}", i % 2)).or_default();
                    w.0 += 1;
                    w.1 += 10 + (i % 2) as u64;
                    w.2 += 1000 + i as u64;
                }
            }
        }
        let rows = got["data"].as_array().cloned().unwrap_or_default();
        assert_eq!(rows.len(), want.len(), "{backend:?}: {got}");
        for (row, (key, w)) in rows.iter().zip(want.iter()) {
            assert_eq!(
                (&row["group"], &row["requests"], &row["input_tokens"]),
                (&json!(key), &json!(w.0), &json!(w.1)),
                "{backend:?}: {row}"
            );
            let cost = row["cost_usd"].as_f64().unwrap_or(-1.0);
            assert!(
                (cost - w.2 as f64 / 1e9).abs() < 1e-12,
                "{backend:?}: {row}"
            );
        }
        let total = app
            .admin_ok("GET", "/admin/usage/summary?group_by=model", None, 200)
            .await;
        assert_eq!(
            total["total"]["requests"],
            json!(600),
            "{backend:?}: {total}"
        );
    }
}
