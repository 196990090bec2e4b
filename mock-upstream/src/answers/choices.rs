//! Chat completions and completions, whole and streamed.

use serde_json::{json, Value};

use super::{output_text, piece, with_usage, Meta};
use crate::sse::{ev, SseEv};

/// Non-stream answer of chat (`chat == true`) or completions.
pub fn choice_answer(m: &Meta, chat: bool) -> Value {
    let text = output_text(m.words);
    let (id, object, choice) = if chat {
        let message = json!({"role": "assistant", "content": text});
        let choice =
            json!({"index": 0, "message": message, "logprobs": null, "finish_reason": "stop"});
        (format!("chatcmpl-mock-{}", m.n), "chat.completion", choice)
    } else {
        let choice = json!({"index": 0, "text": text, "finish_reason": "stop", "logprobs": null});
        (format!("cmpl-mock-{}", m.n), "text_completion", choice)
    };
    let body = json!({"id": id, "object": object, "created": m.created, "model": m.model,
                      "choices": [choice]});
    with_usage(body, m.final_usage(m.usage(m.words)))
}

/// Events of a chat (`chat == true`) or completions stream.
pub fn choice_stream(m: &Meta, chat: bool) -> Vec<SseEv> {
    let (id, object) = if chat {
        (format!("chatcmpl-mock-{}", m.n), "chat.completion.chunk")
    } else {
        (format!("cmpl-mock-{}", m.n), "text_completion")
    };
    let chunk = |choices: Value, usage: Option<Value>| {
        let c = json!({"id": id, "object": object, "created": m.created, "model": m.model,
                       "choices": choices});
        with_usage(c, m.include_usage.then(|| usage.unwrap_or(Value::Null)))
    };
    let choice = |text: Option<String>, finish: Value| {
        if chat {
            let delta = text.map_or_else(|| json!({}), |t| json!({ "content": t }));
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}])
        } else {
            let text = text.unwrap_or_default();
            json!([{"index": 0, "text": text, "logprobs": null, "finish_reason": finish}])
        }
    };
    let mut events = Vec::new();
    if chat {
        let delta = json!({"role": "assistant", "content": ""});
        let role = json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}]);
        events.push(ev(chunk(role, None), 0));
    }
    for i in 0..m.words {
        let running = m.usage_every_chunk.then(|| m.usage(i + 1));
        let content = chunk(choice(Some(piece(i)), Value::Null), running);
        events.push(ev(content, i + 1));
    }
    events.push(ev(chunk(choice(None, "stop".into()), None), m.words));
    if m.include_usage && !m.no_usage {
        events.push(ev(chunk(json!([]), Some(m.usage(m.words))), m.words));
    }
    events.push(ev("[DONE]", m.words));
    events
}
