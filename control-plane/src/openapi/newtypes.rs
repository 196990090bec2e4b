//! The OpenAPI schema of each edge newtype: what its parse accepts, so that
//! the document says what the API checks.

use utoipa::openapi::schema::{Schema, Type};
use utoipa::openapi::{ObjectBuilder, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::money::{Usd, MAX_USD};
use crate::validate::{Limit, Name, Slug, MAX_LIMIT};

impl PartialSchema for Usd {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .minimum(Some(0.0))
            .maximum(Some(MAX_USD))
            .description(Some("US dollars"))
            .into()
    }
}

impl PartialSchema for Limit {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0.0))
            .maximum(Some(f64::from(MAX_LIMIT)))
            .description(Some("0 pauses"))
            .into()
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
