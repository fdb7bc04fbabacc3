//! # hearth-server
//!
//! Stores opaque workspace blobs (it never decodes Loro) behind master and access JWTs
//! (design §3–5, §7–8).
//!
//! - [`config`] — flags and environment.
//! - [`app`] — state, middleware, health, metrics, starting the server.
//! - [`routes`] — the `/v1` handlers; [`live`] — the SSE live channel; [`socket`] — the push
//!   socket (pushes over a WebSocket); [`presence`] — who has
//!   a workspace open (memory only, shared across processes).
//! - [`keys`] — wrapped epoch keys of end-to-end encrypted notebooks (opaque blobs per link).
//! - [`auth`] — JWT mint/verify, revocation cache.
//! - [`limits`] — rate limits (token, workspace, address), live-stream caps.
//! - [`store`] — the storage trait, group commit, SQLite and Postgres.
//! - [`error`] — [`error::ApiError`] and its mapping to HTTP.
//! - [`metrics`] — Prometheus text metrics.
//! - [`static_files`] — the web app's files, precompressed `.gz` to browsers that accept gzip.
#![warn(missing_docs)]

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod keys;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod presence;
pub mod routes;
pub mod socket;
pub mod static_files;
pub mod store;

pub use config::Config;
