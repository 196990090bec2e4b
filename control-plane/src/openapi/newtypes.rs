//! The OpenAPI schema of each edge newtype: what its parse accepts, so that
//! the document says what the API checks.

use utoipa::openapi::schema::{Schema, Type};
use utoipa::openapi::{ObjectBuilder, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::money::{Usd, MAX_USD};
use crate::validate::{Limit, Name, Slug, UnixSeconds, MAX_LIMIT};

/// A number from 0 to `max`.
fn from_zero(kind: Type, max: f64, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(kind)
        .minimum(Some(0.0))
        .maximum(Some(max))
        .description(Some(description))
        .into()
}

impl PartialSchema for Usd {
    fn schema() -> RefOr<Schema> {
        from_zero(Type::Number, MAX_USD, "US dollars")
    }
}

impl PartialSchema for Limit {
    fn schema() -> RefOr<Schema> {
        from_zero(Type::Integer, f64::from(MAX_LIMIT), "0 pauses")
    }
}

impl PartialSchema for UnixSeconds {
    fn schema() -> RefOr<Schema> {
        from_zero(Type::Integer, UnixSeconds::MAX as f64, "unix seconds")
    }
}

impl PartialSchema for Name {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(Name::MAX_CHARS))
            .description(Some("no control characters"))
            .into()
    }
}

impl PartialSchema for Slug {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(128))
            .pattern(Some("^[A-Za-z0-9][A-Za-z0-9._:/@-]*$"))
            .into()
    }
}

impl ToSchema for Usd {}
impl ToSchema for Limit {}
impl ToSchema for Name {}
impl ToSchema for Slug {}
impl ToSchema for UnixSeconds {}
