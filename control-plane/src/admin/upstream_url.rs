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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refused_whatever_the_setting() {
        for bad in [
            "http://169.254.169.254/latest",
            "http://169.254.169.254./v1",
            "http://169.254.169.254.:80/v1",
            "http://169.254.169.254::80/v1",
            "http://[::169.254.169.254]/v1",
            "http://[::ffff:169.254.169.254]/v1",
            "http://[64:ff9b::a9fe:a9fe]/v1",
            "http://[64:ff9b:1::a9fe:a9fe]/v1",
            "http://[::ffff:0:a9fe:a9fe]/v1",
            "http://[2002:a9fe:a9fe::1]/v1",
            "http://[2001:0000:4136:e378:8000:63bf:5601:5601]/v1", // client 169.254.169.254? see below
            "http://[fe80::1]",
            "http://0xa9.0xfe.0xa9.0xfe/",
            "http://2852039166/",
            "http://metadata.google.internal/v1",
            "http://metadata.google.internal./v1",
            "http://METADATA.GOOGLE.INTERNAL/v1",
            "http://metadata/v1",
            "http://metadata.goog/v1",
            "http://instance-data/v1",
            "http://0.0.0.0",
            "http://255.255.255.255",
            "http://224.0.0.1",
            "http://:80/v1",
            "http://host:0/v1",
            "http://host:-1/v1",
            "http://host:99999/v1",
            "http://user@host/v1",
            "http://user:pw@host/v1",
            "http:///v1",
            "http://ho st/v1",
            "http://host/v 1",
            "http:\\\\host\\v1",
            "http://host\\@evil/v1",
            "ftp://host/v1",
            "file:///etc/passwd",
            "gopher://host/",
            "http://host/v1?x=1",
            "http://host/v1#frag",
            "http://host/v1%2f..",
            "host/v1",
            "",
        ] {
            for allow in [false, true] {
                assert!(
                    check_base_url(bad, allow).is_err(),
                    "{bad} (allow_private={allow}) should be refused"
                );
            }
        }
    }

    #[test]
    fn private_targets_refused_unless_allowed() {
        for bad in [
            "http://127.0.0.1/v1",
            "http://127.0.0.1./v1",
            "http://127.1.2.3:8080",
            "http://10.0.0.1",
            "http://192.168.1.1",
            "http://172.16.0.1",
            "http://100.64.0.1",
            "http://[::1]:80",
            "http://[::ffff:127.0.0.1]",
            "http://[::127.0.0.1]",
            "http://[64:ff9b::7f00:1]",
            "http://[2002:7f00:1::1]",
            "http://[fd00::1]",
            "http://localhost:9000",
            "http://localhost.:9000",
            "http://api.internal",
            "http://2130706433",
            "http://0x7f.1",
            "http://127.1",
        ] {
            assert!(
                check_base_url(bad, false).is_err(),
                "{bad} should be refused"
            );
            assert!(
                check_base_url(bad, true).is_ok(),
                "{bad} allowed when private is"
            );
        }
    }

    #[test]
    fn public_targets_pass_normalised() {
        for (given, stored) in [
            ("https://api.openai.com/v1", "https://api.openai.com/v1"),
            ("https://API.OpenAI.com./v1/", "https://api.openai.com/v1"),
            ("https://8.8.8.8/v1", "https://8.8.8.8/v1"),
            (
                "http://[2001:db8::1]:8080/v1",
                "http://[2001:db8::1]:8080/v1",
            ),
            ("https://api.openai.com:443/v1", "https://api.openai.com/v1"),
            ("http://2130706433:9000/v1", "http://127.0.0.1:9000/v1"),
            // WHATWG reads a leading 0 as octal; the filter dials what is stored.
            ("http://017.0.0.1/v1", "http://15.0.0.1/v1"),
        ] {
            let allow = given.contains("2130706433");
            assert_eq!(check_base_url(given, allow).unwrap(), stored, "{given}");
        }
    }

    #[test]
    fn teredo_client_is_the_last_32_bits_inverted() {
        // Client 169.254.169.254 = !0x5601_5601.
        let v6: Ipv6Addr = "2001:0:4136:e378:8000:63bf:5601:5601".parse().unwrap();
        assert!(embedded_v4(v6).contains(&Ipv4Addr::new(169, 254, 169, 254)));
    }

    fn link_local_v4() -> impl Strategy<Value = Ipv4Addr> {
        (any::<u8>(), any::<u8>()).prop_map(|(c, d)| Ipv4Addr::new(169, 254, c, d))
    }

    /// Every IPv6 form that embeds `v4`.
    fn embeddings(v4: Ipv4Addr, noise: u64) -> Vec<Ipv6Addr> {
        let x = u32::from(v4);
        let (hi, lo) = ((x >> 16) as u16, x as u16);
        let n = noise.to_be_bytes();
        let w = |i: usize| u16::from_be_bytes([n[i], n[i + 1]]);
        let inv = !x;
        vec![
            Ipv6Addr::new(0, 0, 0, 0, 0, 0, hi, lo),
            Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, hi, lo),
            Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, hi, lo),
            Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo),
            Ipv6Addr::new(0x64, 0xff9b, 1, w(0), w(2), w(4), hi, lo),
            Ipv6Addr::new(0x2002, hi, lo, w(0), w(2), w(4), w(6), w(1)),
            Ipv6Addr::new(
                0x2001,
                0,
                w(0),
                w(2),
                w(4),
                w(6),
                (inv >> 16) as u16,
                inv as u16,
            ),
            Ipv6Addr::new(0x2001, 0, hi, lo, w(4), w(6), w(0), w(2)),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,80}", allow in any::<bool>()) {
            let _ = check_base_url(&s, allow);
            let _ = check_base_url(&format!("http://{s}"), allow);
            let _ = check_base_url(&format!("https://{s}/v1"), allow);
        }

        #[test]
        fn arbitrary_ipv6_hosts_never_panic(words in any::<[u16; 8]>(), allow in any::<bool>()) {
            let ip = Ipv6Addr::from(words);
            let _ = check_base_url(&format!("http://[{ip}]/v1"), allow);
        }

        #[test]
        fn link_local_inside_any_ipv6_form_is_refused(
            v4 in link_local_v4(), noise in any::<u64>(), allow in any::<bool>()
        ) {
            for v6 in embeddings(v4, noise) {
                let url = format!("http://[{v6}]/v1");
                prop_assert!(check_base_url(&url, allow).is_err(), "{}", url);
            }
            let url = format!("http://{v4}./v1");
            prop_assert!(check_base_url(&url, allow).is_err(), "{}", url);
        }
    }
}
