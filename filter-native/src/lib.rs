//! Tollgate's native Envoy host: the filter's pipeline
//! (`tollgate_filter::pipeline`, the same one the proxy-wasm build runs) as
//! an Envoy dynamic module, `libtollgate_native.so`, loaded by
//! `envoy.filters.http.dynamic_modules`. `abi` declares the C ABI (pinned
//! to Envoy 1.40.0), `envoy` wraps it, `filter` holds the hooks, `state`
//! the process-wide worker and the control-plane threads.

pub mod abi;
mod deferred;
mod envoy;
mod exports;
mod filter;
pub mod http;
mod idle;
mod metrics;
mod state;
pub mod store;
mod upstream;

#[cfg(test)]
mod tests {
    fn send<T: Send>() {}

    #[test]
    fn the_worker_and_a_request_may_cross_threads() {
        send::<tollgate_filter::pipeline::Worker>();
        send::<tollgate_filter::pipeline::Request>();
    }

    #[test]
    fn outside_envoy_every_callback_is_missing_and_the_refusal_names_them() {
        assert_eq!(
            crate::abi::missing_callbacks(),
            crate::abi::CALLBACKS.to_vec()
        );
    }
}
