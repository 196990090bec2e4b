//! Answers the filter sends itself: the OpenAI error body, or Anthropic's
//! for a client of the Messages API.

use tollgate_contract::error::{self, ErrorCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// `None` for an answer that is not an error (a token count).
    pub code: Option<ErrorCode>,
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

    /// A JSON answer that is not an error.
    pub fn json(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            code: None,
            body,
            headers: Vec::new(),
        }
    }

    /// The body for a client of Anthropic's API: an error in its shape
    /// (`{"type":"error","error":{"type","message"}}`); an answer that is not
    /// an error as it is.
    pub fn anthropic_body(&self) -> Vec<u8> {
        if self.code.is_none() {
            return self.body.clone();
        }
        let message = tollgate_translate::errors::message_of(&self.body);
        tollgate_translate::errors::anthropic(self.status, &message)
            .to_string()
            .into_bytes()
    }

    fn build(code: ErrorCode, message: &str, param: Option<&str>) -> Reply {
        Reply {
            status: code.status(),
            code: Some(code),
            body: error::body(code, message, param),
            headers: Vec::new(),
        }
    }
}
