//! The event hooks Envoy resolves in the module (`envoy_dynamic_module_on_*`;
//! Envoy 1.40 refuses a module that lacks any of these 21). Hooks this
//! filter has no use for (trailers, callouts, streams, the scheduler,
//! watermarks) continue or do nothing.

use std::ffi::{c_char, c_void};

use crate::abi::{self, ConfigEnvoyPtr, EnvoyBuffer, EnvoyHttpHeader, FilterEnvoyPtr};
use crate::envoy::{EnvoyLog, Stream};
use crate::filter::{guard, Http};
use crate::metrics::{self, Ids};
use crate::state;

type Module = *const c_void;

static LOGGER: EnvoyLog = EnvoyLog;

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    if let Some(refusal) = abi::refusal(&abi::missing_callbacks()) {
        // Envoy's logger is among what may be missing: stderr, then null,
        // which Envoy treats as fatal.
        eprintln!("{refusal}");
        return std::ptr::null();
    }
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Debug);
    abi::ABI_VERSION_C.as_ptr().cast()
}

/// # Safety
/// Envoy passes its buffers valid for the call.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    config_envoy: ConfigEnvoyPtr,
    _name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> Module {
    let raw = if config.ptr.is_null() {
        &[][..]
    } else {
        std::slice::from_raw_parts(config.ptr, config.length)
    };
    let done = std::panic::catch_unwind(|| state::configure(raw));
    match done {
        Ok(Ok(())) => {
            log::info!(
                "tollgate native filter {} configured (Envoy {} ABI {})",
                env!("CARGO_PKG_VERSION"),
                abi::ENVOY_VERSION,
                abi::ABI_VERSION
            );
            // The configuration lives in `state`; this one's stats here,
            // flushed through it on Envoy's main thread.
            let ids = Box::new(Ids::define(config_envoy));
            metrics::adopt(config_envoy, &ids);
            Box::into_raw(ids) as Module
        }
        Ok(Err(e)) => {
            log::error!("tollgate: {e}");
            std::ptr::null()
        }
        Err(_) => std::ptr::null(),
    }
}

/// # Safety
/// `config` is a pointer `envoy_dynamic_module_on_http_filter_config_new`
/// returned; Envoy destroys it after every filter it made.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: Module) {
    if !config.is_null() {
        let ids = Box::from_raw(config as *mut Ids);
        metrics::release(&ids);
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: Module,
    _filter_envoy: FilterEnvoyPtr,
) -> Module {
    let ids = std::ptr::NonNull::new(config as *mut Ids);
    Box::into_raw(Box::new(Http::new(ids))) as Module
}

/// # Safety
/// `filter` is a pointer `envoy_dynamic_module_on_http_filter_new` returned.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter: Module) {
    if !filter.is_null() {
        drop(Box::from_raw(filter as *mut Http));
    }
}

/// # Safety
/// `filter` is live: Envoy calls a stream's hooks on its worker, one at a time.
unsafe fn http<'a>(filter: Module) -> &'a mut Http {
    &mut *(filter as *mut Http)
}

/// # Safety
/// As for `http`.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    envoy: FilterEnvoyPtr,
    filter: Module,
    end_of_stream: bool,
) -> u32 {
    let s = Stream(envoy);
    guard(s, http(filter), abi::HEADERS_STOP_ITERATION, |h| {
        h.request_headers(s, state::shared(), end_of_stream)
    })
}

/// # Safety
/// As for `http`.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    envoy: FilterEnvoyPtr,
    filter: Module,
    end_of_stream: bool,
) -> u32 {
    let s = Stream(envoy);
    guard(s, http(filter), abi::BODY_STOP_NO_BUFFER, |h| {
        h.request_body(s, state::shared(), end_of_stream)
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    _envoy: FilterEnvoyPtr,
    _filter: Module,
) -> u32 {
    abi::TRAILERS_CONTINUE
}

/// # Safety
/// As for `http`.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    envoy: FilterEnvoyPtr,
    filter: Module,
    _end_of_stream: bool,
) -> u32 {
    let s = Stream(envoy);
    guard(s, http(filter), abi::HEADERS_CONTINUE, |h| {
        h.response_headers(s, state::shared())
    })
}

/// # Safety
/// As for `http`.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    envoy: FilterEnvoyPtr,
    filter: Module,
    end_of_stream: bool,
) -> u32 {
    let s = Stream(envoy);
    guard(s, http(filter), abi::BODY_CONTINUE, |h| {
        h.response_body(s, end_of_stream)
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _envoy: FilterEnvoyPtr,
    _filter: Module,
) -> u32 {
    abi::TRAILERS_CONTINUE
}

/// # Safety
/// As for `http`.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    envoy: FilterEnvoyPtr,
    filter: Module,
) {
    let s = Stream(envoy);
    let h = http(filter);
    // The stream is over: a panic here has nobody left to answer.
    h.mark_answered();
    guard(s, h, (), |h| h.complete(s, state::shared()));
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    _envoy: FilterEnvoyPtr,
    _filter: Module,
    _callout_id: u64,
    _result: u32,
    _headers: *mut EnvoyHttpHeader,
    _headers_size: usize,
    _body: *mut EnvoyBuffer,
    _body_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _envoy: FilterEnvoyPtr,
    _filter: Module,
    _stream_id: u64,
    _headers: *mut EnvoyHttpHeader,
    _headers_size: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _envoy: FilterEnvoyPtr,
    _filter: Module,
    _stream_id: u64,
    _data: *const EnvoyBuffer,
    _data_count: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _envoy: FilterEnvoyPtr,
    _filter: Module,
    _stream_id: u64,
    _trailers: *mut EnvoyHttpHeader,
    _trailers_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _envoy: FilterEnvoyPtr,
    _filter: Module,
    _stream_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _envoy: FilterEnvoyPtr,
    _filter: Module,
    _stream_id: u64,
    _reason: u32,
) {
}

/// # Safety
/// As for `http`.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    envoy: FilterEnvoyPtr,
    filter: Module,
    _event_id: u64,
) {
    let s = Stream(envoy);
    guard(s, http(filter), (), |h| h.scheduled(s));
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _envoy: FilterEnvoyPtr,
    _filter: Module,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _envoy: FilterEnvoyPtr,
    _filter: Module,
) {
}

/// The main thread's turn the module's thread asked for: the metrics flush.
///
/// # Safety
/// `config` is a pointer `envoy_dynamic_module_on_http_filter_config_new`
/// returned, live during this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    config_envoy: ConfigEnvoyPtr,
    config: Module,
    _event_id: u64,
) {
    if config.is_null() {
        return;
    }
    let ids = &*(config as *const Ids);
    let _ = std::panic::catch_unwind(|| metrics::flush(config_envoy, ids));
}
