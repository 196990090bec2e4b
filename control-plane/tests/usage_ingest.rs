//! Ingest's two ways in: a batch of new records (inserted with nothing
//! read back) and one with records already stored (done again, reading back
//! which went in): either way each record is counted and charged once, also
//! when batches share a commit; and text goes in as sent.

mod helpers;

use helpers::{backends, record_json, spawn_app, Auth};
use serde_json::json;

const H: i64 = 3_600_000;
/// 2026-11-01 00:00 UTC.
const T0: i64 = 1_793_491_200_000;

/// A batch part stored already and part new (a redelivery that grew): only
/// the new records are accepted, counted in the rollup and charged.
#[tokio::test]
async fn a_batch_of_stored_and_new_records_adds_only_the_new_ones() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let rec = |i: usize| record_json(&format!("m-{i}"), 0, i % 2, T0 + 3 * H + i as i64, 1000);
        let first = json!({ "records": (0..3).map(rec).collect::<Vec<_>>() });
        let grown = json!({ "records": (0..5).map(rec).collect::<Vec<_>>() });
        for (batch, accepted, duplicates) in [(&first, 3, 0), (&grown, 2, 3)] {
            let a = app
                .call("POST", "/internal/usage", &Auth::FilterSecret, Some(batch))
                .await;
            assert_eq!(
                (a.status, &a.body["accepted"], &a.body["duplicates"]),
                (200, &json!(accepted), &json!(duplicates)),
                "{backend:?}: {}",
                a.body
            );
        }
        let s = app
            .admin_ok("GET", "/admin/usage/summary?group_by=key", None, 200)
            .await;
        assert_eq!(
            (&s["total"]["requests"], &s["total"]["cost_usd"]),
            (&json!(5), &json!(5e-6)),
            "{backend:?}: {s}"
        );
    }
}

/// Batches posted at once share a commit (`db::usage_commit`): first five
/// new ones, then two new ones with a redelivery of an earlier batch racing
/// them. Every record is counted and charged once, each batch answered
/// for its own records, and the redelivery as duplicates.
#[tokio::test]
async fn batches_that_arrive_together_count_each_record_once() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (key, _, account) = app.key().await;
        let batch = |b: usize| {
            let recs: Vec<_> = (0..50)
                .map(|i| {
                    let mut r =
                        record_json(&format!("g-{b}-{i}"), 0, i % 5, T0 + H + i as i64, 1000);
                    r["key_id"] = json!(key);
                    r["account_id"] = json!(account);
                    r
                })
                .collect();
            json!({ "records": recs })
        };
        let post_all = |batches: Vec<serde_json::Value>| {
            let app = &app;
            async move {
                let answers =
                    futures::future::join_all(batches.iter().map(|b| {
                        app.call("POST", "/internal/usage", &Auth::FilterSecret, Some(b))
                    }))
                    .await;
                answers
                    .iter()
                    .map(|a| {
                        assert_eq!(a.status, 200, "{backend:?}: {}", a.body);
                        (
                            a.body["accepted"].as_i64().unwrap(),
                            a.body["duplicates"].as_i64().unwrap(),
                        )
                    })
                    .collect::<Vec<_>>()
            }
        };
        let first = post_all((0..5).map(batch).collect()).await;
        assert_eq!(first, vec![(50, 0); 5], "{backend:?}");
        let second = post_all(vec![batch(5), batch(0), batch(6)]).await;
        assert_eq!(second, vec![(50, 0), (0, 50), (50, 0)], "{backend:?}");
        let s = app
            .admin_ok("GET", "/admin/usage/summary?group_by=model", None, 200)
            .await;
        assert_eq!(
            (&s["total"]["requests"], &s["total"]["cost_usd"]),
            (&json!(350), &json!(3.5e-4)),
            "{backend:?}: {s}"
        );
        let k = app
            .admin_ok("GET", &format!("/admin/keys/{key}"), None, 200)
            .await;
        let a = app
            .admin_ok("GET", &format!("/admin/accounts/{account}"), None, 200)
            .await;
        assert_eq!(
            (&k["spent_usd"], &a["spent_usd"]),
            (&json!(3.5e-4), &json!(3.5e-4)),
            "{backend:?}: {k} {a}"
        );
    }
}

/// Text with the characters PostgreSQL's array literals quote (`"`, `\`,
/// `,`, braces, a space, `NULL`) is stored as sent.
#[tokio::test]
async fn text_is_stored_as_sent_whatever_its_characters() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let odd = r#"a "quoted" \ back,slash {x} NULL"#;
        let mut rec = record_json(&format!("odd-{odd}"), 0, 0, T0, 0);
        rec["model"] = json!(odd);
        rec["upstream_model"] = json!("NULL");
        rec["provider"] = json!("");
        let batch = json!({ "records": [rec] });
        let a = app
            .call("POST", "/internal/usage", &Auth::FilterSecret, Some(&batch))
            .await;
        assert_eq!(a.body["accepted"], json!(1), "{backend:?}: {}", a.body);
        let list = app.admin_ok("GET", "/admin/usage", None, 200).await;
        let stored = &list["data"][0];
        assert_eq!(
            (&stored["model"], &stored["request_id"]),
            (&json!(odd), &json!(format!("odd-{odd}"))),
            "{backend:?}: {list}"
        );
    }
}
