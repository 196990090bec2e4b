//! Provider base URLs, checked the same way by the control plane (when an
//! admin sets one) and by the filter (when a snapshot arrives), so that a URL
//! the control plane took never makes the filter refuse a whole snapshot.

/// A provider base URL, taken apart once when the snapshot arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub tls: bool,
    /// `host[:port]`, as sent in `:authority`.
    pub authority: String,
    /// The path prefix without a trailing `/`, e.g. `/v1`.
    pub path: String,
}

pub fn parse_base_url(url: &str) -> Result<BaseUrl, String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!(
            "base_url {url:?} must start with http:// or https://"
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let authority_ok = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !authority_ok {
        return Err(format!("base_url {url:?} has a bad host"));
    }
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'%' | b'\\'));
    if !path_ok {
        return Err(format!("base_url {url:?} has a bad path"));
    }
    Ok(BaseUrl {
        tls,
        authority: authority.to_string(),
        path: path.trim_end_matches('/').to_string(),
    })
}
