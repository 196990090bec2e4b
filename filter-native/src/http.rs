//! The control plane calls of the native host's own threads (config poll,
//! usage batches, leases, health), blocking, through `ureq` (plain HTTP:
//! the control plane is reached by address, as the wasm host's cluster
//! does).

use std::time::Duration;

/// Answers larger than this are refused (a 100k-key page is far smaller).
const MAX_ANSWER_BYTES: u64 = 256 * 1024 * 1024;

/// Sends one request to `address` (`host:port`), with `headers` holding the
/// pseudo-headers `:method`, `:path` and `:authority`; returns the status
/// and the body, whatever the status.
pub fn call(
    address: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap_or_default()
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("http://{address}{}", header(":path"));
    let mut request = ureq::http::Request::builder()
        .method(header(":method"))
        .uri(url.as_str())
        .header("host", header(":authority"));
    for (name, value) in headers.iter().filter(|(n, _)| !n.starts_with(':')) {
        request = request.header(*name, *value);
    }
    let request = request
        .body(body.unwrap_or_default().to_vec())
        .map_err(|e| format!("{url}: {e}"))?;
    let mut answer = agent.run(request).map_err(|e| format!("{address}: {e}"))?;
    let status = answer.status().as_u16();
    let body = answer
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec()
        .map_err(|e| format!("reading from {address}: {e}"))?;
    Ok((status, body))
}
