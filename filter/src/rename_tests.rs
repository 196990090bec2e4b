use super::*;

fn whole(rename: &mut Rename, input: &[u8]) -> Vec<u8> {
    rename.push(input, true)
}

fn split_everywhere(input: &[u8]) -> Vec<Vec<u8>> {
    (0..=input.len())
        .map(|cut| {
            let mut r = Rename::new("demo-chat", "x").unwrap();
            let mut out = r.push(&input[..cut], false);
            out.extend(r.push(&input[cut..], true));
            out
        })
        .collect()
}

#[test]
fn the_models_member_gets_the_public_id_wherever_the_chunks_are_cut() {
    let input = br#"{"id":"c1","model":"mock-demo-chat","choices":[{"message":{"content":"the \"model\":\"x\" text"}}]}"#;
    let want = br#"{"id":"c1","model":"demo-chat","choices":[{"message":{"content":"the \"model\":\"x\" text"}}]}"#;
    for (cut, got) in split_everywhere(input).into_iter().enumerate() {
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(want),
            "cut at {cut}"
        );
    }
}

#[test]
fn every_event_of_a_stream_is_renamed() {
    let stream = b"data: {\"model\":\"gpt-4o-2024-08-06\",\"choices\":[]}\n\ndata: {\"model\" : \"gpt-4o-2024-08-06\"}\n\ndata: [DONE]\n\n";
    let want = b"data: {\"model\":\"demo-chat\",\"choices\":[]}\n\ndata: {\"model\" : \"demo-chat\"}\n\ndata: [DONE]\n\n";
    for got in split_everywhere(stream) {
        assert_eq!(got, want.to_vec());
    }
    // Byte by byte too: nothing lost, nothing doubled.
    let mut r = Rename::new("demo-chat", "x").unwrap();
    let mut out = Vec::new();
    for b in stream.iter() {
        out.extend(r.push(&[*b], false));
    }
    out.extend(r.push(b"", true));
    assert_eq!(out, want.to_vec());
}

#[test]
fn what_is_not_a_models_string_member_passes_as_it_is() {
    for input in [
        &br#"{"model":null}"#[..],
        br#"{"model":["a"]}"#,
        br#"{"models":"a"}"#,
        br#"{"model":"a\"b"}"#,
        br#"{"x":"\"model\":\"y\""}"#,
        br#"{"model""#,
        b"\"model\"                                   : \"far\"",
    ] {
        let mut r = Rename::new("demo-chat", "x").unwrap();
        assert_eq!(
            whole(&mut r, input),
            input.to_vec(),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
    let long = format!("{{\"model\":\"{}\"}}", "m".repeat(MAX_VALUE + 1));
    let mut r = Rename::new("demo-chat", "x").unwrap();
    assert_eq!(whole(&mut r, long.as_bytes()), long.as_bytes().to_vec());
}

#[test]
fn an_unfinished_member_at_the_end_is_sent_as_it_came() {
    let mut r = Rename::new("demo-chat", "x").unwrap();
    assert_eq!(
        r.push(br#"{"a":1,"model":"mock-"#, false),
        br#"{"a":1,"#.to_vec()
    );
    assert_eq!(r.push(b"", true), br#""model":"mock-"#.to_vec());
    let mut r = Rename::new("demo-chat", "x").unwrap();
    assert_eq!(
        r.push(b"{\"mod", false),
        b"{".to_vec(),
        "a start of the key waits"
    );
    assert_eq!(r.push(b"", true), b"\"mod".to_vec());
}

#[test]
fn the_held_tail_is_bounded() {
    let mut r = Rename::new("demo-chat", "x").unwrap();
    let mut sent = 0;
    let input = format!("{{\"model\":\"{}", "m".repeat(10_000));
    for piece in input.as_bytes().chunks(7) {
        sent += r.push(piece, false).len();
        assert!(r.held.len() <= HOLD, "{}", r.held.len());
    }
    assert!(sent >= input.len() - HOLD);
}

#[test]
fn nothing_to_do_when_the_ids_are_the_same_and_public_ids_are_escaped() {
    assert!(Rename::new("gpt-4o", "gpt-4o").is_none());
    let mut r = Rename::new("Qwen/Qwen2.5-VL-72B-Instruct", "q").unwrap();
    assert_eq!(
        whole(&mut r, br#"{"model":"q"}"#),
        br#"{"model":"Qwen/Qwen2.5-VL-72B-Instruct"}"#.to_vec()
    );
    let mut r = Rename::new("a\"b", "q").unwrap();
    assert_eq!(
        whole(&mut r, br#"{"model":"q"}"#),
        br#"{"model":"a\"b"}"#.to_vec()
    );
}
