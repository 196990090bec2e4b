//! The OpenAI error shape of the mock's own refusals.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// An OpenAI-style error answer: status and `{"error": {...}}` body.
pub struct ApiError(pub StatusCode, pub Value);

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &str,
        code: &str,
        message: &str,
        param: Option<&str>,
    ) -> Self {
        let error = json!({"message": message, "type": kind, "param": param, "code": code});
        ApiError(status, json!({ "error": error }))
    }

    pub fn mock(status: StatusCode) -> Self {
        let (code, message) = (status.as_u16(), format!("mock error {}", status.as_u16()));
        ApiError::new(
            status,
            "mock_error",
            &format!("mock_{code}"),
            &message,
            None,
        )
    }

    pub fn bad_header(name: &str) -> Self {
        let message = format!("invalid {name} header");
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "mock_error",
            "mock_bad_header",
            &message,
            None,
        )
    }

    pub fn invalid(message: &str, param: Option<&str>) -> Self {
        let (status, kind) = (StatusCode::BAD_REQUEST, "invalid_request_error");
        ApiError::new(status, kind, "invalid_request", message, param)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}
