//! Every error the control plane answers, in the OpenAI error format.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or names a field it may not set.
    #[error("{message}")]
    Invalid {
        message: String,
        param: Option<String>,
    },
    /// 401: no or wrong admin token, or no trusted caller identity.
    #[error("unauthorized")]
    Unauthorized,
    /// 404: no such resource.
    #[error("{0}")]
    NotFound(String),
    /// 404 with `model_not_found`, as on the data path.
    #[error("{0}")]
    ModelNotFound(String),
    /// 409: the change conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// 503: the limits backend (Redis) is away.
    #[error("{0}")]
    LimitsUnavailable(String),
    /// 503: the database is away; nothing was changed.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// 500: a bug; the details go to the log, not to the caller.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn invalid(message: impl Into<String>, param: Option<&str>) -> ApiError {
        ApiError::Invalid {
            message: message.into(),
            param: param.map(str::to_string),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Invalid { .. } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_request",
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "invalid_api_key",
            ),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "invalid_request_error", "not_found"),
            ApiError::ModelNotFound(_) => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
            ),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "invalid_request_error", "conflict"),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "database_unavailable",
            ),
            ApiError::LimitsUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "limits_unavailable",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal_error",
            ),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                ApiError::Unavailable(e)
            }
            sqlx::Error::Database(ref db) if db.is_unique_violation() => {
                ApiError::Conflict("a resource with this id already exists".to_string())
            }
            sqlx::Error::Database(ref db) if db.is_foreign_key_violation() => ApiError::Conflict(
                "the change refers to a resource that does not exist or is still in use"
                    .to_string(),
            ),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError::Internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, code) = self.parts();
        match &self {
            ApiError::Internal(e) => tracing::error!(error = format!("{e:#}"), "internal error"),
            ApiError::Unavailable(e) => tracing::warn!(error = %e, "database unavailable"),
            _ => {}
        }
        let param = match &self {
            ApiError::Invalid { param, .. } => param.clone(),
            ApiError::ModelNotFound(_) => Some("model".to_string()),
            _ => None,
        };
        let message = match &self {
            ApiError::Unauthorized => "Missing or invalid credentials.".to_string(),
            other => other.to_string(),
        };
        let body =
            json!({"error": {"message": message, "type": kind, "param": param, "code": code}});
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// Parses a JSON body into `T`, refusing unknown and read-only fields with a
/// 400 that names them (axum's own `Json` rejection is plain text).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.is_empty() {
        return Err(ApiError::invalid(
            "The request body must be a JSON object.",
            None,
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        let text = e.to_string();
        let param = text
            .split('`')
            .nth(1)
            .filter(|_| text.starts_with("unknown field") || text.starts_with("missing field"))
            .map(str::to_string);
        ApiError::Invalid {
            message: format!("Invalid JSON body: {text}"),
            param,
        }
    })
}

/// `axum::extract::Query` with its rejection in the OpenAI error format.
pub struct Q<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Q<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Q<T>, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(v)| Q(v))
            .map_err(|e| ApiError::invalid(format!("Invalid query: {}", e.body_text()), None))
    }
}
