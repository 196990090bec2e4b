//! Failover clusters, served to Envoy over REST-JSON CDS
//! (`POST /v3/discovery:clusters`, docs/routing.md).
//!
//! For a model with several deployments (of any API: the filter's upstream
//! role translates an attempt to an OpenAI-shaped deployment after an
//! Anthropic one and the reverse), or one whose provider has a key pool of
//! several credentials, cluster *k* holds deployment *k* at priority 0 and
//! the others, ordered by (priority, weight), one per priority level (a pooled deployment one level per
//! usable credential); with the route's `previous_priorities`
//! retries each attempt moves one level on, so a request never tries a
//! deployment twice. A cluster's name is a hash of what it holds: a changed
//! deployment is a new cluster, which the filter starts using only once
//! Envoy has had time to fetch it.
//!
//! The clusters carry addresses and deployment indices, never a credential:
//! the filter adds those from its snapshot.

use serde_json::{json, Value};
use tollgate_contract::snapshot::{Model, Provider, Route, MAX_ATTEMPTS};
use tollgate_contract::url::parse_base_url;

/// One deployment as a cluster endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub model: String,
    pub deployment: u32,
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    pub name: String,
    pub members: Vec<Member>,
}

/// A provider's host, port and whether it takes TLS.
type Address = (String, u16, bool);

/// Where a provider's base URL points, as an endpoint: `None` when it cannot
/// be read (such a provider is left out of the clusters; the snapshot's own
/// check says why).
fn endpoint(base_url: &str) -> Option<Address> {
    let base = parse_base_url(base_url).ok()?;
    let default_port = if base.tls { 443 } else { 80 };
    let authority = base.authority.as_str();
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        (host.to_string(), port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (authority.to_string(), default_port),
        }
    };
    (!host.is_empty() && port != 0).then_some((
        host.trim_end_matches('.').to_string(),
        port,
        base.tls,
    ))
}

/// Fills each model's `routes` and returns the clusters they name. A model
/// gets routes only when it has at least two deployments (or credentials)
/// to try; otherwise its requests keep going through the forward proxy.
pub fn plan(models: &mut [Model], providers: &[Provider]) -> Vec<ClusterSpec> {
    let mut specs = Vec::new();
    for model in models.iter_mut() {
        model.routes.clear();
        let known: Vec<Option<(&Provider, Address)>> = model
            .deployments
            .iter()
            .map(|d| {
                let p = providers.iter().find(|p| p.id == d.provider)?;
                Some((p, endpoint(&p.base_url)?))
            })
            .collect();
        let mut routes = Vec::with_capacity(model.deployments.len());
        let mut any = false;
        for (k, first) in known.iter().enumerate() {
            if first.is_none() {
                routes.push(Route {
                    cluster: String::new(),
                    attempts: Vec::new(),
                });
                continue;
            };
            let mut others: Vec<usize> = (0..known.len())
                .filter(|&j| j != k && known[j].is_some())
                .collect();
            others.sort_by_key(|&j| {
                let d = &model.deployments[j];
                (d.priority, std::cmp::Reverse(d.weight), j)
            });
            // A deployment whose provider has a key pool takes a level per
            // usable credential: its next attempt goes to the same
            // deployment with the next credential (the upstream role
            // chooses which).
            let levels = |j: usize| known[j].as_ref().map_or(1, |(p, _)| credential_levels(p));
            let order: Vec<usize> = std::iter::once(k)
                .chain(others)
                .flat_map(|j| std::iter::repeat_n(j, levels(j)))
                .take((model.max_attempts as usize).clamp(1, MAX_ATTEMPTS))
                .collect();
            if order.len() < 2 {
                routes.push(Route {
                    cluster: String::new(),
                    attempts: Vec::new(),
                });
                continue;
            }
            let members: Vec<Member> = order
                .iter()
                .filter_map(|&j| {
                    let (_, (host, port, tls)) = known[j].as_ref()?;
                    Some(Member {
                        model: model.id.clone(),
                        deployment: u32::try_from(j).ok()?,
                        host: host.clone(),
                        port: *port,
                        tls: *tls,
                    })
                })
                .collect();
            let name = cluster_name(model, &members, providers);
            routes.push(Route {
                cluster: name.clone(),
                attempts: members.iter().map(|m| m.deployment).collect(),
            });
            specs.push(ClusterSpec { name, members });
            any = true;
        }
        if any {
            model.routes = routes;
        }
    }
    specs
}

/// The attempts a deployment on provider `p` may take in a row: one per
/// credential not disabled (one for a provider without a pool).
fn credential_levels(p: &Provider) -> usize {
    p.credentials.iter().filter(|c| !c.disabled).count().max(1)
}

/// `tg_` and 24 hex digits of the SHA-256 of everything the cluster holds
/// and every field of its deployments the filter rewrites with.
fn cluster_name(model: &Model, members: &[Member], providers: &[Provider]) -> String {
    let mut text = format!("{}\n", model.id);
    for m in members {
        let d = &model.deployments[m.deployment as usize];
        let base = providers
            .iter()
            .find(|p| p.id == d.provider)
            .map(|p| (p.kind.as_str(), p.base_url.as_str()))
            .unwrap_or_default();
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            m.deployment, d.provider, base.0, base.1, d.upstream_model
        ));
    }
    let digest = tollgate_contract::sha256::digest(text.as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("tg_{hex}")
}

/// What the Envoy that asks says about itself in its bootstrap's
/// `node.metadata`: which build of the filter it runs and where, and where
/// its CA bundle is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub filter: Filter,
    pub ca_bundle: String,
}

/// The build of the filter an Envoy runs, for its failover clusters'
/// upstream filter: `tollgate_native` (the dynamic module's name) when the
/// node names one, else `tollgate_wasm` (the `.wasm` file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Wasm(String),
    Native(String),
}

impl Node {
    pub fn from_request(request: &Value) -> Result<Node, String> {
        let meta = &request["node"]["metadata"];
        let field = |name: &str| {
            meta[name]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| format!("node.metadata.{name} is missing"))
        };
        let filter = match field("tollgate_native") {
            Ok(module) => Filter::Native(module),
            Err(_) => Filter::Wasm(field("tollgate_wasm")?),
        };
        Ok(Node {
            filter,
            ca_bundle: field("tollgate_ca_bundle")?,
        })
    }
}

pub const CLUSTER_TYPE: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";

/// The CDS answer: every cluster, at the snapshot's version.
pub fn discovery_response(specs: &[ClusterSpec], version: u64, node: &Node) -> Value {
    json!({
        "version_info": version.to_string(),
        "type_url": CLUSTER_TYPE,
        "resources": specs.iter().map(|s| cluster(s, node)).collect::<Vec<_>>(),
    })
}

fn is_ip(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
}

fn cluster(spec: &ClusterSpec, node: &Node) -> Value {
    let endpoints: Vec<Value> = spec
        .members
        .iter()
        .enumerate()
        .map(|(level, m)| {
            let mut metadata = json!({
                // Strings: Envoy hands a property to the filter as its raw
                // bytes only when it is a string. The upstream role reads
                // `target` alone (`<deployment>:<model>`: one host call on
                // every attempt); the other two are for people.
                "tollgate": {
                    "model": m.model,
                    "deployment": m.deployment.to_string(),
                    "target": format!("{}:{}", m.deployment, m.model),
                },
            });
            if m.tls {
                metadata["envoy.transport_socket_match"] = json!({ "tollgate_tls": level.to_string() });
            }
            json!({
                "priority": level,
                "lb_endpoints": [{
                    "endpoint": {
                        "address": { "socket_address": { "address": m.host, "port_value": m.port } },
                        "hostname": m.host,
                    },
                    "metadata": { "filter_metadata": metadata },
                }],
            })
        })
        .collect();
    let tls_matches: Vec<Value> = spec
        .members
        .iter()
        .enumerate()
        .filter(|(_, m)| m.tls)
        .map(|(level, m)| {
            let san_type = if is_ip(&m.host) { "IP_ADDRESS" } else { "DNS" };
            json!({
                "name": format!("tls_{level}"),
                "match": { "tollgate_tls": level.to_string() },
                "transport_socket": {
                    "name": "envoy.transport_sockets.tls",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                        "sni": m.host,
                        "common_tls_context": {
                            "validation_context": {
                                "trusted_ca": { "filename": node.ca_bundle },
                                "match_typed_subject_alt_names": [
                                    { "san_type": san_type, "matcher": { "exact": m.host } }
                                ],
                            },
                        },
                    },
                },
            })
        })
        .collect();
    json!({
        "@type": CLUSTER_TYPE,
        "name": spec.name,
        "type": "STRICT_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": "5s",
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": { "cluster_name": spec.name, "endpoints": endpoints },
        // Health shared by every worker: a deployment that fails three times
        // in a row is left out for 30 s (longer each time it is ejected
        // again) and its share goes to the next level.
        "outlier_detection": {
            "consecutive_5xx": 3,
            "split_external_local_origin_errors": true,
            "consecutive_local_origin_failure": 3,
            "interval": "1s",
            "base_ejection_time": "30s",
            "max_ejection_percent": 100,
        },
        // Envoy's defaults allow 3 retries in flight per cluster: under load
        // a dead deployment's retries would overflow into 503s. Tollgate's
        // own limits admit requests; these only keep memory bounded.
        "circuit_breakers": { "thresholds": [{
            "priority": "DEFAULT",
            "max_retries": 1024,
            "max_connections": 10000,
            "max_pending_requests": 10000,
            "max_requests": 10000,
        }]},
        "transport_socket_matches": tls_matches,
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http_protocol_options": {} },
                // The same filter, on each attempt: it rewrites the request
                // for the deployment this attempt got.
                "http_filters": [
                    upstream_filter(&node.filter),
                    {
                        "name": "envoy.filters.http.upstream_codec",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec",
                        },
                    },
                ],
            },
        },
    })
}

/// The same filter as the listener's, in its upstream role: it rewrites
/// each attempt for the deployment it got.
fn upstream_filter(filter: &Filter) -> Value {
    let config = json!({ "role": "upstream", "control_plane_cluster": "tollgate_control_plane" });
    let string = |value: String| json!({ "@type": "type.googleapis.com/google.protobuf.StringValue", "value": value });
    match filter {
        Filter::Wasm(file) => json!({
            "name": "envoy.filters.http.wasm",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": "tollgate_upstream",
                    "root_id": "tollgate",
                    "vm_config": {
                        "vm_id": "tollgate",
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": { "local": { "filename": file } },
                        "environment_variables": { "host_env_keys": ["TOLLGATE_FILTER_SECRET"] },
                    },
                    "configuration": string(config.to_string()),
                    "failure_policy": "FAIL_CLOSED",
                },
            },
        }),
        // The module's process-wide state is the listener filter's: the
        // same snapshot and the same health and credential marks.
        Filter::Native(module) => json!({
            "name": "envoy.filters.http.dynamic_modules",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
                "dynamic_module_config": { "name": module },
                "filter_name": "tollgate",
                "filter_config": string(json!({ "filter": config }).to_string()),
            },
        }),
    }
}

#[cfg(test)]
#[path = "cds_tests.rs"]
mod tests;
