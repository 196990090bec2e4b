//! Dashboard sessions, stored in the database (`db::sessions`): a restart
//! signs no one out, and control planes on one PostgreSQL share them. The
//! cookie carries a random session token; the database keeps only its
//! SHA-256, so that a copy of the database gives out no live session. Each
//! session's CSRF token is derived from its token (another SHA-256 of it,
//! with a label), so it is not stored either and a stored hash does not
//! give it.

use std::time::Duration;

use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};

use crate::clock::now_ms;
use crate::db::{self, Db};
use crate::error::{ApiError, ApiResult};
use crate::secrets::{same, token};

pub const COOKIE: &str = "tollgate_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// An operator: with the admin token (`None`) or a named account.
    Operator(Option<Named>),
    KeyHolder {
        key_id: String,
        account_id: String,
    },
}

/// A named operator (`ui_operators`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub who: Who,
    pub csrf: String,
    /// When it ends (unix ms).
    pub expires_at_ms: i64,
}

/// What the database keys a session by.
fn hash(id: &str) -> String {
    tollgate_contract::sha256::hex_digest(id.as_bytes())
}

/// The session's CSRF token, from its token.
fn csrf_of(id: &str) -> String {
    tollgate_contract::sha256::hex_digest(format!("tollgate-ui-csrf\0{id}").as_bytes())
}

fn row_of(who: &Who, expires_at_ms: i64) -> db::sessions::Row {
    let (kind, key_id, account_id, operator) = match who {
        Who::Operator(named) => ("operator", None, None, named.clone()),
        Who::KeyHolder { key_id, account_id } => (
            "key_holder",
            Some(key_id.clone()),
            Some(account_id.clone()),
            None,
        ),
    };
    let (operator_id, operator_name) = operator.map(|n| (n.id, n.name)).unzip();
    db::sessions::Row {
        kind: kind.to_string(),
        key_id,
        account_id,
        operator_id,
        operator_name,
        expires_at_ms,
    }
}

fn who_of(row: db::sessions::Row) -> Option<Who> {
    let named = match (row.operator_id, row.operator_name) {
        (Some(id), Some(name)) => Some(Named { id, name }),
        (None, None) => None,
        _ => return None,
    };
    match (row.kind.as_str(), row.key_id, row.account_id) {
        ("operator", None, None) => Some(Who::Operator(named)),
        ("key_holder", Some(key_id), Some(account_id)) if named.is_none() => {
            Some(Who::KeyHolder { key_id, account_id })
        }
        _ => None,
    }
}

/// A new session: (its token for the cookie, the session).
pub async fn open(db: &Db, who: Who, ttl: Duration) -> ApiResult<(String, Session)> {
    let id = token();
    let now = now_ms();
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let expires_at_ms = now.saturating_add(ttl_ms);
    db::sessions::insert(db, &hash(&id), &row_of(&who, expires_at_ms), now).await?;
    let session = Session {
        who,
        csrf: csrf_of(&id),
        expires_at_ms,
    };
    Ok((id, session))
}

/// The live session of this token, if any (not ended, not signed out).
pub async fn get(db: &Db, id: &str) -> ApiResult<Option<Session>> {
    let Some(row) = db::sessions::live(db, &hash(id), now_ms()).await? else {
        return Ok(None);
    };
    let expires_at_ms = row.expires_at_ms;
    Ok(who_of(row).map(|who| Session {
        who,
        csrf: csrf_of(id),
        expires_at_ms,
    }))
}

/// Signs a session out; whether it was there.
pub async fn close(db: &Db, id: &str) -> ApiResult<bool> {
    db::sessions::delete(db, &hash(id)).await
}

/// Ends every session of a key (after it was revoked or rotated).
pub async fn close_key(db: &Db, key_id: &str) -> ApiResult<()> {
    db::sessions::delete_of_key(db, key_id).await
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
pub async fn of_request(parts: &Parts, db: &Db) -> ApiResult<Option<Session>> {
    match cookie_id(parts) {
        Some(id) => get(db, &id).await,
        None => Ok(None),
    }
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
    fn the_csrf_token_is_the_sessions_own_and_not_its_stored_hash() {
        let (a, b) = (token(), token());
        assert_eq!(csrf_of(&a), csrf_of(&a));
        assert_ne!(csrf_of(&a), csrf_of(&b));
        assert_ne!(csrf_of(&a), hash(&a));
        assert_ne!(hash(&a), a);
        assert_eq!(hash(&a).len(), 64);
    }

    #[test]
    fn a_stored_row_gives_back_who_signed_in() {
        let holder = Who::KeyHolder {
            key_id: "key_1".into(),
            account_id: "acct_1".into(),
        };
        let named = Who::Operator(Some(Named {
            id: "op_1".into(),
            name: "ada".into(),
        }));
        for who in [Who::Operator(None), named, holder] {
            assert_eq!(who_of(row_of(&who, 5)), Some(who));
        }
        let odd = db::sessions::Row {
            kind: "operator".into(),
            key_id: Some("key_1".into()),
            account_id: None,
            operator_id: None,
            operator_name: None,
            expires_at_ms: 5,
        };
        assert_eq!(who_of(odd), None);
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
