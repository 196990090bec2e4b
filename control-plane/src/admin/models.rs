//! Models: the public catalog entry, its pricing, and the deployments that
//! serve it (a provider and the model name that provider knows it by).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{load, page as page_of};
use crate::app::{Admin, AppState};
use crate::error::{parse_json, ApiError, ApiResult, Q};
use crate::util::{
    check_slug, check_text, double_option, nanos_to_usd, now_ms, usd_to_nanos, List, PageQuery,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub context_window: Option<i64>,
    pub input_nanos_per_1m: i64,
    pub output_nanos_per_1m: i64,
    pub deployments: String,
    pub created_at_ms: i64,
}

macro_rules! columns {
    () => {
        "id, name, description, category, context_window, input_nanos_per_1m, output_nanos_per_1m, deployments, created_at_ms"
    };
}

pub const COLUMNS: &str = columns!();

/// Every model, as one constant statement (nothing formatted at run time).
const SELECT_ALL: &str = concat!("SELECT ", columns!(), " FROM models ORDER BY id");

impl super::Table for Row {
    const TABLE: &'static str = "models";
    const COLUMNS: &'static str = COLUMNS;
    const WHAT: &'static str = "model";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    pub provider: String,
    pub upstream_model: String,
    #[serde(default = "one")]
    pub weight: u32,
    #[serde(default)]
    pub priority: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    pub input_per_1m: f64,
    pub output_per_1m: f64,
}

#[derive(Debug, Serialize)]
pub struct Model {
    pub id: String,
    pub object: &'static str,
    pub name: String,
    pub description: String,
    pub category: String,
    pub context_window: Option<i64>,
    pub pricing: Pricing,
    pub deployments: Vec<Deployment>,
    pub created_at: i64,
}

impl Row {
    pub fn deployments(&self) -> ApiResult<Vec<Deployment>> {
        serde_json::from_str(&self.deployments).map_err(|e| {
            ApiError::Internal(anyhow::anyhow!(
                "model {} has bad deployments: {e}",
                self.id
            ))
        })
    }

    pub fn pricing(&self) -> Pricing {
        Pricing {
            input_per_1m: nanos_to_usd(self.input_nanos_per_1m),
            output_per_1m: nanos_to_usd(self.output_nanos_per_1m),
        }
    }
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
            created_at: r.created_at_ms / 1000,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewModel {
    id: String,
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default = "chat")]
    category: String,
    context_window: Option<u32>,
    pricing: Option<Pricing>,
    deployments: Vec<Deployment>,
}

fn chat() -> String {
    "chat".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelPatch {
    name: Option<String>,
    description: Option<String>,
    category: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    context_window: Option<Option<u32>>,
    pricing: Option<Pricing>,
    deployments: Option<Vec<Deployment>>,
}

pub const CATEGORIES: &[&str] = &[
    "chat",
    "completion",
    "embedding",
    "image",
    "audio",
    "moderation",
    "rerank",
    "other",
];

fn check_category(c: &str) -> ApiResult<()> {
    if CATEGORIES.contains(&c) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            format!("`category` must be one of {CATEGORIES:?}"),
            Some("category"),
        ))
    }
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
        let found: Option<String> = sqlx::query_scalar("SELECT id FROM providers WHERE id = $1")
            .bind(&d.provider)
            .fetch_optional(&state.db.pool)
            .await?;
        if found.is_none() {
            return Err(ApiError::invalid(
                format!("No provider {:?}.", d.provider),
                Some("deployments"),
            ));
        }
    }
    serde_json::to_string(deployments).map_err(|e| ApiError::Internal(e.into()))
}

fn price(p: Option<Pricing>) -> ApiResult<(i64, i64)> {
    let p = p.unwrap_or(Pricing {
        input_per_1m: 0.0,
        output_per_1m: 0.0,
    });
    Ok((
        usd_to_nanos(p.input_per_1m, "pricing.input_per_1m")?,
        usd_to_nanos(p.output_per_1m, "pricing.output_per_1m")?,
    ))
}

pub async fn all(state: &AppState) -> ApiResult<Vec<Row>> {
    Ok(sqlx::query_as::<_, Row>(SELECT_ALL)
        .fetch_all(&state.db.pool)
        .await?)
}

/// The models that deploy on a provider.
pub async fn deployed_on(state: &AppState, provider: &str) -> ApiResult<Vec<String>> {
    let mut users = Vec::new();
    for row in all(state).await? {
        if row.deployments()?.iter().any(|d| d.provider == provider) {
            users.push(row.id);
        }
    }
    Ok(users)
}

pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Model>)> {
    let new: NewModel = parse_json(&body)?;
    check_slug(&new.id, "id")?;
    let name = new.name.unwrap_or_else(|| new.id.clone());
    check_text(&name, "name", 200)?;
    check_text(&new.description, "description", 2000)?;
    check_category(&new.category)?;
    let deployments = check_deployments(&state, &new.deployments).await?;
    let (input, output) = price(new.pricing)?;
    sqlx::query(
        "INSERT INTO models (id, name, description, category, context_window, input_nanos_per_1m, \
         output_nanos_per_1m, deployments, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&new.id)
    .bind(&name)
    .bind(&new.description)
    .bind(&new.category)
    .bind(new.context_window.map(i64::from))
    .bind(input)
    .bind(output)
    .bind(deployments)
    .bind(now_ms())
    .execute(&state.db.pool)
    .await?;
    state.config.publish(&state).await;
    Ok((
        StatusCode::CREATED,
        Json(load::<Row>(&state, &new.id).await?.try_into()?),
    ))
}

pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    Q(page): Q<PageQuery>,
) -> ApiResult<Json<List<Model>>> {
    let (rows, limit) = page_of::<Row>(&state, page).await?;
    let models = rows
        .into_iter()
        .map(Model::try_from)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(List::page(models, limit)))
}

pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Model>> {
    Ok(Json(load::<Row>(&state, &id).await?.try_into()?))
}

pub async fn patch(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Model>> {
    let p: ModelPatch = parse_json(&body)?;
    let mut row = load::<Row>(&state, &id).await?;
    if let Some(v) = p.name {
        check_text(&v, "name", 200)?;
        row.name = v;
    }
    if let Some(v) = p.description {
        check_text(&v, "description", 2000)?;
        row.description = v;
    }
    if let Some(v) = p.category {
        check_category(&v)?;
        row.category = v;
    }
    if let Some(v) = p.context_window {
        row.context_window = v.map(i64::from);
    }
    if let Some(v) = p.pricing {
        (row.input_nanos_per_1m, row.output_nanos_per_1m) = price(Some(v))?;
    }
    if let Some(v) = p.deployments {
        row.deployments = check_deployments(&state, &v).await?;
    }
    sqlx::query(
        "UPDATE models SET name = $1, description = $2, category = $3, context_window = $4, \
         input_nanos_per_1m = $5, output_nanos_per_1m = $6, deployments = $7 WHERE id = $8",
    )
    .bind(&row.name)
    .bind(&row.description)
    .bind(&row.category)
    .bind(row.context_window)
    .bind(row.input_nanos_per_1m)
    .bind(row.output_nanos_per_1m)
    .bind(&row.deployments)
    .bind(&id)
    .execute(&state.db.pool)
    .await?;
    state.config.publish(&state).await;
    Ok(Json(load::<Row>(&state, &id).await?.try_into()?))
}

pub async fn delete(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let done = sqlx::query("DELETE FROM models WHERE id = $1")
        .bind(&id)
        .execute(&state.db.pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::NotFound(format!("No model {id:?}.")));
    }
    state.config.publish(&state).await;
    Ok(StatusCode::NO_CONTENT)
}
