//! The OpenAI error body and Tollgate's error codes (API.md, "Errors").

use serde::Serialize;

/// Every error Tollgate itself answers with. The status, `type` and `code` of
/// each are decided in one exhaustive match, so a new variant forces a choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidApiKey,
    InsufficientBalance,
    ModelNotAllowed,
    ModelNotFound,
    NotFound,
    MethodNotAllowed,
    RequestTooLarge,
    RateLimitExceeded,
    Internal,
    UpstreamError,
    GatewayNotReady,
    UpstreamTimeout,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::InvalidApiKey => 401,
            ErrorCode::InsufficientBalance => 402,
            ErrorCode::ModelNotAllowed => 403,
            ErrorCode::ModelNotFound => 404,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::RequestTooLarge => 413,
            ErrorCode::RateLimitExceeded => 429,
            ErrorCode::Internal => 500,
            ErrorCode::UpstreamError => 502,
            ErrorCode::GatewayNotReady => 503,
            ErrorCode::UpstreamTimeout => 504,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidApiKey => "invalid_api_key",
            ErrorCode::InsufficientBalance => "insufficient_balance",
            ErrorCode::ModelNotAllowed => "model_not_allowed",
            ErrorCode::ModelNotFound => "model_not_found",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::RequestTooLarge => "request_too_large",
            ErrorCode::RateLimitExceeded => "rate_limit_exceeded",
            ErrorCode::Internal => "internal_error",
            ErrorCode::UpstreamError => "upstream_error",
            ErrorCode::GatewayNotReady => "gateway_not_ready",
            ErrorCode::UpstreamTimeout => "upstream_timeout",
        }
    }

    /// The OpenAI `type` field.
    pub fn kind(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest
            | ErrorCode::ModelNotFound
            | ErrorCode::NotFound
            | ErrorCode::MethodNotAllowed
            | ErrorCode::RequestTooLarge => "invalid_request_error",
            ErrorCode::InvalidApiKey => "authentication_error",
            ErrorCode::ModelNotAllowed => "permission_error",
            ErrorCode::InsufficientBalance => "insufficient_quota",
            ErrorCode::RateLimitExceeded => "rate_limit_error",
            ErrorCode::Internal | ErrorCode::UpstreamError | ErrorCode::UpstreamTimeout => {
                "server_error"
            }
            ErrorCode::GatewayNotReady => "service_unavailable",
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: &'a str,
}

/// `{"error":{"message":..,"type":..,"param":..,"code":..}}` as bytes.
pub fn body(code: ErrorCode, message: &str, param: Option<&str>) -> Vec<u8> {
    let body = Body {
        error: Detail {
            message,
            kind: code.kind(),
            param,
            code: code.code(),
        },
    };
    serde_json::to_vec(&body).unwrap_or_else(|_| {
        br#"{"error":{"message":"error","type":"server_error","param":null,"code":"internal_error"}}"#
            .to_vec()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_the_openai_shape() {
        let raw = body(
            ErrorCode::ModelNotAllowed,
            "no \"quotes\" escape",
            Some("model"),
        );
        let v: serde_json::Value = serde_json::from_slice(&raw).expect("json");
        assert_eq!(v["error"]["message"], "no \"quotes\" escape");
        assert_eq!(v["error"]["type"], "permission_error");
        assert_eq!(v["error"]["param"], "model");
        assert_eq!(v["error"]["code"], "model_not_allowed");
        let raw = body(ErrorCode::InvalidApiKey, "x", None);
        let v: serde_json::Value = serde_json::from_slice(&raw).expect("json");
        assert!(v["error"]["param"].is_null());
    }

    #[test]
    fn statuses_follow_the_contract() {
        let table = [
            (ErrorCode::InvalidRequest, 400, "invalid_request"),
            (ErrorCode::InvalidApiKey, 401, "invalid_api_key"),
            (ErrorCode::InsufficientBalance, 402, "insufficient_balance"),
            (ErrorCode::ModelNotAllowed, 403, "model_not_allowed"),
            (ErrorCode::ModelNotFound, 404, "model_not_found"),
            (ErrorCode::RequestTooLarge, 413, "request_too_large"),
            (ErrorCode::RateLimitExceeded, 429, "rate_limit_exceeded"),
            (ErrorCode::UpstreamError, 502, "upstream_error"),
            (ErrorCode::GatewayNotReady, 503, "gateway_not_ready"),
            (ErrorCode::UpstreamTimeout, 504, "upstream_timeout"),
        ];
        for (code, status, name) in table {
            assert_eq!((code.status(), code.code()), (status, name));
        }
    }
}
