//! Providers: where models are served. The credential is write-only: it is
//! sealed at rest and never returned (only `has_api_key`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{load, page as page_of};
use crate::app::{Admin, AppState};
use crate::error::{parse_json, ApiError, ApiResult, Q};
use crate::util::{check_slug, check_text, new_id, now_ms, List, PageQuery};

#[derive(Debug, sqlx::FromRow)]
struct Row {
    id: String,
    name: String,
    kind: String,
    base_url: String,
    api_key_enc: String,
    created_at_ms: i64,
}

const COLUMNS: &str = "id, name, kind, base_url, api_key_enc, created_at_ms";

impl super::Table for Row {
    const TABLE: &'static str = "providers";
    const COLUMNS: &'static str = COLUMNS;
    const WHAT: &'static str = "provider";
}
pub const KINDS: &[&str] = &["openai"];

#[derive(Debug, Serialize)]
pub struct Provider {
    id: String,
    object: &'static str,
    name: String,
    kind: String,
    base_url: String,
    has_api_key: bool,
    created_at: i64,
}

impl From<Row> for Provider {
    fn from(r: Row) -> Provider {
        Provider {
            id: r.id,
            object: "provider",
            name: r.name,
            kind: r.kind,
            base_url: r.base_url,
            has_api_key: !r.api_key_enc.is_empty(),
            created_at: r.created_at_ms / 1000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProvider {
    id: Option<String>,
    name: Option<String>,
    #[serde(default = "default_kind")]
    kind: String,
    base_url: String,
    #[serde(default)]
    api_key: String,
}

fn default_kind() -> String {
    "openai".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderPatch {
    name: Option<String>,
    kind: Option<String>,
    base_url: Option<String>,
    api_key: Option<String>,
}

fn check_kind(kind: &str) -> ApiResult<()> {
    if KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            format!("`kind` must be one of {KINDS:?}"),
            Some("kind"),
        ))
    }
}

fn check_api_key(key: &str) -> ApiResult<()> {
    // It becomes an HTTP header value: visible ASCII only.
    if key.len() > 4096 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "`api_key` must be at most 4096 visible ASCII characters",
            Some("api_key"),
        ));
    }
    Ok(())
}

/// Whether an address is one a provider should not be: loopback, private,
/// link-local (cloud metadata), unspecified, shared, multicast or broadcast.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || v6 == Ipv6Addr::from([0, 0, 0, 0, 0, 0, 0, 1])
        }
    }
}

/// Addresses no setting allows: link-local (where cloud metadata services
/// answer), unspecified, multicast and broadcast.
fn never_a_provider(ip: IpAddr) -> bool {
    let v4 = match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    match (v4, ip) {
        (Some(v4), _) => {
            v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast()
        }
        (None, IpAddr::V6(v6)) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80 || v6.is_unspecified() || v6.is_multicast()
        }
        (None, IpAddr::V4(_)) => false,
    }
}

fn is_private_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space
}

/// The host of a base URL as the filter will dial it, checked against private
/// targets. Hosts that look numeric but are not a canonical dotted quad
/// (`2130706433`, `0x7f.1`, `017.0.0.1`) are refused outright: resolvers
/// read them as addresses in ways that differ.
fn check_target(authority: &str, allow_private: bool) -> ApiResult<()> {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    let refuse = |why: &str| {
        Err(ApiError::invalid(
            format!(
                "`base_url` points at {why}; set TOLLGATE_ALLOW_PRIVATE_UPSTREAMS=true to allow it"
            ),
            Some("base_url"),
        ))
    };
    let lower = host.to_ascii_lowercase();
    if let Ok(ip) = lower.parse::<IpAddr>() {
        let canonical = match ip {
            IpAddr::V4(v4) => v4.to_string() == lower,
            IpAddr::V6(_) => true,
        };
        if !canonical {
            return Err(ApiError::invalid(
                "`base_url` has an IP address in an unusual notation",
                Some("base_url"),
            ));
        }
        if never_a_provider(ip) {
            return Err(ApiError::invalid(
                "`base_url` points at a link-local, unspecified, multicast or broadcast address (cloud metadata lives there)",
                Some("base_url"),
            ));
        }
        if is_private(ip) && !allow_private {
            return refuse("a private, loopback or link-local address");
        }
        return Ok(());
    }
    let numeric_looking = lower.split('.').all(|part| {
        !part.is_empty() && (part.bytes().all(|b| b.is_ascii_digit()) || part.starts_with("0x"))
    });
    if numeric_looking {
        return Err(ApiError::invalid(
            "`base_url` has an IP address in an unusual notation",
            Some("base_url"),
        ));
    }
    let local_name = lower == "localhost"
        || lower.ends_with(".localhost")
        || lower.ends_with(".local")
        || lower.ends_with(".internal");
    if local_name && !allow_private {
        return refuse("a local host name");
    }
    Ok(())
}

pub fn check_base_url(url: &str, allow_private: bool) -> ApiResult<()> {
    if url.len() > 2048 {
        return Err(ApiError::invalid(
            "`base_url` is too long",
            Some("base_url"),
        ));
    }
    let parsed = tollgate_contract::url::parse_base_url(url)
        .map_err(|e| ApiError::invalid(e, Some("base_url")))?;
    check_target(&parsed.authority, allow_private)
}

pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Provider>)> {
    let new: NewProvider = parse_json(&body)?;
    let id = match new.id {
        Some(id) => {
            check_slug(&id, "id")?;
            id
        }
        None => new_id("prov"),
    };
    let name = new.name.unwrap_or_else(|| id.clone());
    check_text(&name, "name", 200)?;
    check_kind(&new.kind)?;
    check_base_url(&new.base_url, state.settings.allow_private_upstreams)?;
    check_api_key(&new.api_key)?;
    let sealed = state.sealer.seal(&new.api_key)?;
    sqlx::query("INSERT INTO providers (id, name, kind, base_url, api_key_enc, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&id)
        .bind(&name)
        .bind(&new.kind)
        .bind(&new.base_url)
        .bind(sealed)
        .bind(now_ms())
        .execute(&state.db.pool)
        .await?;
    state.config.publish(&state).await;
    Ok((
        StatusCode::CREATED,
        Json(load::<Row>(&state, &id).await?.into()),
    ))
}

pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    Q(page): Q<PageQuery>,
) -> ApiResult<Json<List<Provider>>> {
    let (rows, limit) = page_of::<Row>(&state, page).await?;
    Ok(Json(List::page(
        rows.into_iter().map(Provider::from).collect(),
        limit,
    )))
}

pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Provider>> {
    Ok(Json(load::<Row>(&state, &id).await?.into()))
}

pub async fn patch(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Provider>> {
    let p: ProviderPatch = parse_json(&body)?;
    let mut row = load::<Row>(&state, &id).await?;
    if let Some(name) = p.name {
        check_text(&name, "name", 200)?;
        row.name = name;
    }
    if let Some(kind) = p.kind {
        check_kind(&kind)?;
        row.kind = kind;
    }
    if let Some(url) = p.base_url {
        check_base_url(&url, state.settings.allow_private_upstreams)?;
        row.base_url = url;
    }
    if let Some(key) = p.api_key {
        check_api_key(&key)?;
        row.api_key_enc = state.sealer.seal(&key)?;
    }
    sqlx::query(
        "UPDATE providers SET name = $1, kind = $2, base_url = $3, api_key_enc = $4 WHERE id = $5",
    )
    .bind(&row.name)
    .bind(&row.kind)
    .bind(&row.base_url)
    .bind(&row.api_key_enc)
    .bind(&id)
    .execute(&state.db.pool)
    .await?;
    state.config.publish(&state).await;
    Ok(Json(load::<Row>(&state, &id).await?.into()))
}

/// Refused while a model still deploys on it.
pub async fn delete(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    load::<Row>(&state, &id).await?;
    let users = super::models::deployed_on(&state, &id).await?;
    if !users.is_empty() {
        return Err(ApiError::Conflict(format!(
            "Provider {id:?} still serves models {users:?}; change them first."
        )));
    }
    sqlx::query("DELETE FROM providers WHERE id = $1")
        .bind(&id)
        .execute(&state.db.pool)
        .await?;
    state.config.publish(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_targets_in_any_notation_are_refused() {
        for bad in [
            "http://127.0.0.1/v1",
            "http://127.1.2.3:8080",
            "http://10.0.0.1",
            "http://192.168.1.1",
            "http://172.16.0.1",
            "http://169.254.169.254/latest",
            "http://0.0.0.0",
            "http://100.64.0.1",
            "http://[::1]:80",
            "http://[::ffff:127.0.0.1]",
            "http://[fe80::1]",
            "http://[fd00::1]",
            "http://localhost:9000",
            "http://metadata.google.internal",
            "http://2130706433",
            "http://0x7f.0.0.1",
            "http://017.0.0.1",
            "http://127.1",
        ] {
            assert!(
                check_base_url(bad, false).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn public_targets_pass_and_private_ones_when_allowed() {
        for ok in [
            "https://api.openai.com/v1",
            "https://8.8.8.8/v1",
            "http://[2001:db8::1]:8080/v1",
        ] {
            assert!(check_base_url(ok, false).is_ok(), "{ok}");
        }
        assert!(check_base_url("http://127.0.0.1:9000/v1", true).is_ok());
        assert!(
            check_base_url("http://2130706433", true).is_err(),
            "odd notation never passes"
        );
        assert!(check_base_url("ftp://x", true).is_err());
    }
}
