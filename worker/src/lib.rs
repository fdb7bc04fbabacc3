//! # worker — Hearth's background sync worker
//!
//! A `gloo-worker` that runs in a dedicated Web Worker, started by the web UI. The UI never talks
//! to the server; this worker does (design §6).
//!
//! - [`protocol`] — the messages between page and worker.
//! - [`SyncWorker`] — the worker itself.
#![warn(missing_docs)]

pub mod protocol;

use gloo_worker::{HandlerId, Worker, WorkerScope};
use protocol::{WorkerRequest, WorkerResponse};

/// The sync worker.
pub struct SyncWorker {
    started_at: f64,
}

impl Worker for SyncWorker {
    type Message = ();
    type Input = WorkerRequest;
    type Output = WorkerResponse;

    fn create(_scope: &WorkerScope<Self>) -> Self {
        Self {
            started_at: js_sys::Date::now(),
        }
    }

    fn update(&mut self, _scope: &WorkerScope<Self>, _msg: Self::Message) {}

    fn received(&mut self, scope: &WorkerScope<Self>, msg: Self::Input, id: HandlerId) {
        match msg {
            WorkerRequest::Ping { nonce } => scope.respond(
                id,
                WorkerResponse::Pong {
                    nonce,
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    uptime_ms: js_sys::Date::now() - self.started_at,
                },
            ),
        }
    }
}
