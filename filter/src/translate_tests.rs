use super::*;

fn anthropic_stream() -> Vec<u8> {
    let events = [
        (
            "message_start",
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"c","usage":{"input_tokens":12,"cache_read_input_tokens":3,"output_tokens":1}}}"#,
        ),
        ("ping", r#"{"type":"ping"}"#),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Héllo, "}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"wörld"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        (
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":7}}"#,
        ),
        ("message_stop", r#"{"type":"message_stop"}"#),
    ];
    let mut out = Vec::new();
    for (name, data) in events {
        out.extend_from_slice(format!("event: {name}\r\ndata: {data}\r\n\r\n").as_bytes());
    }
    out
}

fn run(t: &mut Translator, pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        out.extend(t.push(p, i + 1 == pieces.len()));
    }
    out
}

fn to_openai() -> Translator {
    let mut t = Translator::new(Translation::ToAnthropic, "my-claude", 5).expect("translates");
    t.on_headers(200, b"text/event-stream; charset=utf-8");
    t
}

#[test]
fn a_stream_split_at_any_byte_translates_the_same() {
    let stream = anthropic_stream();
    let whole = run(&mut to_openai(), &[&stream]);
    let text = String::from_utf8(whole.clone()).expect("utf-8");
    assert!(
        text.contains(r#""content":"Héllo, ""#) && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );
    assert!(text.contains(r#""prompt_tokens":15"#) && text.contains(r#""completion_tokens":7"#));
    for at in 1..stream.len() {
        let (a, b) = stream.split_at(at);
        assert_eq!(run(&mut to_openai(), &[a, b]), whole, "split at {at}");
    }
    // And byte by byte.
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(run(&mut to_openai(), &bytes), whole);
}

#[test]
fn a_json_answer_goes_out_whole_when_it_has_ended() {
    let mut t = Translator::new(Translation::FromAnthropic, "claude-x", 5).expect("translates");
    t.on_headers(200, b"application/json");
    let answer = br#"{"id":"chatcmpl-1","choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":4,"completion_tokens":1}}"#;
    let (a, b) = answer.split_at(20);
    assert!(t.push(a, false).is_empty(), "nothing before the end");
    let out: serde_json::Value = serde_json::from_slice(&t.push(b, true)).expect("json");
    assert_eq!(out["type"], "message");
    assert_eq!(out["model"], "claude-x");
    assert_eq!(out["content"][0]["text"], "hi");
    assert_eq!(out["usage"]["input_tokens"], 4);
}

#[test]
fn an_upstream_error_takes_the_clients_shape() {
    let mut t = Translator::new(Translation::ToAnthropic, "m", 0).expect("translates");
    t.on_headers(429, b"application/json");
    let out: serde_json::Value = serde_json::from_slice(&t.push(
        br#"{"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}"#,
        true,
    ))
    .expect("json");
    assert_eq!(out["error"]["message"], "Slow down");
    assert_eq!(out["error"]["type"], "rate_limit_error");
    let mut t = Translator::new(Translation::FromAnthropic, "m", 0).expect("translates");
    // An error answered as an event stream is still an error, not a stream.
    t.on_headers(500, b"text/event-stream");
    let out: serde_json::Value =
        serde_json::from_slice(&t.push(br#"{"error":{"message":"boom"}}"#, true)).expect("json");
    assert_eq!(
        out,
        serde_json::json!({"type":"error","error":{"type":"api_error","message":"boom"}})
    );
}

#[test]
fn an_answer_that_does_not_parse_passes_as_it_came() {
    let mut t = Translator::new(Translation::ToAnthropic, "m", 0).expect("translates");
    t.on_headers(200, b"application/json");
    assert_eq!(t.push(b"not json", true), b"not json".to_vec());
    assert!(Translator::new(Translation::None, "m", 0).is_none());
}

fn openai_stream() -> Vec<u8> {
    let chunks = [
        r#"{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"Grüße, "},"finish_reason":null}]}"#,
        r#"{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]},"finish_reason":null}]}"#,
        r#"{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]},"finish_reason":null}]}"#,
        r#"{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":3}}}"#,
        "[DONE]",
    ];
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(format!("data: {c}\n\n").as_bytes());
    }
    out
}

fn to_anthropic_stream() -> Translator {
    let mut t = Translator::new(Translation::FromAnthropic, "claude-x", 5).expect("translates");
    t.on_headers(200, b"text/event-stream");
    t
}

#[test]
fn an_openai_stream_split_at_any_byte_becomes_the_same_messages_events() {
    let stream = openai_stream();
    let mut whole_t = to_anthropic_stream();
    let whole = run(&mut whole_t, &[&stream]);
    let text = String::from_utf8(whole.clone()).expect("utf-8");
    assert!(text.starts_with("event: message_start\n"), "{text}");
    assert!(
        text.contains(r#""partial_json":"{\"a\":""#)
            && text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
    );
    let usage = whole_t.usage().expect("reported");
    assert_eq!((usage.input, usage.output, usage.cache_read), (6, 4, 3));
    for at in 1..stream.len() {
        let (a, b) = stream.split_at(at);
        assert_eq!(
            run(&mut to_anthropic_stream(), &[a, b]),
            whole,
            "split at {at}"
        );
    }
}
