//! The proxy-wasm glue: one struct per context, callbacks in Envoy's order,
//! each gathering bytes from the host, calling the logic and applying what it
//! returns. Host calls go through `hostcalls` (which return errors) rather
//! than the SDK's trait helpers (which unwrap and would trap the VM).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};

use crate::config::PluginConfig;
use crate::decide::{self, Admitted, Cluster, Head, HeadDecision};
use crate::ids::RequestIds;
use crate::poller::{PollOutcome, Poller};
use crate::reply::Reply;
use crate::snapshot::Compiled;

const CLUSTER_HEADER: &str = "x-tollgate-cluster";
const SECRET_HEADER: &str = "x-tollgate-filter-secret";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::new()) });
}}

/// What the root context shares with the requests of its worker.
struct Shared {
    config: Option<Rc<PluginConfig>>,
    snapshot: Option<Rc<Compiled>>,
    ids: RequestIds,
}

struct Root {
    shared: Rc<RefCell<Shared>>,
    poller: Poller,
}

fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Root {
    fn new() -> Root {
        Root {
            shared: Rc::new(RefCell::new(Shared {
                config: None,
                snapshot: None,
                ids: RequestIds::new(now_ms()),
            })),
            poller: Poller::default(),
        }
    }

    fn poll(&mut self) {
        let Some(config) = self.shared.borrow().config.clone() else {
            return;
        };
        let now = now_ms();
        if !self.poller.due(now) {
            return;
        }
        let path = self.poller.path(config.poll_wait_ms);
        let headers = vec![
            (":method", "GET"),
            (":path", path.as_str()),
            (":authority", config.control_plane_authority.as_str()),
            (SECRET_HEADER, config.filter_secret.as_str()),
        ];
        let timeout = Duration::from_millis(config.poll_wait_ms + 5_000);
        match hostcalls::dispatch_http_call(
            &config.control_plane_cluster,
            headers,
            None,
            vec![],
            timeout,
        ) {
            Ok(_) => self.poller.sent(),
            Err(status) => {
                log::warn!("tollgate: config poll not sent: {status:?}");
                self.poller.not_sent(now);
            }
        }
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        _token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|v| {
                std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse::<u16>().ok())
            });
        let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        match self.poller.on_response(now_ms(), status, &body) {
            PollOutcome::Updated(compiled) => {
                log::info!(
                    "tollgate: config version {} applied ({} keys, {} models)",
                    compiled.version,
                    compiled.keys.len(),
                    compiled.models.len()
                );
                self.shared.borrow_mut().snapshot = Some(Rc::new(*compiled));
            }
            PollOutcome::Unchanged => {}
            PollOutcome::Failed(reason) => {
                log::warn!("tollgate: config poll failed, serving the last snapshot: {reason}");
            }
        }
        // Re-poll at once rather than waiting for the next tick.
        self.poll();
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        log::info!("tollgate filter {} starting", env!("CARGO_PKG_VERSION"));
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let raw = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        match PluginConfig::parse(&raw) {
            Ok(config) => {
                let tick = Duration::from_millis(config.tick_ms);
                self.shared.borrow_mut().config = Some(Rc::new(config));
                if let Err(status) = hostcalls::set_tick_period(tick) {
                    log::error!("tollgate: cannot set the tick period: {status:?}");
                    return false;
                }
                true
            }
            Err(e) => {
                log::error!("tollgate: {e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        self.poll();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            id: context_id,
            shared: Rc::clone(&self.shared),
            request_id: String::new(),
            snapshot: None,
            admitted: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    id: u32,
    shared: Rc<RefCell<Shared>>,
    request_id: String,
    snapshot: Option<Rc<Compiled>>,
    admitted: Option<Admitted>,
}

fn set_request_header(name: &str, value: Option<&[u8]>) {
    if let Err(status) = hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, value) {
        log::warn!("tollgate: cannot set request header {name}: {status:?}");
    }
}

impl Http {
    fn send(&self, reply: &Reply) -> Action {
        let mut headers: Vec<(&str, &str)> = vec![
            ("content-type", "application/json"),
            ("x-request-id", self.request_id.as_str()),
        ];
        headers.extend(reply.headers.iter().map(|(n, v)| (*n, v.as_str())));
        if let Err(status) =
            hostcalls::send_http_response(u32::from(reply.status), headers, Some(&reply.body))
        {
            log::error!(
                "#{} tollgate: cannot send a local reply: {status:?}",
                self.id
            );
        }
        Action::Pause
    }

    fn forward(&mut self, body: &[u8], body_size: usize) -> Action {
        let (Some(snapshot), Some(admitted)) = (self.snapshot.clone(), self.admitted.clone())
        else {
            return Action::Continue;
        };
        let pick = self.shared.borrow_mut().ids.next_pick();
        let f = match decide::on_body(&snapshot, &admitted, body, pick) {
            Ok(f) => f,
            Err(reply) => return self.send(&reply),
        };
        let cluster = {
            let shared = self.shared.borrow();
            let Some(config) = shared.config.as_ref() else {
                return Action::Continue;
            };
            match f.cluster {
                Cluster::Plain => config.upstream_cluster.clone(),
                Cluster::Tls => config.upstream_tls_cluster.clone(),
            }
        };
        set_request_header(":authority", Some(f.authority.as_bytes()));
        set_request_header(":path", Some(f.path.as_bytes()));
        set_request_header(CLUSTER_HEADER, Some(cluster.as_bytes()));
        set_request_header(
            "authorization",
            f.authorization.as_deref().map(str::as_bytes),
        );
        set_request_header("api-key", None);
        set_request_header("x-api-key", None);
        set_request_header("content-length", Some(f.body.len().to_string().as_bytes()));
        if let Err(status) =
            hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body_size, &f.body)
        {
            log::error!(
                "#{} tollgate: cannot replace the request body: {status:?}",
                self.id
            );
            return self.send(&Reply::error(
                tollgate_contract::ErrorCode::Internal,
                "The gateway could not forward the request.",
            ));
        }
        log::debug!(
            "#{} tollgate: {} -> {} via {} ({} bytes, stream {})",
            self.id,
            f.model,
            f.upstream_model,
            f.provider,
            f.body.len(),
            f.stream
        );
        Action::Continue
    }
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.request_id = self.shared.borrow_mut().ids.next_id();
        self.snapshot = self.shared.borrow().snapshot.clone();
        let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
        for name in decide::spoofed(&headers) {
            set_request_header(name, None);
        }
        set_request_header("x-request-id", Some(self.request_id.as_bytes()));
        let value = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_slice())
                .unwrap_or_default()
        };
        let now_s = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
        let head = Head {
            method: value(":method"),
            path: value(":path"),
            headers: &headers,
            now_s,
        };
        match decide::on_head(self.snapshot.as_deref(), &head) {
            HeadDecision::Open => Action::Continue,
            HeadDecision::Reply(reply) => self.send(&reply),
            HeadDecision::ToControlPlane(admitted) => {
                let secret = self
                    .shared
                    .borrow()
                    .config
                    .as_ref()
                    .map(|c| c.filter_secret.clone())
                    .unwrap_or_default();
                set_request_header("authorization", None);
                set_request_header("api-key", None);
                set_request_header("x-api-key", None);
                set_request_header(SECRET_HEADER, Some(secret.as_bytes()));
                set_request_header("x-tollgate-key-id", Some(admitted.key.id.as_bytes()));
                set_request_header(
                    "x-tollgate-account-id",
                    Some(admitted.key.account_id.as_bytes()),
                );
                Action::Continue
            }
            HeadDecision::ReadBody(admitted) => {
                self.admitted = Some(admitted);
                if end_of_stream {
                    return self.forward(&[], 0);
                }
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(snapshot) = self.snapshot.clone() else {
            return Action::Continue;
        };
        if self.admitted.is_none() {
            return Action::Continue;
        }
        let limit = snapshot.settings.max_body_bytes;
        if body_size as u64 > limit {
            self.admitted = None;
            return self.send(&decide::too_large(limit));
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let action = self.forward(&body, body_size);
        self.admitted = None;
        action
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Err(status) = hostcalls::set_map_value_bytes(
            MapType::HttpResponseHeaders,
            "x-request-id",
            Some(self.request_id.as_bytes()),
        ) {
            log::warn!("#{} tollgate: cannot set x-request-id: {status:?}", self.id);
        }
        Action::Continue
    }
}
