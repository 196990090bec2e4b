use super::*;

fn refused(raw: &[u8]) -> Reply {
    match Body::parse(raw) {
        Ok(_) => panic!(
            "accepted: {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(80)])
        ),
        Err(r) => r,
    }
}

fn param_of(reply: &Reply) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&reply.body).expect("json");
    v["error"]["param"].clone()
}

#[test]
fn model_and_stream_are_read_from_the_top_level() {
    let b =
        Body::parse(br#"{"model":"m","stream":true,"messages":[{"model":"nested"}]}"#).expect("ok");
    assert_eq!((b.model.as_str(), b.stream), ("m", true));
    let b = Body::parse(b" {\"model\":\"m\\u0041\"} ").expect("ok");
    assert_eq!(b.model, "mA");
    let b = Body::parse(br#"{"model":"m","stream":null}"#).expect("ok");
    assert!(!b.stream);
}

#[test]
fn bad_bodies_are_refused_with_400_and_the_param_named() {
    let cases: Vec<(Vec<u8>, serde_json::Value)> = vec![
        (b"".to_vec(), serde_json::Value::Null),
        (b"   ".to_vec(), serde_json::Value::Null),
        (b"{".to_vec(), serde_json::Value::Null),
        (b"not json".to_vec(), serde_json::Value::Null),
        (b"[1,2]".to_vec(), serde_json::Value::Null),
        (b"\"model\"".to_vec(), serde_json::Value::Null),
        (
            b"\xef\xbb\xbf{\"model\":\"m\"}".to_vec(),
            serde_json::Value::Null,
        ),
        (b"{\"model\":\"m\xff\"}".to_vec(), serde_json::Value::Null),
        (br#"{"messages":[]}"#.to_vec(), "model".into()),
        (br#"{"model":5}"#.to_vec(), "model".into()),
        (br#"{"model":null}"#.to_vec(), "model".into()),
        (br#"{"model":""}"#.to_vec(), "model".into()),
        (
            br#"{"model":"m","stream":"true"}"#.to_vec(),
            "stream".into(),
        ),
        (br#"{"model":"m","stream":1}"#.to_vec(), "stream".into()),
        (
            br#"{"model":"allowed","model":"denied"}"#.to_vec(),
            "model".into(),
        ),
        (
            br#"{"model":"m","stream":false,"stream":true}"#.to_vec(),
            "stream".into(),
        ),
        (
            br#"{"model":"m"} trailing"#.to_vec(),
            serde_json::Value::Null,
        ),
    ];
    for (raw, want_param) in cases {
        let r = refused(&raw);
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(&raw));
        assert_eq!(
            param_of(&r),
            want_param,
            "{:?}",
            String::from_utf8_lossy(&raw)
        );
    }
}

#[test]
fn the_rewrite_replaces_only_the_model_and_keeps_everything_else_verbatim() {
    let raw = br#"{ "messages": [{"role":"user","content":"hi \u00e9"}], "model" : "public", "temperature": 0.70 }"#;
    let b = Body::parse(raw).expect("ok");
    let out = b.rewrite("upstream/\"x\"", false);
    assert_eq!(
        std::str::from_utf8(&out).expect("utf8"),
        r#"{"messages":[{"role":"user","content":"hi \u00e9"}],"model":"upstream/\"x\"","temperature":0.70}"#
    );
    let v: serde_json::Value = serde_json::from_slice(&out).expect("valid json");
    assert_eq!(v["model"], "upstream/\"x\"");
}

#[test]
fn values_policy_does_not_read_pass_through_verbatim() {
    // Only the top level is taken apart: a number out of f64 range deep in
    // the body is the upstream's to judge, and it gets exactly these bytes.
    let raw = br#"{"model":"m","x":[1e400,"\ud800"]}"#;
    let b = Body::parse(raw).expect("ok");
    assert_eq!(b.rewrite("m", false), raw.to_vec());
}

#[test]
fn nesting_is_bounded_with_a_clear_400() {
    let nested = |depth: usize| {
        // The top-level object is depth 1; `x` holds depth - 1 arrays.
        format!(
            "{{\"model\":\"m\",\"x\":{}{}}}",
            "[".repeat(depth - 1),
            "]".repeat(depth - 1)
        )
    };
    assert!(Body::parse(nested(MAX_DEPTH).as_bytes()).is_ok());
    for depth in [MAX_DEPTH + 1, 10_000, 1_000_000] {
        let r = refused(nested(depth).as_bytes());
        assert_eq!(r.status, 400);
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert!(text.contains("more than 128 deep"), "{text}");
    }
    // Brackets inside strings are text, not nesting.
    let quoted = format!(
        "{{\"model\":\"m\",\"x\":\"{}\\\"{}\"}}",
        "[".repeat(500),
        "{".repeat(500)
    );
    assert!(Body::parse(quoted.as_bytes()).is_ok());
    assert_eq!(max_depth(br#"{"a":"\\","b":[{"c":"]]]"}]}"#), 3);
}

fn many_keys(n: usize) -> Vec<u8> {
    let mut raw = b"{\"model\":\"m\"".to_vec();
    for i in 1..n {
        raw.extend_from_slice(format!(",\"k{i}\":{i}").as_bytes());
    }
    raw.push(b'}');
    raw
}

#[test]
fn the_number_of_top_level_keys_is_bounded_with_a_clear_400() {
    assert!(Body::parse(&many_keys(MAX_TOP_LEVEL_KEYS)).is_ok());
    for n in [MAX_TOP_LEVEL_KEYS + 1, 320_000] {
        let r = refused(&many_keys(n));
        assert_eq!(r.status, 400);
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert!(text.contains("more than 256 top-level keys"), "{text}");
    }
}

thread_local! {
    static OPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A key that counts every hash and comparison made of it.
#[derive(Clone, Copy)]
struct Counted(u32);

impl PartialEq for Counted {
    fn eq(&self, other: &Counted) -> bool {
        OPS.with(|o| o.set(o.get() + 1));
        self.0 == other.0
    }
}
impl Eq for Counted {}
impl std::hash::Hash for Counted {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        OPS.with(|o| o.set(o.get() + 1));
        self.0.hash(h);
    }
}

#[test]
fn the_duplicate_check_does_linear_work() {
    // The old check compared each key with every earlier one: n^2/2
    // comparisons, 1.02 s at 32k keys. Counted, not timed.
    for n in [1_000u32, 10_000, 100_000] {
        OPS.with(|o| o.set(0));
        assert!(first_duplicate((0..n).map(Counted)).is_none());
        let ops = OPS.with(|o| o.get());
        assert!(ops <= 2 * u64::from(n), "{n} keys took {ops} operations");
        OPS.with(|o| o.set(0));
        let dup = first_duplicate((0..n).chain([n / 2]).map(Counted)).map(|k| k.0);
        assert_eq!(dup, Some(n / 2));
        assert!(OPS.with(|o| o.get()) <= 2 * u64::from(n) + 2);
    }
}

#[test]
fn a_huge_flat_array_parses_in_bounded_time() {
    let mut raw = b"{\"model\":\"m\",\"input\":[".to_vec();
    for i in 0..1_000_000 {
        if i > 0 {
            raw.push(b',');
        }
        raw.push(b'1');
    }
    raw.extend_from_slice(b"]}");
    let b = Body::parse(&raw).expect("ok");
    assert_eq!(b.rewrite("u", false).len(), raw.len());
}

#[test]
fn a_stream_is_asked_for_its_usage_keeping_the_clients_other_stream_options() {
    let cases: &[(&[u8], bool, &str)] = &[
        (
            br#"{"model":"m","stream":true}"#,
            false,
            r#"{"model":"u","stream":true,"stream_options":{"include_usage":true}}"#,
        ),
        (
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":false,"x":1}}"#,
            false,
            r#"{"model":"u","stream":true,"stream_options":{"include_usage":true,"x":1}}"#,
        ),
        (
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#,
            true,
            r#"{"model":"u","stream":true,"stream_options":{"include_usage":true}}"#,
        ),
        (
            br#"{"model":"m","stream":true,"stream_options":null}"#,
            false,
            r#"{"model":"u","stream":true,"stream_options":{"include_usage":true}}"#,
        ),
    ];
    for (raw, client_asked, want) in cases {
        let b = Body::parse(raw).expect("ok");
        assert_eq!(b.include_usage, *client_asked);
        assert_eq!(
            std::str::from_utf8(&b.rewrite("u", true)).expect("utf8"),
            *want
        );
    }
    let r = refused(br#"{"model":"m","stream":true,"stream_options":"yes"}"#);
    assert_eq!(param_of(&r), "stream_options");
}

#[test]
fn prompt_size_weighs_the_characters_of_the_text_fields() {
    let b = Body::parse(br#"{"model":"m","messages":[{"role":"user","content":"hello \"you\""}]}"#)
        .expect("ok");
    // "role" + "user" + "content" + `hello "you"`
    assert_eq!(b.prompt_weight, 5 * (4 + 4 + 7 + 11));
    let b = Body::parse(br#"{"model":"m","input":["ab","cd"],"other":"ignored"}"#).expect("ok");
    assert_eq!(b.prompt_weight, 5 * 4);
    // Other scripts weigh more a character: é 6, 你 16 (twentieths of a token).
    let b = Body::parse("{\"model\":\"m\",\"prompt\":\"é你\"}".as_bytes()).expect("ok");
    assert_eq!(b.prompt_weight, 6 + 16);
}

#[test]
fn the_output_cap_is_read_under_any_of_its_names() {
    let cases: &[(&str, Option<u64>)] = &[
        (r#"{"model":"m","max_tokens":100}"#, Some(100)),
        (r#"{"model":"m","max_completion_tokens":7}"#, Some(7)),
        (r#"{"model":"m","max_output_tokens":0}"#, Some(0)),
        (r#"{"model":"m","max_tokens":null}"#, None),
        (r#"{"model":"m"}"#, None),
    ];
    for (raw, want) in cases {
        assert_eq!(
            Body::parse(raw.as_bytes()).expect("valid").max_output,
            *want,
            "{raw}"
        );
    }
    for (raw, param) in [
        (r#"{"model":"m","max_tokens":-1}"#, "max_tokens"),
        (r#"{"model":"m","max_tokens":"5"}"#, "max_tokens"),
        (
            r#"{"model":"m","max_completion_tokens":1.5}"#,
            "max_completion_tokens",
        ),
    ] {
        assert_eq!(param_of(&refused(raw.as_bytes())), param, "{raw}");
    }
}
