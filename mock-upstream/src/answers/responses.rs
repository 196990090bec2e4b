//! The Responses API, whole and streamed (named events, numbered).

use serde_json::{json, Value};

use super::{output_text, piece, with_usage, Meta};
use crate::sse::SseEv;

pub fn responses_usage(m: &Meta) -> Value {
    json!({
        "input_tokens": m.prompt_tokens, "output_tokens": m.words,
        "total_tokens": m.prompt_tokens + m.words,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    })
}

pub fn response_object(m: &Meta, status: &str, output: Value, usage: Option<Value>) -> Value {
    let body = json!({
        "id": format!("resp_mock_{}", m.n), "object": "response", "created_at": m.created,
        "status": status, "model": m.model, "output": output,
        "parallel_tool_calls": true, "tool_choice": "auto", "tools": [], "error": null,
        "incomplete_details": null, "instructions": null, "metadata": {},
        "temperature": 1.0, "top_p": 1.0, "text": {"format": {"type": "text"}},
    });
    with_usage(body, usage)
}

pub fn output_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": []})
}

pub fn message_item(m: &Meta, status: &str, content: Value) -> Value {
    json!({"type": "message", "id": format!("msg_mock_{}", m.n), "status": status,
           "role": "assistant", "content": content})
}

pub fn responses_answer(m: &Meta) -> Value {
    let item = message_item(m, "completed", json!([output_part(&output_text(m.words))]));
    let usage = m.final_usage(responses_usage(m));
    response_object(m, "completed", json!([item]), usage)
}

pub fn responses_stream(m: &Meta) -> Vec<SseEv> {
    let text = output_text(m.words);
    let done_item = message_item(m, "completed", json!([output_part(&text)]));
    let usage = m.final_usage(responses_usage(m)).unwrap_or(Value::Null);
    let created = response_object(m, "in_progress", json!([]), Some(Value::Null));
    let completed = response_object(m, "completed", json!([done_item.clone()]), Some(usage));
    // Fields of the events about the one content part of the one output item.
    let at = json!({"item_id": format!("msg_mock_{}", m.n), "output_index": 0, "content_index": 0});
    let in_part = |extra: Value| {
        let mut body = at.clone();
        if let (Some(obj), Value::Object(extra)) = (body.as_object_mut(), extra) {
            obj.extend(extra);
        }
        body
    };

    let added_item = message_item(m, "in_progress", json!([]));
    let mut events = vec![
        ("response.created", json!({ "response": created }), 0),
        (
            "response.output_item.added",
            json!({"output_index": 0, "item": added_item}),
            0,
        ),
        (
            "response.content_part.added",
            in_part(json!({"part": output_part("")})),
            0,
        ),
    ];
    for i in 0..m.words {
        let delta = in_part(json!({"delta": piece(i), "logprobs": []}));
        events.push(("response.output_text.delta", delta, i + 1));
    }
    let n = m.words;
    events.push((
        "response.output_text.done",
        in_part(json!({"text": text, "logprobs": []})),
        n,
    ));
    events.push((
        "response.content_part.done",
        in_part(json!({"part": output_part(&text)})),
        n,
    ));
    events.push((
        "response.output_item.done",
        json!({"output_index": 0, "item": done_item}),
        n,
    ));
    events.push(("response.completed", json!({ "response": completed }), n));

    let numbered = events.into_iter().enumerate();
    numbered
        .map(|(seq, (name, mut body, words))| {
            if let Some(obj) = body.as_object_mut() {
                obj.insert("type".into(), name.into());
                obj.insert("sequence_number".into(), seq.into());
            }
            SseEv {
                name: Some(name),
                data: body.to_string(),
                words,
            }
        })
        .collect()
}
