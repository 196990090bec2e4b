//! Provider base URLs as the filter will dial them, checked against targets
//! a provider should not be: parsed with the `url` crate (WHATWG, which
//! normalises `0x7f.1`, `2130706433`, IPv6 forms), then the host judged after
//! normalising it (trailing dots gone, IPv4 found inside every IPv6 form that
//! embeds one). Link-local (cloud metadata), unspecified, multicast and
//! broadcast addresses and metadata host names are refused always; loopback,
//! private and shared ones unless private upstreams are allowed.

use std::net::{Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use crate::error::{ApiError, ApiResult};

const PARAM: &str = "base_url";

/// Host names of cloud metadata services: refused whatever the setting.
const METADATA_HOSTS: &[&str] = &[
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.internal",
    "metadata.tencentyun.com",
    "metadata.platformequinix.com",
];

/// Suffixes of names that resolve inside a private network.
const LOCAL_SUFFIXES: &[&str] = &[".localhost", ".local", ".internal", ".lan", ".home.arpa"];

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid(message, Some(PARAM))
}

fn private_refused(why: &str) -> ApiError {
    invalid(format!(
        "`base_url` points at {why}; set TOLLGATE_ALLOW_PRIVATE_UPSTREAMS=true to allow it"
    ))
}

fn never_allowed() -> ApiError {
    invalid("`base_url` points at a link-local, metadata, unspecified, multicast or broadcast target (cloud metadata lives there)")
}

/// What a target is, from worst to fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Public,
    Private,
    Never,
}

fn class_v4(v4: Ipv4Addr) -> Class {
    let [a, b, ..] = v4.octets();
    if v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() {
        Class::Never
    } else if v4.is_loopback()
        || v4.is_private()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
        || a >= 240
    {
        Class::Private
    } else {
        Class::Public
    }
}

fn v4_at(v6: Ipv6Addr, segment: usize) -> Ipv4Addr {
    let s = v6.segments();
    Ipv4Addr::from((u32::from(s[segment]) << 16) | u32::from(s[segment + 1]))
}

/// Every IPv4 address an IPv6 address carries: mapped, compatible,
/// translated (`::ffff:0:a.b.c.d`), NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`),
/// 6to4 (`2002::/16`) and Teredo (`2001::/32`: server, and client XOR ones).
pub fn embedded_v4(v6: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = v6.segments();
    let mut out = Vec::new();
    if s[..5] == [0; 5] && (s[5] == 0 || s[5] == 0xffff) {
        out.push(v4_at(v6, 6)); // compatible and mapped
    }
    if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
        out.push(v4_at(v6, 6)); // translated
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..3] == [0x64, 0xff9b, 1] {
        out.push(v4_at(v6, 6)); // NAT64
    }
    if s[0] == 0x2002 {
        out.push(v4_at(v6, 1)); // 6to4
    }
    if s[0] == 0x2001 && s[1] == 0 {
        out.push(v4_at(v6, 2)); // Teredo server
        out.push(Ipv4Addr::from(!u32::from(v4_at(v6, 6)))); // Teredo client
    }
    out
}

fn class_v6(v6: Ipv6Addr) -> Class {
    let first = v6.segments()[0];
    let own = if (first & 0xffc0) == 0xfe80 || v6.is_unspecified() || v6.is_multicast() {
        Class::Never
    } else if v6.is_loopback()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfec0 // site-local
        || v6.segments()[..3] == [0x64, 0xff9b, 1]
    // NAT64 local use
    {
        Class::Private
    } else {
        Class::Public
    };
    embedded_v4(v6)
        .into_iter()
        .map(class_v4)
        .fold(own, Class::max)
}

fn class_domain(name: &str) -> Class {
    if METADATA_HOSTS.contains(&name) {
        Class::Never
    } else if name == "localhost" || LOCAL_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        Class::Private
    } else {
        Class::Public
    }
}

/// The host normalised: a domain lowercased (the parser did it) without
/// trailing dots, re-read as an address if that is what it is.
fn normal_host(host: Host<&str>) -> ApiResult<Host<String>> {
    match host {
        Host::Domain(d) => {
            let d = d.trim_end_matches('.');
            if d.is_empty() {
                return Err(invalid("`base_url` has an empty host"));
            }
            match Host::parse(d) {
                Ok(Host::Domain(d)) => Ok(Host::Domain(d.to_ascii_lowercase())),
                Ok(other) => Ok(other),
                Err(e) => Err(invalid(format!("`base_url` has a bad host: {e}"))),
            }
        }
        Host::Ipv4(v4) => Ok(Host::Ipv4(v4)),
        Host::Ipv6(v6) => Ok(Host::Ipv6(v6)),
    }
}

fn class_host(host: &Host<String>) -> Class {
    match host {
        Host::Domain(d) => class_domain(d),
        Host::Ipv4(v4) => class_v4(*v4),
        Host::Ipv6(v6) => class_v6(*v6),
    }
}

/// Refuses what the WHATWG parser would silently repair.
fn check_characters(raw: &str) -> ApiResult<()> {
    if raw.len() > 2048 {
        return Err(invalid("`base_url` is too long"));
    }
    if raw
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\' || !c.is_ascii())
    {
        return Err(invalid(
            "`base_url` must be ASCII without spaces, control characters or backslashes",
        ));
    }
    // `http:///x` would be read as host `x`: the host must follow `//`.
    let lower = raw.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
        .ok_or_else(|| invalid("`base_url` must start with http:// or https://"))?;
    if rest.starts_with('/') || rest.is_empty() {
        return Err(invalid("`base_url` has no host"));
    }
    Ok(())
}

fn check_shape(url: &Url) -> ApiResult<()> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("`base_url` must start with http:// or https://"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("`base_url` must not carry a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("`base_url` must not have a query or a fragment"));
    }
    if url.port() == Some(0) {
        return Err(invalid("`base_url` has port 0"));
    }
    if url.path().contains('%') {
        return Err(invalid("`base_url` path must not be percent-encoded"));
    }
    Ok(())
}

/// Checks a provider base URL and returns it normalised (as stored and sent
/// to the filter): `scheme://host[:port][/path]`, no trailing `/`.
pub fn check_base_url(raw: &str, allow_private: bool) -> ApiResult<String> {
    check_characters(raw)?;
    let url = Url::parse(raw).map_err(|e| invalid(format!("`base_url` is not a URL: {e}")))?;
    check_shape(&url)?;
    let host = normal_host(
        url.host()
            .ok_or_else(|| invalid("`base_url` has no host"))?,
    )?;
    match class_host(&host) {
        Class::Never => return Err(never_allowed()),
        Class::Private if !allow_private => {
            return Err(private_refused(
                "a private, loopback or local address or name",
            ))
        }
        _ => {}
    }
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = url.path().trim_end_matches('/');
    let normal = format!("{}://{host}{port}{path}", url.scheme());
    // What the filter parses when the snapshot arrives.
    tollgate_contract::url::parse_base_url(&normal).map_err(invalid)?;
    Ok(normal)
}

/// A provider's base URL that has passed [`check_base_url`], normalised.
/// It is parsed with the settings (whether private addresses are allowed),
/// so it has a parse fn rather than a `Deserialize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// A 400 naming `base_url` when the URL is refused.
    pub fn parse(raw: &str, allow_private: bool) -> ApiResult<BaseUrl> {
        check_base_url(raw, allow_private).map(BaseUrl)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
#[path = "upstream_url_tests.rs"]
mod tests;
