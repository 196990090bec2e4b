//! Dashboard sessions: kept in this process's memory (a restart signs
//! everyone out; several control planes behind one address need sticky
//! sessions), each with its own CSRF token. The cookie carries only a random
//! session id; the store keeps the SHA-256 of it, so that a memory dump does
//! not give out live sessions.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};

use crate::error::ApiError;
use crate::secrets::{same, token};

pub const COOKIE: &str = "tollgate_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Sessions kept at most; the oldest goes when a new one would exceed it.
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Operator,
    KeyHolder { key_id: String, account_id: String },
}

#[derive(Debug, Clone)]
pub struct Session {
    pub who: Who,
    pub csrf: String,
    pub expires: Instant,
}

#[derive(Default)]
pub struct Sessions {
    by_hash: Mutex<HashMap<String, Session>>,
}

fn hash(id: &str) -> String {
    tollgate_contract::key::hash(id)
}

impl Sessions {
    /// A new session: (its id for the cookie, the session).
    pub fn open(&self, who: Who, ttl: Duration) -> (String, Session) {
        let id = token();
        let session = Session {
            who,
            csrf: token(),
            expires: Instant::now() + ttl,
        };
        if let Ok(mut map) = self.by_hash.lock() {
            let now = Instant::now();
            map.retain(|_, s| s.expires > now);
            if map.len() >= MAX_SESSIONS {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.expires)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
            map.insert(hash(&id), session.clone());
        }
        (id, session)
    }

    /// The live session of this id, if any (an expired one is dropped).
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.by_hash.lock().ok()?;
        let h = hash(id);
        match map.get(&h) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(&h);
                None
            }
            None => None,
        }
    }

    pub fn close(&self, id: &str) {
        if let Ok(mut map) = self.by_hash.lock() {
            map.remove(&hash(id));
        }
    }

    /// Ends every session of a key (after it was revoked or rotated).
    pub fn close_key(&self, key_id: &str) {
        if let Ok(mut map) = self.by_hash.lock() {
            map.retain(|_, s| !matches!(&s.who, Who::KeyHolder { key_id: k, .. } if k == key_id));
        }
    }
}

/// The session id in the request's cookie, if any.
pub fn cookie_id(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty())
}

/// The request's live session, if it has one.
pub fn of_request(parts: &Parts, sessions: &Sessions) -> Option<Session> {
    sessions.get(&cookie_id(parts)?)
}

/// Reading is free; every other method must carry the session's CSRF token.
pub fn check_csrf(parts: &Parts, session: &Session) -> Result<(), ApiError> {
    if matches!(parts.method, Method::GET | Method::HEAD) {
        return Ok(());
    }
    let sent = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if same(sent, &session.csrf) {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            code: "csrf_failed",
            message: "Missing or wrong x-csrf-token header for this session.".to_string(),
        })
    }
}

/// Whether the browser reached us over TLS: `TOLLGATE_UI_SECURE_COOKIE`, or
/// a TLS front in the way saying so (`X-Forwarded-Proto: https`,
/// `Forwarded: proto=https`). Believing the header can only add `Secure`
/// to the cookie, never take it away.
pub fn over_tls(headers: &HeaderMap, always: bool) -> bool {
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_ascii_lowercase())
    };
    always
        || first("x-forwarded-proto").as_deref() == Some("https")
        || first("forwarded").is_some_and(|f| {
            f.split(';')
                .any(|pair| pair.trim().trim_matches('"') == "proto=https")
        })
}

/// The `Set-Cookie` value for a session id (`max_age` 0 deletes it).
pub fn set_cookie(id: &str, max_age: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        max_age.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_close() {
        let s = Sessions::default();
        let (id, _) = s.open(Who::Operator, Duration::from_secs(60));
        assert_eq!(s.get(&id).map(|x| x.who), Some(Who::Operator));
        assert!(s.get("other").is_none());
        s.close(&id);
        assert!(s.get(&id).is_none());
        let (short, _) = s.open(Who::Operator, Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert!(s.get(&short).is_none());
        let who = Who::KeyHolder {
            key_id: "k".into(),
            account_id: "a".into(),
        };
        let (kid, _) = s.open(who, Duration::from_secs(60));
        s.close_key("k");
        assert!(s.get(&kid).is_none());
    }

    #[test]
    fn the_cookie_is_strict_and_http_only() {
        let c = set_cookie("abc", Duration::from_secs(5), true);
        assert_eq!(
            c,
            "tollgate_session=abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=5; Secure"
        );
        assert!(!set_cookie("abc", Duration::from_secs(5), false).contains("Secure"));
    }

    #[test]
    fn a_tls_front_makes_the_cookie_secure() {
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().expect("header"));
            }
            over_tls(&h, false)
        };
        assert!(with(&[("x-forwarded-proto", "https")]));
        assert!(with(&[("x-forwarded-proto", "HTTPS, http")]));
        assert!(with(&[("forwarded", "for=1.2.3.4;proto=https;by=x")]));
        assert!(!with(&[]));
        assert!(!with(&[("x-forwarded-proto", "http")]));
        assert!(!with(&[("forwarded", "proto=http")]));
        assert!(over_tls(&HeaderMap::new(), true));
    }
}
