//! Answers the filter sends itself: always the OpenAI error body.

use tollgate_contract::error::{self, ErrorCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub code: ErrorCode,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn error(code: ErrorCode, message: &str) -> Reply {
        Reply::build(code, message, None)
    }

    pub fn with_param(code: ErrorCode, message: &str, param: &str) -> Reply {
        Reply::build(code, message, Some(param))
    }

    fn build(code: ErrorCode, message: &str, param: Option<&str>) -> Reply {
        Reply {
            status: code.status(),
            code,
            body: error::body(code, message, param),
            headers: Vec::new(),
        }
    }
}
