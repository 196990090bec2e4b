#![allow(clippy::panic)]

use super::*;

#[test]
fn an_upstream_hook_that_panics_gives_what_on_panic_says_and_is_counted() {
    let before = state::PANICS.load(Ordering::Relaxed);
    let mut u = UpstreamHttp::default();
    let got = upstream(&mut u, || abi::HEADERS_STOP_ITERATION, |_| panic!("a bug"));
    assert_eq!(got, abi::HEADERS_STOP_ITERATION);
    assert!(state::PANICS.load(Ordering::Relaxed) > before);
    let got = upstream(
        &mut u,
        || abi::HEADERS_STOP_ITERATION,
        |_| abi::HEADERS_CONTINUE,
    );
    assert_eq!(got, abi::HEADERS_CONTINUE);
}
