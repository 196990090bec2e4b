use super::*;

fn request(endpoint: Endpoint, stream: bool, hide_usage: bool) -> Request {
    Request {
        request_id: "req_1".into(),
        key_id: "key_1".into(),
        account_id: "acct_1".into(),
        endpoint,
        model: "m".into(),
        upstream_model: "u".into(),
        provider: "p".into(),
        stream,
        hide_usage,
        prompt_weight: 200,
        input_nanos_per_1m: 150_000_000,
        output_nanos_per_1m: 600_000_000,
        started_ms: 1_000,
    }
}

fn chat_stream(usage: bool) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n");
    for w in ["tok0 ", "tok1 ", "tok2"] {
        s.extend_from_slice(
            format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{w}\"}}}}]}}\n\n").as_bytes(),
        );
    }
    s.extend_from_slice(b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    if usage {
        s.extend_from_slice(USAGE_EVENT);
    }
    s.extend_from_slice(b"data: [DONE]\n\n");
    s
}

const USAGE_EVENT: &[u8] = b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}\n\n";

/// Runs a stream through a meter in the given chunks; what the client got, and the record.
fn run(meter: &mut Meter, chunks: &[&[u8]]) -> (Vec<u8>, UsageRecord) {
    let mut client = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        match meter.on_chunk(c, last, || 1_100 + i as u64) {
            Some(replacement) => client.extend(replacement),
            None => client.extend_from_slice(c),
        }
    }
    (client, meter.finish(2_000, 0))
}

#[test]
fn a_json_answer_is_counted_from_its_usage_and_priced() {
    let mut m = Meter::new(request(Endpoint::ChatCompletions, false, false));
    assert!(!m.on_headers(200, b"application/json"));
    let body = br#"{"choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":2000}}"#;
    let (client, rec) = run(&mut m, &[&body[..10], &body[10..]]);
    assert_eq!(client, body.to_vec());
    assert_eq!(
        (rec.input_tokens, rec.output_tokens, rec.estimated),
        (1000, 2000, false)
    );
    // 1000 * $0.15/1M + 2000 * $0.60/1M = $0.00135
    assert_eq!(rec.cost_nanos, 1_350_000);
    assert_eq!(
        (rec.status, rec.latency_ms, rec.ttft_ms),
        (200, 1_000, None)
    );
}

#[test]
fn the_usage_chunk_the_client_did_not_ask_for_is_cut_out_at_every_split_point() {
    let stream = chat_stream(true);
    let expected_client: Vec<u8> = chat_stream(false);
    for at in 0..=stream.len() {
        let mut m = Meter::new(request(Endpoint::ChatCompletions, true, true));
        assert!(m.on_headers(200, b"text/event-stream; charset=utf-8"));
        let (client, rec) = run(&mut m, &[&stream[..at], &stream[at..]]);
        assert_eq!(client, expected_client, "split at {at}");
        assert_eq!(
            (rec.input_tokens, rec.output_tokens, rec.estimated),
            (7, 3, false),
            "split at {at}"
        );
        assert_eq!(rec.ttft_ms, Some(if at == 0 { 101 } else { 100 }));
    }
}

#[test]
fn a_client_that_asked_for_usage_gets_the_stream_untouched() {
    let stream = chat_stream(true);
    let mut m = Meter::new(request(Endpoint::ChatCompletions, true, false));
    assert!(!m.on_headers(200, b"text/event-stream"));
    let (client, rec) = run(&mut m, &[&stream[..33], &stream[33..]]);
    assert_eq!(client, stream);
    assert_eq!((rec.input_tokens, rec.output_tokens), (7, 3));
}

#[test]
fn a_stream_without_usage_is_estimated_from_what_was_delivered() {
    let stream = chat_stream(false);
    let mut m = Meter::new(request(Endpoint::ChatCompletions, true, true));
    m.on_headers(200, b"text/event-stream");
    let (client, rec) = run(&mut m, &[&stream]);
    assert_eq!(client, stream);
    // 14 characters delivered -> 4 tokens; 40 prompt characters -> 10 tokens.
    assert_eq!(
        (rec.input_tokens, rec.output_tokens, rec.estimated),
        (10, 4, true)
    );
}

#[test]
fn a_stream_cut_mid_way_counts_what_arrived_and_is_marked_estimated() {
    let stream = chat_stream(true);
    let cut = stream.len() / 2;
    let mut m = Meter::new(request(Endpoint::ChatCompletions, true, true));
    m.on_headers(200, b"text/event-stream");
    let _ = m.on_chunk(&stream[..cut], false, || 1_050);
    let rec = m.finish(1_500, 0);
    assert!(rec.estimated);
    assert!(rec.output_tokens > 0, "never a silent zero");
    assert_eq!(rec.latency_ms, 500);
    assert!(rec.cut, "the record says the stream stopped short");
}

#[test]
fn a_stream_closed_cleanly_without_its_last_event_is_cut_and_a_whole_one_is_not() {
    let whole = chat_stream(true);
    let mut m = Meter::new(request(Endpoint::ChatCompletions, true, true));
    m.on_headers(200, b"text/event-stream");
    let (_, rec) = run(&mut m, &[&whole]);
    assert!(!rec.cut);
    // The same stream ended (end of stream seen) before `[DONE]`: the
    // truncated-stream-with-a-clean-200 case.
    let short = &whole[..whole.len() - b"data: [DONE]\n\n".len()];
    let mut m = Meter::new(request(Endpoint::ChatCompletions, true, true));
    m.on_headers(200, b"text/event-stream");
    let (_, rec) = run(&mut m, &[short]);
    assert!(rec.cut);
    assert!(!rec.estimated, "its usage chunk arrived");
}

#[test]
fn a_json_body_begun_and_never_ended_is_cut_an_error_without_body_is_not() {
    let body = br#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#;
    let mut m = Meter::new(request(Endpoint::ChatCompletions, false, false));
    m.on_headers(200, b"application/json");
    let _ = m.on_chunk(&body[..10], false, || 1_050);
    assert!(m.finish(1_500, 0).cut);
    let mut m = Meter::new(request(Endpoint::ChatCompletions, false, false));
    m.on_headers(200, b"application/json");
    let (_, rec) = run(&mut m, &[&body[..]]);
    assert!(!rec.cut);
    let mut m = Meter::new(request(Endpoint::ChatCompletions, false, false));
    assert!(!m.finish(1_200, 502).cut);
}

#[test]
fn an_error_before_any_byte_is_a_zero_record_not_an_estimate() {
    let mut m = Meter::new(request(Endpoint::ChatCompletions, false, false));
    let rec = m.finish(1_200, 502);
    assert_eq!(
        (
            rec.status,
            rec.input_tokens,
            rec.output_tokens,
            rec.estimated
        ),
        (502, 0, 0, false)
    );
}

#[test]
fn an_error_with_a_body_and_no_usage_is_a_zero_record_not_an_estimate() {
    // Envoy's 502 for an upstream reset before its answer, a provider's 500:
    // an error body went to the client, nothing to bill.
    for status in [502, 500, 504, 429] {
        let mut m = Meter::new(request(Endpoint::ChatCompletions, false, false));
        m.on_headers(status, b"application/json");
        let _ = m.on_chunk(br#"{"error":{"message":"upstream reset"}}"#, true, || 1_050);
        let rec = m.finish(1_200, 0);
        assert_eq!(
            (
                rec.status,
                rec.input_tokens,
                rec.output_tokens,
                rec.estimated,
                rec.cost_nanos
            ),
            (status, 0, 0, false, 0)
        );
    }
}

#[test]
fn costs_round_to_the_nearest_nano_dollar_and_never_overflow() {
    assert_eq!(
        cost(
            Tokens {
                input: 1,
                output: 0
            },
            1,
            0
        ),
        0
    );
    assert_eq!(
        cost(
            Tokens {
                input: 1,
                output: 0
            },
            500_000,
            0
        ),
        1
    );
    assert_eq!(
        cost(
            Tokens {
                input: u64::MAX,
                output: u64::MAX
            },
            u64::MAX,
            u64::MAX
        ),
        u64::MAX
    );
}
