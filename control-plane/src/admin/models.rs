//! Models: the public catalog entry, its pricing, and the deployments that
//! serve it (a provider and the model name that provider knows it by).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::resource::{Creatable, Resource};
use crate::auth::Admin;
use crate::clock::now_ms;
use crate::db::models::{
    encode_deployments, Deployment, Pricing, Row, FIRST_BYTE_TIMEOUT_MS, IDLE_TIMEOUT_MS,
    MAX_CATEGORY_CHARS,
};
use crate::db::{self, Db};
use crate::error::{ApiError, ApiResult};
use crate::money::Usd;
use crate::patch::{double_option, set};
use crate::state::AppState;
use crate::validate::{check_slug, check_text, Name, Slug};
use tollgate_contract::snapshot::{Strategy, DEFAULT_ATTEMPTS, MAX_ATTEMPTS};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Model {
    pub id: String,
    pub object: &'static str,
    pub name: String,
    pub description: String,
    pub category: String,
    pub context_window: Option<i64>,
    #[schema(value_type = Object)]
    pub pricing: Pricing,
    #[schema(value_type = Vec<Object>)]
    pub deployments: Vec<Deployment>,
    /// The most deployments one request tries (1: no failover).
    pub max_attempts: i64,
    /// `weighted` (default), `priority` or `least_latency`.
    pub strategy: String,
    pub created_at: i64,
}

impl TryFrom<Row> for Model {
    type Error = ApiError;

    fn try_from(r: Row) -> ApiResult<Model> {
        Ok(Model {
            deployments: r.deployments()?,
            pricing: r.pricing(),
            id: r.id,
            object: "model",
            name: r.name,
            description: r.description,
            category: r.category,
            context_window: r.context_window,
            max_attempts: r.max_attempts,
            strategy: r.strategy,
            created_at: r.created_at_ms / 1000,
        })
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewModel {
    id: Slug,
    name: Option<Name>,
    #[serde(default)]
    description: String,
    #[serde(default = "chat")]
    category: String,
    context_window: Option<u32>,
    pricing: Option<Prices>,
    #[schema(value_type = Vec<Object>)]
    deployments: Vec<Deployment>,
    max_attempts: Option<u32>,
    strategy: Option<String>,
}

fn chat() -> String {
    "chat".to_string()
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelPatch {
    name: Option<Name>,
    description: Option<String>,
    category: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    context_window: Option<Option<u32>>,
    pricing: Option<Prices>,
    #[schema(value_type = Option<Vec<Object>>)]
    deployments: Option<Vec<Deployment>>,
    max_attempts: Option<u32>,
    strategy: Option<String>,
}

/// A category is the operator's label: any short text that is not blank.
fn check_category(c: String) -> ApiResult<String> {
    if c.trim().is_empty() || c.contains('\n') {
        return Err(ApiError::invalid(
            "`category` must be a label of one line, not blank",
            Some("category"),
        ));
    }
    check_text(&c, "category", MAX_CATEGORY_CHARS)?;
    Ok(c)
}

async fn check_deployments(state: &AppState, deployments: &[Deployment]) -> ApiResult<String> {
    if deployments.is_empty() || deployments.len() > 64 {
        return Err(ApiError::invalid(
            "`deployments` must list 1 to 64 deployments",
            Some("deployments"),
        ));
    }
    for d in deployments {
        check_slug(&d.provider, "deployments")?;
        if d.upstream_model.is_empty()
            || d.upstream_model.len() > 256
            || d.upstream_model.chars().any(char::is_control)
        {
            return Err(ApiError::invalid(
                "`upstream_model` must be 1 to 256 characters",
                Some("deployments"),
            ));
        }
        if d.weight == 0 || d.weight > 1_000_000 {
            return Err(ApiError::invalid(
                "`weight` must be from 1 to 1000000",
                Some("deployments"),
            ));
        }
        if d.first_byte_timeout_ms
            .is_some_and(|t| !FIRST_BYTE_TIMEOUT_MS.contains(&t))
        {
            return Err(ApiError::invalid(
                "`first_byte_timeout_ms` must be from 100 to 600000",
                Some("deployments"),
            ));
        }
        if d.idle_timeout_ms
            .is_some_and(|t| !IDLE_TIMEOUT_MS.contains(&t))
        {
            return Err(ApiError::invalid(
                "`idle_timeout_ms` must be from 500 to 120000",
                Some("deployments"),
            ));
        }
        if !db::exists::<db::providers::Row>(&state.db, &d.provider).await? {
            return Err(ApiError::invalid(
                format!("No provider {:?}.", d.provider),
                Some("deployments"),
            ));
        }
    }
    encode_deployments(deployments)
}

/// 1 (no failover) to the most the gateway tries.
fn max_attempts(v: u32) -> ApiResult<i64> {
    if v == 0 || v as usize > MAX_ATTEMPTS {
        return Err(ApiError::invalid(
            format!("`max_attempts` must be from 1 to {MAX_ATTEMPTS}"),
            Some("max_attempts"),
        ));
    }
    Ok(i64::from(v))
}

fn strategy(v: String) -> ApiResult<String> {
    Strategy::parse(&v)
        .map(|s| s.name().to_string())
        .ok_or_else(|| {
            ApiError::invalid(
                "`strategy` must be `weighted`, `priority` or `least_latency`",
                Some("strategy"),
            )
        })
}

fn description(v: String) -> ApiResult<String> {
    check_text(&v, "description", 2000)?;
    Ok(v)
}

/// Prices in USD per million tokens as a create or PATCH body gives them
/// (`Usd` each: a bad one is a 400 naming `pricing.input_per_1m`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    input_per_1m: Usd,
    output_per_1m: Usd,
}

/// The stored nanos of each price (none given: free).
fn price(p: Option<Prices>) -> (i64, i64) {
    p.map_or((0, 0), |p| {
        (p.input_per_1m.nanos(), p.output_per_1m.nanos())
    })
}

impl Resource for Row {
    type Shown = Model;
    type Patch = ModelPatch;

    fn show(self) -> ApiResult<Model> {
        self.try_into()
    }

    async fn apply(&mut self, p: ModelPatch, state: &AppState) -> ApiResult<()> {
        set(&mut self.name, p.name, |v| Ok(v.into_string()))?;
        set(&mut self.description, p.description, description)?;
        set(&mut self.category, p.category, check_category)?;
        set(&mut self.context_window, p.context_window, |v| {
            Ok(v.map(i64::from))
        })?;
        if let Some(v) = p.pricing {
            (self.input_nanos_per_1m, self.output_nanos_per_1m) = price(Some(v));
        }
        set(&mut self.max_attempts, p.max_attempts, max_attempts)?;
        set(&mut self.strategy, p.strategy, strategy)?;
        if let Some(v) = p.deployments {
            self.deployments_json = check_deployments(state, &v).await?;
        }
        Ok(())
    }

    async fn update(&self, db: &Db) -> ApiResult<()> {
        db::models::update(db, self).await
    }
}

impl Creatable for Row {
    type New = NewModel;

    async fn create(new: NewModel, state: &AppState) -> ApiResult<Row> {
        let id = new.id.into_string();
        let name = new.name.map_or_else(|| id.clone(), Name::into_string);
        let description = description(new.description)?;
        let category = check_category(new.category)?;
        let deployments_json = check_deployments(state, &new.deployments).await?;
        let (input_nanos_per_1m, output_nanos_per_1m) = price(new.pricing);
        let max_attempts = max_attempts(new.max_attempts.unwrap_or(DEFAULT_ATTEMPTS))?;
        let strategy = strategy(new.strategy.unwrap_or_else(|| "weighted".to_string()))?;
        Ok(Row {
            id,
            name,
            description,
            category,
            context_window: new.context_window.map(i64::from),
            input_nanos_per_1m,
            output_nanos_per_1m,
            deployments_json,
            created_at_ms: now_ms(),
            max_attempts,
            strategy,
        })
    }

    async fn insert(&self, db: &Db) -> ApiResult<String> {
        db::models::insert(db, self).await?;
        Ok(self.id.clone())
    }
}

super::resource::shared_handlers!(many: Row, "models", "/admin/models", NewModel, Model);
super::resource::shared_handlers!(one: Row, "models", "/admin/models/{*id}", ModelPatch, Model);

#[utoipa::path(delete, path = "/admin/models/{*id}", tag = "models", params(("id" = String, Path)), responses((status = 204, description = "Deleted"), crate::openapi::Errors))]
pub async fn delete(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if !db::models::delete(&state.db, &id).await? {
        return Err(ApiError::NotFound(format!("No model {id:?}.")));
    }
    state.publish().await;
    Ok(StatusCode::NO_CONTENT)
}
