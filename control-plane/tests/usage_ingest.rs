//! Ingest's two ways in: a batch of new records (inserted with nothing
//! read back) and one with records already stored (done again, reading back
//! which went in): either way each record is counted and charged once.

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

/// Batches posted at once share a commit (`db::usage_commit`); one of them
/// a redelivery of another racing it: every record is counted and charged
/// once, and the redelivery is answered as duplicates.
#[tokio::test]
async fn batches_that_arrive_together_count_each_record_once() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let batch = |b: usize| {
            let recs: Vec<_> = (0..50)
                .map(|i| record_json(&format!("g-{b}-{i}"), 0, i % 5, T0 + H + i as i64, 1000))
                .collect();
            json!({ "records": recs })
        };
        // The sixth batch is the first sent again.
        let batches: Vec<_> = (0..5).map(batch).chain([batch(0)]).collect();
        let answers = futures::future::join_all(
            batches
                .iter()
                .map(|b| app.call("POST", "/internal/usage", &Auth::FilterSecret, Some(b))),
        )
        .await;
        let (mut accepted, mut duplicates) = (0, 0);
        for a in &answers {
            assert_eq!(a.status, 200, "{backend:?}: {}", a.body);
            accepted += a.body["accepted"].as_i64().unwrap();
            duplicates += a.body["duplicates"].as_i64().unwrap();
        }
        assert_eq!((accepted, duplicates), (250, 50), "{backend:?}");
        let s = app
            .admin_ok("GET", "/admin/usage/summary?group_by=model", None, 200)
            .await;
        assert_eq!(
            (&s["total"]["requests"], &s["total"]["cost_usd"]),
            (&json!(250), &json!(2.5e-4)),
            "{backend:?}: {s}"
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
