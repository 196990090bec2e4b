//! `GET /admin/openapi.json`: the admin API as an OpenAPI 3.1 document,
//! generated with `utoipa` from the handlers' `#[utoipa::path]` operations
//! and the body types' `ToSchema`. `admin::documented` registers each route
//! and its operation in one call, so the router and the document cannot
//! drift apart.

mod newtypes;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::{Extension, Json};
use serde_json::{json, Value};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response};
use utoipa::{IntoResponses, PartialSchema, ToSchema};

use crate::auth::Admin;

/// The OpenAI error body every error answer carries.
#[derive(ToSchema)]
#[schema(as = Error)]
#[allow(dead_code)] // only its schema is used
pub struct ErrorBody {
    #[schema(inline)]
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct ErrorDetail {
    message: String,
    #[schema(rename = "type")]
    kind: String,
    /// The field at fault, for a 400.
    param: Option<String>,
    code: String,
}

/// The error answers every admin operation may give.
pub struct Errors;

impl IntoResponses for Errors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        [
            ("400", "Bad input: `param` names the field"),
            ("401", "Missing or wrong admin token"),
            ("404", "No such resource"),
            ("503", "The database is unavailable"),
        ]
        .into_iter()
        .map(|(status, description)| {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build();
            let response = ResponseBuilder::new()
                .description(description)
                .content("application/json", content)
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
    }
}

const DESCRIPTION: &str = "Groups, accounts, keys, providers, models and usage. Every call takes `Authorization: Bearer <admin token>`. Lists take `limit` (1 to 100) and `after=<last id>` and answer {\"object\":\"list\",\"data\":[...],\"has_more\":bool}. Errors use the OpenAI error body.";

/// The document served: what the routes registered, with the API's title,
/// the admin token scheme, the error schema, and a wildcard segment
/// (`{*id}`, model ids with a slash) written as OpenAPI's `{id}`.
pub fn finish(mut api: OpenApi) -> Value {
    api.components
        .get_or_insert_with(Default::default)
        .schemas
        .insert(ErrorBody::name().into_owned(), ErrorBody::schema());
    let mut doc = serde_json::to_value(&api).unwrap_or_else(|_| json!({}));
    doc["openapi"] = json!("3.1.0");
    doc["info"] = json!({
        "title": "Tollgate admin API",
        "version": env!("CARGO_PKG_VERSION"),
        "description": DESCRIPTION,
    });
    doc["security"] = json!([{"admin": []}]);
    doc["components"]["securitySchemes"] = json!({"admin": {"type": "http", "scheme": "bearer"}});
    if let Some(paths) = doc["paths"].as_object_mut() {
        *paths = std::mem::take(paths)
            .into_iter()
            .map(|(path, mut item)| {
                let path = path.replace("{*", "{");
                name_operations(&path, &mut item);
                (path, item)
            })
            .collect();
    }
    doc
}

/// Each operation's id from its method and path (`post_admin_accounts_id_credit`):
/// utoipa names it after the handler, and several handlers share a name.
fn name_operations(path: &str, item: &mut Value) {
    let words: Vec<&str> = path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if let Some(ops) = item.as_object_mut() {
        for (method, op) in ops.iter_mut() {
            op["operationId"] = json!(format!("{method}_{}", words.join("_")));
        }
    }
}

/// The document, built once when the router is (`admin::routes`).
#[utoipa::path(
    get,
    path = "/admin/openapi.json",
    tag = "openapi",
    responses((status = 200, description = "This document"), Errors)
)]
pub async fn get(_: Admin, Extension(doc): Extension<Arc<Value>>) -> Json<Value> {
    Json(Value::clone(&doc))
}
