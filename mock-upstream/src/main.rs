//! `tollgate-mock-upstream`: an OpenAI-compatible stand-in for LLM providers
//! in Tollgate's end-to-end tests.
//!
//! It serves chat completions, completions, responses, embeddings, images and
//! models under `/v1`. A test steers each request with `x-mock-*` headers
//! (status, delays, output length, stream cuts, frame splitting, usage
//! omission), and every `POST` under `/v1` is recorded in an in-memory ledger
//! served at `/_mock/ledger`.

use std::io::Write as _;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{json, Map, Value};

mod anthropic;

const DEFAULT_LISTEN: &str = "127.0.0.1:9000";
const DEFAULT_WORDS: usize = 5;
const EMBEDDING_DIMS: usize = 8;

#[derive(Default)]
struct AppState {
    /// Ledger entries, each tagged with a unique id so that updates land on
    /// the right entry even if the ledger was cleared in between.
    ledger: Mutex<Vec<(u64, Value)>>,
    ledger_seq: AtomicU64,
    /// Numbers the answers: `chatcmpl-mock-<n>`, `resp_mock_<n>`, ...
    counter: AtomicU64,
}

type Shared = Arc<AppState>;

impl AppState {
    fn next_id(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn ledger(&self) -> MutexGuard<'_, Vec<(u64, Value)>> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends an entry and returns its id.
    fn record(&self, entry: Value) -> u64 {
        let id = self.ledger_seq.fetch_add(1, Ordering::Relaxed);
        self.ledger().push((id, entry));
        id
    }

    /// Sets fields of the entry `id`, if it is still in the ledger.
    fn update(&self, id: u64, fields: &[(&str, Value)]) {
        let mut ledger = self.ledger();
        if let Some((_, Value::Object(entry))) = ledger.iter_mut().rev().find(|(i, _)| *i == id) {
            for (name, value) in fields {
                entry.insert((*name).to_owned(), value.clone());
            }
        }
    }
}

/// Writes the final state of a streamed answer into the ledger when dropped,
/// i.e. when the stream ends, is cut, or the client goes away.
struct LedgerGuard {
    state: Shared,
    id: u64,
    words: usize,
    completed: bool,
}

impl Drop for LedgerGuard {
    fn drop(&mut self) {
        let fields = [
            ("completion_tokens", self.words.into()),
            ("completed", self.completed.into()),
        ];
        self.state.update(self.id, &fields);
    }
}

/// An OpenAI-style error answer: status and `{"error": {...}}` body.
struct ApiError(StatusCode, Value);

impl ApiError {
    fn new(status: StatusCode, kind: &str, code: &str, message: &str, param: Option<&str>) -> Self {
        let error = json!({"message": message, "type": kind, "param": param, "code": code});
        ApiError(status, json!({ "error": error }))
    }

    fn mock(status: StatusCode) -> Self {
        let (code, message) = (status.as_u16(), format!("mock error {}", status.as_u16()));
        ApiError::new(
            status,
            "mock_error",
            &format!("mock_{code}"),
            &message,
            None,
        )
    }

    fn bad_header(name: &str) -> Self {
        let message = format!("invalid {name} header");
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "mock_error",
            "mock_bad_header",
            &message,
            None,
        )
    }

    fn invalid(message: &str, param: Option<&str>) -> Self {
        let (status, kind) = (StatusCode::BAD_REQUEST, "invalid_request_error");
        ApiError::new(status, kind, "invalid_request", message, param)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

/// What the `x-mock-*` headers ask for.
struct Steer {
    status: Option<StatusCode>,
    delay_ms: u64,
    chunk_delay_ms: u64,
    words: usize,
    cut_after: Option<usize>,
    no_usage: bool,
    usage_every_chunk: bool,
    split: Option<usize>,
    crlf: bool,
    /// `x-mock-tool`: answer with a call to this tool.
    tool: Option<String>,
    /// `x-mock-cache-read`: of the prompt tokens, this many were read from
    /// the cache (Anthropic answers say so apart).
    cache_read: usize,
}

fn header_num<T: FromStr>(headers: &HeaderMap, name: &str) -> Result<Option<T>, ApiError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let parsed = value.to_str().ok().and_then(|s| s.trim().parse().ok());
    parsed.map(Some).ok_or_else(|| ApiError::bad_header(name))
}

impl Steer {
    fn from_headers(h: &HeaderMap) -> Result<Self, ApiError> {
        let status = match header_num::<u16>(h, "x-mock-status")? {
            Some(code) => Some(
                StatusCode::from_u16(code).map_err(|_| ApiError::bad_header("x-mock-status"))?,
            ),
            None => None,
        };
        let split = header_num::<usize>(h, "x-mock-split")?;
        if split == Some(0) {
            return Err(ApiError::bad_header("x-mock-split"));
        }
        Ok(Steer {
            status,
            delay_ms: header_num(h, "x-mock-delay-ms")?.unwrap_or(0),
            chunk_delay_ms: header_num(h, "x-mock-chunk-delay-ms")?.unwrap_or(0),
            words: header_num(h, "x-mock-words")?.unwrap_or(DEFAULT_WORDS),
            cut_after: header_num(h, "x-mock-cut-after")?,
            no_usage: h.contains_key("x-mock-no-usage"),
            usage_every_chunk: h.contains_key("x-mock-usage-every-chunk"),
            split,
            crlf: h.contains_key("x-mock-crlf"),
            tool: h
                .get("x-mock-tool")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            cache_read: header_num(h, "x-mock-cache-read")?.unwrap_or(0),
        })
    }

    /// Parses the headers, waits `x-mock-delay-ms`, and fails with
    /// `x-mock-status` if asked to.
    async fn apply(headers: &HeaderMap) -> Result<Self, ApiError> {
        let steer = Steer::from_headers(headers)?;
        if steer.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(steer.delay_ms)).await;
        }
        match steer.status {
            Some(status) => Err(ApiError::mock(status)),
            None => Ok(steer),
        }
    }
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

/// Words in a message `content`: a string or an array of parts with `text`.
fn content_words(content: &Value) -> usize {
    match content {
        Value::String(s) => words(s),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p {
                Value::String(s) => words(s),
                _ => p.get("text").and_then(Value::as_str).map_or(0, words),
            })
            .sum(),
        _ => 0,
    }
}

/// Chat prompt tokens: words across all message contents, plus one per message.
fn chat_prompt_tokens(messages: &[Value]) -> usize {
    messages
        .iter()
        .map(|m| 1 + m.get("content").map_or(0, content_words))
        .sum()
}

/// Responses input tokens: a string, or items with `content` (string or parts).
fn responses_input_tokens(input: &Value) -> usize {
    match input {
        Value::String(s) => words(s),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => words(s),
                _ => item.get("content").map_or(0, content_words),
            })
            .sum(),
        _ => 0,
    }
}

/// Token counts of each input of a completions prompt or an embeddings input:
/// a string, an array of strings, a token array, or an array of token arrays.
fn input_token_counts(input: &Value) -> Option<Vec<usize>> {
    match input {
        Value::String(s) => Some(vec![words(s)]),
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_number) => {
            Some(vec![items.len()])
        }
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Some(words(s)),
                Value::Array(tokens) => Some(tokens.len()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// The `i`-th streamed piece of the output: "tok0", " tok1", " tok2", ...
fn piece(i: usize) -> String {
    if i == 0 {
        "tok0".into()
    } else {
        format!(" tok{i}")
    }
}

fn output_text(n: usize) -> String {
    (0..n).map(piece).collect()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One SSE event: optional `event:` line, one `data:` line, blank line.
fn sse_event(event: Option<&str>, data: &str, crlf: bool) -> Bytes {
    let nl = if crlf { "\r\n" } else { "\n" };
    let event_line = event
        .map(|name| format!("event: {name}{nl}"))
        .unwrap_or_default();
    Bytes::from(format!("{event_line}data: {data}{nl}{nl}"))
}

/// Splits an event's bytes into frames of at most `n` bytes.
fn split_frames(bytes: Bytes, n: Option<usize>) -> Vec<Bytes> {
    match n {
        Some(n) if n > 0 && bytes.len() > n => (0..bytes.len())
            .step_by(n)
            .map(|start| bytes.slice(start..(start + n).min(bytes.len())))
            .collect(),
        _ => vec![bytes],
    }
}

/// An event to stream: its SSE name (responses API only), its data, and the
/// number of words sent once it has gone out.
struct SseEv {
    name: Option<&'static str>,
    data: String,
    words: usize,
}

fn ev(data: impl ToString, words: usize) -> SseEv {
    SseEv {
        name: None,
        data: data.to_string(),
        words,
    }
}

/// One body chunk of a stream, and where it sits among the events.
#[derive(Clone)]
struct Frame {
    bytes: Bytes,
    event: usize,
    first: bool,
    last: bool,
    words: usize,
}

struct StreamRun {
    frames: Vec<Frame>,
    next: usize,
    chunk_delay: Duration,
    cut_after: Option<usize>,
    guard: LedgerGuard,
}

async fn stream_step(mut run: StreamRun) -> Option<(std::io::Result<Bytes>, StreamRun)> {
    let frame = run.frames.get(run.next)?.clone();
    if frame.first {
        if run.cut_after == Some(frame.event) {
            run.next = usize::MAX;
            // Let hyper flush what was sent so far: an error aborts the
            // connection without flushing its buffer.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let err = std::io::Error::other("x-mock-cut-after: stream cut on purpose");
            return Some((Err(err), run));
        }
        if frame.event > 0 && !run.chunk_delay.is_zero() {
            tokio::time::sleep(run.chunk_delay).await;
        }
    }
    run.next += 1;
    if frame.last && frame.words != run.guard.words {
        run.guard.words = frame.words;
        run.guard
            .state
            .update(run.guard.id, &[("completion_tokens", frame.words.into())]);
    }
    run.guard.completed = run.next == run.frames.len();
    Some((Ok(frame.bytes), run))
}

fn sse_response(state: &Shared, id: u64, steer: &Steer, events: Vec<SseEv>) -> Response {
    let mut frames = Vec::new();
    for (event, e) in events.into_iter().enumerate() {
        let parts = split_frames(sse_event(e.name, &e.data, steer.crlf), steer.split);
        let count = parts.len();
        frames.extend(parts.into_iter().enumerate().map(|(i, bytes)| Frame {
            bytes,
            event,
            first: i == 0,
            last: i + 1 == count,
            words: e.words,
        }));
    }
    let run = StreamRun {
        frames,
        next: 0,
        chunk_delay: Duration::from_millis(steer.chunk_delay_ms),
        cut_after: steer.cut_after,
        guard: LedgerGuard {
            state: state.clone(),
            id,
            words: 0,
            completed: false,
        },
    };
    let body = Body::from_stream(futures_util::stream::unfold(run, stream_step));
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, body).into_response()
}

/// What an answer needs to know about its request.
struct Meta {
    n: u64,
    created: u64,
    model: String,
    prompt_tokens: usize,
    words: usize,
    include_usage: bool,
    no_usage: bool,
    usage_every_chunk: bool,
    tool: Option<String>,
    cache_read: usize,
}

impl Meta {
    /// Usage of a chat or completions answer, after `completion` words.
    fn usage(&self, completion: usize) -> Value {
        let (prompt, total) = (self.prompt_tokens, self.prompt_tokens + completion);
        json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total})
    }

    /// `usage` unless `x-mock-no-usage` asks to omit it.
    fn final_usage(&self, usage: Value) -> Option<Value> {
        (!self.no_usage).then_some(usage)
    }
}

/// Inserts `usage` into an object when there is one.
fn with_usage(mut v: Value, usage: Option<Value>) -> Value {
    if let (Some(obj), Some(u)) = (v.as_object_mut(), usage) {
        obj.insert("usage".into(), u);
    }
    v
}

/// Non-stream answer of chat (`chat == true`) or completions.
fn choice_answer(m: &Meta, chat: bool) -> Value {
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
fn choice_stream(m: &Meta, chat: bool) -> Vec<SseEv> {
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

fn responses_usage(m: &Meta) -> Value {
    json!({
        "input_tokens": m.prompt_tokens, "output_tokens": m.words,
        "total_tokens": m.prompt_tokens + m.words,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    })
}

fn response_object(m: &Meta, status: &str, output: Value, usage: Option<Value>) -> Value {
    let body = json!({
        "id": format!("resp_mock_{}", m.n), "object": "response", "created_at": m.created,
        "status": status, "model": m.model, "output": output,
        "parallel_tool_calls": true, "tool_choice": "auto", "tools": [], "error": null,
        "incomplete_details": null, "instructions": null, "metadata": {},
        "temperature": 1.0, "top_p": 1.0, "text": {"format": {"type": "text"}},
    });
    with_usage(body, usage)
}

fn output_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": []})
}

fn message_item(m: &Meta, status: &str, content: Value) -> Value {
    json!({"type": "message", "id": format!("msg_mock_{}", m.n), "status": status,
           "role": "assistant", "content": content})
}

fn responses_answer(m: &Meta) -> Value {
    let item = message_item(m, "completed", json!([output_part(&output_text(m.words))]));
    let usage = m.final_usage(responses_usage(m));
    response_object(m, "completed", json!([item]), usage)
}

fn responses_stream(m: &Meta) -> Vec<SseEv> {
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

fn embeddings_answer(m: &Meta, inputs: usize) -> Value {
    let data: Vec<Value> = (0..inputs)
        .map(|index| {
            let base = (index * EMBEDDING_DIMS) as f64;
            let vector: Vec<f64> = (0..EMBEDDING_DIMS)
                .map(|j| (base + j as f64 + 1.0) / 100.0)
                .collect();
            json!({"object": "embedding", "index": index, "embedding": vector})
        })
        .collect();
    let body = json!({"object": "list", "data": data, "model": m.model});
    let usage = json!({"prompt_tokens": m.prompt_tokens, "total_tokens": m.prompt_tokens});
    with_usage(body, m.final_usage(usage))
}

fn images_answer(m: &Meta, body: &Value) -> Result<Value, ApiError> {
    let n = match body.get("n") {
        None | Some(Value::Null) => 1,
        Some(n) => n
            .as_u64()
            .ok_or_else(|| ApiError::invalid("'n' must be an integer", Some("n")))?,
    };
    let prompt = body.get("prompt").and_then(Value::as_str).unwrap_or("");
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"url": format!("https://mock.invalid/img/{i}.png"), "revised_prompt": prompt}))
        .collect();
    let tokens = m.prompt_tokens;
    let usage = json!({"input_tokens": tokens, "output_tokens": 0, "total_tokens": tokens});
    Ok(with_usage(
        json!({"created": m.created, "data": data}),
        m.final_usage(usage),
    ))
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Chat,
    /// Azure OpenAI's chat completions of a deployment.
    AzureChat,
    Messages,
    Completions,
    Responses,
    Embeddings,
    Images,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Chat => "/v1/chat/completions",
            Kind::AzureChat => "/openai/deployments/{deployment}/chat/completions",
            Kind::Messages => "/v1/messages",
            Kind::Completions => "/v1/completions",
            Kind::Responses => "/v1/responses",
            Kind::Embeddings => "/v1/embeddings",
            Kind::Images => "/v1/images/generations",
        }
    }

    fn generates_text(self) -> bool {
        matches!(
            self,
            Kind::Chat | Kind::AzureChat | Kind::Messages | Kind::Completions | Kind::Responses
        )
    }
}

fn headers_json(headers: &HeaderMap) -> Value {
    let mut map = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match map.get_mut(name.as_str()) {
            Some(Value::String(existing)) => *existing = format!("{existing}, {value}"),
            _ => drop(map.insert(name.as_str().to_owned(), value.into())),
        }
    }
    Value::Object(map)
}

fn header_string(headers: &HeaderMap, name: &str) -> Value {
    let value = headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    value.map_or(Value::Null, Value::from)
}

/// Records the request, answers it, and stores the status of the answer.
async fn handle(state: Shared, kind: Kind, uri: Uri, headers: HeaderMap, raw: Bytes) -> Response {
    let body: Option<Value> = serde_json::from_slice(&raw).ok();
    let field = |pointer: &str| body.as_ref().and_then(|b| b.pointer(pointer)).cloned();
    let flag = |pointer: &str| field(pointer).and_then(|v| v.as_bool()).unwrap_or(false);
    let entry = json!({
        "path": kind.path(),
        "uri": uri.to_string(),
        "model": field("/model").filter(Value::is_string),
        "stream": flag("/stream"),
        "include_usage": flag("/stream_options/include_usage"),
        "x_request_id": header_string(&headers, "x-request-id"),
        "authorization": header_string(&headers, "authorization"),
        "headers": headers_json(&headers),
        "body": body,
        "prompt_tokens": 0, "completion_tokens": 0, "status": null, "completed": false,
    });
    let id = state.record(entry);
    let (response, streaming) = match answer(&state, id, kind, &headers, body).await {
        Ok(answer) => answer,
        Err(ApiError(status, body)) if kind == Kind::Messages => (
            (status, Json(anthropic::error_body(status.as_u16(), &body))).into_response(),
            false,
        ),
        Err(error) => (error.into_response(), false),
    };
    let mut fields = vec![("status", response.status().as_u16().into())];
    if !streaming {
        fields.push(("completed", true.into()));
    }
    state.update(id, &fields);
    response
}

/// Produces the answer and says whether it is a stream.
async fn answer(
    state: &Shared,
    id: u64,
    kind: Kind,
    headers: &HeaderMap,
    body: Option<Value>,
) -> Result<(Response, bool), ApiError> {
    let steer = Steer::apply(headers).await?;
    let body = body.ok_or_else(|| ApiError::invalid("request body is not valid JSON", None))?;
    let Some(model) = body.get("model").and_then(Value::as_str).map(str::to_owned) else {
        return Err(ApiError::invalid(
            "missing required parameter: 'model'",
            Some("model"),
        ));
    };
    let stream = kind.generates_text() && body.get("stream") == Some(&Value::Bool(true));
    let include_usage = body.pointer("/stream_options/include_usage") == Some(&Value::Bool(true));
    let inputs = prompt_token_counts(kind, &body)?;
    let prompt_tokens: usize = inputs.iter().sum();
    let completion_tokens = match (&steer.tool, kind.generates_text() && !stream) {
        (Some(_), true) => anthropic::TOOL_TOKENS,
        (None, true) => steer.words,
        (_, false) => 0,
    };
    let fields = [
        ("prompt_tokens", prompt_tokens.into()),
        ("completion_tokens", completion_tokens.into()),
    ];
    state.update(id, &fields);

    let meta = Meta {
        n: state.next_id(),
        created: now_secs(),
        model,
        prompt_tokens,
        words: steer.words,
        include_usage,
        no_usage: steer.no_usage,
        usage_every_chunk: include_usage && steer.usage_every_chunk,
        tool: steer.tool.clone(),
        cache_read: steer.cache_read.min(prompt_tokens),
    };
    if stream {
        let events = match kind {
            Kind::Responses => responses_stream(&meta),
            Kind::Messages => anthropic::stream(&meta),
            Kind::Chat | Kind::AzureChat if meta.tool.is_some() => {
                anthropic::chat_tool_stream(&meta)
            }
            Kind::Chat | Kind::AzureChat => choice_stream(&meta, true),
            _ => choice_stream(&meta, false),
        };
        return Ok((sse_response(state, id, &steer, events), true));
    }
    let json = match kind {
        Kind::Messages => anthropic::answer(&meta),
        Kind::Chat | Kind::AzureChat if meta.tool.is_some() => anthropic::chat_tool_answer(&meta),
        Kind::Chat | Kind::AzureChat => choice_answer(&meta, true),
        Kind::Completions => choice_answer(&meta, false),
        Kind::Responses => responses_answer(&meta),
        Kind::Embeddings => embeddings_answer(&meta, inputs.len()),
        Kind::Images => images_answer(&meta, &body)?,
    };
    Ok((Json(json).into_response(), false))
}

/// Prompt tokens of each input of the request (one entry for most endpoints).
fn prompt_token_counts(kind: Kind, body: &Value) -> Result<Vec<usize>, ApiError> {
    let counts = match kind {
        Kind::Messages => {
            let messages = body.get("messages").and_then(Value::as_array);
            let messages = messages
                .ok_or_else(|| ApiError::invalid("messages: Field required", Some("messages")))?;
            let system = body.get("system").map_or(0, content_words);
            vec![chat_prompt_tokens(messages) + system]
        }
        Kind::Chat | Kind::AzureChat => {
            let messages = body.get("messages").and_then(Value::as_array);
            let messages = messages.ok_or_else(|| {
                ApiError::invalid("'messages' must be an array", Some("messages"))
            })?;
            vec![chat_prompt_tokens(messages)]
        }
        Kind::Completions => match body.get("prompt") {
            None | Some(Value::Null) => vec![0],
            Some(prompt) => input_token_counts(prompt).ok_or_else(|| {
                ApiError::invalid("'prompt' must be a string or an array", Some("prompt"))
            })?,
        },
        Kind::Responses => vec![body.get("input").map_or(0, responses_input_tokens)],
        Kind::Embeddings => body
            .get("input")
            .and_then(input_token_counts)
            .ok_or_else(|| {
                ApiError::invalid("'input' must be a string or an array", Some("input"))
            })?,
        Kind::Images => vec![body.get("prompt").and_then(Value::as_str).map_or(0, words)],
    };
    Ok(counts)
}

async fn models(headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    Steer::apply(&headers).await?;
    let data: Vec<Value> = ["mock-demo-chat", "mock-demo-embed", "mock-demo-image"]
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "mock"}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

async fn ledger_get(State(state): State<Shared>) -> Json<Value> {
    let entries: Vec<Value> = state.ledger().iter().map(|(_, e)| e.clone()).collect();
    Json(json!({ "entries": entries }))
}

async fn ledger_delete(State(state): State<Shared>) -> StatusCode {
    state.ledger().clear();
    StatusCode::NO_CONTENT
}

async fn not_found() -> ApiError {
    let message = "no such route on the mock upstream";
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "not_found",
        message,
        None,
    )
}

fn app(state: Shared) -> Router {
    let route = |kind: Kind| {
        post(
            move |State(state): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes| {
                handle(state, kind, uri, headers, body)
            },
        )
    };
    let health = || async { Json(json!({"status": "ok"})) };
    let mut router = Router::new();
    for kind in [
        Kind::Chat,
        Kind::AzureChat,
        Kind::Messages,
        Kind::Completions,
        Kind::Responses,
        Kind::Embeddings,
        Kind::Images,
    ] {
        router = router.route(kind.path(), route(kind));
    }
    router
        .route("/v1/models", get(models))
        .route("/_mock/ledger", get(ledger_get).delete(ledger_delete))
        .route("/_mock/health", get(health))
        .fallback(not_found)
        .with_state(state)
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<String, String> {
    const USAGE: &str = "usage: tollgate-mock-upstream [--listen ADDR] (default 127.0.0.1:9000)";
    let mut listen = DEFAULT_LISTEN.to_string();
    while let Some(arg) = args.next() {
        if arg == "--listen" {
            listen = args
                .next()
                .ok_or_else(|| format!("--listen needs an address; {USAGE}"))?;
        } else if let Some(value) = arg.strip_prefix("--listen=") {
            listen = value.to_string();
        } else if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        } else {
            return Err(format!("unknown argument {arg:?}; {USAGE}"));
        }
    }
    Ok(listen)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => drop(sigterm.recv().await),
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

async fn run() -> Result<(), String> {
    let listen = parse_args(std::env::args().skip(1))?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    println!("tollgate-mock-upstream listening on http://{addr}");
    std::io::stdout()
        .flush()
        .map_err(|e| format!("cannot flush stdout: {e}"))?;
    // Small SSE frames must leave at once: without TCP_NODELAY, Nagle's
    // algorithm and delayed ACKs hold each stream ~40 ms.
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app(Arc::new(AppState::default())))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))
}

#[tokio::main]
async fn main() {
    if let Err(message) = run().await {
        eprintln!("tollgate-mock-upstream: {message}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_tokens_count_words_plus_one_per_message() {
        let messages = json!([
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello there world"}]},
            {"role": "assistant", "content": null},
        ]);
        assert_eq!(chat_prompt_tokens(messages.as_array().unwrap()), 2 + 3 + 3);
    }

    #[test]
    fn responses_tokens_count_strings_and_items() {
        assert_eq!(responses_input_tokens(&json!("one  two\tthree")), 3);
        let items = json!([
            {"role": "user", "content": "a b"},
            {"role": "user", "content": [{"type": "input_text", "text": "c d e"}]},
        ]);
        assert_eq!(responses_input_tokens(&items), 5);
    }

    #[test]
    fn embedding_inputs_are_counted() {
        assert_eq!(
            input_token_counts(&json!(["one two", "three"])),
            Some(vec![2, 1])
        );
        assert_eq!(input_token_counts(&json!([1, 2, 3])), Some(vec![3]));
        assert_eq!(input_token_counts(&json!([[1, 2], [3]])), Some(vec![2, 1]));
        assert_eq!(input_token_counts(&json!(5)), None);
    }

    #[test]
    fn sse_events_are_framed() {
        assert_eq!(sse_event(None, "{}", false), Bytes::from("data: {}\n\n"));
        let crlf = sse_event(Some("x"), "1", true);
        assert_eq!(crlf, Bytes::from("event: x\r\ndata: 1\r\n\r\n"));
    }

    #[test]
    fn split_frames_reassemble() {
        let event = sse_event(Some("response.created"), r#"{"a":1,"b":"two"}"#, false);
        for n in 1..=event.len() + 2 {
            let frames = split_frames(event.clone(), Some(n));
            assert!(frames.iter().all(|f| f.len() <= n && !f.is_empty()));
            assert_eq!(frames.concat(), event.to_vec());
        }
        assert_eq!(split_frames(event.clone(), None), vec![event]);
    }

    #[test]
    fn output_text_joins_pieces() {
        assert_eq!(output_text(3), "tok0 tok1 tok2");
        assert_eq!(output_text(0), "");
    }
}
