//! The OpenAPI document is generated from the router (`utoipa`): it lists
//! exactly the admin routes the router serves, and says what the edge
//! newtypes check. (`admin_auth.rs` calls every documented operation and
//! every undocumented method of a documented path.)

mod helpers;

use helpers::spawn_app;
use serde_json::Value;
use tollgate_control_plane::openapi_document;

/// The admin API as it was when the document was written by hand, and the
/// dashboard's operators and usage export since: the generated one must
/// list the same operations, no more and no fewer.
const ROUTES: &[(&str, &[&str])] = &[
    ("/admin/accounts", &["get", "post"]),
    ("/admin/accounts/{id}", &["delete", "get", "patch"]),
    ("/admin/accounts/{id}/credit", &["post"]),
    ("/admin/groups", &["get", "post"]),
    ("/admin/groups/{id}", &["delete", "get", "patch"]),
    ("/admin/keys", &["get", "post"]),
    ("/admin/keys/{id}", &["delete", "get", "patch"]),
    ("/admin/keys/{id}/reset-spend", &["post"]),
    ("/admin/keys/{id}/rotate", &["post"]),
    ("/admin/models", &["get", "post"]),
    ("/admin/models/{id}", &["delete", "get", "patch"]),
    ("/admin/openapi.json", &["get"]),
    ("/admin/operators", &["get", "post"]),
    ("/admin/operators/{id}", &["delete"]),
    ("/admin/providers", &["get", "post"]),
    ("/admin/providers/{id}", &["delete", "get", "patch"]),
    ("/admin/providers/{id}/api_keys", &["post"]),
    ("/admin/providers/{id}/api_keys/{key}", &["delete", "patch"]),
    ("/admin/usage", &["get"]),
    ("/admin/usage/export.csv", &["get"]),
    ("/admin/usage/streams", &["get"]),
    ("/admin/usage/summary", &["get"]),
];

fn operations(doc: &Value) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = doc["paths"]
        .as_object()
        .map(|paths| {
            paths
                .iter()
                .map(|(path, item)| {
                    let mut methods: Vec<String> = item
                        .as_object()
                        .map(|ops| ops.keys().cloned().collect())
                        .unwrap_or_default();
                    methods.sort();
                    (path.clone(), methods)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn the_document_lists_every_admin_operation_and_no_other() {
    let doc = openapi_document();
    let want: Vec<(String, Vec<String>)> = ROUTES
        .iter()
        .map(|(p, ms)| (p.to_string(), ms.iter().map(|m| m.to_string()).collect()))
        .collect();
    assert_eq!(operations(&doc), want);
    // Each operation says what it answers, errors included, under an id of
    // its own.
    let mut ids = std::collections::BTreeSet::new();
    for (path, methods) in operations(&doc) {
        for method in methods {
            let id = doc["paths"][&path][&method]["operationId"].to_string();
            assert!(ids.insert(id.clone()), "{id} twice");
            let responses = &doc["paths"][&path][&method]["responses"];
            for status in ["400", "401", "404", "503"] {
                assert_eq!(
                    responses[status]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{method} {path}"
                );
            }
        }
    }
}

/// A property's schema with its `$ref` (or the one that is not `null` of a
/// `oneOf`) followed.
fn resolved<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let schema = schema["oneOf"]
        .as_array()
        .and_then(|alts| alts.iter().find(|a| a["type"] != "null"))
        .unwrap_or(schema);
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    }
}

#[test]
fn the_schemas_come_from_the_body_types_and_their_newtypes() {
    let doc = openapi_document();
    let schemas = &doc["components"]["schemas"];
    let account = &schemas["NewAccount"]["properties"];
    let field = |name: &str| resolved(&doc, &account[name]);
    assert_eq!(
        field("balance_usd")["maximum"].as_f64(),
        Some(1e6),
        "{account}"
    );
    assert_eq!(
        field("balance_usd")["minimum"].as_f64(),
        Some(0.0),
        "{account}"
    );
    assert_eq!(field("rpm")["maximum"].as_f64(), Some(1e9), "{account}");
    assert_eq!(field("name")["maxLength"], 200, "{account}");
    assert_eq!(
        schemas["NewAccount"]["required"],
        serde_json::json!(["name"])
    );
    let model_id = resolved(&doc, &schemas["NewModel"]["properties"]["id"]);
    assert_eq!(model_id["maxLength"], 128, "{model_id}");
    assert_eq!(
        schemas["NewProvider"]["properties"]["api_key"]["writeOnly"],
        true
    );
    assert_eq!(
        schemas["ProviderApiKey"]["properties"]["api_key"]["writeOnly"],
        true
    );
    assert_eq!(
        schemas["Credit"]["required"],
        serde_json::json!(["amount_usd"])
    );
    for shown in ["Account", "ApiKey", "Group", "Model", "Provider", "Error"] {
        assert!(schemas[shown].is_object(), "{shown}: {schemas}");
    }
    let create = &doc["paths"]["/admin/accounts"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/NewAccount"
    );
    assert_eq!(
        create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Account"
    );
    let names: Vec<&str> = doc["paths"]["/admin/keys"]["get"]["parameters"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["account_id", "search", "limit", "after"]);
}

#[tokio::test]
async fn the_router_serves_the_document_it_was_built_with() {
    let app = spawn_app(helpers::Backend::Sqlite).await;
    let served = app.admin_ok("GET", "/admin/openapi.json", None, 200).await;
    assert_eq!(served, openapi_document());
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(
        served["components"]["securitySchemes"]["admin"]["scheme"],
        "bearer"
    );
    // A path the document does not list is not routed.
    for uri in ["/admin/nothing", "/admin/accounts/a/b", "/admin/keys/a/b/c"] {
        let answer = app.admin("GET", uri, None).await;
        assert_eq!(answer.status, 404, "{uri}: {}", answer.body);
    }
}
