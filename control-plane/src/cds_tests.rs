use super::*;
use tollgate_contract::snapshot::Deployment;

fn provider(id: &str, kind: &str, base_url: &str) -> Provider {
    Provider {
        id: id.into(),
        kind: kind.into(),
        base_url: base_url.into(),
        api_key: "sk-secret".into(),
        credentials: Vec::new(),
    }
}

fn deployment(provider: &str, weight: u32, priority: u32) -> Deployment {
    Deployment {
        provider: provider.into(),
        upstream_model: format!("{provider}-model"),
        weight,
        priority,
        first_byte_timeout_ms: None,
        idle_timeout_ms: None,
    }
}

fn model(deployments: Vec<Deployment>) -> Model {
    Model {
        id: "m".into(),
        deployments,
        input_nanos_per_1m: 0,
        output_nanos_per_1m: 0,
        max_attempts: 3,
        strategy: Default::default(),
        routes: Vec::new(),
    }
}

fn providers() -> Vec<Provider> {
    vec![
        provider("a", "openai", "http://127.0.0.1:9001/v1"),
        provider("b", "azure_openai", "https://b.example.com/openai"),
        provider("c", "openai", "http://[::1]:9003/v1"),
        provider("x", "anthropic", "https://api.anthropic.com/v1"),
    ]
}

#[test]
fn each_first_choice_gets_a_cluster_of_every_api_in_priority_order() {
    let mut models = vec![model(vec![
        deployment("a", 1, 0),
        deployment("x", 5, 0),
        deployment("b", 1, 1),
        deployment("c", 9, 1),
    ])];
    let specs = plan(&mut models, &providers());
    let routes = &models[0].routes;
    assert_eq!(routes.len(), 4);
    // a first, then the rest by (priority, heavier first), the Anthropic
    // deployment among them (the upstream role translates).
    assert_eq!(routes[0].attempts, vec![0, 1, 3]);
    assert_eq!(routes[1].attempts, vec![1, 0, 3]);
    assert_eq!(routes[2].attempts, vec![2, 1, 0]);
    assert_eq!(routes[3].attempts, vec![3, 1, 0]);
    assert_eq!(specs.len(), 4);
    let first = &specs[0];
    assert_eq!(first.name, routes[0].cluster);
    assert_eq!(
        first
            .members
            .iter()
            .map(|m| (m.host.as_str(), m.port, m.tls))
            .collect::<Vec<_>>(),
        vec![
            ("127.0.0.1", 9001, false),
            ("api.anthropic.com", 443, true),
            ("::1", 9003, false)
        ]
    );
}

#[test]
fn a_model_with_one_deployment_per_api_fails_over_across_them() {
    let mut models = vec![model(vec![deployment("a", 1, 0), deployment("x", 1, 1)])];
    assert_eq!(plan(&mut models, &providers()).len(), 2);
    assert_eq!(models[0].routes[0].attempts, vec![0, 1]);
    assert_eq!(models[0].routes[1].attempts, vec![1, 0]);
}

#[test]
fn a_model_with_one_deployment_keeps_the_forward_proxy() {
    let mut models = vec![model(vec![deployment("x", 1, 0)])];
    assert!(plan(&mut models, &providers()).is_empty());
    assert!(models[0].routes.is_empty());
}

#[test]
fn unknown_providers_are_left_out_and_attempts_are_bounded() {
    let mut ps = providers();
    for i in 0..5 {
        ps.push(provider(
            &format!("p{i}"),
            "openai",
            "http://127.0.0.1:9100/v1",
        ));
    }
    let mut ds: Vec<Deployment> = (0..5).map(|i| deployment(&format!("p{i}"), 1, i)).collect();
    ds.push(deployment("gone", 1, 0));
    let mut models = vec![model(ds)];
    plan(&mut models, &ps);
    let routes = &models[0].routes;
    assert_eq!(routes.len(), 6);
    assert_eq!(routes[0].attempts, vec![0, 1, 2]);
    assert_eq!(routes[4].attempts.len(), 3, "the default: 3 attempts");
    assert_eq!(routes[5].cluster, "");
}

#[test]
fn a_changed_deployment_is_a_new_cluster_name_and_the_same_content_the_same_name() {
    let ds = vec![deployment("a", 1, 0), deployment("c", 1, 0)];
    let mut one = vec![model(ds.clone())];
    let mut two = vec![model(ds.clone())];
    plan(&mut one, &providers());
    plan(&mut two, &providers());
    assert_eq!(one[0].routes, two[0].routes);
    let mut moved = providers();
    moved[2].base_url = "http://[::1]:9004/v1".into();
    let mut three = vec![model(ds)];
    plan(&mut three, &moved);
    assert_ne!(one[0].routes[0].cluster, three[0].routes[0].cluster);
    assert!(one[0].routes[0].cluster.starts_with("tg_"));
    assert_eq!(one[0].routes[0].cluster.len(), 27);
}

#[test]
fn the_discovery_response_has_no_credential_and_tls_endpoints_name_their_sni() {
    let mut models = vec![model(vec![deployment("a", 1, 0), deployment("b", 1, 0)])];
    let specs = plan(&mut models, &providers());
    let node = Node {
        filter: Filter::Wasm("/x/filter.wasm".into()),
        ca_bundle: "/x/ca.pem".into(),
    };
    let r = discovery_response(&specs, 7, &node);
    let text = r.to_string();
    assert!(!text.contains("sk-secret"));
    assert_eq!(r["version_info"], "7");
    let c = &r["resources"][0];
    assert_eq!(c["@type"], CLUSTER_TYPE);
    let eps = c["load_assignment"]["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 2);
    assert_eq!(eps[1]["priority"], 1);
    assert_eq!(
        eps[0]["lb_endpoints"][0]["metadata"]["filter_metadata"]["tollgate"]["deployment"],
        "0"
    );
    // What the upstream role reads, in one property.
    assert_eq!(
        eps[1]["lb_endpoints"][0]["metadata"]["filter_metadata"]["tollgate"]["target"],
        "1:m"
    );
    let tls = c["transport_socket_matches"].as_array().unwrap();
    assert_eq!(tls.len(), 1);
    assert_eq!(
        tls[0]["transport_socket"]["typed_config"]["sni"],
        "b.example.com"
    );
    assert_eq!(
        eps[1]["lb_endpoints"][0]["metadata"]["filter_metadata"]["envoy.transport_socket_match"]
            ["tollgate_tls"],
        "1"
    );
    let filters = &c["typed_extension_protocol_options"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"];
    assert_eq!(
        filters[0]["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"],
        "/x/filter.wasm"
    );
}

#[test]
fn the_node_must_say_where_its_filter_is() {
    let ok = json!({"node": {"id": "n", "metadata": {"tollgate_wasm": "/w", "tollgate_ca_bundle": "/c"}}});
    assert_eq!(
        Node::from_request(&ok).unwrap().filter,
        Filter::Wasm("/w".into())
    );
    let missing = json!({"node": {"id": "n"}});
    assert!(Node::from_request(&missing)
        .unwrap_err()
        .contains("tollgate_wasm"));
}

#[test]
fn a_native_node_gets_the_dynamic_module_as_its_clusters_upstream_filter() {
    let native = json!({"node": {"id": "n", "metadata": {
        "tollgate_wasm": "/w", "tollgate_native": "tollgate_native", "tollgate_ca_bundle": "/c"}}});
    let node = Node::from_request(&native).unwrap();
    assert_eq!(node.filter, Filter::Native("tollgate_native".into()));
    let mut models = vec![model(vec![deployment("a", 1, 0), deployment("b", 1, 0)])];
    let r = discovery_response(&plan(&mut models, &providers()), 1, &node);
    let filters = &r["resources"][0]["typed_extension_protocol_options"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"];
    let f = &filters[0];
    assert_eq!(f["name"], "envoy.filters.http.dynamic_modules");
    assert_eq!(
        f["typed_config"]["dynamic_module_config"]["name"],
        "tollgate_native"
    );
    let config: Value = serde_json::from_str(
        f["typed_config"]["filter_config"]["value"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(config["filter"]["role"], "upstream");
    assert!(
        !r.to_string().contains("/w"),
        "no wasm file in a native node's clusters"
    );
    assert_eq!(filters[1]["name"], "envoy.filters.http.upstream_codec");
}

#[test]
fn a_model_tries_at_most_its_max_attempts_and_one_means_no_failover() {
    let many: Vec<Provider> = (0..7)
        .map(|i| {
            provider(
                &format!("p{i}"),
                "openai",
                &format!("http://127.0.0.1:{}/v1", 9100 + i),
            )
        })
        .collect();
    let deployments: Vec<Deployment> = (0..7).map(|i| deployment(&format!("p{i}"), 1, i)).collect();
    let tried = |max_attempts: u32| {
        let mut models = vec![Model {
            max_attempts,
            ..model(deployments.clone())
        }];
        let specs = plan(&mut models, &many);
        let sizes: Vec<usize> = models[0].routes.iter().map(|r| r.attempts.len()).collect();
        (sizes, specs.len())
    };
    assert_eq!(tried(3), (vec![3; 7], 7));
    assert_eq!(tried(2), (vec![2; 7], 7));
    // Never more than the gateway's own bound, whatever the model says.
    assert_eq!(tried(5), (vec![MAX_ATTEMPTS; 7], 7));
    assert_eq!(tried(50), (vec![MAX_ATTEMPTS; 7], 7));
    // One attempt: no cluster, the forward proxy as for a single deployment.
    assert_eq!(tried(1), (vec![], 0));
}

#[test]
fn a_key_pool_gives_its_deployment_one_level_per_usable_credential() {
    let credential = |id: &str, disabled: bool| tollgate_contract::snapshot::Credential {
        id: id.into(),
        key: format!("sk-{id}"),
        generation: 0,
        disabled,
    };
    let mut pooled = provider("p", "openai", "http://127.0.0.1:9005/v1");
    pooled.credentials = vec![
        credential("k1", false),
        credential("k2", true),
        credential("k3", false),
    ];
    let mut all = providers();
    all.push(pooled);
    // One deployment, two usable credentials: a cluster of two levels.
    let mut models = vec![model(vec![deployment("p", 1, 0)])];
    let specs = plan(&mut models, &all);
    assert_eq!(models[0].routes[0].attempts, vec![0, 0]);
    assert_eq!(specs.len(), 1);
    assert_eq!(specs[0].members.len(), 2);
    // Then the next deployment, within max_attempts.
    let mut models = vec![model(vec![deployment("p", 1, 0), deployment("a", 1, 1)])];
    plan(&mut models, &all);
    assert_eq!(models[0].routes[0].attempts, vec![0, 0, 1]);
    assert_eq!(models[0].routes[1].attempts, vec![1, 0, 0]);
    models[0].max_attempts = 2;
    plan(&mut models, &all);
    assert_eq!(models[0].routes[0].attempts, vec![0, 0]);
    // A pool of one (or with one left) alone: the forward proxy.
    all.last_mut().expect("pooled").credentials[2].disabled = true;
    let mut models = vec![model(vec![deployment("p", 1, 0)])];
    assert!(plan(&mut models, &all).is_empty());
}
