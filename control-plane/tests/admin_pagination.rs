//! Every list pages the same way: `limit` (default 20, at most 100) and
//! `after` the last id seen, `has_more` while there is more; usage pages
//! newest first with `after` a usage record id.

mod helpers;

use std::collections::BTreeSet;

use helpers::{backends, spawn_app, Auth, TestApp};
use serde_json::{json, Value};

/// Every id of a list, page by page of `limit`; checks `has_more` on each.
async fn page_through(app: &TestApp, list: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    let join = if list.contains('?') { '&' } else { '?' };
    for _ in 0..100 {
        let uri = match &after {
            None => format!("{list}{join}limit={limit}"),
            Some(a) => format!("{list}{join}limit={limit}&after={a}"),
        };
        let page = app.admin_ok("GET", &uri, None, 200).await;
        assert_eq!(page["object"], "list", "{page}");
        let data = page["data"].as_array().cloned().unwrap_or_default();
        assert!(data.len() <= limit, "{uri}: {page}");
        ids.extend(
            data.iter()
                .map(|item| item["id"].as_str().unwrap_or_default().to_string()),
        );
        let has_more = page["has_more"].as_bool().expect("has_more");
        if !has_more {
            return ids;
        }
        assert_eq!(
            data.len(),
            limit,
            "a page with more after it is full: {uri}"
        );
        after = data
            .last()
            .map(|item| item["id"].as_str().unwrap_or_default().to_string());
    }
    panic!("{list} never ended");
}

#[tokio::test]
async fn lists_page_by_limit_and_cursor_in_id_order() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut made = Vec::new();
        for i in 0..5 {
            made.push(app.account(&format!("account {i}")).await);
        }
        made.sort();
        for limit in [1, 2, 5, 100] {
            let ids = page_through(&app, "/admin/accounts", limit).await;
            assert_eq!(ids, made, "{backend:?}: limit {limit}");
        }
        let default = app.admin_ok("GET", "/admin/accounts", None, 200).await;
        assert_eq!(default["data"].as_array().map(Vec::len), Some(5));
        assert_eq!(default["has_more"], false);
        // A cursor past the end is an empty last page.
        let last = made.last().cloned().unwrap_or_default();
        let past = app
            .admin_ok("GET", &format!("/admin/accounts?after={last}"), None, 200)
            .await;
        assert_eq!(
            (past["data"].clone(), past["has_more"].clone()),
            (json!([]), json!(false))
        );
    }
}

#[tokio::test]
async fn keys_page_within_one_account() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mine = app.account("mine").await;
        let theirs = app.account("theirs").await;
        let mut my_keys = Vec::new();
        for owner in [&mine, &theirs, &mine, &theirs, &mine] {
            let key = app
                .admin_ok(
                    "POST",
                    "/admin/keys",
                    Some(&json!({"account_id": owner})),
                    201,
                )
                .await;
            if owner == &mine {
                my_keys.push(key["id"].as_str().unwrap_or_default().to_string());
            }
        }
        my_keys.sort();
        let ids = page_through(&app, &format!("/admin/keys?account_id={mine}"), 2).await;
        assert_eq!(ids, my_keys, "{backend:?}");
        assert_eq!(page_through(&app, "/admin/keys", 2).await.len(), 5);
    }
}

fn record(n: usize, key_id: &str, account_id: &str) -> Value {
    json!({
        "request_id": format!("req-{n}"),
        "key_id": key_id,
        "account_id": account_id,
        "model": if n % 2 == 0 { "even" } else { "odd" },
        "upstream_model": "up",
        "provider": "p1",
        "status": 200,
        "input_tokens": 10,
        "output_tokens": 5,
        "estimated": false,
        "stream": false,
        "latency_ms": 3,
        "ttft_ms": null,
        "cost_nanos": 0,
        "created_at_ms": 1_700_000_000_000u64 + n as u64,
    })
}

#[tokio::test]
async fn usage_pages_newest_first_for_the_admin_and_for_the_key_holder() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (key, _, account) = app.key().await;
        let records: Vec<Value> = (0..7).map(|n| record(n, &key, &account)).collect();
        let ingested = app
            .call(
                "POST",
                "/internal/usage",
                &Auth::FilterSecret,
                Some(&json!({"records": records})),
            )
            .await;
        assert_eq!(ingested.status, 200, "{}", ingested.body);
        assert_eq!(ingested.body["accepted"], 7);

        let ids = page_through(&app, "/admin/usage", 3).await;
        assert_eq!(ids.len(), 7, "{backend:?}: {ids:?}");
        let numbers: Vec<i64> = ids
            .iter()
            .map(|id| id.trim_start_matches("usage_").parse().expect("usage_<n>"))
            .collect();
        assert!(
            numbers.windows(2).all(|w| w[0] > w[1]),
            "newest first: {ids:?}"
        );
        assert_eq!(
            ids.iter().collect::<BTreeSet<_>>().len(),
            7,
            "no record twice"
        );

        let odd = page_through(&app, "/admin/usage?model=odd", 2).await;
        assert_eq!(odd.len(), 3, "{backend:?}: {odd:?}");

        let summary = app
            .admin_ok(
                "GET",
                "/admin/usage/summary?group_by=model&since=1700000000",
                None,
                200,
            )
            .await;
        let groups: Vec<(Value, Value, Value)> = summary["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|g| {
                (
                    g["group"].clone(),
                    g["requests"].clone(),
                    g["input_tokens"].clone(),
                )
            })
            .collect();
        assert_eq!(
            groups,
            vec![
                (json!("even"), json!(4), json!(40)),
                (json!("odd"), json!(3), json!(30))
            ],
            "{backend:?}: {summary}"
        );
        let none = app
            .admin_ok("GET", "/admin/usage/summary?until=1700000000", None, 200)
            .await;
        assert_eq!(none["data"], json!([]), "{backend:?}: {none}");

        // The key holder's own list, through the filter's identity headers.
        let mut seen = Vec::new();
        let mut after = String::new();
        loop {
            let uri = if after.is_empty() {
                "/v1/usage?limit=4".to_string()
            } else {
                format!("/v1/usage?limit=4&after={after}")
            };
            let page = app.keyed("GET", &uri, &key, &account).await;
            assert_eq!(page.status, 200, "{}", page.body);
            let data = page.body["data"].as_array().cloned().unwrap_or_default();
            seen.extend(
                data.iter()
                    .map(|r| r["id"].as_str().unwrap_or_default().to_string()),
            );
            if page.body["has_more"] != true {
                break;
            }
            after = seen.last().cloned().unwrap_or_default();
        }
        assert_eq!(seen, ids, "{backend:?}");
    }
}

#[tokio::test]
async fn keys_are_searched_by_name_id_prefix_account_id_or_account_name_in_any_case() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let account = app.account("searcher").await;
        let mut ids = Vec::new();
        for name in ["Alpha Team", "beta_50%", "gamma", "alphabet"] {
            let k = app
                .admin_ok(
                    "POST",
                    "/admin/keys",
                    Some(&json!({"account_id": account, "name": name})),
                    201,
                )
                .await;
            ids.push(k["id"].as_str().expect("id").to_string());
        }
        let names = |page: Value| -> Vec<String> {
            let mut v: Vec<String> = page["data"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|k| k["name"].as_str().unwrap_or_default().to_string())
                .collect();
            v.sort();
            v
        };
        let search = |q: &str| format!("/admin/keys?search={q}");
        let got = app.admin_ok("GET", &search("ALPHA"), None, 200).await;
        assert_eq!(names(got), ["Alpha Team", "alphabet"], "{backend:?}");
        // `%` and `_` are themselves, not wildcards.
        let got = app.admin_ok("GET", &search("a_5"), None, 200).await;
        assert_eq!(names(got), ["beta_50%"], "{backend:?}");
        let got = app.admin_ok("GET", &search("%25"), None, 200).await;
        assert_eq!(names(got), ["beta_50%"], "{backend:?}");
        let got = app.admin_ok("GET", &search("a%25a"), None, 200).await;
        assert!(names(got).is_empty(), "{backend:?}");
        let got = app.admin_ok("GET", &search(&ids[2]), None, 200).await;
        assert_eq!(names(got), ["gamma"], "{backend:?}");
        let got = app.admin_ok("GET", &search(&account), None, 200).await;
        assert_eq!(names(got).len(), 4, "{backend:?}");
        // Pages of a search go on after the last id like any list.
        let ids = page_through(&app, "/admin/keys?search=a", 1).await;
        assert_eq!(ids.len(), 4, "{backend:?}");
        // By the account's name, any case: its keys, not another's.
        let other = app.account("Zephyr Works").await;
        for name in ["z1", "z2", "z3"] {
            let body = json!({"account_id": other, "name": name});
            app.admin_ok("POST", "/admin/keys", Some(&body), 201).await;
        }
        let got = app.admin_ok("GET", &search("zePHYR"), None, 200).await;
        assert_eq!(names(got), ["z1", "z2", "z3"], "{backend:?}");
        let got = app.admin_ok("GET", &search("SEARCHER"), None, 200).await;
        assert_eq!(names(got).len(), 4, "{backend:?}");
        let ids = page_through(&app, "/admin/keys?search=zephyr", 2).await;
        assert_eq!(ids.len(), 3, "{backend:?}");
    }
}
