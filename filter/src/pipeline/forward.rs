//! A request whose whole body is here: the deployment chosen, the route,
//! the admission against the limits, and the request rewritten for the
//! provider (headers, credential, body), with its meter and translator.

use std::borrow::Cow;

use tollgate_contract::headers;

use crate::decide::{self, BodyDecision};
use crate::limits::{self, Store};
use crate::meter::{self, Meter};
use crate::reply::Reply;
use crate::routing::Wire;
use crate::translate::Translator;

use super::{
    estimate, plan, remove, route, set, BodyChange, Outcome, Request, Then, Worker,
    ANTHROPIC_VERSION,
};

impl Request {
    /// The whole body is here: model, deployment, admission, rewrite.
    pub(super) fn forward(
        &mut self,
        worker: &mut Worker,
        store: &dyn Store,
        body: &[u8],
        now_ms: u64,
    ) -> Outcome {
        let (Some(snapshot), Some(admitted)) = (self.snapshot.clone(), self.admitted.clone())
        else {
            return Outcome::then(Then::Continue);
        };
        let pick = worker.ids.next_pick();
        let view = crate::health::Shared { store, now_ms };
        let mut f = match decide::on_body_with(&snapshot, &admitted, body, pick, &view) {
            Ok(BodyDecision::Forward(f)) => *f,
            Ok(BodyDecision::Estimated(tokens)) => {
                let mut reply =
                    Reply::json(200, format!("{{\"input_tokens\":{tokens}}}").into_bytes());
                reply.headers.push((headers::ESTIMATED, "true".to_string()));
                return Outcome::then(Then::Reply(reply));
            }
            Err(reply) => return Outcome::then(Then::Reply(reply)),
        };
        let Some(config) = worker.config.clone() else {
            return Outcome::then(Then::Continue);
        };
        // A key pool: this worker's next credential that is usable (or,
        // when none is, the next one: its answer fails over).
        if let Some(up) = snapshot
            .upstreams
            .get(&f.provider)
            .filter(|u| u.pool.len() > 1)
        {
            let start = crate::credentials::next_start(&up.id);
            let chosen = crate::credentials::choose(store, up, start, &[], now_ms)
                .or_else(|| up.pool.get(start % up.pool.len()));
            if let Some(k) = chosen {
                f.credential = Some(k.header.clone());
                f.credential_id.clone_from(&k.id);
            }
        }
        if !f.credential_id.is_empty() {
            self.credential = Some((f.provider.clone(), f.credential_id.clone()));
        }
        let (route_headers, routed) =
            route::headers(&config, worker, &f, admitted.endpoint, now_ms);
        self.written_for = routed.as_ref().map(|_| {
            let wire = if f.anthropic_upstream {
                Wire::Anthropic
            } else {
                Wire::OpenAi
            };
            (admitted.endpoint, wire)
        });
        self.routed = routed;
        self.measured = f.least_latency.then(|| (f.model.clone(), f.deployment));
        self.operation = admitted.endpoint.name();
        self.attempts = 1;
        self.idle_timeout_ms = f.idle_timeout_ms;
        let account = snapshot.accounts.get(&admitted.key.account_id);
        let plan = plan(&config, &admitted.key, account);
        if !plan.is_empty() && f.metered {
            let (tokens, nanos) = estimate(&f);
            let mut wants = Vec::new();
            let taken = limits::admit(
                store,
                &plan,
                tokens.input + tokens.output,
                nanos,
                now_ms,
                &mut wants,
            );
            worker.want_leases(wants);
            match taken {
                Ok(admission) => self.admission = Some(admission),
                Err(reply) => return Outcome::then(Then::Reply(reply)),
            }
        }
        // Each header written is a host call: only what changes is written.
        let mut headers = vec![set(":authority", f.authority.as_bytes())];
        if f.path.as_bytes() != self.client_path.as_slice() {
            headers.push(set(":path", f.path.as_bytes()));
        }
        headers.extend(route_headers);
        // The client's credential never goes on; the provider's goes in the
        // header its API takes.
        let credential = f.credential.as_ref();
        let bearer = credential.filter(|(name, _)| *name == "authorization");
        headers.push((
            Cow::Borrowed("authorization"),
            bearer.map(|(_, v)| v.as_bytes().to_vec()),
        ));
        if self.other_key_headers {
            headers.push(remove("api-key"));
            headers.push(remove("x-api-key"));
        }
        if let Some((name, value)) = credential.filter(|(name, _)| *name != "authorization") {
            headers.push((Cow::Borrowed(*name), Some(value.as_bytes().to_vec())));
        }
        if f.anthropic_upstream && !self.anthropic_version {
            headers.push(set("anthropic-version", ANTHROPIC_VERSION.as_bytes()));
        }
        if !f.anthropic_upstream && self.wire == Wire::Anthropic {
            headers.push(remove("anthropic-version"));
            headers.push(remove("anthropic-beta"));
        }
        log::debug!(
            "tollgate {}: {} -> {} via {} ({} bytes, stream {})",
            self.id,
            f.model,
            f.upstream_model,
            f.provider,
            f.body.len(),
            f.stream
        );
        let new_body = if f.body.as_slice() != body {
            headers.push(set("content-length", f.body.len().to_string().as_bytes()));
            BodyChange::Replace(f.body)
        } else {
            BodyChange::Keep
        };
        self.translator = Translator::new(f.translation, &f.model, now_ms / 1000);
        if !f.metered {
            return Outcome {
                headers,
                body: new_body,
                then: Then::Continue,
            };
        }
        self.meter = Some(Meter::new(meter::Request {
            request_id: self.id.clone(),
            key_id: admitted.key.id.clone(),
            account_id: admitted.key.account_id.clone(),
            endpoint: f.meter_endpoint,
            model: f.model,
            upstream_model: f.upstream_model,
            provider: f.provider,
            stream: f.stream,
            hide_usage: f.hide_usage,
            prompt_weight: f.prompt_weight,
            input_nanos_per_1m: f.input_nanos_per_1m,
            output_nanos_per_1m: f.output_nanos_per_1m,
            started_ms: self.started_ms,
        }));
        Outcome {
            headers,
            body: new_body,
            then: Then::Continue,
        }
    }
}
