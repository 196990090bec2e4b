//! The proxy-wasm glue: one struct per context, callbacks in Envoy's order,
//! each gathering bytes from the host, calling the logic and applying what it
//! returns. Host calls go through `hostcalls` (which return errors) rather
//! than the SDK's trait helpers (which unwrap and would trap the VM).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};

use crate::config::PluginConfig;
use crate::decide::{self, Admitted, Cluster, Head, HeadDecision};
use crate::ids::RequestIds;
use crate::limits::{self, Admission, LeaseWant, Mode, Plan, Store, Used};
use crate::meter::{self, Meter};
use crate::outbox::Outbox;
use crate::poller::{PollOutcome, Poller};
use crate::reply::Reply;
use crate::snapshot::Compiled;
use crate::usage::Tokens;

const CLUSTER_HEADER: &str = "x-tollgate-cluster";
const SECRET_HEADER: &str = "x-tollgate-filter-secret";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::new()) });
}}

/// Usage records kept while the control plane is away (about 400 bytes each).
const OUTBOX_CAPACITY: usize = 20_000;
const OUTBOX_BATCH: usize = 200;
const OUTBOX_MAX_AGE_MS: u64 = 500;

/// Counters in Envoy's stats (`wasmcustom.tollgate_*`), summed over workers.
#[derive(Default, Clone, Copy)]
struct Metrics {
    records: Option<u32>,
    estimated: Option<u32>,
    shipped: Option<u32>,
    dropped: Option<u32>,
    config_version: Option<u32>,
}

impl Metrics {
    fn define() -> Metrics {
        let counter = |name: &str| hostcalls::define_metric(MetricType::Counter, name).ok();
        Metrics {
            records: counter("tollgate_usage_records"),
            estimated: counter("tollgate_usage_estimated"),
            shipped: counter("tollgate_usage_shipped"),
            dropped: counter("tollgate_usage_dropped"),
            config_version: hostcalls::define_metric(MetricType::Gauge, "tollgate_config_version")
                .ok(),
        }
    }

    fn add(id: Option<u32>, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

/// Per-request counts, added to Envoy's counters once a tick rather than
/// once a request (each increment is a host call).
#[derive(Default)]
struct PendingCounts {
    records: u64,
    estimated: u64,
    dropped: u64,
}

/// What the root context shares with the requests of its worker.
struct Shared {
    config: Option<Rc<PluginConfig>>,
    snapshot: Option<Rc<Compiled>>,
    /// Leased buckets running low on this worker, by bucket name.
    lease_wants: std::collections::BTreeMap<String, LeaseWant>,
    ids: RequestIds,
    outbox: Outbox,
    metrics: Metrics,
    pending: PendingCounts,
}

impl Shared {
    fn flush_counts(&mut self) {
        let counts = std::mem::take(&mut self.pending);
        Metrics::add(self.metrics.records, counts.records);
        Metrics::add(self.metrics.estimated, counts.estimated);
        Metrics::add(self.metrics.dropped, counts.dropped);
    }
}

struct Root {
    shared: Rc<RefCell<Shared>>,
    poller: Poller,
    poll_token: Option<u32>,
    ship_token: Option<u32>,
    lease_token: Option<u32>,
    /// The keys of a replaced snapshot, freed a slice per tick: freeing 100k
    /// keys at once would stall the requests of this worker.
    retired: Option<
        std::collections::hash_map::IntoIter<
            tollgate_contract::key::KeyHash,
            Rc<tollgate_contract::snapshot::Key>,
        >,
    >,
}

/// Keys of a replaced snapshot freed per tick.
const RETIRE_PER_TICK: usize = 2_000;

/// A JSON POST on the filter channel, with the filter secret.
fn post_to_control_plane(
    config: &PluginConfig,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<u32, proxy_wasm::types::Status> {
    let headers = vec![
        (":method", "POST"),
        (":path", path),
        (":authority", config.control_plane_authority.as_str()),
        ("content-type", "application/json"),
        (SECRET_HEADER, config.filter_secret.as_str()),
    ];
    hostcalls::dispatch_http_call(
        &config.control_plane_cluster,
        headers,
        Some(body),
        vec![],
        timeout,
    )
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
                lease_wants: Default::default(),
                ids: RequestIds::new(now_ms()),
                outbox: Outbox::new(OUTBOX_CAPACITY, OUTBOX_BATCH, OUTBOX_MAX_AGE_MS),
                metrics: Metrics::default(),
                pending: PendingCounts::default(),
            })),
            poller: Poller::default(),
            poll_token: None,
            ship_token: None,
            lease_token: None,
            retired: None,
        }
    }

    /// Sends the next usage batch when one is due.
    fn ship(&mut self) {
        let now = now_ms();
        let mut shared = self.shared.borrow_mut();
        let Some(config) = shared.config.clone() else {
            return;
        };
        if !shared.outbox.due(now) {
            return;
        }
        let batch = shared.outbox.take_batch();
        match post_to_control_plane(&config, "/internal/usage", &batch, Duration::from_secs(10)) {
            Ok(token) => self.ship_token = Some(token),
            Err(status) => {
                log::warn!("tollgate: usage batch not sent: {status:?}");
                shared.outbox.on_result(false, now);
            }
        }
    }

    fn on_shipped(&mut self, status: Option<u16>) {
        self.ship_token = None;
        let now = now_ms();
        let mut shared = self.shared.borrow_mut();
        let before = shared.outbox.shipped;
        let ok = status == Some(200);
        if !ok {
            log::warn!("tollgate: usage batch refused ({status:?}); kept for a retry");
        }
        shared.outbox.on_result(ok, now);
        let metrics = shared.metrics;
        Metrics::add(metrics.shipped, shared.outbox.shipped - before);
    }

    /// Keeps a replaced snapshot's keys to free them a slice at a time. A
    /// snapshot still held by a request in flight is freed by that request.
    fn retire(&mut self, old: Option<Rc<Compiled>>) {
        let Some(old) = old.and_then(|o| Rc::try_unwrap(o).ok()) else {
            return;
        };
        // Whatever was still retiring goes now: snapshots rarely come that fast.
        self.retired = None;
        self.retired = Some(old.keys.into_iter());
    }

    fn drop_retired(&mut self) {
        if let Some(rest) = self.retired.as_mut() {
            if rest.by_ref().take(RETIRE_PER_TICK).count() < RETIRE_PER_TICK {
                self.retired = None;
            }
        }
    }

    /// Asks the control plane for more of the leased buckets that ran low.
    fn lease(&mut self) {
        if self.lease_token.is_some() {
            return;
        }
        let mut shared = self.shared.borrow_mut();
        if shared.lease_wants.is_empty() {
            return;
        }
        let Some(config) = shared.config.clone() else {
            return;
        };
        let wants = std::mem::take(&mut shared.lease_wants);
        let leases: Vec<serde_json::Value> = wants
            .values()
            .map(|w| serde_json::json!({"bucket": w.bucket, "limit": w.limit, "want": w.want}))
            .collect();
        let body = serde_json::json!({ "leases": leases }).to_string();
        match post_to_control_plane(
            &config,
            "/internal/leases",
            body.as_bytes(),
            Duration::from_secs(5),
        ) {
            Ok(token) => self.lease_token = Some(token),
            // The buckets are still low: the next request asks again.
            Err(status) => log::warn!("tollgate: lease request not sent: {status:?}"),
        }
    }

    fn on_leased(&mut self, status: Option<u16>, body: &[u8]) {
        self.lease_token = None;
        #[derive(serde::Deserialize)]
        struct Grant {
            bucket: String,
            granted: u64,
        }
        #[derive(serde::Deserialize)]
        struct Grants {
            grants: Vec<Grant>,
        }
        if status != Some(200) {
            log::warn!("tollgate: lease request refused ({status:?})");
            return;
        }
        match serde_json::from_slice::<Grants>(body) {
            Ok(grants) => {
                for g in grants.grants {
                    limits::grant(&SharedData, &g.bucket, g.granted);
                }
            }
            Err(e) => log::warn!("tollgate: bad lease answer: {e}"),
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
            Ok(token) => {
                self.poll_token = Some(token);
                self.poller.sent();
            }
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
        token: u32,
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
        if self.ship_token == Some(token) {
            self.on_shipped(status);
            self.ship();
            return;
        }
        if self.lease_token == Some(token) {
            let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default();
            self.on_leased(status, &body);
            self.lease();
            return;
        }
        if self.poll_token != Some(token) {
            return;
        }
        self.poll_token = None;
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
                let mut shared = self.shared.borrow_mut();
                if let Some(id) = shared.metrics.config_version {
                    let _ = hostcalls::record_metric(id, compiled.version);
                }
                let old = shared.snapshot.replace(Rc::new(*compiled));
                drop(shared);
                self.retire(old);
            }
            PollOutcome::Unchanged | PollOutcome::Paging => {}
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
                let mut shared = self.shared.borrow_mut();
                shared.config = Some(Rc::new(config));
                shared.metrics = Metrics::define();
                drop(shared);
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
        self.shared.borrow_mut().flush_counts();
        self.poll();
        self.ship();
        self.lease();
        self.drop_retired();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            id: context_id,
            shared: Rc::clone(&self.shared),
            request_id: String::new(),
            started_ms: 0,
            snapshot: None,
            admitted: None,
            meter: None,
            draining: None,
            admission: None,
            other_key_headers: false,
            client_path: Vec::new(),
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
    started_ms: u64,
    snapshot: Option<Rc<Compiled>>,
    admitted: Option<Admitted>,
    /// Set once the request is forwarded to a provider: it will be billed.
    meter: Option<Meter>,
    /// An error decided before the client finished sending its body: the rest
    /// of the body is read and thrown away first, so that an HTTP/1.1 client
    /// that sends everything before it reads (most SDKs) gets the error
    /// instead of a reset connection.
    draining: Option<(Reply, u64)>,
    /// What the request holds of its limits and budgets until it ends.
    admission: Option<Admission>,
    /// The client sent its key in `api-key` or `x-api-key` (removed before
    /// forwarding; one host call each, so only when present).
    other_key_headers: bool,
    /// The client's `:path`, so that it is rewritten only when it changes.
    client_path: Vec<u8>,
}

/// Envoy shared data: one store for every worker of this Envoy.
struct SharedData;

impl Store for SharedData {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }
}

/// How much of a refused body is read and discarded before giving up on the
/// client and answering (Envoy then resets the rest).
const DRAIN_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

fn set_request_header(name: &str, value: Option<&[u8]>) {
    if let Err(status) = hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, value) {
        log::warn!("tollgate: cannot set request header {name}: {status:?}");
    }
}

impl Http {
    /// Answers `reply` once the request body has ended, discarding what
    /// arrives until then (up to `DRAIN_LIMIT_BYTES`).
    fn drain(
        &mut self,
        reply: Reply,
        drained: u64,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action {
        let drained = drained.saturating_add(body_size as u64);
        if end_of_stream || drained > DRAIN_LIMIT_BYTES {
            return self.send(&reply);
        }
        if body_size > 0 {
            if let Err(status) =
                hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body_size, &[])
            {
                log::warn!(
                    "#{} tollgate: cannot discard a refused body: {status:?}",
                    self.id
                );
                return self.send(&reply);
            }
        }
        self.draining = Some((reply, drained));
        Action::Pause
    }

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

    /// Puts the rewritten body in place of the client's, with its length.
    fn replace_body(&mut self, new: &[u8], body_size: usize, now: u64) -> Result<(), Reply> {
        set_request_header("content-length", Some(new.len().to_string().as_bytes()));
        if let Err(status) = hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body_size, new) {
            log::error!(
                "#{} tollgate: cannot replace the request body: {status:?}",
                self.id
            );
            if let Some(admission) = self.admission.take() {
                limits::release(&SharedData, &admission, None, now);
            }
            return Err(Reply::error(
                tollgate_contract::ErrorCode::Internal,
                "The gateway could not forward the request.",
            ));
        }
        Ok(())
    }

    fn forward(&mut self, body: &[u8], body_size: usize, now: u64) -> Action {
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
        let account = snapshot.accounts.get(&admitted.key.account_id);
        let shared_limits = self
            .shared
            .borrow()
            .config
            .as_ref()
            .is_some_and(|c| c.shared_limits);
        let mode = if shared_limits {
            Mode::Leased
        } else {
            Mode::Local
        };
        let plan = Plan::new(&admitted.key, account).leased(mode);
        if !plan.is_empty() {
            let tokens = Tokens {
                input: crate::usage::estimate_tokens(f.prompt_weight),
                output: f.max_output.unwrap_or(limits::DEFAULT_OUTPUT_RESERVE),
            };
            let nanos = meter::cost(tokens, f.input_nanos_per_1m, f.output_nanos_per_1m);
            let mut wants = Vec::new();
            let admitted = limits::admit(
                &SharedData,
                &plan,
                tokens.input + tokens.output,
                nanos,
                now,
                &mut wants,
            );
            if !wants.is_empty() {
                let mut shared = self.shared.borrow_mut();
                for w in wants {
                    shared.lease_wants.insert(w.bucket.clone(), w);
                }
            }
            match admitted {
                Ok(admission) => self.admission = Some(admission),
                Err(reply) => return self.send(&reply),
            }
        }
        // Each header written is a host call: only what changes is written.
        set_request_header(":authority", Some(f.authority.as_bytes()));
        if f.path.as_bytes() != self.client_path.as_slice() {
            set_request_header(":path", Some(f.path.as_bytes()));
        }
        set_request_header(CLUSTER_HEADER, Some(cluster.as_bytes()));
        set_request_header(
            "authorization",
            f.authorization.as_deref().map(str::as_bytes),
        );
        if self.other_key_headers {
            set_request_header("api-key", None);
            set_request_header("x-api-key", None);
        }
        if f.body.as_slice() != body {
            if let Err(reply) = self.replace_body(&f.body, body_size, now) {
                return self.send(&reply);
            }
        }
        self.meter = Some(Meter::new(meter::Request {
            request_id: self.request_id.clone(),
            key_id: admitted.key.id.clone(),
            account_id: admitted.key.account_id.clone(),
            endpoint: admitted.endpoint,
            model: f.model.clone(),
            upstream_model: f.upstream_model.clone(),
            provider: f.provider.clone(),
            stream: f.stream,
            hide_usage: f.hide_usage,
            prompt_weight: f.prompt_weight,
            input_nanos_per_1m: f.input_nanos_per_1m,
            output_nanos_per_1m: f.output_nanos_per_1m,
            started_ms: self.started_ms,
        }));
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
        let now = now_ms();
        self.started_ms = now;
        self.snapshot = self.shared.borrow().snapshot.clone();
        let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
        self.other_key_headers = headers
            .iter()
            .any(|(n, _)| n == "api-key" || n == "x-api-key");
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
        let now_s = i64::try_from(now / 1000).unwrap_or(i64::MAX);
        let head = Head {
            method: value(":method"),
            path: value(":path"),
            headers: &headers,
            now_s,
        };
        match decide::on_head(self.snapshot.as_deref(), &head) {
            HeadDecision::Open => Action::Continue,
            HeadDecision::Reply(reply) if !end_of_stream => {
                self.draining = Some((reply, 0));
                Action::Pause
            }
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
                self.client_path = head.path.to_vec();
                if end_of_stream {
                    return self.forward(&[], 0, now);
                }
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Some((reply, drained)) = self.draining.take() {
            return self.drain(reply, drained, body_size, end_of_stream);
        }
        let Some(snapshot) = self.snapshot.clone() else {
            return Action::Continue;
        };
        if self.admitted.is_none() {
            return Action::Continue;
        }
        let limit = snapshot.settings.max_body_bytes;
        if body_size as u64 > limit {
            self.admitted = None;
            return self.drain(decide::too_large(limit), 0, body_size, end_of_stream);
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let action = self.forward(&body, body_size, now_ms());
        self.admitted = None;
        action
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(admission) = &self.admission {
            for (name, value) in &admission.headers {
                let _ = hostcalls::set_map_value_bytes(
                    MapType::HttpResponseHeaders,
                    name,
                    Some(value.as_bytes()),
                );
            }
        }
        // The response's x-request-id is Envoy's copy of the request's
        // (`always_set_request_id_in_response`), which this filter minted.
        if let Some(meter) = self.meter.as_mut() {
            // One host call for both headers: each call that returns bytes
            // also calls back into the VM to allocate them.
            let headers =
                hostcalls::get_map_bytes(MapType::HttpResponseHeaders).unwrap_or_default();
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_slice())
                    .unwrap_or_default()
            };
            let status = std::str::from_utf8(header(":status"))
                .ok()
                .and_then(|s| s.parse::<u16>().ok())
                .unwrap_or(0);
            if let Some(reply) = decide::upstream_status(status) {
                meter.on_headers(reply.status, b"application/json");
                return self.send(&reply);
            }
            if meter.on_headers(status, header("content-type")) {
                let _ = hostcalls::set_map_value_bytes(
                    MapType::HttpResponseHeaders,
                    "content-length",
                    None,
                );
            }
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(meter) = self.meter.as_mut() else {
            return Action::Continue;
        };
        // Often the last call brings no bytes, only the end: no host call then.
        let chunk = if body_size == 0 {
            Vec::new()
        } else {
            hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        if let Some(replacement) = meter.on_chunk(&chunk, end_of_stream, now_ms) {
            if replacement != chunk {
                if let Err(status) =
                    hostcalls::set_buffer(BufferType::HttpResponseBody, 0, body_size, &replacement)
                {
                    log::error!(
                        "#{} tollgate: cannot rewrite a response chunk: {status:?}",
                        self.id
                    );
                }
            }
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let Some(mut meter) = self.meter.take() else {
            return;
        };
        // The status seen in the response headers; the property lookup (a
        // costlier host call) only when none came (the client left first).
        let code = meter.status().unwrap_or_else(|| {
            hostcalls::get_property(vec!["response", "code"])
                .ok()
                .flatten()
                .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
                .map(u64::from_le_bytes)
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(0)
        });
        let now = now_ms();
        let record = meter.finish(now, code);
        if let Some(admission) = self.admission.take() {
            let used = Used {
                tokens: record.input_tokens.saturating_add(record.output_tokens),
                nanos: record.cost_nanos,
            };
            limits::release(&SharedData, &admission, Some(used), now);
        }
        // The whole record in one filter-state entry for the access log
        // (each entry is a costly host call; the tokens are in the record).
        let json = match serde_json::to_vec(&record) {
            Ok(json) => json,
            Err(e) => {
                log::error!("#{} tollgate: usage record not serialised: {e}", self.id);
                return;
            }
        };
        let mut shared = self.shared.borrow_mut();
        if shared
            .config
            .as_ref()
            .is_some_and(|c| c.usage_in_access_log)
        {
            let _ = hostcalls::set_property(vec!["tollgate_usage"], Some(&json));
        }
        shared.pending.records += 1;
        shared.pending.estimated += u64::from(record.estimated);
        let dropped = shared.outbox.dropped;
        shared.outbox.push(json, now);
        shared.pending.dropped += shared.outbox.dropped - dropped;
    }
}
