//! The lease protocol of shared per-minute limits (`POST /internal/leases`,
//! docs/shared-limits.md): the filter asks for tokens of the buckets that
//! run low on it, the control plane grants what its shared bucket holds.

use serde::{Deserialize, Serialize};

/// Where the filter asks for leases.
pub const PATH: &str = "/internal/leases";

/// More tokens wanted for a bucket: its name as the control plane knows it
/// (`k:<id>:rpm`), its limit per minute, and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Want {
    pub bucket: String,
    pub limit: u64,
    pub want: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    pub leases: Vec<Want>,
}

/// Tokens taken out of a shared bucket for one Envoy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub bucket: String,
    pub granted: u64,
}

/// The answer; unknown fields are ignored so that a newer control plane
/// can add some.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    pub grants: Vec<Grant>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_request_has_the_wire_shape_the_control_plane_reads() {
        let req = LeaseRequest {
            leases: vec![Want {
                bucket: "k:key1:rpm".into(),
                limit: 60,
                want: 15,
            }],
        };
        assert_eq!(
            serde_json::to_string(&req).expect("json"),
            r#"{"leases":[{"bucket":"k:key1:rpm","limit":60,"want":15}]}"#
        );
        let back: LeaseRequest =
            serde_json::from_str(r#"{"leases":[{"bucket":"a:x:tpm","limit":1,"want":1}]}"#)
                .expect("parse");
        assert_eq!(back.leases[0].bucket, "a:x:tpm");
        assert!(serde_json::from_str::<LeaseRequest>(
            r#"{"leases":[{"bucket":"b","limit":1,"want":1,"extra":0}]}"#
        )
        .is_err());
    }

    #[test]
    fn grants_parse_and_tolerate_new_fields() {
        let g: Grants = serde_json::from_str(
            r#"{"grants":[{"bucket":"k:key1:rpm","granted":15,"note":"x"}],"backend":"redis"}"#,
        )
        .expect("parse");
        assert_eq!(
            g.grants,
            vec![Grant {
                bucket: "k:key1:rpm".into(),
                granted: 15
            }]
        );
        assert!(serde_json::from_str::<Grants>(r#"{"grants":[{"bucket":"b"}]}"#).is_err());
    }
}
