//! Messages between the page and the sync worker (bincode over `postMessage`, by gloo-worker).

use serde::{Deserialize, Serialize};

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkerRequest {
    /// Liveness check; answered with [`WorkerResponse::Pong`] carrying the same nonce.
    Ping {
        /// Echoed back.
        nonce: u32,
    },
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkerResponse {
    /// Answer to a ping.
    Pong {
        /// The ping's nonce.
        nonce: u32,
        /// The worker's build version.
        version: String,
        /// Milliseconds since the worker started.
        uptime_ms: f64,
    },
}
