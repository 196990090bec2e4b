//! What the dashboard and chat front-ends read over a range:
//! `/admin/usage/streams` (time to first token and the estimated share of
//! tokens, exact, over a month of records) and the legacy
//! `/v1/dashboard/billing/usage` with `start_date`/`end_date` (YYYY-MM-DD,
//! the end exclusive; the key's records when its budget is the limit, else
//! the account's); a key holder's own `/v1/usage/summary`; and their bad
//! inputs.

mod helpers;

use helpers::{backends, spawn_app, Auth, TestApp};
use serde_json::{json, Value};

/// 2026-11-01 00:00 UTC.
const T0: i64 = 1_793_491_200_000;
const D: i64 = 86_400_000;

#[allow(clippy::too_many_arguments)]
fn record(
    id: &str,
    key: &str,
    account: &str,
    at: i64,
    cost: u64,
    ttft: Option<i64>,
    estimated: bool,
    tokens: u64,
) -> Value {
    json!({
        "request_id": id, "key_id": key, "account_id": account, "model": "m",
        "upstream_model": "u", "provider": "p", "status": 200, "input_tokens": tokens,
        "output_tokens": tokens, "estimated": estimated, "stream": ttft.is_some(),
        "latency_ms": 50, "ttft_ms": ttft, "cost_nanos": cost, "created_at_ms": at,
    })
}

async fn ingest(app: &TestApp, records: Vec<Value>) {
    let a = app
        .call(
            "POST",
            "/internal/usage",
            &Auth::FilterSecret,
            Some(&json!({"records": records})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

fn exact(mut l: Vec<i64>, p: f64) -> i64 {
    l.sort();
    l[((l.len() as f64) * p).ceil().max(1.0) as usize - 1]
}

#[tokio::test]
async fn streams_give_exact_first_token_percentiles_and_the_estimated_share_over_a_month() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        // 400 records over 30 days: every third a stream, every fifth estimated.
        let mut ttfts = Vec::new();
        let (mut tokens, mut estimated) = (0, 0);
        let records: Vec<Value> = (0..400i64)
            .map(|i| {
                let ttft = (i % 3 == 0).then_some(20 + (i * 37) % 900);
                let est = i % 5 == 0;
                let t = 10 + (i as u64 % 7);
                if let Some(v) = ttft {
                    ttfts.push(v);
                }
                tokens += 2 * t;
                if est {
                    estimated += 2 * t;
                }
                record(
                    &format!("r{i}"),
                    "k",
                    "a",
                    T0 + i * (30 * D / 400),
                    1,
                    ttft,
                    est,
                    t,
                )
            })
            .collect();
        ingest(&app, records).await;
        let uri = format!(
            "/admin/usage/streams?since={}&until={}",
            T0 / 1000,
            (T0 + 30 * D) / 1000
        );
        let got = app.admin_ok("GET", &uri, None, 200).await;
        assert_eq!(got["streams"], json!(ttfts.len()), "{got}");
        assert_eq!(
            got["ttft_p50_ms"],
            json!(exact(ttfts.clone(), 0.5)),
            "{got}"
        );
        assert_eq!(
            got["ttft_p95_ms"],
            json!(exact(ttfts.clone(), 0.95)),
            "{got}"
        );
        assert_eq!(
            (&got["tokens"], &got["estimated_tokens"]),
            (&json!(tokens), &json!(estimated))
        );
        // A range with no stream: counts of nothing, no percentile.
        let empty = format!("/admin/usage/streams?since={}", (T0 + 40 * D) / 1000);
        let got = app.admin_ok("GET", &empty, None, 200).await;
        assert_eq!(
            (&got["streams"], &got["ttft_p50_ms"], &got["tokens"]),
            (&json!(0), &Value::Null, &json!(0))
        );
        for (query, param) in [
            ("group_by=model", "group_by"),
            ("limit=5", "limit"),
            ("after=x", "after"),
            ("status=nope", "status"),
        ] {
            let a = app
                .admin("GET", &format!("/admin/usage/streams?{query}"), None)
                .await;
            assert_eq!(a.status, 400, "{query}: {}", a.body);
            assert_eq!(
                a.body["error"]["param"],
                json!(param),
                "{query}: {}",
                a.body
            );
        }
        let a = app
            .admin("GET", "/admin/usage/streams?since=soon", None)
            .await;
        assert_eq!(
            (a.status, &a.body["error"]["type"]),
            (400, &json!("invalid_request_error"))
        );
        let a = app
            .call("GET", "/admin/usage/streams", &Auth::None, None)
            .await;
        assert_eq!(a.status, 401);
    }
}

async fn cents(app: &TestApp, key: &str, account: &str, query: &str) -> f64 {
    let a = app
        .keyed(
            "GET",
            &format!("/v1/dashboard/billing/usage{query}"),
            key,
            account,
        )
        .await;
    assert_eq!(a.status, 200, "{query}: {}", a.body);
    a.body["total_usage"].as_f64().expect("total_usage")
}

#[tokio::test]
async fn billing_usage_sums_the_dates_asked_for_with_the_end_exclusive() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (key, _, account) = app.key().await;
        // A second key of the account with a budget: its budget is its limit.
        let budgeted = app
            .admin_ok(
                "POST",
                "/admin/keys",
                Some(&json!({"account_id": account, "budget_usd": 100})),
                201,
            )
            .await["id"]
            .as_str()
            .expect("id")
            .to_string();
        let dollar = 1_000_000_000;
        ingest(
            &app,
            vec![
                record("b1", &key, &account, T0, dollar, None, false, 1),
                record(
                    "b2",
                    &key,
                    &account,
                    T0 + 14 * D + 5,
                    2 * dollar,
                    None,
                    false,
                    1,
                ),
                record(
                    "b3",
                    &key,
                    &account,
                    T0 + 30 * D,
                    4 * dollar,
                    None,
                    false,
                    1,
                ),
                record(
                    "b4",
                    &budgeted,
                    &account,
                    T0 + 19 * D,
                    16 * dollar,
                    None,
                    false,
                    1,
                ),
                record(
                    "b5",
                    "other",
                    "other_account",
                    T0 + 14 * D,
                    8 * dollar,
                    None,
                    false,
                    1,
                ),
            ],
        )
        .await;
        let nov = "?start_date=2026-11-01&end_date=2026-12-01";
        // The account's records (its keys': 1 + 2 + 16), not December's.
        assert_eq!(cents(&app, &key, &account, nov).await, 1900.0);
        assert_eq!(
            cents(&app, &key, &account, "?start_date=2026-11-02").await,
            2200.0
        );
        // The end is exclusive: the 15th's record is not before the 15th.
        assert_eq!(
            cents(&app, &key, &account, "?end_date=2026-11-15").await,
            100.0
        );
        assert_eq!(
            cents(
                &app,
                &key,
                &account,
                "?start_date=2026-11-15&end_date=2026-11-16"
            )
            .await,
            200.0
        );
        // The budgeted key: its own records only.
        assert_eq!(cents(&app, &budgeted, &account, nov).await, 1600.0);
        assert_eq!(
            cents(&app, &budgeted, &account, "?start_date=2026-11-21").await,
            0.0
        );
        // No dates: all time, from the spend counters.
        assert_eq!(cents(&app, &key, &account, "").await, 2300.0);
        assert_eq!(cents(&app, &budgeted, &account, "").await, 1600.0);
        for (query, param) in [
            ("start_date=2026-13-01", "start_date"),
            ("start_date=yesterday", "start_date"),
            ("end_date=2026-11-1", "end_date"),
            ("end_date=1793491200", "end_date"),
            ("start_date=2026-11-05&end_date=2026-11-05", "end_date"),
            ("start_date=2026-11-05&end_date=2026-11-01", "end_date"),
        ] {
            let uri = format!("/v1/dashboard/billing/usage?{query}");
            let a = app.keyed("GET", &uri, &key, &account).await;
            assert_eq!(a.status, 400, "{query}: {}", a.body);
            assert_eq!(
                a.body["error"]["type"],
                json!("invalid_request_error"),
                "{query}"
            );
            assert_eq!(
                a.body["error"]["param"],
                json!(param),
                "{query}: {}",
                a.body
            );
        }
        let a = app
            .keyed(
                "GET",
                "/v1/dashboard/billing/usage?from=2026-11-01",
                &key,
                &account,
            )
            .await;
        assert_eq!(a.status, 400, "{}", a.body);
    }
}

#[tokio::test]
async fn a_key_holder_summary_is_of_their_own_account_only() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (key, _, account) = app.key().await;
        let (other_key, _, other_account) = app.key().await;
        let hour = 3_600_000;
        ingest(
            &app,
            vec![
                record("s1", &key, &account, T0 + 10, 5, None, false, 3),
                record("s2", &key, &account, T0 + hour + 10, 7, None, false, 4),
                record("s3", &key, &account, T0 + hour + 20, 7, None, false, 4),
                record(
                    "s4",
                    &other_key,
                    &other_account,
                    T0 + hour,
                    100,
                    None,
                    false,
                    50,
                ),
            ],
        )
        .await;
        let uri = format!(
            "/v1/usage/summary?since={}&until={}",
            T0 / 1000,
            (T0 + D) / 1000
        );
        let a = app.keyed("GET", &uri, &key, &account).await;
        assert_eq!(a.status, 200, "{}", a.body);
        let rows = a.body["data"].as_array().cloned().unwrap_or_default();
        let got: Vec<(Value, Value)> = rows
            .iter()
            .map(|r| (r["group"].clone(), r["requests"].clone()))
            .collect();
        assert_eq!(
            got,
            [
                (json!("2026-11-01T00:00Z"), json!(1)),
                (json!("2026-11-01T01:00Z"), json!(2))
            ],
            "{}",
            a.body
        );
        assert_eq!(a.body["group_by"], json!("hour"));
        assert_eq!(
            (
                &a.body["total"]["requests"],
                &a.body["total"]["input_tokens"]
            ),
            (&json!(3), &json!(11))
        );
        let by_key = app
            .keyed(
                "GET",
                &format!("{uri}&group_by=key"),
                &other_key,
                &other_account,
            )
            .await;
        assert_eq!(
            by_key.body["data"][0]["group"],
            json!(other_key),
            "{}",
            by_key.body
        );
        assert_eq!(by_key.body["total"]["requests"], json!(1));
        for (query, param) in [
            ("group_by=account", "group_by"),
            ("group_by=week", "group_by"),
            ("since=99999999999999999", "since"),
        ] {
            let a = app
                .keyed("GET", &format!("/v1/usage/summary?{query}"), &key, &account)
                .await;
            assert_eq!(a.status, 400, "{query}: {}", a.body);
            assert_eq!(
                a.body["error"]["param"],
                json!(param),
                "{query}: {}",
                a.body
            );
        }
        for query in ["account_id=x", "key_id=y", "since=later"] {
            let a = app
                .keyed("GET", &format!("/v1/usage/summary?{query}"), &key, &account)
                .await;
            assert_eq!(
                (a.status, &a.body["error"]["type"]),
                (400, &json!("invalid_request_error")),
                "{query}"
            );
        }
        let a = app
            .call("GET", "/v1/usage/summary", &Auth::None, None)
            .await;
        assert_eq!(a.status, 401, "{}", a.body);
    }
}
