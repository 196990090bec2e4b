//! A bad field gets a 400 in the OpenAI format whose `param` names it, and
//! nothing is written.

mod helpers;

use helpers::{backends, spawn_app, spawn_with_key_and_provider};
use serde_json::{json, Value};

struct Case {
    name: &'static str,
    method: &'static str,
    uri: String,
    body: Option<Value>,
    param: Option<&'static str>,
    /// A piece of the message, where `param` cannot name the field.
    message: Option<&'static str>,
}

fn case(
    name: &'static str,
    method: &'static str,
    uri: &str,
    body: Value,
    param: &'static str,
) -> Case {
    Case {
        name,
        method,
        uri: uri.to_string(),
        body: Some(body),
        param: Some(param),
        message: None,
    }
}

fn query(
    name: &'static str,
    uri: &str,
    param: Option<&'static str>,
    message: Option<&'static str>,
) -> Case {
    Case {
        name,
        method: "GET",
        uri: uri.to_string(),
        body: None,
        param,
        message,
    }
}

#[tokio::test]
async fn a_bad_field_is_refused_with_a_400_that_names_it() {
    for backend in backends() {
        let (app, key, account) = spawn_with_key_and_provider(backend).await;
        app.admin_ok(
            "POST",
            "/admin/models",
            Some(&json!({"id": "existing", "max_attempts": 2, "deployments": [{"provider": "p1", "upstream_model": "x"}]})),
            201,
        )
        .await;
        let account_uri = format!("/admin/accounts/{account}");
        let key_uri = format!("/admin/keys/{key}");
        let cases = [
            case(
                "an unknown field",
                "POST",
                "/admin/accounts",
                json!({"name": "a", "nmae": "b"}),
                "nmae",
            ),
            case(
                "a missing field",
                "POST",
                "/admin/accounts",
                json!({}),
                "name",
            ),
            case(
                "a negative balance",
                "POST",
                "/admin/accounts",
                json!({"name": "a", "balance_usd": -1}),
                "balance_usd",
            ),
            case(
                "a balance over $1e6",
                "POST",
                "/admin/accounts",
                json!({"name": "a", "balance_usd": 2e6}),
                "balance_usd",
            ),
            case(
                "an rpm over the maximum",
                "POST",
                "/admin/accounts",
                json!({"name": "a", "rpm": 2_000_000_000u32}),
                "rpm",
            ),
            case(
                "a name with a control character",
                "POST",
                "/admin/accounts",
                json!({"name": "a\u{7}"}),
                "name",
            ),
            case(
                "a read-only field in a patch",
                "PATCH",
                &account_uri,
                json!({"spent_usd": 0}),
                "spent_usd",
            ),
            case(
                "a negative credit",
                "POST",
                &format!("{account_uri}/credit"),
                json!({"amount_usd": -5}),
                "amount_usd",
            ),
            case(
                "a key for no account",
                "POST",
                "/admin/keys",
                json!({"account_id": "acct_nothing"}),
                "account_id",
            ),
            case(
                "a key for a model not in the catalog",
                "POST",
                "/admin/keys",
                json!({"account_id": account, "models": ["no-such-model"]}),
                "models",
            ),
            case(
                "a key born expired",
                "POST",
                "/admin/keys",
                json!({"account_id": account, "expires_at": 1}),
                "expires_at",
            ),
            case(
                "a budget that is not a number of dollars",
                "PATCH",
                &key_uri,
                json!({"budget_usd": -0.5}),
                "budget_usd",
            ),
            case(
                "a tpm over the maximum",
                "PATCH",
                &key_uri,
                json!({"tpm": 1_000_000_001u32}),
                "tpm",
            ),
            case(
                "a provider id that is not a slug",
                "POST",
                "/admin/providers",
                json!({"id": "-bad id", "base_url": "https://example.com/v1"}),
                "id",
            ),
            case(
                "a provider kind nobody speaks",
                "POST",
                "/admin/providers",
                json!({"kind": "smoke-signals", "base_url": "https://example.com/v1"}),
                "kind",
            ),
            case(
                "a provider URL that is not http",
                "POST",
                "/admin/providers",
                json!({"base_url": "ftp://example.com/"}),
                "base_url",
            ),
            case(
                "a provider URL on cloud metadata",
                "POST",
                "/admin/providers",
                json!({"base_url": "http://169.254.169.254/"}),
                "base_url",
            ),
            case(
                "a blank model category",
                "POST",
                "/admin/models",
                json!({"id": "m1", "category": " ", "deployments": []}),
                "category",
            ),
            case(
                "a model with no deployments",
                "POST",
                "/admin/models",
                json!({"id": "m1", "deployments": []}),
                "deployments",
            ),
            case(
                "a model on no provider",
                "POST",
                "/admin/models",
                json!({"id": "m1", "deployments": [{"provider": "nope", "upstream_model": "x"}]}),
                "deployments",
            ),
            case(
                "a negative price",
                "POST",
                "/admin/models",
                json!({"id": "m1", "pricing": {"input_per_1m": -1, "output_per_1m": 0}, "deployments": [{"provider": "p1", "upstream_model": "x"}]}),
                "pricing.input_per_1m",
            ),
            case(
                "a model that tries no deployment",
                "POST",
                "/admin/models",
                json!({"id": "m1", "max_attempts": 0, "deployments": [{"provider": "p1", "upstream_model": "x"}]}),
                "max_attempts",
            ),
            case(
                "a model that tries more deployments than the gateway does",
                "PATCH",
                "/admin/models/existing",
                json!({"max_attempts": 6}),
                "max_attempts",
            ),
            query(
                "a page of zero",
                "/admin/accounts?limit=0",
                Some("limit"),
                None,
            ),
            query(
                "a page over 100",
                "/admin/keys?limit=101",
                Some("limit"),
                None,
            ),
            query(
                "a page size that is not a number",
                "/admin/models?limit=ten",
                Some("limit"),
                None,
            ),
            query(
                "a usage cursor that is not a usage id",
                "/admin/usage?after=acct_1",
                Some("after"),
                None,
            ),
            query(
                "a summary grouped by nothing known",
                "/admin/usage/summary?group_by=colour",
                Some("group_by"),
                None,
            ),
            query(
                "an unknown query parameter",
                "/admin/providers?colour=red",
                None,
                Some("colour"),
            ),
        ];
        for c in &cases {
            let answer = app.admin(c.method, &c.uri, c.body.as_ref()).await;
            let what = format!(
                "{backend:?}: {}: {} {}: {}",
                c.name, c.method, c.uri, answer.body
            );
            assert_eq!(answer.status, 400, "{what}");
            assert_eq!(
                answer.body["error"]["type"], "invalid_request_error",
                "{what}"
            );
            assert_eq!(answer.body["error"]["code"], "invalid_request", "{what}");
            match c.param {
                Some(param) => assert_eq!(answer.param(), param, "{what}"),
                None => assert!(answer.param().is_null(), "{what}"),
            }
            if let Some(piece) = c.message {
                let message = answer.body["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains(piece), "{what}");
            }
        }
        // Nothing refused was written: the one account, key and provider
        // made above.
        let accounts = app.admin_ok("GET", "/admin/accounts", None, 200).await;
        assert_eq!(
            accounts["data"].as_array().map(Vec::len),
            Some(1),
            "{accounts}"
        );
        assert_eq!(accounts["data"][0]["balance_usd"], Value::Null);
        let keys = app.admin_ok("GET", "/admin/keys", None, 200).await;
        assert_eq!(keys["data"].as_array().map(Vec::len), Some(1), "{keys}");
        assert_eq!(keys["data"][0]["budget_usd"], Value::Null);
        let providers = app.admin_ok("GET", "/admin/providers", None, 200).await;
        assert_eq!(
            providers["data"].as_array().map(Vec::len),
            Some(1),
            "{providers}"
        );
        let models = app.admin_ok("GET", "/admin/models", None, 200).await;
        // Only the model made before the cases, unchanged by the refused PATCH.
        assert_eq!(models["data"].as_array().map(Vec::len), Some(1), "{models}");
        assert_eq!(models["data"][0]["max_attempts"], 2);
    }
}

#[tokio::test]
async fn an_empty_or_broken_body_is_a_400_not_a_plain_text_rejection() {
    let app = spawn_app(helpers::Backend::Sqlite).await;
    let empty = app.admin("POST", "/admin/accounts", None).await;
    assert_eq!(empty.status, 400, "{}", empty.body);
    assert_eq!(empty.body["error"]["code"], "invalid_request");
    let wrong_type = app
        .admin("POST", "/admin/accounts", Some(&json!({"name": 7})))
        .await;
    assert_eq!(wrong_type.status, 400, "{}", wrong_type.body);
    let message = wrong_type.body["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.starts_with("Invalid JSON body"), "{message}");
}
