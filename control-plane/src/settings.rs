//! The control plane's settings, all from the environment (twelve-factor), each
//! with a default that suits one machine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

#[derive(Debug, Clone)]
pub struct Settings {
    /// `TOLLGATE_LISTEN`, default `127.0.0.1:8081`.
    pub listen: SocketAddr,
    /// `TOLLGATE_DATA_DIR`, default `./.tollgate/data`: the SQLite file and the
    /// generated secrets live here.
    pub data_dir: PathBuf,
    /// `TOLLGATE_DATABASE_URL`; default SQLite in the data directory.
    pub database_url: Option<String>,
    /// `TOLLGATE_ADMIN_TOKEN`; generated into the data directory when unset.
    pub admin_token: Option<String>,
    /// `TOLLGATE_FILTER_SECRET`; shared with the filter's plugin configuration.
    pub filter_secret: Option<String>,
    /// `TOLLGATE_SECRET_KEY`: 32 bytes in base64 that seal provider credentials
    /// at rest; generated into the data directory when unset.
    pub secret_key: Option<String>,
    /// `TOLLGATE_KEY_PREFIX`, default `tg-`.
    pub key_prefix: String,
    /// `TOLLGATE_ALLOW_PRIVATE_UPSTREAMS`: allow provider URLs on loopback,
    /// private and link-local addresses (the demo and tests need it).
    pub allow_private_upstreams: bool,
    /// `TOLLGATE_REDIS_URL`: where the buckets of shared limits live, so that
    /// several control planes share them; unset: in this process.
    pub redis_url: Option<String>,
    /// `TOLLGATE_LEASE_FAIL`: when the Redis behind shared limits fails,
    /// `closed` (default) grants nothing, so Envoys refuse once their leases
    /// are spent; `open` grants what is asked, so limits stop applying.
    pub lease_fail_open: bool,
    /// `TOLLGATE_SNAPSHOT_PAGE_KEYS`, default 500: a snapshot with more keys
    /// goes to the filter in pages of this many (about 120 KB of JSON each,
    /// about a millisecond for the filter to apply between requests).
    pub snapshot_page_keys: usize,
    /// `TOLLGATE_CLOCK_OFFSET_MS`, default 0: moves the clock budget periods
    /// follow, for tests that cross a period's start without waiting.
    pub clock_offset_ms: i64,
    /// `TOLLGATE_UI_SESSION_TTL`, default `8h`: how long a dashboard session
    /// lives (seconds, or a number with `s`, `m` or `h`).
    pub ui_session_ttl: Duration,
    /// `TOLLGATE_UI_SECURE_COOKIE`: mark the dashboard's session cookie
    /// `Secure` always. The control plane does not serve TLS itself; a TLS
    /// front that sends `X-Forwarded-Proto: https` gets `Secure` without it.
    pub ui_secure_cookie: bool,
    /// `TOLLGATE_GATEWAY_URL`, default `http://localhost:8080`: the gateway's
    /// address as clients reach it, for the dashboard's quick start.
    pub gateway_url: String,
}

/// `90`, `90s`, `15m`, `8h`: a positive duration.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let (digits, unit) = match v.char_indices().last()? {
        (i, 's') => (&v[..i], 1),
        (i, 'm') => (&v[..i], 60),
        (i, 'h') => (&v[..i], 3600),
        _ => (v, 1),
    };
    let n: u64 = digits.parse().ok().filter(|n| *n > 0)?;
    Some(Duration::from_secs(n.checked_mul(unit)?))
}

fn flag(name: &str) -> anyhow::Result<bool> {
    match var(name).as_deref() {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => bail!("{name} must be true or false, not {other:?}"),
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Settings> {
        let listen = var("TOLLGATE_LISTEN")
            .unwrap_or_else(|| "127.0.0.1:8081".to_string())
            .parse()
            .context("TOLLGATE_LISTEN must be host:port, e.g. 127.0.0.1:8081")?;
        let key_prefix = var("TOLLGATE_KEY_PREFIX").unwrap_or_else(|| "tg-".to_string());
        if !tollgate_contract::key::valid_prefix(&key_prefix) {
            bail!("TOLLGATE_KEY_PREFIX must be at most 32 letters, digits, '-' or '_'");
        }
        let allow_private_upstreams = match var("TOLLGATE_ALLOW_PRIVATE_UPSTREAMS").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                bail!("TOLLGATE_ALLOW_PRIVATE_UPSTREAMS must be true or false, not {other:?}")
            }
        };
        Ok(Settings {
            listen,
            data_dir: var("TOLLGATE_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".tollgate/data")),
            database_url: var("TOLLGATE_DATABASE_URL"),
            admin_token: var("TOLLGATE_ADMIN_TOKEN"),
            filter_secret: var("TOLLGATE_FILTER_SECRET"),
            secret_key: var("TOLLGATE_SECRET_KEY"),
            key_prefix,
            allow_private_upstreams,
            redis_url: var("TOLLGATE_REDIS_URL"),
            snapshot_page_keys: match var("TOLLGATE_SNAPSHOT_PAGE_KEYS") {
                None => 500,
                Some(v) => match v.parse::<usize>() {
                    Ok(n) if n >= 1 => n,
                    _ => bail!("TOLLGATE_SNAPSHOT_PAGE_KEYS must be a positive integer"),
                },
            },
            clock_offset_ms: match var("TOLLGATE_CLOCK_OFFSET_MS") {
                None => 0,
                Some(v) => v
                    .parse::<i64>()
                    .context("TOLLGATE_CLOCK_OFFSET_MS must be an integer of milliseconds")?,
            },
            ui_session_ttl: match var("TOLLGATE_UI_SESSION_TTL") {
                None => Duration::from_secs(8 * 3600),
                Some(v) => parse_duration(&v).with_context(|| {
                    format!("TOLLGATE_UI_SESSION_TTL must be seconds or 15m / 8h, not {v:?}")
                })?,
            },
            ui_secure_cookie: flag("TOLLGATE_UI_SECURE_COOKIE")?,
            gateway_url: var("TOLLGATE_GATEWAY_URL")
                .map(|v| v.trim_end_matches('/').to_string())
                .unwrap_or_else(|| "http://localhost:8080".to_string()),
            lease_fail_open: match var("TOLLGATE_LEASE_FAIL").as_deref() {
                None | Some("closed") => false,
                Some("open") => true,
                Some(other) => bail!("TOLLGATE_LEASE_FAIL must be closed or open, not {other:?}"),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("8h"), Some(Duration::from_secs(28_800)));
        for bad in ["", "0", "h", "-1", "1d", "1.5h", "99999999999999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
