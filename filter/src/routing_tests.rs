use super::*;

#[test]
fn paths_and_methods_classify_as_the_contract_says() {
    let cases: &[(&str, &str, Result<Endpoint, RouteError>)] = &[
        (
            "POST",
            "/v1/chat/completions",
            Ok(Endpoint::ChatCompletions),
        ),
        (
            "POST",
            "/v1/chat/completions?x=1",
            Ok(Endpoint::ChatCompletions),
        ),
        ("POST", "/v1/completions", Ok(Endpoint::Completions)),
        ("POST", "/v1/responses", Ok(Endpoint::Responses)),
        ("POST", "/v1/embeddings", Ok(Endpoint::Embeddings)),
        ("POST", "/v1/images/generations", Ok(Endpoint::Images)),
        ("GET", "/v1/models", Ok(Endpoint::Models)),
        ("GET", "/v1/models/gpt-4o", Ok(Endpoint::Models)),
        ("GET", "/v1/models/catalog?provider=x", Ok(Endpoint::Models)),
        ("GET", "/v1/usage", Ok(Endpoint::Usage)),
        ("GET", "/v1/usage/summary?group_by=day", Ok(Endpoint::Usage)),
        ("GET", "/v1/me", Ok(Endpoint::Account)),
        (
            "GET",
            "/v1/dashboard/billing/subscription",
            Ok(Endpoint::Account),
        ),
        (
            "GET",
            "/v1/dashboard/billing/usage?start_date=2026-12-01",
            Ok(Endpoint::Account),
        ),
        ("POST", "/v1/me", Err(RouteError::MethodNotAllowed)),
        (
            "GET",
            "/v1/dashboard/billing/other",
            Err(RouteError::NotFound),
        ),
        ("GET", "/api/status", Ok(Endpoint::Status)),
        (
            "GET",
            "/v1/chat/completions",
            Err(RouteError::MethodNotAllowed),
        ),
        ("POST", "/v1/models", Err(RouteError::MethodNotAllowed)),
        ("POST", "/internal/usage", Err(RouteError::NotFound)),
        ("GET", "/internal/config", Err(RouteError::NotFound)),
        ("POST", "/v1/chat/completions/", Err(RouteError::NotFound)),
        ("POST", "/V1/chat/completions", Err(RouteError::NotFound)),
        ("GET", "/", Err(RouteError::NotFound)),
    ];
    for (method, path, want) in cases {
        assert_eq!(
            classify(method.as_bytes(), path.as_bytes()),
            *want,
            "{method} {path}"
        );
    }
}

#[test]
fn base_urls_are_taken_apart_or_refused() {
    let ok = parse_base_url("https://api.openai.com/v1/").expect("ok");
    assert_eq!(
        ok,
        BaseUrl {
            tls: true,
            authority: "api.openai.com".into(),
            path: "/v1".into()
        }
    );
    let ok = parse_base_url("http://127.0.0.1:9000").expect("ok");
    assert_eq!(ok.path, "");
    assert_eq!(ok.authority, "127.0.0.1:9000");
    for bad in [
        "ftp://x",
        "http://",
        "http://a b/",
        "http://user@host/v1",
        "http://h/v1?x=1",
        "http://h/%2e",
    ] {
        assert!(parse_base_url(bad).is_err(), "{bad} should be refused");
    }
}

fn dep(provider: &str, weight: u32, priority: u32) -> Deployment {
    Deployment {
        provider: provider.into(),
        upstream_model: format!("{provider}-m"),
        weight,
        priority,
        first_byte_timeout_ms: None,
        idle_timeout_ms: None,
    }
}

#[test]
fn the_lowest_priority_with_a_known_provider_wins() {
    let deps = [dep("a", 1, 1), dep("b", 1, 0), dep("gone", 5, 0)];
    let known = |p: &str| p != "gone";
    for pick in 0..20 {
        assert_eq!(
            choose(&deps, |d| known(&d.provider), pick).map(|d| d.provider.as_str()),
            Some("b")
        );
    }
    assert!(choose(&deps, |_| false, 0).is_none());
    assert!(choose(&[], |_| true, 0).is_none());
}

#[test]
fn weights_share_traffic_within_a_priority() {
    let deps = [dep("a", 3, 0), dep("b", 1, 0)];
    let a = (0..400u64)
        .filter(|&p| choose(&deps, |_| true, p).map(|d| d.provider == "a") == Some(true))
        .count();
    assert_eq!(a, 300);
    let zero = [dep("a", 0, 0), dep("b", 0, 0)];
    assert_eq!(
        choose(&zero, |_| true, 7).map(|d| d.provider.as_str()),
        Some("a")
    );
}
