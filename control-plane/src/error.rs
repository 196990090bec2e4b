//! Every error the control plane answers, in the OpenAI error format.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tollgate_contract::error::{self, ErrorCode};

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
    /// 403: a dashboard session without the right to this (`code` says why:
    /// `csrf_failed`, `permission_denied`).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// 404: no such resource.
    #[error("{0}")]
    NotFound(String),
    /// 404 with `model_not_found`, as on the data path.
    #[error("{0}")]
    ModelNotFound(String),
    /// 409: the change conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// 429: too many wrong passwords for an operator's name of late
    /// (`ui::throttle`); `Retry-After` says when the name may try again.
    #[error("Too many wrong passwords for this operator; try again in {retry_after_s} s.")]
    TooManySignIns { retry_after_s: u64 },
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

    /// What each error answers, in one exhaustive match: a code of the
    /// contract where it has one, else this control plane's own.
    fn shape(&self) -> Shape {
        match self {
            ApiError::Invalid { .. } => Shape::Contract(ErrorCode::InvalidRequest),
            ApiError::Unauthorized => Shape::Contract(ErrorCode::InvalidApiKey),
            ApiError::NotFound(_) => Shape::Contract(ErrorCode::NotFound),
            ApiError::ModelNotFound(_) => Shape::Contract(ErrorCode::ModelNotFound),
            ApiError::Internal(_) => Shape::Contract(ErrorCode::Internal),
            ApiError::TooManySignIns { .. } => Shape::Contract(ErrorCode::RateLimitExceeded),
            // `tollgate_contract::error::ErrorCode` has no 409 and no 503 of
            // the control plane's own (the filter never answers them).
            ApiError::Conflict(_) => Shape::Own {
                status: StatusCode::CONFLICT,
                kind: "invalid_request_error",
                code: "conflict",
            },
            ApiError::Unavailable(_) => Shape::Own {
                status: StatusCode::SERVICE_UNAVAILABLE,
                kind: "service_unavailable",
                code: "database_unavailable",
            },
            ApiError::Forbidden { code, .. } => Shape::Own {
                status: StatusCode::FORBIDDEN,
                kind: "permission_error",
                code,
            },
            ApiError::LimitsUnavailable(_) => Shape::Own {
                status: StatusCode::SERVICE_UNAVAILABLE,
                kind: "service_unavailable",
                code: "limits_unavailable",
            },
        }
    }
}

enum Shape {
    Contract(ErrorCode),
    Own {
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
    },
}

impl Shape {
    fn status(&self) -> StatusCode {
        match self {
            Shape::Contract(code) => {
                StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Shape::Own { status, .. } => *status,
        }
    }

    /// The OpenAI error body: the contract's one definition of it, and the
    /// same shape for the codes the contract does not have (its `body` takes
    /// only an `ErrorCode`).
    fn body(&self, message: &str, param: Option<&str>) -> Vec<u8> {
        match self {
            Shape::Contract(code) => error::body(*code, message, param),
            Shape::Own { kind, code, .. } => serde_json::to_vec(&serde_json::json!({
                "error": {"message": message, "type": kind, "param": param, "code": code}
            }))
            .unwrap_or_else(|_| error::body(ErrorCode::Internal, "error", None)),
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
        match &self {
            ApiError::Internal(e) => tracing::error!(error = format!("{e:#}"), "internal error"),
            ApiError::Unavailable(e) => tracing::warn!(error = %e, "database unavailable"),
            _ => {}
        }
        let param = match &self {
            ApiError::Invalid { param, .. } => param.as_deref(),
            ApiError::ModelNotFound(_) => Some("model"),
            _ => None,
        };
        let message = match &self {
            ApiError::Unauthorized => "Missing or invalid credentials.".to_string(),
            other => other.to_string(),
        };
        let shape = self.shape();
        let status = shape.status();
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            shape.body(&message, param),
        )
            .into_response();
        if let ApiError::TooManySignIns { retry_after_s } = &self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(*retry_after_s),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// Marks a field check's complaint inside a serde error (see [`field_error`]).
const FIELD_MARK: char = '\u{1}';

/// The error a newtype's `Deserialize` gives for a value it refuses, such as
/// "must be a number of dollars from 0 to 1e6": [`parse_json`] answers it as
/// a 400 whose message starts with the field's path and whose `param` is it.
pub fn field_error<E: serde::de::Error>(complaint: impl std::fmt::Display) -> E {
    E::custom(format_args!("{FIELD_MARK}{complaint}"))
}

/// Parses a JSON body into `T`, refusing unknown and read-only fields with a
/// 400 that names them (axum's own `Json` rejection is plain text). A value a
/// field's newtype refuses is a 400 naming the field by its path
/// (`pricing.input_per_1m`).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.is_empty() {
        return Err(ApiError::invalid(
            "The request body must be a JSON object.",
            None,
        ));
    }
    // Most bodies are fine: parsed once without tracking the path (the
    // tracking showed in ingest's profile), and only a refused one parsed
    // again for the path its message names.
    if let Ok(v) = serde_json::from_slice(body) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        (Some(path), e.into_inner())
    });
    // Nothing but white space after the value (as `serde_json::from_slice`).
    let parsed = parsed.and_then(|v| de.end().map(|()| v).map_err(|e| (None, e)));
    parsed.map_err(|(path, e)| {
        let text = e.to_string();
        if let (Some(path), Some(complaint)) = (&path, text.strip_prefix(FIELD_MARK)) {
            let at = format!(" at line {} column {}", e.line(), e.column());
            let complaint = complaint.strip_suffix(&at).unwrap_or(complaint);
            return ApiError::invalid(format!("`{path}` {complaint}"), Some(path));
        }
        // The field serde names, else the one whose value it could not
        // take (`{"name": 7}`).
        let param = text
            .split('`')
            .nth(1)
            .filter(|_| text.starts_with("unknown field") || text.starts_with("missing field"))
            .map(str::to_string)
            .or(path.filter(|p| !p.is_empty() && p != "."));
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn every_error_has_its_status_type_and_code() {
        let table = [
            (
                ApiError::invalid("bad", Some("name")),
                400,
                "invalid_request_error",
                "invalid_request",
                Some("name"),
            ),
            (
                ApiError::Unauthorized,
                401,
                "authentication_error",
                "invalid_api_key",
                None,
            ),
            (
                ApiError::NotFound("No key.".into()),
                404,
                "invalid_request_error",
                "not_found",
                None,
            ),
            (
                ApiError::ModelNotFound("No model.".into()),
                404,
                "invalid_request_error",
                "model_not_found",
                Some("model"),
            ),
            (
                ApiError::Conflict("in use".into()),
                409,
                "invalid_request_error",
                "conflict",
                None,
            ),
            (
                ApiError::TooManySignIns { retry_after_s: 7 },
                429,
                "rate_limit_error",
                "rate_limit_exceeded",
                None,
            ),
            (
                ApiError::LimitsUnavailable("away".into()),
                503,
                "service_unavailable",
                "limits_unavailable",
                None,
            ),
            (
                ApiError::Unavailable(sqlx::Error::PoolTimedOut),
                503,
                "service_unavailable",
                "database_unavailable",
                None,
            ),
            (
                ApiError::Internal(anyhow::anyhow!("secret detail")),
                500,
                "server_error",
                "internal_error",
                None,
            ),
        ];
        for (error, status, kind, code, param) in table {
            let what = format!("{error:?}");
            let res = error.into_response();
            assert_eq!(res.status().as_u16(), status, "{what}");
            assert_eq!(
                res.headers()[header::CONTENT_TYPE],
                "application/json",
                "{what}"
            );
            let bytes = res.into_body().collect().await.expect("body").to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
            assert_eq!(v["error"]["type"], kind, "{what}");
            assert_eq!(v["error"]["code"], code, "{what}");
            assert_eq!(v["error"]["param"].as_str(), param, "{what}");
            assert!(v["error"]["message"].is_string(), "{what}");
            assert!(
                !v.to_string().contains("secret detail"),
                "internal causes stay in the log"
            );
        }
    }
}
