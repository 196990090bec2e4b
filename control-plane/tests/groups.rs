//! Model groups: the effective set of a key is its account's group's models
//! narrowed by its own list; `/v1/models`, the catalog and the snapshot the
//! filter checks follow it; the group's limits are defaults for its keys.

mod helpers;

use helpers::{backends, spawn_app, Auth, TestApp};
use serde_json::{json, Value};

async fn catalog(app: &TestApp) {
    app.admin_ok(
        "POST",
        "/admin/providers",
        Some(&json!({"id": "p1", "name": "P One", "base_url": "https://example.com/v1"})),
        201,
    )
    .await;
    for m in ["m1", "m2", "m3"] {
        app.admin_ok(
            "POST",
            "/admin/models",
            Some(&json!({"id": m, "deployments": [{"provider": "p1", "upstream_model": m}]})),
            201,
        )
        .await;
    }
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The key's entry in the snapshot the filter gets.
async fn snapshot_key(app: &TestApp, key: &str) -> Value {
    let snap = app
        .call("GET", "/internal/config", &Auth::FilterSecret, None)
        .await;
    assert_eq!(snap.status, 200, "{}", snap.body);
    snap.body["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["id"] == key).cloned())
        .unwrap_or(Value::Null)
}

async fn key_for(app: &TestApp, account: &str, body: Value) -> String {
    let mut body = body;
    body["account_id"] = json!(account);
    let key = app.admin_ok("POST", "/admin/keys", Some(&body), 201).await;
    key["id"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_groups_models_are_what_its_keys_see_and_use() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        catalog(&app).await;
        let group = app
            .admin_ok(
                "POST",
                "/admin/groups",
                Some(&json!({"name": "team", "models": ["m2", "m1", "m1"], "rpm": 7})),
                201,
            )
            .await;
        assert_eq!(group["models"], json!(["m1", "m2"]), "{backend:?}");
        assert_eq!(group["object"], "group");
        let gid = group["id"].as_str().unwrap_or_default().to_string();
        let account = app
            .admin_ok(
                "POST",
                "/admin/accounts",
                Some(&json!({"name": "a", "group_id": gid})),
                201,
            )
            .await;
        assert_eq!(account["group_id"], json!(gid));
        let acct = account["id"].as_str().unwrap_or_default().to_string();
        let whole = key_for(&app, &acct, json!({})).await;
        let narrow = key_for(&app, &acct, json!({"models": ["m2", "m3"], "rpm": 3})).await;
        let outsider = app.account("outside").await;
        let free = key_for(&app, &outsider, json!({})).await;

        let seen = |key: String, acct: String| {
            let app = &app;
            async move {
                let list = app.keyed("GET", "/v1/models", &key, &acct).await;
                let cat = app.keyed("GET", "/v1/models/catalog", &key, &acct).await;
                assert_eq!(ids(&list.body), ids(&cat.body), "{backend:?}");
                ids(&list.body)
            }
        };
        assert_eq!(seen(whole.clone(), acct.clone()).await, ["m1", "m2"]);
        assert_eq!(seen(narrow.clone(), acct.clone()).await, ["m2"]);
        assert_eq!(
            seen(free.clone(), outsider.clone()).await,
            ["m1", "m2", "m3"]
        );
        let one = app.keyed("GET", "/v1/models/m3", &whole, &acct).await;
        assert_eq!(one.status, 404, "{backend:?}: {}", one.body);

        // The snapshot: the effective set, the group's rpm as a default.
        let k = snapshot_key(&app, &whole).await;
        assert_eq!((&k["models"], &k["rpm"]), (&json!(["m1", "m2"]), &json!(7)));
        let k = snapshot_key(&app, &narrow).await;
        assert_eq!((&k["models"], &k["rpm"]), (&json!(["m2"]), &json!(3)));
        let k = snapshot_key(&app, &free).await;
        assert_eq!((&k["models"], &k["rpm"]), (&json!(null), &json!(null)));

        // A change of the group applies to its keys at once.
        app.admin_ok(
            "PATCH",
            &format!("/admin/groups/{gid}"),
            Some(&json!({"models": ["m3"], "rpm": null})),
            200,
        )
        .await;
        assert_eq!(seen(whole.clone(), acct.clone()).await, ["m3"]);
        assert_eq!(seen(narrow.clone(), acct.clone()).await, ["m3"]);
        let k = snapshot_key(&app, &whole).await;
        assert_eq!((&k["models"], &k["rpm"]), (&json!(["m3"]), &json!(null)));

        // A referenced group cannot go; out of the group, every model again.
        let del = app
            .admin("DELETE", &format!("/admin/groups/{gid}"), None)
            .await;
        assert_eq!(del.status, 409, "{backend:?}: {}", del.body);
        app.admin_ok(
            "PATCH",
            &format!("/admin/accounts/{acct}"),
            Some(&json!({"group_id": null})),
            200,
        )
        .await;
        assert_eq!(seen(whole.clone(), acct.clone()).await, ["m1", "m2", "m3"]);
        app.admin_ok("DELETE", &format!("/admin/groups/{gid}"), None, 204)
            .await;
        app.admin_ok("GET", &format!("/admin/groups/{gid}"), None, 404)
            .await;
    }
}

#[tokio::test]
async fn bad_group_fields_are_400s_naming_the_field() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        catalog(&app).await;
        for (body, param) in [
            (json!({"name": "g", "models": ["nope"]}), "models"),
            (json!({"name": "g"}), ""),
            (
                json!({"name": "g", "models": [], "rpm": 2_000_000_000u32}),
                "rpm",
            ),
            (json!({"name": "g\u{7}", "models": []}), "name"),
            (json!({"name": "g", "models": ["m1"], "extra": 1}), ""),
        ] {
            let a = app.admin("POST", "/admin/groups", Some(&body)).await;
            assert_eq!(a.status, 400, "{backend:?}: {body}: {}", a.body);
            if !param.is_empty() {
                assert_eq!(a.param(), param, "{backend:?}: {body}: {}", a.body);
            }
        }
        let a = app
            .admin(
                "POST",
                "/admin/accounts",
                Some(&json!({"name": "a", "group_id": "grp_nope"})),
            )
            .await;
        assert_eq!((a.status, a.param().clone()), (400, json!("group_id")));
        let acct = app.account("a").await;
        let a = app
            .admin(
                "PATCH",
                &format!("/admin/accounts/{acct}"),
                Some(&json!({"group_id": "grp_nope"})),
            )
            .await;
        assert_eq!((a.status, a.param().clone()), (400, json!("group_id")));
        // An empty group is allowed: its keys may use nothing.
        let g = app
            .admin_ok(
                "POST",
                "/admin/groups",
                Some(&json!({"name": "none", "models": []})),
                201,
            )
            .await;
        let gid = g["id"].as_str().unwrap_or_default();
        app.admin_ok(
            "PATCH",
            &format!("/admin/accounts/{acct}"),
            Some(&json!({"group_id": gid})),
            200,
        )
        .await;
        let key = key_for(&app, &acct, json!({})).await;
        let list = app.keyed("GET", "/v1/models", &key, &acct).await;
        assert_eq!(ids(&list.body), Vec::<String>::new());
        assert_eq!(snapshot_key(&app, &key).await["models"], json!([]));
        let page = app
            .admin_ok("GET", "/admin/groups?limit=1", None, 200)
            .await;
        assert_eq!(page["data"][0]["id"], json!(gid));
    }
}
