//! Every admin route refuses a caller without the admin token, in the OpenAI
//! error format, before it reads anything. The routes come from the OpenAPI
//! document the router generates (`openapi_document`), so a route added is
//! tested here without a second list to keep.

mod helpers;

use helpers::{backends, spawn_app, Auth, TestApp, FILTER_SECRET};
use serde_json::json;
use tollgate_control_plane::openapi_document;

const METHODS: &[&str] = &["get", "post", "patch", "delete", "put"];

/// A concrete URI for a documented path: `{id}` (and `{key}`) filled in (a model id with
/// a slash, which model ids may have).
fn uri(path: &str) -> String {
    if path.starts_with("/admin/models/") {
        path.replace("{id}", "some-org/some-model")
    } else {
        path.replace("{id}", "nothing").replace("{key}", "nothing")
    }
}

/// Every documented path and its methods, from the generated document.
fn documented() -> Vec<(String, Vec<String>)> {
    let doc = openapi_document();
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    paths
        .into_iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .map(|ops| {
                    ops.keys()
                        .filter(|m| METHODS.contains(&m.as_str()))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            (path, methods)
        })
        .collect()
}

fn every_admin_call() -> Vec<(String, String)> {
    let mut calls = Vec::new();
    for (path, methods) in documented() {
        for method in methods {
            calls.push((method.to_uppercase(), uri(&path)));
        }
    }
    assert!(
        calls.len() >= 20,
        "the route list looks truncated: {calls:?}"
    );
    calls
}

fn assert_refused(app: &TestApp, who: &str, method: &str, uri: &str, answer: &helpers::Answer) {
    let what = format!("{:?}: {who}: {method} {uri}: {}", app.backend, answer.body);
    assert_eq!(answer.status, 401, "{what}");
    let error = &answer.body["error"];
    assert_eq!(error["type"], "authentication_error", "{what}");
    assert_eq!(error["code"], "invalid_api_key", "{what}");
    assert_eq!(
        error["message"], "Missing or invalid credentials.",
        "{what}"
    );
    assert!(error["param"].is_null(), "{what}");
    assert_eq!(
        answer
            .headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer"),
        "{what}"
    );
    assert_eq!(
        answer
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{what}"
    );
}

#[tokio::test]
async fn every_admin_route_refuses_a_caller_without_the_admin_token() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (_, secret, _) = app.key().await;
        let callers = [
            ("no token", Auth::None),
            ("a data-plane API key", Auth::Bearer(secret.clone())),
            (
                "a wrong admin token",
                Auth::Bearer("not-the-admin-token".to_string()),
            ),
            (
                "the filter secret as a token",
                Auth::Bearer(FILTER_SECRET.to_string()),
            ),
            ("the filter secret header", Auth::FilterSecret),
        ];
        let body = json!({"name": "x"});
        for (method, uri) in every_admin_call() {
            for (who, auth) in &callers {
                let answer = app.call(&method, &uri, auth, Some(&body)).await;
                assert_refused(&app, who, &method, &uri, &answer);
            }
        }
    }
}

#[tokio::test]
async fn every_listed_admin_route_exists_and_lets_the_admin_token_through() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        for (method, uri) in every_admin_call() {
            let answer = app.admin(&method, &uri, Some(&json!({}))).await;
            let what = format!(
                "{backend:?}: {method} {uri}: {} {}",
                answer.status, answer.body
            );
            assert!(
                ![401, 405].contains(&answer.status),
                "the admin token was refused: {what}"
            );
            assert_ne!(
                answer.body["error"]["message"], "No such endpoint.",
                "listed but not routed: {what}"
            );
            assert!(answer.status < 500, "{what}");
        }
    }
}

#[tokio::test]
async fn methods_an_admin_route_does_not_list_are_refused_with_405() {
    let app = spawn_app(helpers::Backend::Sqlite).await;
    for (path, methods) in documented() {
        for method in METHODS.iter().filter(|m| !methods.iter().any(|d| d == *m)) {
            let uri = uri(&path);
            let answer = app.admin(&method.to_uppercase(), &uri, None).await;
            let what = format!("{method} {uri}: {}", answer.body);
            assert_eq!(answer.status, 405, "{what}");
            assert_eq!(answer.body["error"]["code"], "method_not_allowed", "{what}");
        }
    }
}

#[tokio::test]
async fn a_wrong_token_is_refused_on_the_filter_channel_and_keyed_reads_too() {
    let app = spawn_app(helpers::Backend::Sqlite).await;
    let admin = Auth::Bearer(helpers::ADMIN_TOKEN.to_string());
    for (method, uri) in [
        ("GET", "/internal/config"),
        ("GET", "/internal/config/keys?version=1&page=0"),
        ("POST", "/internal/usage"),
        ("POST", "/internal/leases"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/catalog"),
        ("GET", "/v1/models/some/model"),
        ("GET", "/v1/usage"),
    ] {
        for (who, auth) in [("no secret", &Auth::None), ("the admin token", &admin)] {
            let answer = app.call(method, uri, auth, Some(&json!({}))).await;
            assert_refused(&app, who, method, uri, &answer);
        }
    }
    // The open routes stay open.
    let status = app.call("GET", "/api/status", &Auth::None, None).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.body["object"], "status");
}
