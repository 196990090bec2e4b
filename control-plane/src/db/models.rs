//! `models`: the catalog. The `deployments` column (a JSON list of where a
//! model is served) is encoded and decoded here and nowhere else.

use serde::{Deserialize, Serialize};

use super::{Db, Table};
use crate::error::{ApiError, ApiResult};
use crate::money::nanos_to_usd;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub context_window: Option<i64>,
    pub input_nanos_per_1m: i64,
    pub output_nanos_per_1m: i64,
    /// The `deployments` column as stored; read it with [`Row::deployments`].
    #[sqlx(rename = "deployments")]
    pub deployments_json: String,
    pub created_at_ms: i64,
    /// The most deployments one request tries (1: no failover).
    pub max_attempts: i64,
    /// `weighted`, `priority` or `least_latency`.
    pub strategy: String,
}

macro_rules! columns {
    () => {
        "id, name, description, category, context_window, input_nanos_per_1m, output_nanos_per_1m, deployments, created_at_ms, max_attempts, strategy"
    };
}

const COLUMNS: &str = columns!();

/// Every model, as one constant statement (nothing formatted at run time).
const SELECT_ALL: &str = concat!("SELECT ", columns!(), " FROM models ORDER BY id");

impl Table for Row {
    const TABLE: &'static str = "models";
    const EXISTS: &'static str = "SELECT id FROM models WHERE id = $1";
    const COLUMNS: &'static str = COLUMNS;
    const WHAT: &'static str = "model";
}

/// The longest category: the operator's own label (`Language`, `Code`,
/// `Vision`, `chat`, ...), shown in the catalog.
pub const MAX_CATEGORY_CHARS: usize = 64;

/// A provider and the model name that provider knows the model by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    pub provider: String,
    pub upstream_model: String,
    #[serde(default = "one")]
    pub weight: u32,
    #[serde(default)]
    pub priority: u32,
    /// How long this deployment may take to send its response headers
    /// before the request is tried on the next (`None`: no limit of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_timeout_ms: Option<u32>,
    /// The longest silence between two pieces of a response body once its
    /// headers came (`None`: only Envoy's route idle timeout, 120 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u32>,
}

/// The range a deployment's `first_byte_timeout_ms` may take.
pub const FIRST_BYTE_TIMEOUT_MS: std::ops::RangeInclusive<u32> = 100..=600_000;
/// The range a deployment's `idle_timeout_ms` may take: the filter checks
/// every tick (100 ms), and Envoy's route idle timeout (120 s) ends a
/// longer silence first.
pub const IDLE_TIMEOUT_MS: std::ops::RangeInclusive<u32> = 500..=120_000;

fn one() -> u32 {
    1
}

/// Prices in USD per million tokens, as the API shows them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    pub input_per_1m: f64,
    pub output_per_1m: f64,
}

impl Row {
    pub fn deployments(&self) -> ApiResult<Vec<Deployment>> {
        serde_json::from_str(&self.deployments_json).map_err(|e| {
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

/// The `deployments` column for a list of deployments.
pub fn encode_deployments(deployments: &[Deployment]) -> ApiResult<String> {
    serde_json::to_string(deployments).map_err(|e| ApiError::Internal(e.into()))
}

pub async fn all(db: &Db) -> ApiResult<Vec<Row>> {
    Ok(sqlx::query_as::<_, Row>(SELECT_ALL)
        .fetch_all(&db.pool)
        .await?)
}

/// The models that deploy on a provider.
pub async fn deployed_on(db: &Db, provider: &str) -> ApiResult<Vec<String>> {
    let mut users = Vec::new();
    for row in all(db).await? {
        if row.deployments()?.iter().any(|d| d.provider == provider) {
            users.push(row.id);
        }
    }
    Ok(users)
}

pub async fn insert(db: &Db, row: &Row) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO models (id, name, description, category, context_window, input_nanos_per_1m, \
         output_nanos_per_1m, deployments, created_at_ms, max_attempts, strategy) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(&row.description)
    .bind(&row.category)
    .bind(row.context_window)
    .bind(row.input_nanos_per_1m)
    .bind(row.output_nanos_per_1m)
    .bind(&row.deployments_json)
    .bind(row.created_at_ms)
    .bind(row.max_attempts)
    .bind(&row.strategy)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Writes what a PATCH may change.
pub async fn update(db: &Db, row: &Row) -> ApiResult<()> {
    sqlx::query(
        "UPDATE models SET name = $1, description = $2, category = $3, context_window = $4, \
         input_nanos_per_1m = $5, output_nanos_per_1m = $6, deployments = $7, max_attempts = $8, strategy = $9 WHERE id = $10",
    )
    .bind(&row.name)
    .bind(&row.description)
    .bind(&row.category)
    .bind(row.context_window)
    .bind(row.input_nanos_per_1m)
    .bind(row.output_nanos_per_1m)
    .bind(&row.deployments_json)
    .bind(row.max_attempts)
    .bind(&row.strategy)
    .bind(&row.id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Whether there was such a model.
pub async fn delete(db: &Db, id: &str) -> ApiResult<bool> {
    let done = sqlx::query("DELETE FROM models WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
