//! The gateway's own request headers (`x-tollgate-*`). A client may send
//! none of them: the filter removes every header with the prefix before it
//! reads any, then sets the ones below itself.

/// The namespace of the gateway's headers.
pub const OWN_PREFIX: &str = "x-tollgate-";
/// The Envoy cluster a request to a provider goes to (the route reads it).
pub const CLUSTER: &str = "x-tollgate-cluster";
/// The filter secret, on the filter channel and on requests the filter
/// passes to the control plane with the caller's identity.
pub const FILTER_SECRET: &str = "x-tollgate-filter-secret";
/// The caller's key id, on requests the filter passes to the control plane.
pub const KEY_ID: &str = "x-tollgate-key-id";
/// The caller's account id, likewise.
pub const ACCOUNT_ID: &str = "x-tollgate-account-id";
/// On an answer the gateway made itself from an estimate (a token count for
/// a provider that cannot count): `true`.
pub const ESTIMATED: &str = "x-tollgate-estimated";
