//! A PATCH changes the fields it names and only those; `null` clears a field
//! that may be empty; the answer is the resource as stored.

mod helpers;

use helpers::{backends, spawn_app};
use serde_json::json;

#[tokio::test]
async fn a_patch_changes_what_it_names_and_null_clears() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let account = app
            .admin_ok(
                "POST",
                "/admin/accounts",
                Some(&json!({"name": "a", "balance_usd": 5, "rpm": 10, "tpm": 100})),
                201,
            )
            .await;
        let uri = format!(
            "/admin/accounts/{}",
            account["id"].as_str().unwrap_or_default()
        );
        let patched = app
            .admin_ok(
                "PATCH",
                &uri,
                Some(&json!({"name": "b", "rpm": null, "balance_usd": 7.5})),
                200,
            )
            .await;
        assert_eq!(
            (
                &patched["name"],
                &patched["rpm"],
                &patched["tpm"],
                &patched["balance_usd"]
            ),
            (&json!("b"), &json!(null), &json!(100), &json!(7.5)),
            "{backend:?}: {patched}"
        );
        assert_eq!(app.admin_ok("GET", &uri, None, 200).await, patched);

        let (key, _, _) = app.key().await;
        let uri = format!("/admin/keys/{key}");
        let patched = app
            .admin_ok(
                "PATCH",
                &uri,
                Some(&json!({"budget_usd": 2, "max_concurrent": 0})),
                200,
            )
            .await;
        assert_eq!(
            (&patched["budget_usd"], &patched["max_concurrent"]),
            (&json!(2.0), &json!(0))
        );
        let cleared = app
            .admin_ok(
                "PATCH",
                &uri,
                Some(&json!({"budget_usd": null, "name": "k"})),
                200,
            )
            .await;
        assert_eq!(
            (
                &cleared["budget_usd"],
                &cleared["max_concurrent"],
                &cleared["name"]
            ),
            (&json!(null), &json!(0), &json!("k")),
            "{backend:?}: {cleared}"
        );
        assert!(
            cleared.get("key").is_none(),
            "the secret is shown only at creation"
        );

        app.admin_ok(
            "POST",
            "/admin/providers",
            Some(&json!({"id": "p1", "base_url": "https://example.com/v1", "api_key": "sk-1"})),
            201,
        )
        .await;
        let provider = app
            .admin_ok(
                "PATCH",
                "/admin/providers/p1",
                Some(&json!({"name": "P one"})),
                200,
            )
            .await;
        assert_eq!(
            (
                &provider["name"],
                &provider["base_url"],
                &provider["has_api_key"]
            ),
            (
                &json!("P one"),
                &json!("https://example.com/v1"),
                &json!(true)
            )
        );

        app.admin_ok(
            "POST",
            "/admin/models",
            Some(&json!({"id": "org/m1", "context_window": 8, "deployments": [{"provider": "p1", "upstream_model": "m"}]})),
            201,
        )
        .await;
        let model = app
            .admin_ok(
                "PATCH",
                "/admin/models/org/m1",
                Some(&json!({"context_window": null, "pricing": {"input_per_1m": 1.5, "output_per_1m": 2}})),
                200,
            )
            .await;
        assert_eq!(
            (
                &model["context_window"],
                &model["pricing"],
                &model["deployments"][0]["weight"]
            ),
            (
                &json!(null),
                &json!({"input_per_1m": 1.5, "output_per_1m": 2.0}),
                &json!(1)
            ),
            "{backend:?}: {model}"
        );

        let missing = app
            .admin(
                "PATCH",
                "/admin/accounts/acct_nothing",
                Some(&json!({"name": "x"})),
            )
            .await;
        assert_eq!(
            (missing.status, &missing.body["error"]["code"]),
            (404, &json!("not_found"))
        );
    }
}
