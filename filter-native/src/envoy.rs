//! Safe wrappers of the callbacks in `abi.rs` for one filter's hook: the
//! Envoy pointer is valid for the hook's duration, and so is every byte it
//! lends (copied out here before the hook returns).

use crate::abi::{self, EnvoyBuffer, EnvoyHttpHeader, FilterEnvoyPtr, ModuleBuffer};

/// The response code details of the module's local replies (Envoy's
/// default, when none are given, is `dynamic_module`).
pub const REPLY_DETAILS: &str = "tollgate";

/// The Envoy side of one stream's filter, during one hook.
#[derive(Clone, Copy)]
pub struct Stream(pub FilterEnvoyPtr);

/// # Safety
/// `ptr` must point at `len` readable bytes (or be null with `len` 0).
unsafe fn copy(ptr: *const u8, len: usize) -> Vec<u8> {
    if ptr.is_null() || len == 0 {
        return Vec::new();
    }
    std::slice::from_raw_parts(ptr, len).to_vec()
}

impl Stream {
    /// Every header of `kind`, lower-case names and raw values, in order.
    pub fn headers(self, kind: abi::HeaderType) -> Vec<(String, Vec<u8>)> {
        // SAFETY: the filter pointer is Envoy's for this hook; the array is
        // as long as Envoy said, and its bytes live until the hook returns.
        unsafe {
            let n = abi::envoy_dynamic_module_callback_http_get_headers_size(self.0, kind);
            let empty = EnvoyHttpHeader {
                key_ptr: std::ptr::null(),
                key_length: 0,
                value_ptr: std::ptr::null(),
                value_length: 0,
            };
            let mut raw = vec![empty; n];
            if n == 0
                || !abi::envoy_dynamic_module_callback_http_get_headers(
                    self.0,
                    kind,
                    raw.as_mut_ptr(),
                )
            {
                return Vec::new();
            }
            raw.iter()
                .map(|h| {
                    // Names are ASCII: the bytes become the string as
                    // they are (no second copy); anything else is lossy.
                    let name = String::from_utf8(copy(h.key_ptr, h.key_length))
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    (name, copy(h.value_ptr, h.value_length))
                })
                .collect()
        }
    }

    /// Sets (`Some`) or removes (`None`) a header.
    pub fn set_header(self, kind: abi::HeaderType, name: &str, value: Option<&[u8]>) -> bool {
        let value = value
            .map(ModuleBuffer::of)
            .unwrap_or_else(ModuleBuffer::null);
        // SAFETY: both buffers are borrowed for the call only.
        unsafe {
            abi::envoy_dynamic_module_callback_http_set_header(
                self.0,
                kind,
                ModuleBuffer::of(name.as_bytes()),
                value,
            )
        }
    }

    /// Envoy chooses the route again, from the headers as they are now.
    pub fn clear_route_cache(self) {
        // SAFETY: the filter pointer is Envoy's for this hook.
        unsafe { abi::envoy_dynamic_module_callback_http_clear_route_cache(self.0) }
    }

    fn chunks(self, kind: abi::BodyType) -> Vec<EnvoyBuffer> {
        // SAFETY: as for `headers`.
        unsafe {
            let n = abi::envoy_dynamic_module_callback_http_get_body_chunks_size(self.0, kind);
            let mut raw = vec![
                EnvoyBuffer {
                    ptr: std::ptr::null(),
                    length: 0,
                };
                n
            ];
            if n == 0
                || !abi::envoy_dynamic_module_callback_http_get_body_chunks(
                    self.0,
                    kind,
                    raw.as_mut_ptr(),
                )
            {
                return Vec::new();
            }
            raw
        }
    }

    pub fn body_size(self, kind: abi::BodyType) -> usize {
        // SAFETY: the filter pointer is Envoy's for this hook.
        unsafe { abi::envoy_dynamic_module_callback_http_get_body_size(self.0, kind) }
    }

    /// The bytes of one body buffer.
    pub fn body(self, kind: abi::BodyType) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body_size(kind));
        for c in self.chunks(kind) {
            if c.ptr.is_null() || c.length == 0 {
                continue;
            }
            // SAFETY: Envoy lends the chunk until the hook returns; copied
            // straight into `out` (no copy of its own first).
            out.extend_from_slice(unsafe { std::slice::from_raw_parts(c.ptr, c.length) });
        }
        out
    }

    /// Whether the received and the buffered body are the same bytes (Envoy
    /// hands a filter its own buffer when it resumes one).
    pub fn same_body(self, received: abi::BodyType, buffered: abi::BodyType) -> bool {
        let (r, b) = (self.chunks(received), self.chunks(buffered));
        matches!((r.first(), b.first()), (Some(r), Some(b)) if r.ptr == b.ptr)
    }

    /// The whole request body so far: what Envoy buffered, then what it
    /// received now (once when both are the same buffer).
    pub fn request_body(self) -> Vec<u8> {
        if self.same_body(abi::RECEIVED_REQUEST_BODY, abi::BUFFERED_REQUEST_BODY) {
            return self.body(abi::RECEIVED_REQUEST_BODY);
        }
        let mut body = self.body(abi::BUFFERED_REQUEST_BODY);
        body.extend(self.body(abi::RECEIVED_REQUEST_BODY));
        body
    }

    /// The whole request body becomes `new`.
    pub fn replace_request_body(self, new: &[u8]) -> bool {
        let same = self.same_body(abi::RECEIVED_REQUEST_BODY, abi::BUFFERED_REQUEST_BODY);
        let buffered = self.body_size(abi::BUFFERED_REQUEST_BODY);
        let received = self.body_size(abi::RECEIVED_REQUEST_BODY);
        // (An upstream filter that never buffered has no buffered body at
        // all: draining it fails.)
        (same || buffered == 0 || self.drain(abi::BUFFERED_REQUEST_BODY, buffered))
            && self.drain(abi::RECEIVED_REQUEST_BODY, received)
            && self.append(abi::RECEIVED_REQUEST_BODY, new)
    }

    pub fn drain(self, kind: abi::BodyType, n: usize) -> bool {
        // SAFETY: the filter pointer is Envoy's for this hook.
        unsafe { abi::envoy_dynamic_module_callback_http_drain_body(self.0, kind, n) }
    }

    pub fn append(self, kind: abi::BodyType, data: &[u8]) -> bool {
        // SAFETY: `data` is borrowed for the call only.
        unsafe {
            abi::envoy_dynamic_module_callback_http_append_body(
                self.0,
                kind,
                ModuleBuffer::of(data),
            )
        }
    }

    /// A local reply, with response code details [`REPLY_DETAILS`] (by
    /// which the listener's local reply mappers know the filter's own
    /// answers and leave them as they are).
    pub fn send(self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let mut raw: Vec<abi::ModuleHttpHeader> = headers
            .iter()
            .map(|(n, v)| abi::ModuleHttpHeader {
                key_ptr: n.as_ptr(),
                key_length: n.len(),
                value_ptr: v.as_ptr(),
                value_length: v.len(),
            })
            .collect();
        // SAFETY: the headers and body are borrowed for the call only.
        unsafe {
            abi::envoy_dynamic_module_callback_http_send_response(
                self.0,
                u32::from(status),
                raw.as_mut_ptr(),
                raw.len(),
                ModuleBuffer::of(body),
                ModuleBuffer::of(REPLY_DETAILS.as_bytes()),
            );
        }
    }

    pub fn set_filter_state(self, key: &str, value: &[u8]) -> bool {
        // SAFETY: both buffers are borrowed for the call only.
        unsafe {
            abi::envoy_dynamic_module_callback_http_set_filter_state_bytes(
                self.0,
                ModuleBuffer::of(key.as_bytes()),
                ModuleBuffer::of(value),
            )
        }
    }

    /// A string of the upstream host's metadata (`filter_metadata.<ns>.<key>`
    /// of the endpoint Envoy chose for this attempt).
    pub fn host_metadata(self, ns: &str, key: &str) -> Option<Vec<u8>> {
        let mut out = EnvoyBuffer {
            ptr: std::ptr::null(),
            length: 0,
        };
        // SAFETY: the names are borrowed for the call; the bytes lent in
        // `out` live until the hook returns and are copied here.
        unsafe {
            abi::envoy_dynamic_module_callback_http_get_metadata_string(
                self.0,
                abi::METADATA_SOURCE_HOST,
                ModuleBuffer::of(ns.as_bytes()),
                ModuleBuffer::of(key.as_bytes()),
                &mut out,
            )
            .then(|| copy(out.ptr, out.length))
        }
    }

    /// A string attribute (`abi::ATTRIBUTE_*`), `None` when Envoy has none.
    pub fn attribute(self, id: u32) -> Option<Vec<u8>> {
        let mut out = EnvoyBuffer {
            ptr: std::ptr::null(),
            length: 0,
        };
        // SAFETY: as for `host_metadata`.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_get_attribute_string(
                self.0, id, &mut out,
            )
            .then(|| copy(out.ptr, out.length))
        }
    }

    /// Resets the stream, as Envoy's own idle timeouts do once a response
    /// has started.
    pub fn reset(self, details: &str) {
        // SAFETY: the details are borrowed for the call only.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_reset_stream(
                self.0,
                abi::RESET_LOCAL,
                ModuleBuffer::of(details.as_bytes()),
            )
        }
    }

    /// `response.code`, 0 when there is none.
    pub fn response_code(self) -> u16 {
        let mut code = 0u64;
        // SAFETY: `code` outlives the call.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_get_attribute_int(
                self.0,
                abi::ATTRIBUTE_RESPONSE_CODE,
                &mut code,
            )
        };
        if ok {
            u16::try_from(code).unwrap_or(0)
        } else {
            0
        }
    }
}

/// Logs through Envoy's `dynamic_modules` logger.
pub struct EnvoyLog;

impl log::Log for EnvoyLog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        // SAFETY: a plain call, no pointers.
        unsafe { abi::envoy_dynamic_module_callback_log_enabled(level(metadata.level())) }
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = record.args().to_string();
        // SAFETY: the message is borrowed for the call only.
        unsafe {
            abi::envoy_dynamic_module_callback_log(
                level(record.level()),
                ModuleBuffer::of(text.as_bytes()),
            );
        }
    }

    fn flush(&self) {}
}

fn level(l: log::Level) -> abi::LogLevel {
    match l {
        log::Level::Error => abi::LOG_ERROR,
        log::Level::Warn => abi::LOG_WARN,
        log::Level::Info => abi::LOG_INFO,
        log::Level::Debug | log::Level::Trace => abi::LOG_DEBUG,
    }
}
