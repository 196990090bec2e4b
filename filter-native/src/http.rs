//! The control plane calls of the native host's own threads (config poll,
//! usage batches, leases, health), blocking, through `ureq` (plain HTTP:
//! the control plane is reached by address, as the wasm host's cluster
//! does).

use std::sync::OnceLock;
use std::time::Duration;

/// Answers larger than this are refused (a 100k-key page is far smaller).
const MAX_ANSWER_BYTES: u64 = 256 * 1024 * 1024;
/// ureq's read and write buffers (its default is 128 KiB each, zeroed per
/// connection: with an agent per call that was a fifth of the module's
/// instructions per proxied request under callgrind). Bodies stream
/// through them; the control plane's answer headers are far smaller.
const BUFFER_BYTES: usize = 16 * 1024;

/// One agent for the module's threads: its pool keeps their connections
/// to the control plane open between calls.
fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .input_buffer_size(BUFFER_BYTES)
            .output_buffer_size(BUFFER_BYTES)
            .max_response_header_size(BUFFER_BYTES)
            .build()
            .into()
    })
}

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
    let agent = agent();
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
    let request = agent
        .configure_request(request)
        .timeout_global(Some(timeout))
        .build();
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
