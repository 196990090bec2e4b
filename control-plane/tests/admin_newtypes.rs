//! The edge newtypes (`Usd`, `Limit`, `Name`, `Slug`, `Id<Account>`,
//! `Id<Group>`) refuse each bad value when the body is parsed: a 400 whose
//! `param` is the field's path and whose message starts with it, on create
//! and on PATCH, and nothing is written.

mod helpers;

use helpers::{backends, spawn_app, spawn_with_key_and_provider};
use serde_json::{json, Value};

const DOLLARS: &str = "must be a number of dollars from 0 to 1e6";
const LIMIT: &str = "must be an integer from 0 to 1000000000";
const NAME: &str = "must be at most 200 characters without control characters";
const SLUG: &str = "must be 1 to 128 letters, digits or -_.:/@, starting with a letter or digit";

/// `(what, method, uri, body, param, message)`; `message` is `None` where
/// serde's own words answer (a value of the wrong JSON type).
type Case = (
    &'static str,
    &'static str,
    String,
    Value,
    &'static str,
    Option<String>,
);

fn our(param: &str, complaint: &str) -> Option<String> {
    Some(format!("`{param}` {complaint}"))
}

fn cases(account: &str, key: &str) -> Vec<Case> {
    let acct = format!("/admin/accounts/{account}");
    let key = format!("/admin/keys/{key}");
    let credit = format!("{acct}/credit");
    let deploy = json!([{"provider": "p1", "upstream_model": "x"}]);
    let mut out: Vec<Case> = Vec::new();
    // Usd: each money field, negative, over $1e6, huge, and not a number.
    for (uri, field) in [
        ("/admin/accounts", "balance_usd"),
        (acct.as_str(), "balance_usd"),
        (credit.as_str(), "amount_usd"),
        (key.as_str(), "budget_usd"),
    ] {
        let method = if uri.starts_with("/admin/keys/") || uri == acct {
            "PATCH"
        } else {
            "POST"
        };
        for bad in [json!(-0.01), json!(1_000_000.01), json!(1e300)] {
            let mut body = json!({"name": "n"});
            if method == "PATCH" || uri.ends_with("/credit") {
                body = json!({});
            }
            body[field] = bad;
            out.push((
                "a bad amount",
                method,
                uri.to_string(),
                body,
                field,
                our(field, DOLLARS),
            ));
        }
        out.push((
            "dollars as a string",
            method,
            uri.to_string(),
            json!({field: "5"}),
            field,
            None,
        ));
    }
    out.push((
        "a key's budget over $1e6",
        "POST",
        "/admin/keys".to_string(),
        json!({"account_id": account, "budget_usd": 2e6}),
        "budget_usd",
        our("budget_usd", DOLLARS),
    ));
    // A nested Usd is named by its path.
    for (field, prices) in [
        (
            "pricing.input_per_1m",
            json!({"input_per_1m": -1, "output_per_1m": 0}),
        ),
        (
            "pricing.output_per_1m",
            json!({"input_per_1m": 0, "output_per_1m": 2e6}),
        ),
    ] {
        out.push((
            "a bad price",
            "POST",
            "/admin/models".to_string(),
            json!({"id": "m1", "pricing": prices, "deployments": deploy}),
            field,
            our(field, DOLLARS),
        ));
    }
    // Limit: negative, over the maximum, over u32, and a fraction.
    for field in ["rpm", "tpm", "max_concurrent"] {
        for bad in [json!(-1), json!(1_000_000_001u64), json!(5_000_000_000u64)] {
            out.push((
                "a bad limit",
                "POST",
                "/admin/accounts".to_string(),
                json!({"name": "n", field: bad}),
                field,
                our(field, LIMIT),
            ));
            out.push((
                "a bad limit in a PATCH",
                "PATCH",
                key.clone(),
                json!({field: bad}),
                field,
                our(field, LIMIT),
            ));
        }
        out.push((
            "a fractional limit",
            "POST",
            "/admin/groups".to_string(),
            json!({"name": "g", "models": [], field: 1.5}),
            field,
            None,
        ));
    }
    // Name: too long, a control character, not a string.
    for (uri, method, base) in [
        ("/admin/accounts", "POST", json!({})),
        (acct.as_str(), "PATCH", json!({})),
        ("/admin/keys", "POST", json!({"account_id": account})),
        ("/admin/groups", "POST", json!({"models": []})),
        (
            "/admin/providers",
            "POST",
            json!({"base_url": "https://example.com/v1"}),
        ),
        (
            "/admin/models",
            "POST",
            json!({"id": "m2", "deployments": deploy}),
        ),
    ] {
        for bad in [json!("x".repeat(201)), json!("tab\u{7}")] {
            let mut body = base.clone();
            body["name"] = bad;
            out.push((
                "a bad name",
                method,
                uri.to_string(),
                body,
                "name",
                our("name", NAME),
            ));
        }
    }
    // UnixSeconds: before 1970, after 9999, not an integer.
    for bad in [json!(-1), json!(253_402_300_800i64)] {
        out.push((
            "an expiry that is not unix seconds",
            "POST",
            "/admin/keys".to_string(),
            json!({"account_id": account, "expires_at": bad}),
            "expires_at",
            our("expires_at", "must be unix seconds"),
        ));
        out.push((
            "an expiry that is not unix seconds, in a PATCH",
            "PATCH",
            key.clone(),
            json!({"expires_at": bad}),
            "expires_at",
            our("expires_at", "must be unix seconds"),
        ));
    }
    out.push((
        "an expiry as a date",
        "POST",
        "/admin/keys".to_string(),
        json!({"account_id": account, "expires_at": "2030-01-01"}),
        "expires_at",
        None,
    ));
    // Slug: model and provider ids.
    for bad in ["", "-x", "a b", "<script>", &"a".repeat(129)] {
        out.push((
            "a model id that is not a slug",
            "POST",
            "/admin/models".to_string(),
            json!({"id": bad, "deployments": deploy}),
            "id",
            our("id", SLUG),
        ));
        out.push((
            "a provider id that is not a slug",
            "POST",
            "/admin/providers".to_string(),
            json!({"id": bad, "base_url": "https://example.com/v1"}),
            "id",
            our("id", SLUG),
        ));
    }
    // Id: a reference of the wrong kind or shape.
    for bad in [
        "",
        "acct_",
        "key_abc",
        "acct_ABC",
        "acct_a-b",
        &format!("acct_{}", "a".repeat(65)),
    ] {
        out.push((
            "an account id of the wrong shape",
            "POST",
            "/admin/keys".to_string(),
            json!({"account_id": bad}),
            "account_id",
            our("account_id", "must be an account id (`acct_...`)"),
        ));
    }
    for bad in ["acct_1", "grp_", "GRP_1"] {
        out.push((
            "a group id of the wrong shape",
            "PATCH",
            acct.clone(),
            json!({"group_id": bad}),
            "group_id",
            our("group_id", "must be a group id (`grp_...`)"),
        ));
    }
    out
}

#[tokio::test]
async fn each_newtype_refuses_its_bad_values_naming_the_field() {
    for backend in backends() {
        let (app, key, account) = spawn_with_key_and_provider(backend).await;
        let cases = cases(&account, &key);
        assert!(cases.len() > 60, "{}", cases.len());
        for (what, method, uri, body, param, message) in &cases {
            let answer = app.admin(method, uri, Some(body)).await;
            let what = format!(
                "{backend:?}: {what}: {method} {uri} {body}: {}",
                answer.body
            );
            assert_eq!(answer.status, 400, "{what}");
            assert_eq!(answer.body["error"]["code"], "invalid_request", "{what}");
            assert_eq!(answer.param(), param, "{what}");
            let got = answer.body["error"]["message"].as_str().unwrap_or_default();
            match message {
                Some(want) => assert_eq!(got, want, "{what}"),
                None => assert!(got.starts_with("Invalid JSON body"), "{what}"),
            }
        }
        // Nothing refused was written.
        for (list, want) in [
            ("/admin/accounts", 1),
            ("/admin/keys", 1),
            ("/admin/groups", 0),
            ("/admin/providers", 1),
            ("/admin/models", 0),
        ] {
            let page = app.admin_ok("GET", list, None, 200).await;
            assert_eq!(
                page["data"].as_array().map(Vec::len),
                Some(want),
                "{list}: {page}"
            );
        }
        let stored = app
            .admin_ok("GET", &format!("/admin/accounts/{account}"), None, 200)
            .await;
        assert_eq!(stored["balance_usd"], Value::Null, "{stored}");
        assert_eq!(stored["rpm"], Value::Null, "{stored}");
    }
}

#[tokio::test]
async fn each_newtype_takes_its_edge_values() {
    let app = spawn_app(helpers::Backend::Sqlite).await;
    let grp = app
        .admin_ok(
            "POST",
            "/admin/groups",
            Some(&json!({"name": "g", "models": [], "rpm": 0, "tpm": 1_000_000_000u32})),
            201,
        )
        .await;
    assert_eq!(
        (grp["rpm"].clone(), grp["tpm"].clone()),
        (json!(0), json!(1_000_000_000u32))
    );
    let name = "n".repeat(200);
    let acct = app
        .admin_ok(
            "POST",
            "/admin/accounts",
            Some(&json!({"name": name, "balance_usd": 1e6, "group_id": grp["id"]})),
            201,
        )
        .await;
    assert_eq!(acct["balance_usd"], json!(1e6), "{acct}");
    assert_eq!(acct["group_id"], grp["id"], "{acct}");
    // `null` clears an optional newtype field in a PATCH.
    let id = acct["id"].as_str().unwrap_or_default();
    let cleared = json!({"balance_usd": null, "group_id": null});
    let patched = app
        .admin_ok(
            "PATCH",
            &format!("/admin/accounts/{id}"),
            Some(&cleared),
            200,
        )
        .await;
    assert_eq!(patched["balance_usd"], Value::Null, "{patched}");
    assert_eq!(patched["group_id"], Value::Null, "{patched}");
    let slug = format!("a{}", "-_.:/@".repeat(21));
    let provider = app.provider(&slug).await;
    assert_eq!(provider["id"], json!(slug));
}
