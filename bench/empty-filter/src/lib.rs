//! The floor the gateway is measured against (bench/README.md): the least a
//! proxy-wasm filter costs in Envoy's V8. Its plugin configuration picks what
//! it does: `empty` passes everything on untouched (the cost of having a wasm
//! filter at all), `read-body` holds the request until its body has ended and
//! reads it once (the least any filter that routes by the body's `model` must
//! do). Built for wasm32 only.

#[cfg(target_arch = "wasm32")]
mod filter {
    use proxy_wasm::hostcalls;
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel};

    proxy_wasm::main! {{
        proxy_wasm::set_log_level(LogLevel::Warn);
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { read_body: false }) });
    }}

    struct Root {
        read_body: bool,
    }

    impl Context for Root {}

    impl RootContext for Root {
        fn on_configure(&mut self, _size: usize) -> bool {
            let raw = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
                .ok()
                .flatten()
                .unwrap_or_default();
            match raw.as_slice() {
                b"" | b"empty" => self.read_body = false,
                b"read-body" => self.read_body = true,
                other => {
                    log::error!("unknown mode {:?}", String::from_utf8_lossy(other));
                    return false;
                }
            }
            true
        }

        fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(Http {
                read_body: self.read_body,
            }))
        }

        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }

    struct Http {
        read_body: bool,
    }

    impl Context for Http {}

    impl HttpContext for Http {
        fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
            if self.read_body && !end_of_stream {
                Action::Pause
            } else {
                Action::Continue
            }
        }

        fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
            if !self.read_body {
                return Action::Continue;
            }
            if !end_of_stream {
                return Action::Pause;
            }
            let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default();
            if body.is_empty() {
                log::warn!("read-body: an empty request body");
            }
            Action::Continue
        }
    }
}
