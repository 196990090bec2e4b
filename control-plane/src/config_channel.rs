//! The channel the current snapshot is published on: a watch channel that
//! `GET /internal/config` long-polls (`internal/config.rs`) and that
//! `State::publish` feeds with what `snapshot::build` read.
//!
//! The snapshot's version is a hash of its content, so that a restart or a
//! second replica publishes the same version for the same content and
//! filters do not swap for nothing.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use tokio::sync::{watch, Mutex, Notify};

use crate::error::ApiResult;

#[derive(Debug)]
pub struct Published {
    pub version: u64,
    pub body: Bytes,
    /// The key pages of a paged snapshot (`key_pages` in its head).
    pub pages: Vec<Bytes>,
    pub keys: usize,
    /// The failover clusters this snapshot's routes name (served over CDS).
    pub clusters: Vec<crate::cds::ClusterSpec>,
}

pub struct ConfigChannel {
    tx: watch::Sender<Arc<Published>>,
    /// Set when spend changed: the next rebuild comes soon.
    spend_changed: Notify,
    /// Rebuilds run one at a time, so that versions are published in the
    /// order of the database states they were read from.
    rebuild: Mutex<()>,
    shutdown: watch::Sender<bool>,
}

impl ConfigChannel {
    pub fn new(first: Published) -> ConfigChannel {
        ConfigChannel {
            tx: watch::Sender::new(Arc::new(first)),
            spend_changed: Notify::new(),
            rebuild: Mutex::new(()),
            shutdown: watch::Sender::new(false),
        }
    }

    pub fn current(&self) -> Arc<Published> {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }

    /// Runs `build` (one build at a time) and publishes what it read;
    /// whether the version changed.
    pub async fn try_publish<F>(&self, build: F) -> ApiResult<bool>
    where
        F: Future<Output = ApiResult<Published>>,
    {
        let _one_at_a_time = self.rebuild.lock().await;
        let next = build.await?;
        Ok(self.tx.send_if_modified(|current| {
            if current.version == next.version {
                return false;
            }
            let bytes = next.body.len() + next.pages.iter().map(Bytes::len).sum::<usize>();
            tracing::info!(
                version = next.version,
                keys = next.keys,
                pages = next.pages.len(),
                bytes,
                "config published"
            );
            *current = Arc::new(next);
            true
        }))
    }

    /// Spend moved (usage was ingested): republish soon, at most once per
    /// `background::SPEND_EVERY`, rather than once per batch.
    pub fn spend_changed(&self) {
        self.spend_changed.notify_one();
    }

    /// Resolves when spend changed since the last call.
    pub async fn spend_changed_notified(&self) {
        self.spend_changed.notified().await;
    }

    /// Ends every held poll (for a quick graceful shutdown).
    pub fn close(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves once `close` was called.
    pub async fn closed(&self) {
        let mut shutdown = self.shutdown.subscribe();
        let _ = shutdown.wait_for(|closing| *closing).await;
    }
}
