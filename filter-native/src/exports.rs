//! The event hooks Envoy resolves in the module (`envoy_dynamic_module_on_*`;
//! Envoy 1.40 refuses a module that lacks any of these 21). Hooks this
//! filter has no use for (trailers, callouts, streams, the scheduler,
//! watermarks) continue or do nothing.

use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

use tollgate_contract::ErrorCode;
use tollgate_filter::config::Role;
use tollgate_filter::reply::Reply;

use crate::abi::{self, ConfigEnvoyPtr, EnvoyBuffer, EnvoyHttpHeader, FilterEnvoyPtr};
use crate::envoy::{EnvoyLog, Stream};
use crate::filter::{guard, Http};
use crate::metrics::{self, Ids};
use crate::state;
use crate::upstream::UpstreamHttp;

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

/// One configuration of the module: the listener filter's (with its stats)
/// or a failover cluster's upstream filter's.
pub enum Config {
    Listener(Ids),
    Upstream,
}

/// One stream's filter, of the role of its configuration.
#[expect(
    clippy::large_enum_variant,
    reason = "boxed once per stream already; a box of its own would cost the listener an allocation a request"
)]
pub enum Filter {
    Listener(Http),
    Upstream(UpstreamHttp),
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
        Ok(Ok(role)) => {
            log::info!(
                "tollgate native filter {} configured as {role:?} (Envoy {} ABI {})",
                env!("CARGO_PKG_VERSION"),
                abi::ENVOY_VERSION,
                abi::ABI_VERSION
            );
            let made = match role {
                Role::Upstream => Box::new(Config::Upstream),
                Role::Downstream => {
                    // The configuration lives in `state`; this one's stats
                    // here, flushed through it on Envoy's main thread.
                    let made = Box::new(Config::Listener(Ids::define(config_envoy)));
                    if let Config::Listener(ids) = made.as_ref() {
                        metrics::adopt(config_envoy, ids);
                    }
                    made
                }
            };
            Box::into_raw(made) as Module
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
        if let Config::Listener(ids) = *Box::from_raw(config as *mut Config) {
            metrics::release(&ids);
        }
    }
}

/// # Safety
/// `config` is a live pointer `envoy_dynamic_module_on_http_filter_config_new`
/// returned (Envoy keeps it alive while its filters live).
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: Module,
    _filter_envoy: FilterEnvoyPtr,
) -> Module {
    let filter = match (config as *const Config).as_ref() {
        Some(Config::Upstream) => Filter::Upstream(UpstreamHttp::default()),
        Some(Config::Listener(ids)) => Filter::Listener(Http::new(Some(NonNull::from(ids)))),
        None => Filter::Listener(Http::new(None)),
    };
    Box::into_raw(Box::new(filter)) as Module
}

/// # Safety
/// `filter` is a pointer `envoy_dynamic_module_on_http_filter_new` returned.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter: Module) {
    if !filter.is_null() {
        let mut filter = Box::from_raw(filter as *mut Filter);
        if let Filter::Upstream(u) = filter.as_mut() {
            // An attempt Envoy ended without its stream-complete hook.
            let _ = catch_unwind(AssertUnwindSafe(|| u.done(state::shared())));
        }
        drop(filter);
    }
}

/// # Safety
/// `filter` is live: Envoy calls a stream's hooks on its worker, one at a time.
unsafe fn filter<'a>(filter: Module) -> &'a mut Filter {
    &mut *(filter as *mut Filter)
}

/// Runs an upstream hook; a panic does not unwind into Envoy: it is counted
/// and logged, and `on_panic` says what the attempt does then.
fn upstream<T>(
    u: &mut UpstreamHttp,
    on_panic: impl FnOnce() -> T,
    hook: impl FnOnce(&mut UpstreamHttp) -> T,
) -> T {
    catch_unwind(AssertUnwindSafe(|| hook(u))).unwrap_or_else(|_| {
        state::PANICS.fetch_add(1, Ordering::Relaxed);
        log::error!("tollgate native: an upstream hook panicked");
        on_panic()
    })
}

/// A panic on an attempt's request side fails it closed: its headers may
/// still be the previous attempt's (that deployment's credential), so the
/// attempt is answered here with an OpenAI-format 500, never sent on.
fn refuse_attempt<T>(s: Stream, stop: T) -> impl FnOnce() -> T {
    move || {
        let reply = Reply::error(ErrorCode::Internal, "The gateway failed on this request.");
        let _ = catch_unwind(AssertUnwindSafe(|| {
            s.send(
                reply.status,
                &[("content-type", "application/json")],
                &reply.body,
            )
        }));
        stop
    }
}

/// # Safety
/// As for `filter`.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    envoy: FilterEnvoyPtr,
    module: Module,
    end_of_stream: bool,
) -> u32 {
    let s = Stream(envoy);
    match filter(module) {
        Filter::Listener(h) => guard(s, h, abi::HEADERS_STOP_ITERATION, |h| {
            h.request_headers(s, state::shared(), end_of_stream)
        }),
        Filter::Upstream(u) => upstream(u, refuse_attempt(s, abi::HEADERS_STOP_ITERATION), |u| {
            u.request_headers(s, state::shared())
        }),
    }
}

/// # Safety
/// As for `filter`.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    envoy: FilterEnvoyPtr,
    module: Module,
    end_of_stream: bool,
) -> u32 {
    let s = Stream(envoy);
    match filter(module) {
        Filter::Listener(h) => guard(s, h, abi::BODY_STOP_NO_BUFFER, |h| {
            h.request_body(s, state::shared(), end_of_stream)
        }),
        Filter::Upstream(u) => upstream(u, refuse_attempt(s, abi::BODY_STOP_NO_BUFFER), |u| {
            u.request_body(s, end_of_stream)
        }),
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    _envoy: FilterEnvoyPtr,
    _filter: Module,
) -> u32 {
    abi::TRAILERS_CONTINUE
}

/// # Safety
/// As for `filter`.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    envoy: FilterEnvoyPtr,
    module: Module,
    _end_of_stream: bool,
) -> u32 {
    let s = Stream(envoy);
    match filter(module) {
        Filter::Listener(h) => guard(s, h, abi::HEADERS_CONTINUE, |h| {
            h.response_headers(s, state::shared())
        }),
        Filter::Upstream(u) => upstream(
            u,
            || abi::HEADERS_CONTINUE,
            |u| u.response_headers(s, state::shared()),
        ),
    }
}

/// # Safety
/// As for `filter`.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    envoy: FilterEnvoyPtr,
    module: Module,
    end_of_stream: bool,
) -> u32 {
    let s = Stream(envoy);
    match filter(module) {
        Filter::Listener(h) => guard(s, h, abi::BODY_CONTINUE, |h| {
            h.response_body(s, end_of_stream)
        }),
        Filter::Upstream(_) => abi::BODY_CONTINUE,
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _envoy: FilterEnvoyPtr,
    _filter: Module,
) -> u32 {
    abi::TRAILERS_CONTINUE
}

/// # Safety
/// As for `filter`.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    envoy: FilterEnvoyPtr,
    module: Module,
) {
    let s = Stream(envoy);
    match filter(module) {
        Filter::Listener(h) => {
            // The stream is over: a panic here has nobody left to answer.
            h.mark_answered();
            guard(s, h, (), |h| h.complete(s, state::shared()));
        }
        Filter::Upstream(u) => upstream(u, || (), |u| u.done(state::shared())),
    }
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
/// As for `filter`.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    envoy: FilterEnvoyPtr,
    module: Module,
    event_id: u64,
) {
    let s = Stream(envoy);
    if let Filter::Listener(h) = filter(module) {
        guard(s, h, (), |h| h.scheduled(s, event_id));
    }
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
    if let Some(Config::Listener(ids)) = (config as *const Config).as_ref() {
        let _ = catch_unwind(AssertUnwindSafe(|| metrics::flush(config_envoy, ids)));
    }
}

#[cfg(test)]
#[path = "exports_tests.rs"]
mod tests;
