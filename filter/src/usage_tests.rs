use super::*;

fn data(d: &str) -> Event {
    Event {
        event: None,
        data: d.into(),
    }
}

#[test]
fn a_json_answer_reports_its_usage_in_either_naming() {
    let cases: Vec<(&[u8], Option<Tokens>)> = vec![
        (
            br#"{"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}"#,
            Some(Tokens {
                input: 3,
                output: 5,
            }),
        ),
        (
            br#"{"usage":{"input_tokens":4,"output_tokens":6}}"#,
            Some(Tokens {
                input: 4,
                output: 6,
            }),
        ),
        (
            br#"{"usage":{"prompt_tokens":7,"total_tokens":7}}"#,
            Some(Tokens {
                input: 7,
                output: 0,
            }),
        ),
        (br#"{"data":[]}"#, None),
        (br#"{"usage":null}"#, None),
        (b"not json", None),
    ];
    for (body, want) in cases {
        assert_eq!(from_body(body), want, "{:?}", String::from_utf8_lossy(body));
    }
}

#[test]
fn the_last_reported_usage_counts_never_a_sum() {
    let mut c = StreamCounter::default();
    let chat = Endpoint::ChatCompletions;
    for d in [
        r#"{"choices":[{"delta":{"content":"abcd"}}],"usage":null}"#,
        r#"{"choices":[{"delta":{"content":"efgh"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#,
        "[DONE]",
    ] {
        c.observe(chat, &data(d), false);
    }
    assert_eq!(
        c.reported(),
        Some(Tokens {
            input: 3,
            output: 2
        })
    );
    assert_eq!(c.estimated_output(), 2);
    assert!(c.done);
}

#[test]
fn only_the_usage_only_chunk_is_hidden_and_only_when_asked() {
    let chat = Endpoint::ChatCompletions;
    let usage_only = data(r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#);
    let with_choice = data(
        r#"{"choices":[{"delta":{"content":"x"}}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#,
    );
    let mut c = StreamCounter::default();
    assert_eq!(c.observe(chat, &usage_only, true), Pass::Hide);
    assert_eq!(c.observe(chat, &usage_only, false), Pass::Forward);
    assert_eq!(c.observe(chat, &with_choice, true), Pass::Forward);
    assert_eq!(c.observe(chat, &data("[DONE]"), true), Pass::Forward);
    assert_eq!(c.observe(chat, &data("garbage"), true), Pass::Forward);
}

#[test]
fn responses_streams_count_from_response_completed() {
    let r = Endpoint::Responses;
    let mut c = StreamCounter::default();
    let delta = Event {
        event: Some("response.output_text.delta".into()),
        data: r#"{"type":"response.output_text.delta","delta":"hello world"}"#.into(),
    };
    c.observe(r, &delta, true);
    assert_eq!(c.reported(), None);
    assert_eq!(c.estimated_output(), 3);
    let done = Event {
        event: Some("response.completed".into()),
        data: r#"{"type":"response.completed","response":{"usage":{"input_tokens":9,"output_tokens":2,"total_tokens":11}}}"#.into(),
    };
    assert_eq!(c.observe(r, &done, true), Pass::Forward);
    assert_eq!(
        c.reported(),
        Some(Tokens {
            input: 9,
            output: 2
        })
    );
}

#[test]
fn completions_streams_count_the_text_field() {
    let mut c = StreamCounter::default();
    c.observe(
        Endpoint::Completions,
        &data(r#"{"choices":[{"text":"12345678"}]}"#),
        false,
    );
    assert_eq!(c.estimated_output(), 2);
}

#[test]
fn the_text_of_a_json_answer_is_measured_for_the_estimate() {
    let cases: &[(&str, u64)] = &[
        (
            r#"{"choices":[{"message":{"role":"assistant","content":"tok0 tok1"}}]}"#,
            45,
        ),
        (
            r#"{"choices":[{"message":{"content":null,"tool_calls":[]}}]}"#,
            0,
        ),
        (r#"{"choices":[{"text":"abc"},{"text":"de"}]}"#, 25),
        (
            r#"{"output":[{"type":"message","content":[{"type":"output_text","text":"héllo"}]}]}"#,
            26,
        ),
        (r#"{"data":[{"embedding":[0.1]}]}"#, 0),
        ("not json", 0),
    ];
    for (body, want) in cases {
        assert_eq!(output_weight(body.as_bytes()), *want, "{body}");
    }
}

#[test]
fn the_cached_part_of_the_input_is_kept_from_either_api() {
    let openai = br#"{"usage":{"prompt_tokens":100,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":60}}}"#;
    assert_eq!(
        usage_of_body(openai),
        Some((
            Tokens {
                input: 100,
                output: 5
            },
            Cache {
                read: 60,
                creation: 0
            }
        ))
    );
    let anthropic = br#"{"usage":{"input_tokens":10,"output_tokens":5,"cache_read_input_tokens":60,"cache_creation_input_tokens":30}}"#;
    assert_eq!(
        usage_of_body(anthropic),
        Some((
            Tokens {
                input: 100,
                output: 5
            },
            Cache {
                read: 60,
                creation: 30
            }
        ))
    );
    let mut counter = StreamCounter::default();
    let start = Event {
        event: Some("message_start".into()),
        data: r#"{"type":"message_start","message":{"usage":{"input_tokens":4,"cache_read_input_tokens":6,"output_tokens":1}}}"#.into(),
    };
    let delta = Event {
        event: Some("message_delta".into()),
        data: r#"{"type":"message_delta","usage":{"output_tokens":9}}"#.into(),
    };
    counter.observe(Endpoint::Messages, &start, false);
    counter.observe(Endpoint::Messages, &delta, false);
    assert_eq!(
        counter.reported(),
        Some(Tokens {
            input: 10,
            output: 9
        })
    );
    assert_eq!(counter.cache().read, 6);
}
