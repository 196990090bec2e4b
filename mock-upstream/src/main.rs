//! `tollgate-mock-upstream`: an OpenAI-compatible (and Anthropic- and
//! Azure-shaped) stand-in for LLM providers in Tollgate's end-to-end tests.
//!
//! It serves chat completions, completions, responses, embeddings, images and
//! models under `/v1`, Anthropic's `/v1/messages`, and Azure's
//! `/openai/deployments/{deployment}/chat/completions`. A test steers each request with `x-mock-*` headers
//! (status, delays, output length, stream cuts, frame splitting, usage
//! omission), and every `POST` under `/v1` is recorded in an in-memory ledger
//! served at `/_mock/ledger`.
//!
//! One module a concern: `steer` (the `x-mock-*` headers), `request` (which
//! API a request is for, its prompt tokens), `answers` (each API's shapes),
//! `sse` (event framing and the paced stream), `ledger` (what was served),
//! `routes` (the server), `error` (the mock's own OpenAI errors).

use std::io::Write as _;
use std::sync::Arc;

mod answers;
mod error;
mod ledger;
mod request;
mod routes;
mod sse;
mod steer;

const DEFAULT_LISTEN: &str = "127.0.0.1:9000";

/// The command line: where to listen, and `--steer NAME=VALUE` headers this
/// instance applies to every request that does not carry them itself (one
/// instance per deployment, each failing its own way, for failover tests).
#[derive(Debug, Default, PartialEq, Eq)]
struct Args {
    listen: String,
    /// `(credential, header, value)`: `None` applies to every request;
    /// `Some(key)` (`--key-steer KEY:x-mock-NAME=VALUE`) only to those whose
    /// credential (`Authorization: Bearer KEY`, `api-key` or `x-api-key`)
    /// is `KEY`, for key pool tests.
    steer: Vec<(Option<String>, String, String)>,
}

/// The credential a request carries, in whichever header its API takes.
fn credential(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    value("authorization")
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v))
        .or_else(|| value("api-key"))
        .or_else(|| value("x-api-key"))
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    const USAGE: &str = "usage: tollgate-mock-upstream [--listen ADDR] (default 127.0.0.1:9000) [--steer x-mock-NAME=VALUE]... [--key-steer KEY:x-mock-NAME=VALUE]...";
    let mut parsed = Args {
        listen: DEFAULT_LISTEN.to_string(),
        steer: Vec::new(),
    };
    while let Some(arg) = args.next() {
        if arg == "--listen" {
            parsed.listen = args
                .next()
                .ok_or_else(|| format!("--listen needs an address; {USAGE}"))?;
        } else if let Some(value) = arg.strip_prefix("--listen=") {
            parsed.listen = value.to_string();
        } else if arg == "--steer" || arg == "--key-steer" {
            let value = args
                .next()
                .ok_or_else(|| format!("{arg} needs NAME=VALUE; {USAGE}"))?;
            let (key, rule) = if arg == "--key-steer" {
                let (key, rule) = value
                    .split_once(':')
                    .filter(|(key, _)| !key.is_empty())
                    .ok_or_else(|| {
                        format!("--key-steer {value:?} is not KEY:x-mock-NAME=VALUE; {USAGE}")
                    })?;
                (Some(key.to_string()), rule)
            } else {
                (None, value.as_str())
            };
            let (name, value) = rule
                .split_once('=')
                .filter(|(name, _)| name.starts_with("x-mock-"))
                .ok_or_else(|| format!("{arg} {value:?} is not x-mock-NAME=VALUE; {USAGE}"))?;
            parsed
                .steer
                .push((key, name.to_ascii_lowercase(), value.to_string()));
        } else if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        } else {
            return Err(format!("unknown argument {arg:?}; {USAGE}"));
        }
    }
    Ok(parsed)
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
    let Args { listen, steer } = parse_args(std::env::args().skip(1))?;
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
    let app = routes::app(Arc::new(ledger::AppState::default())).layer(
        axum::middleware::map_request(move |mut request: axum::extract::Request| {
            let steer = steer.clone();
            async move {
                for (key, name, value) in &steer {
                    if key.is_some() && key.as_deref() != credential(request.headers()) {
                        continue;
                    }
                    if let (Ok(name), Ok(value)) = (
                        axum::http::HeaderName::try_from(name.as_str()),
                        axum::http::HeaderValue::try_from(value.as_str()),
                    ) {
                        if !request.headers().contains_key(&name) {
                            request.headers_mut().insert(name, value);
                        }
                    }
                }
                request
            }
        }),
    );
    axum::serve(listener, app)
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
