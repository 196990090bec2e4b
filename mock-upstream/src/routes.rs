//! The server's routes: each API's endpoint records the request, answers
//! it as scripted, and settles its ledger entry.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{json, Value};

use crate::answers::{
    anthropic, choice_answer, choice_stream, embeddings_answer, images_answer, now_secs,
    responses_answer, responses_stream, Meta,
};
use crate::error::ApiError;
use crate::ledger::{header_string, headers_json, ledger_delete, ledger_get, Shared};
use crate::request::{prompt_token_counts, Kind};
use crate::sse::sse_response;
use crate::steer::Steer;

/// Records the request, answers it, and stores the status of the answer.
pub async fn handle(
    state: Shared,
    kind: Kind,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
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
    let (mut response, streaming) = match answer(&state, id, kind, &headers, body).await {
        Ok(answer) => answer,
        // Anthropic's API answers its errors in its own shape.
        Err(ApiError(status, body)) if matches!(kind, Kind::Messages | Kind::CountTokens) => (
            (status, Json(anthropic::error_body(status.as_u16(), &body))).into_response(),
            false,
        ),
        Err(error) => (error.into_response(), false),
    };
    // `x-mock-retry-after: N` goes back as `retry-after: N` on an error
    // answer (a rate limit that says when to come back).
    if let Some(after) = headers.get("x-mock-retry-after") {
        if !response.status().is_success() {
            response.headers_mut().insert("retry-after", after.clone());
        }
    }
    let mut fields = vec![("status", response.status().as_u16().into())];
    if !streaming {
        fields.push(("completed", true.into()));
    }
    state.update(id, &fields);
    response
}

/// Produces the answer and says whether it is a stream.
pub async fn answer(
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
        Kind::CountTokens => json!({ "input_tokens": meta.prompt_tokens }),
        Kind::Chat | Kind::AzureChat if meta.tool.is_some() => anthropic::chat_tool_answer(&meta),
        Kind::Chat | Kind::AzureChat => choice_answer(&meta, true),
        Kind::Completions => choice_answer(&meta, false),
        Kind::Responses => responses_answer(&meta),
        Kind::Embeddings => embeddings_answer(&meta, inputs.len()),
        Kind::Images => images_answer(&meta, &body)?,
    };
    Ok((Json(json).into_response(), false))
}

pub async fn models(headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    Steer::apply(&headers).await?;
    let data: Vec<Value> = ["mock-demo-chat", "mock-demo-embed", "mock-demo-image"]
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "mock"}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

pub async fn not_found() -> ApiError {
    let message = "no such route on the mock upstream";
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "not_found",
        message,
        None,
    )
}

pub fn app(state: Shared) -> Router {
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
        Kind::CountTokens,
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
