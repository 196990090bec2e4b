//! `GET /admin/openapi.json`: the admin API and the filter-facing reads as an
//! OpenAPI 3.1 document, written out by hand from the routes in `router.rs` and
//! `admin/mod.rs` (a test checks that every route is in it).

mod newtypes;

use serde_json::{json, Value};

use crate::auth::Admin;

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn op(summary: &str, body: Option<&str>, ok: &str) -> Value {
    let mut op = json!({
        "summary": summary,
        "responses": {
            ok: {"description": "OK", "content": {"application/json": {}}},
            "400": error_response("Bad input: `param` names the field"),
            "401": error_response("Missing or wrong admin token"),
            "404": error_response("No such resource"),
            "503": error_response("The database is unavailable"),
        }
    });
    if let Some(schema) = body {
        op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    }
    op
}

/// Every documented path and method, for the test that holds the document
/// to the router.
pub const PATHS: &[(&str, &[&str])] = &[
    ("/admin/accounts", &["get", "post"]),
    ("/admin/accounts/{id}", &["get", "patch", "delete"]),
    ("/admin/accounts/{id}/credit", &["post"]),
    ("/admin/groups", &["get", "post"]),
    ("/admin/groups/{id}", &["get", "patch", "delete"]),
    ("/admin/keys", &["get", "post"]),
    ("/admin/keys/{id}", &["get", "patch", "delete"]),
    ("/admin/keys/{id}/rotate", &["post"]),
    ("/admin/keys/{id}/reset-spend", &["post"]),
    ("/admin/providers", &["get", "post"]),
    ("/admin/providers/{id}", &["get", "patch", "delete"]),
    ("/admin/providers/{id}/api_keys", &["post"]),
    ("/admin/providers/{id}/api_keys/{key}", &["patch", "delete"]),
    ("/admin/models", &["get", "post"]),
    ("/admin/models/{id}", &["get", "patch", "delete"]),
    ("/admin/usage", &["get"]),
    ("/admin/usage/summary", &["get"]),
    ("/admin/usage/streams", &["get"]),
    ("/admin/openapi.json", &["get"]),
];

pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (path, methods) in PATHS {
        let resource = path
            .trim_start_matches("/admin/")
            .split('/')
            .next()
            .unwrap_or_default();
        let schema = match resource {
            "accounts" => "Account",
            "groups" => "Group",
            "keys" => "Key",
            "providers" => "Provider",
            "models" => "Model",
            _ => "",
        };
        // A provider's key pool: its changes answer the provider.
        let pool = path.contains("/api_keys");
        let mut item = serde_json::Map::new();
        for method in *methods {
            let body = match (*method, path.ends_with("/credit")) {
                (_, true) => Some("Credit"),
                ("post" | "patch", false) if pool => Some("ApiKey"),
                ("post", false)
                    if !path.ends_with("/rotate")
                        && !path.ends_with("/reset-spend")
                        && !schema.is_empty() =>
                {
                    Some(schema)
                }
                ("patch", _) => Some(schema),
                _ => None,
            };
            let ok = match *method {
                "post" if !path.contains("{id}") || pool => "201",
                "delete" if resource != "keys" && !pool => "204",
                _ => "200",
            };
            let summary = format!("{} {}", method.to_uppercase(), path);
            item.insert((*method).to_string(), op(&summary, body, ok));
        }
        paths.insert((*path).to_string(), Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tollgate admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Groups, accounts, keys, providers, models and usage. Every call takes `Authorization: Bearer <admin token>`. Lists take `limit` (1 to 100) and `after=<last id>` and answer {\"object\":\"list\",\"data\":[...],\"has_more\":bool}. Errors use the OpenAI error body."
        },
        "components": {
            "securitySchemes": {"admin": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                    "message": {"type": "string"}, "type": {"type": "string"},
                    "param": {"type": ["string", "null"]}, "code": {"type": "string"}}}}},
                "Account": {"type": "object", "additionalProperties": false, "properties": {
                    "name": {"type": "string", "maxLength": 200},
                    "balance_usd": {"type": ["number", "null"], "minimum": 0},
                    "rpm": {"type": ["integer", "null"]}, "tpm": {"type": ["integer", "null"]},
                    "max_concurrent": {"type": ["integer", "null"]},
                    "group_id": {"type": ["string", "null"], "description": "the model group: its models and default limits apply to the account's keys"}}},
                "Group": {"type": "object", "additionalProperties": false, "properties": {
                    "name": {"type": "string", "maxLength": 200},
                    "models": {"type": "array", "items": {"type": "string"}, "description": "the models the group's accounts may use; a key's own list narrows it"},
                    "rpm": {"type": ["integer", "null"]}, "tpm": {"type": ["integer", "null"]},
                    "max_concurrent": {"type": ["integer", "null"], "description": "defaults for keys without a limit of their own"}}},
                "Credit": {"type": "object", "additionalProperties": false, "required": ["amount_usd"],
                    "properties": {"amount_usd": {"type": "number", "minimum": 0}}},
                "Key": {"type": "object", "additionalProperties": false, "properties": {
                    "name": {"type": "string"}, "account_id": {"type": "string"},
                    "models": {"type": ["array", "null"], "items": {"type": "string"}},
                    "rpm": {"type": ["integer", "null"]}, "tpm": {"type": ["integer", "null"]},
                    "max_concurrent": {"type": ["integer", "null"]},
                    "budget_usd": {"type": ["number", "null"], "minimum": 0},
                    "budget_period": {"enum": ["daily", "weekly", "monthly", null], "description": "the spend resets at the period's start, 00:00 UTC (weeks from Monday)"},
                    "expires_at": {"type": ["integer", "null"], "description": "unix seconds"}}},
                "Provider": {"type": "object", "additionalProperties": false, "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "kind": {"enum": ["openai", "anthropic", "azure_openai"]},
                    "base_url": {"type": "string", "format": "uri"},
                    "api_key": {"type": "string", "writeOnly": true, "description": "one credential (a pool of one)"},
                    "api_keys": {"type": "array", "maxItems": 16, "items": {"type": "string"}, "writeOnly": true,
                                 "description": "a key pool: requests rotate over it; answers show `api_keys` as id, hint and state"}}},
                "ApiKey": {"type": "object", "additionalProperties": false, "properties": {
                    "api_key": {"type": "string", "writeOnly": true},
                    "enabled": {"const": true, "description": "PATCH: re-enable a credential disabled after a 401/403"}}},
                "Model": {"type": "object", "additionalProperties": false, "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"},
                    "category": {"type": "string", "maxLength": crate::db::models::MAX_CATEGORY_CHARS, "description": "the operator's label (Language, Code, Vision, chat, ...)"},
                    "context_window": {"type": ["integer", "null"]},
                    "pricing": {"type": "object", "properties": {
                        "input_per_1m": {"type": "number"}, "output_per_1m": {"type": "number"}}},
                    "deployments": {"type": "array", "items": {"type": "object", "required": ["provider", "upstream_model"], "properties": {
                        "provider": {"type": "string"}, "upstream_model": {"type": "string"},
                        "weight": {"type": "integer", "minimum": 1, "default": 1},
                        "priority": {"type": "integer", "minimum": 0, "default": 0}}}}}}
            }
        },
        "security": [{"admin": []}],
        "paths": paths,
    })
}

pub async fn get(_: Admin) -> axum::Json<Value> {
    axum::Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_admin_route_is_documented_and_every_documented_route_exists() {
        let source = include_str!("../admin/mod.rs");
        // A wildcard segment (`{*id}`, model ids with a slash) is `{id}` in
        // OpenAPI.
        let routed: Vec<String> = source
            .split("\"/admin/")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(|p| p.replace("{*", "{"))
            .collect();
        let routed: Vec<&str> = routed.iter().map(String::as_str).collect();
        let documented: Vec<&str> = PATHS
            .iter()
            .map(|(p, _)| p.trim_start_matches("/admin/"))
            .collect();
        let mut a = routed.clone();
        let mut b = documented.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        let doc = document();
        assert_eq!(
            doc["paths"]["/admin/keys/{id}"]["delete"]["responses"]["200"]["description"],
            "OK"
        );
        assert_eq!(
            doc["paths"]["/admin/accounts"]["post"]["requestBody"]["content"]["application/json"]
                ["schema"]["$ref"],
            "#/components/schemas/Account"
        );
    }
}
