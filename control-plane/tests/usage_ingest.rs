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
