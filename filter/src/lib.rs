//! Tollgate's proxy-wasm filter. Every decision lives in plain Rust modules
//! that compile and test natively; `host` (wasm32 only) is the thin glue that
//! gathers bytes from Envoy, calls them, and applies what they return.

pub mod attempt;
pub mod channel;
pub mod choice;
pub mod config;
pub mod credentials;
pub mod decide;
pub mod health;
pub mod idle;
pub mod ids;
pub mod latency;
pub mod limits;
pub mod meter;
pub mod metrics;
pub mod outbox;
pub mod pipeline;
pub mod poller;
pub mod rename;
pub mod reply;
pub mod request;
pub mod routing;
pub mod snapshot;
pub mod sse;
pub mod translate;
pub mod upstream;
pub mod usage;
pub mod worker;

#[cfg(target_arch = "wasm32")]
mod host;
#[cfg(target_arch = "wasm32")]
mod host_env;
#[cfg(target_arch = "wasm32")]
mod host_metrics;
#[cfg(target_arch = "wasm32")]
mod host_upstream;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod prop_tests;
#[cfg(test)]
mod testkit;
