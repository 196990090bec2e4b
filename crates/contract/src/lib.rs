//! The contract between the Tollgate filter (inside Envoy) and the control
//! plane: one definition of every type that crosses between them, with serde on
//! both sides. No I/O, no host calls, no clocks: both halves and their tests use
//! it as plain Rust.

pub mod error;
pub mod headers;
pub mod health;
pub mod key;
pub mod lease;
pub mod sha256;
pub mod snapshot;
pub mod url;
pub mod usage;

pub use error::ErrorCode;
pub use snapshot::Snapshot;
