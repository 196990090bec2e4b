use super::*;
use crate::snapshot::Compiled;
use crate::testkit::Mem;

fn pooled() -> Compiled {
    let json = serde_json::json!({
        "version": 1, "keys": [], "models": [],
        "providers": [{"id": "p", "kind": "openai", "base_url": "http://127.0.0.1:9001/v1", "api_key": "",
            "credentials": [
                {"id": "k1", "key": "sk-1", "generation": 0},
                {"id": "k2", "key": "sk-2", "generation": 0, "disabled": true},
                {"id": "k3", "key": "sk-3", "generation": 2}
            ]}]
    });
    Compiled::from_json(json.to_string().as_bytes()).expect("compiles")
}

#[test]
fn a_disabled_credential_is_left_out_of_the_pool_and_the_first_left_is_the_credential() {
    let c = pooled();
    let up = &c.upstreams["p"];
    let ids: Vec<_> = up.pool.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, ["k1", "k3"]);
    assert_eq!(
        up.credential,
        Some(("authorization", "Bearer sk-1".to_string()))
    );
    assert!(!up.exhausted);
}

#[test]
fn requests_rotate_and_skip_a_benched_credential_until_its_bench_ends() {
    let c = pooled();
    let up = &c.upstreams["p"];
    let store = Mem::default();
    let pick = |start: usize, now: u64| choose(&store, up, start, &[], now).map(|k| k.id.clone());
    assert_eq!(pick(0, 1000).as_deref(), Some("k1"));
    assert_eq!(pick(1, 1000).as_deref(), Some("k3"));
    bench(&store, "p", &up.pool[0], 5000, 429);
    assert_eq!(pick(0, 1000).as_deref(), Some("k3"));
    assert_eq!(pick(0, 5000).as_deref(), Some("k1"));
    // An earlier bench does not shorten a later one.
    bench(&store, "p", &up.pool[0], 2000, 429);
    assert_eq!(pick(0, 3000).as_deref(), Some("k3"));
}

#[test]
fn a_disabled_credential_is_never_chosen_and_a_tried_one_is_not_chosen_again() {
    let c = pooled();
    let up = &c.upstreams["p"];
    let store = Mem::default();
    disable(&store, "p", &up.pool[1], 401);
    assert_eq!(
        choose(&store, up, 1, &[], 0).map(|k| k.id.as_str()),
        Some("k1")
    );
    assert_eq!(choose(&store, up, 0, &["k1"], 0), None);
    assert!(any_usable(&store, up, 0));
    // A bench does not lift a disable.
    bench(&store, "p", &up.pool[1], 9, 429);
    assert_eq!(
        mark(&store, "p", &up.pool[1]),
        Mark::Disabled { status: 401 }
    );
}

#[test]
fn the_report_names_benched_and_disabled_credentials_with_their_generation() {
    let c = pooled();
    let up = &c.upstreams["p"];
    let store = Mem::default();
    bench(&store, "p", &up.pool[0], 5000, 429);
    disable(&store, "p", &up.pool[1], 403);
    let got = report(c.upstreams.values(), &store, 1000);
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].credential.as_str(), got[0].state, got[0].until_ms),
        ("k1", CredentialState::Benched, 5000)
    );
    assert_eq!(
        (got[1].credential.as_str(), got[1].generation, got[1].status),
        ("k3", 2, 403)
    );
    // A bench that ended is not reported.
    assert_eq!(report(c.upstreams.values(), &store, 5000).len(), 1);
}

#[test]
fn a_pool_whose_credentials_are_all_disabled_is_exhausted() {
    let json = serde_json::json!({
        "version": 1, "keys": [], "models": [],
        "providers": [{"id": "p", "kind": "openai", "base_url": "http://127.0.0.1:9001/v1", "api_key": "",
            "credentials": [{"id": "k1", "key": "sk-1", "generation": 0, "disabled": true}]}]
    });
    let c = Compiled::from_json(json.to_string().as_bytes()).expect("compiles");
    assert!(c.upstreams["p"].exhausted);
    assert_eq!(c.upstreams["p"].credential, None);
}

#[test]
fn each_pool_rotates_on_its_own_counter() {
    // Interleaved requests of two pools: each still walks its own pool in
    // order (one counter for every pool would give each the same credential
    // every time here).
    let starts: Vec<(usize, usize)> = (0..3)
        .map(|_| (next_start("pool-a"), next_start("pool-b")))
        .collect();
    assert_eq!(starts, [(0, 0), (1, 1), (2, 2)]);
    assert_eq!(next_start("pool-c"), 0);
    assert_eq!(next_start("pool-a"), 3);
}
