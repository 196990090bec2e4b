//! The root context: the filter's configuration, its tick, and the calls
//! to the control plane (config poll, usage batches, leases, health).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MapType};

use super::deferred::Deferred;
use super::{buffer, Http};
use crate::channel::{Call, Polled};
use crate::config::{PluginConfig, Role};
use crate::host_env::{now_ms, SharedData};
use crate::host_metrics::Metrics;
use crate::host_upstream::{self, UpstreamHttp};
use crate::pipeline::{Request, Worker};

pub(super) struct Root {
    worker: Rc<RefCell<Worker>>,
    metrics: Metrics,
    poll_token: Option<u32>,
    ship_token: Option<u32>,
    lease_token: Option<u32>,
    /// A failover cluster's upstream filter: no ticks, no channel.
    upstream: bool,
    /// Request-side local replies waiting for the event loop's next turn.
    replies: Rc<Deferred>,
}

impl Root {
    pub(super) fn new() -> Root {
        Root {
            worker: Rc::new(RefCell::new(Worker::new(now_ms()))),
            metrics: Metrics::default(),
            poll_token: None,
            ship_token: None,
            lease_token: None,
            upstream: false,
            replies: Rc::default(),
        }
    }

    /// Dispatches `call` on the filter channel.
    fn dispatch(&self, call: &Call) -> Result<u32, proxy_wasm::types::Status> {
        let Some(config) = self.worker.borrow().config.clone() else {
            return Err(proxy_wasm::types::Status::BadArgument);
        };
        hostcalls::dispatch_http_call(
            &config.control_plane_cluster,
            call.headers(&config),
            call.body.as_deref(),
            vec![],
            Duration::from_millis(call.timeout_ms),
        )
    }

    fn ship(&mut self) {
        let now = now_ms();
        let Some(call) = self.worker.borrow_mut().usage_call(now) else {
            return;
        };
        match self.dispatch(&call) {
            Ok(token) => self.ship_token = Some(token),
            Err(status) => {
                log::warn!("tollgate: usage batch not sent: {status:?}");
                self.worker.borrow_mut().usage_not_sent(now);
            }
        }
    }

    /// The deployments' health, for `/api/status`; the answer is not waited
    /// for (the next report says it again).
    /// Ends each response silent past its deployment's idle timeout
    /// (`idle.rs`): a reset of its stream, as Envoy's own idle timeouts do
    /// once the response has started.
    fn end_stalled(&mut self) {
        // No clock read (a host call) while nothing is watched.
        if self.worker.borrow().idle.is_empty() {
            return;
        }
        let stalled = self.worker.borrow_mut().idle.expired(now_ms());
        for id in stalled {
            if hostcalls::set_effective_context(id).is_err() {
                continue;
            }
            log::warn!("#{id} tollgate: the upstream was silent past its idle timeout; the response is ended");
            if let Err(status) = hostcalls::reset_http_response() {
                log::error!("#{id} tollgate: cannot end a stalled response: {status:?}");
            }
        }
    }

    fn report_health(&mut self) {
        let Some(call) = self.worker.borrow_mut().health_call(&SharedData, now_ms()) else {
            return;
        };
        if let Err(status) = self.dispatch(&call) {
            log::warn!("tollgate: health report not sent: {status:?}");
        }
    }

    fn lease(&mut self) {
        if self.lease_token.is_some() {
            return;
        }
        let Some(call) = self.worker.borrow_mut().lease_call() else {
            return;
        };
        match self.dispatch(&call) {
            Ok(token) => self.lease_token = Some(token),
            Err(status) => log::warn!("tollgate: lease request not sent: {status:?}"),
        }
    }

    fn poll(&mut self) {
        let now = now_ms();
        let Some(call) = self.worker.borrow().poll_call(now) else {
            return;
        };
        match self.dispatch(&call) {
            Ok(token) => {
                self.poll_token = Some(token);
                self.worker.borrow_mut().poll_sent();
            }
            Err(status) => {
                log::warn!("tollgate: config poll not sent: {status:?}");
                self.worker.borrow_mut().poll_not_sent(now);
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
            .and_then(|v| crate::pipeline::parse_status(&v));
        if self.ship_token == Some(token) {
            self.ship_token = None;
            let shipped = self.worker.borrow_mut().usage_answered(status, now_ms());
            Metrics::add(self.metrics.shipped, shipped);
            self.ship();
            return;
        }
        if self.lease_token == Some(token) {
            self.lease_token = None;
            let body = buffer(BufferType::HttpCallResponseBody, body_size);
            self.worker
                .borrow_mut()
                .lease_answered(&SharedData, status, &body);
            self.lease();
            return;
        }
        if self.poll_token != Some(token) {
            return;
        }
        self.poll_token = None;
        let body = buffer(BufferType::HttpCallResponseBody, body_size);
        let polled = self
            .worker
            .borrow_mut()
            .poll_answered(now_ms(), status, &body);
        match polled {
            Polled::Applied {
                version,
                keys,
                models,
            } => {
                log::info!(
                    "tollgate: config version {version} applied ({keys} keys, {models} models)"
                );
                self.metrics.applied(version, now_ms());
            }
            Polled::Unchanged => self.metrics.polled(now_ms()),
            Polled::Failed(reason) => {
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
        let raw = buffer(BufferType::PluginConfiguration, usize::MAX);
        match PluginConfig::parse(&raw) {
            Ok(config) if config.role == Role::Upstream => {
                self.upstream = true;
                true
            }
            Ok(config) => {
                host_upstream::register(&self.worker);
                self.replies.register(&self.worker.borrow().ids.reporter());
                let tick = Duration::from_millis(config.tick_ms);
                self.worker.borrow_mut().config = Some(std::sync::Arc::new(config));
                self.metrics = Metrics::define();
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
        let counts = self.worker.borrow_mut().take_counts();
        self.metrics.add_counts(counts);
        crate::host_metrics::flush();
        self.poll();
        self.ship();
        self.lease();
        self.report_health();
        self.worker.borrow_mut().drop_retired();
        self.end_stalled();
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        self.replies.ready(queue_id);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        if self.upstream {
            return Some(Box::<UpstreamHttp>::default());
        }
        Some(Box::new(Http {
            id: context_id,
            worker: Rc::clone(&self.worker),
            request: Request::default(),
            replies: Rc::clone(&self.replies),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
