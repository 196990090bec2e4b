//! A disable a filter reports and an admin's change of the same key pool,
//! made at the same moment, both stay: the disable is a compare-and-set of
//! the pool (`internal/health.rs`), never a write from an older read.

mod helpers;

use futures::future::join_all;
use helpers::{backends, spawn_app, Auth};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reported_disable_never_undoes_an_admins_change_of_the_pool() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let first: Vec<String> = (0..8).map(|i| format!("sk-first-{i}-0123456789")).collect();
        let created = app
            .admin_ok(
                "POST",
                "/admin/providers",
                Some(&json!({"id": "pool", "name": "Pool", "base_url": "https://example.com/v1", "api_keys": first})),
                201,
            )
            .await;
        let ids: Vec<String> = created["api_keys"]
            .as_array()
            .expect("api_keys")
            .iter()
            .map(|k| k["id"].as_str().expect("id").to_string())
            .collect();
        assert_eq!(ids.len(), 8);
        // Eight disables and eight additions, all at once.
        let disables = ids.iter().enumerate().map(|(i, id)| {
            let report = json!({"reporter": format!("w{i}"), "deployments": [],
                "credentials": [{"provider": "pool", "credential": id, "generation": 0,
                                 "state": "disabled", "until_ms": 0, "status": 401}]});
            let app = &app;
            async move {
                app.call(
                    "POST",
                    "/internal/health",
                    &Auth::FilterSecret,
                    Some(&report),
                )
                .await
                .status
            }
        });
        let adds = (0..8).map(|i| {
            let body = json!({"api_key": format!("sk-added-{i}-0123456789")});
            let app = &app;
            async move {
                app.admin("POST", "/admin/providers/pool/api_keys", Some(&body))
                    .await
                    .status
            }
        });
        // Polled together, so their reads and writes interleave.
        let (reported, added) = tokio::join!(join_all(disables), join_all(adds));
        assert!(
            reported.iter().all(|s| *s == 204),
            "{backend:?}: {reported:?}"
        );
        assert!(
            added.iter().all(|s| *s == 201 || *s == 200),
            "{backend:?}: {added:?}"
        );
        let pool = app
            .admin_ok("GET", "/admin/providers/pool", None, 200)
            .await;
        let keys: &Vec<Value> = pool["api_keys"].as_array().expect("api_keys");
        assert_eq!(
            keys.len(),
            16,
            "{backend:?}: every addition is there: {pool}"
        );
        for id in &ids {
            let key = keys
                .iter()
                .find(|k| k["id"] == id.as_str())
                .expect("a first key");
            assert_eq!(
                key["state"], "disabled",
                "{backend:?}: every disable is there: {pool}"
            );
        }
        let active = keys.iter().filter(|k| k["state"] == "active").count();
        assert_eq!(active, 8, "{backend:?}: the added keys are active: {pool}");
    }
}
