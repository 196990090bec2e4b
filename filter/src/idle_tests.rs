use super::*;

#[test]
fn a_response_silent_past_its_timeout_expires_once() {
    let mut w = Watch::default();
    w.arm(7, 1000, 10_000);
    assert!(w.expired(10_999).is_empty());
    assert_eq!(w.expired(11_000), [7]);
    // Ended once: not again.
    assert!(w.expired(20_000).is_empty());
    assert!(w.is_empty());
}

#[test]
fn each_piece_of_the_body_starts_the_wait_again() {
    let mut w = Watch::default();
    w.arm(1, 1000, 0);
    for now in [900, 1800, 2700] {
        w.touch(1, now);
        assert!(w.expired(now + 999).is_empty(), "{now}");
    }
    assert_eq!(w.expired(3700), [1]);
}

#[test]
fn a_response_that_ended_is_not_watched_and_others_keep_their_own_timeouts() {
    let mut w = Watch::default();
    w.arm(1, 500, 0);
    w.arm(2, 2000, 0);
    w.arm(3, 500, 0);
    w.forget(3);
    assert_eq!(w.len(), 2);
    assert_eq!(w.expired(600), [1]);
    assert_eq!(w.expired(2000), [2]);
    // A touch of a response not watched does nothing.
    w.touch(9, 0);
    assert!(w.is_empty());
}

#[test]
fn the_pipeline_arms_a_response_that_goes_on_and_forgets_it_once() {
    let mut a = Armed::default();
    let mut w = Watch::default();
    // A reply instead of the response, or a deployment without a timeout:
    // nothing is watched.
    assert_eq!(a.on_response_headers(false, Some(500)), Step::Nothing);
    assert_eq!(a.on_response_headers(true, None), Step::Nothing);
    assert_eq!(a.on_response_body(false), Step::Nothing);
    assert_eq!(a.on_end(), Step::Nothing);
    let arm = a.on_response_headers(true, Some(500));
    assert_eq!(arm, Step::Arm(500));
    w.apply(4, arm, 0);
    w.apply(4, a.on_response_body(false), 400);
    assert!(
        w.expired(899).is_empty(),
        "the piece at 400 moved the deadline"
    );
    w.apply(4, a.on_response_body(true), 900);
    assert!(w.is_empty(), "the last piece ends the watch");
    assert!(!a.watched());
    assert_eq!(a.on_end(), Step::Nothing, "forgotten once");
}

#[test]
fn a_stream_that_ends_early_is_forgotten() {
    let mut a = Armed::default();
    let mut w = Watch::default();
    w.apply(2, a.on_response_headers(true, Some(100)), 0);
    w.apply(2, a.on_end(), 50);
    assert!(w.is_empty());
    assert!(w.expired(1000).is_empty());
}

#[test]
fn forget_says_whether_the_watch_ended_the_response_once() {
    let mut w = Watch::default();
    w.arm(1, 500, 0);
    w.arm(2, 500, 0);
    assert!(!w.forget(2), "ended in time");
    assert_eq!(w.expired(600), [1]);
    assert!(w.forget(1), "ended by the watch");
    assert!(!w.forget(1), "said once");
}
