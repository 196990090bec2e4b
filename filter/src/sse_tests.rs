use super::*;

fn events(chunks: &[&[u8]]) -> (Vec<Option<Event>>, Vec<u8>) {
    let mut p = Parser::default();
    let mut got = Vec::new();
    let mut bytes = Vec::new();
    for c in chunks {
        for raw in p.push(c) {
            bytes.extend_from_slice(&raw.bytes);
            got.push(raw.event);
        }
    }
    if let Some(raw) = p.finish() {
        bytes.extend_from_slice(&raw.bytes);
        got.push(raw.event);
    }
    (got, bytes)
}

fn ev(event: Option<&str>, data: &str) -> Option<Event> {
    Some(Event {
        event: event.map(String::from),
        data: data.into(),
    })
}

#[test]
fn the_grammar_of_the_standard_is_followed() {
    type Case<'a> = (&'a str, &'a [u8], Vec<Option<Event>>);
    let cases: Vec<Case> = vec![
        (
            "lf",
            b"data: a\n\ndata: b\n\n",
            vec![ev(None, "a"), ev(None, "b")],
        ),
        (
            "crlf",
            b"data: a\r\n\r\ndata: b\r\n\r\n",
            vec![ev(None, "a"), ev(None, "b")],
        ),
        (
            "cr",
            b"data: a\r\rdata: b\r\r",
            vec![ev(None, "a"), ev(None, "b")],
        ),
        (
            "multi-line data",
            b"data: a\ndata: b\n\n",
            vec![ev(None, "a\nb")],
        ),
        (
            "no space after the colon",
            b"data:a\n\n",
            vec![ev(None, "a")],
        ),
        ("two spaces keep one", b"data:  a\n\n", vec![ev(None, " a")]),
        (
            "named event",
            b"event: response.completed\ndata: {}\n\n",
            vec![ev(Some("response.completed"), "{}")],
        ),
        (
            "comment and keep-alive",
            b": ping\n\ndata: x\n\n",
            vec![None, ev(None, "x")],
        ),
        (
            "no final newline",
            b"data: a\n\ndata: last",
            vec![ev(None, "a"), ev(None, "last")],
        ),
        ("one final newline", b"data: last\n", vec![ev(None, "last")]),
        ("field without a colon", b"data\n\n", vec![ev(None, "")]),
        (
            "unknown fields ignored",
            b"id: 1\nretry: 5\ndata: a\n\n",
            vec![ev(None, "a")],
        ),
    ];
    for (name, input, want) in cases {
        let (got, bytes) = events(&[input]);
        assert_eq!(got, want, "{name}");
        assert_eq!(bytes, input, "{name}: the bytes are passed on exactly");
    }
}

/// An OpenAI-like stream with every awkward feature at once.
fn awkward_stream() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(b": keep-alive\r\n\r\n");
    s.extend_from_slice(
        "data: {\"choices\":[{\"delta\":{\"content\":\"h\u{e9}llo \u{1f600}\"}}]}\n\n".as_bytes(),
    );
    s.extend_from_slice(b"data: {\"choices\":[{\"delta\":\r\ndata: {\"content\":\"x\"}}]}\r\n\r\n");
    s.extend_from_slice(b"event: message\rdata: {\"usage\":{\"prompt_tokens\":3}}\r\r");
    s.extend_from_slice(b"data: [DONE]");
    s
}

#[test]
fn every_split_point_gives_the_same_events_and_bytes() {
    let stream = awkward_stream();
    let (whole, whole_bytes) = events(&[&stream]);
    assert_eq!(whole.iter().filter(|e| e.is_some()).count(), 4);
    assert_eq!(whole_bytes, stream);
    for a in 0..=stream.len() {
        let (x, y) = stream.split_at(a);
        assert_eq!(
            events(&[x, y]),
            (whole.clone(), stream.clone()),
            "split at {a}"
        );
    }
    // Two split points, and one byte at a time.
    for a in (0..stream.len()).step_by(3) {
        for b in a..=stream.len() {
            let got = events(&[&stream[..a], &stream[a..b], &stream[b..]]);
            assert_eq!(got, (whole.clone(), stream.clone()), "split at {a} and {b}");
        }
    }
    let singles: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(events(&singles), (whole, stream.clone()));
}

#[test]
fn only_the_unfinished_event_is_held() {
    let mut p = Parser::default();
    assert_eq!(p.push(b"data: a\n\ndata: b").len(), 1);
    assert_eq!(p.pending(), b"data: b".len());
    assert_eq!(p.push(b"\n\n").len(), 1);
    assert_eq!(p.pending(), 0);
    assert!(p.finish().is_none());
}

#[test]
fn an_oversized_event_is_passed_on_but_not_parsed() {
    let mut p = Parser::default();
    let big = vec![b'x'; MAX_EVENT_BYTES + 10];
    let mut bytes = Vec::new();
    for raw in p.push(b"data: ") {
        bytes.extend(raw.bytes);
    }
    for raw in p.push(&big) {
        bytes.extend(raw.bytes);
    }
    let raws = p.push(b"\n\ndata: after\n\n");
    assert_eq!(raws.len(), 2);
    assert_eq!(raws[0].event, None);
    assert_eq!(raws[1].event, ev(None, "after"));
}

#[test]
fn a_crlf_cut_between_its_cr_and_lf_ends_the_event_with_both() {
    let stream = b"data: a\r\n\r\ndata: b\r\n\r\n";
    let (whole_events, _) = events(&[stream]);
    let mut p = Parser::default();
    let mut raws = p.push(&stream[..11]);
    raws.extend(p.push(&stream[11..]));
    raws.extend(p.finish());
    assert_eq!(raws.len(), 2);
    assert_eq!(raws[0].bytes, b"data: a\r\n\r\n".to_vec());
    assert_eq!(raws[1].bytes, b"data: b\r\n\r\n".to_vec());
    let got: Vec<_> = raws.into_iter().map(|r| r.event).collect();
    assert_eq!(got, whole_events);
}
