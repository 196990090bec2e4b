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
fn forget_says_whether_the_watch_ended_the_response_once() {
    let mut w = Watch::default();
    w.arm(1, 500, 0);
    w.arm(2, 500, 0);
    assert!(!w.forget(2), "ended in time");
    assert_eq!(w.expired(600), [1]);
    assert!(w.forget(1), "ended by the watch");
    assert!(!w.forget(1), "said once");
}
