//! Hearth's sync core outside the browser (issue "native client"): the engine and sync core of
//! `client-wasm` — the same push, pull, verify, seal and quarantine code the browser runs — on
//! native storage.
//!
//! - [`client`] — [`Client`]: a data file and what a program does with it (join, pick a
//!   notebook, sync, status); the `hearth` command line and the C API are written on it.
//! - [`store`] — [`SqliteStore`]: the sync core's `Store` on one SQLite file, durable before each
//!   call returns; the store contract the browser's IndexedDB store passes runs on it too.
//! - [`http`] — [`ReqwestHttp`]: one HTTP exchange over `reqwest`; the protocol's calls on top of
//!   it are `client_wasm::sync::http`'s (the browser's too), so it is a sync-core `Transport`.
//!
//! - [`markdown`] — a notebook as a folder of Markdown files, both ways; an edited file comes
//!   back as CRDT edits made against the version it was exported at, so concurrent edits merge;
//!   a deleted file trashes its note unless it was edited elsewhere since.
//! - [`watch`] — staying live: the server's live channel, its inline records taken by the sync
//!   core as in the browser's worker.
//!
//! The `hearth` binary (`src/bin/hearth.rs`) is the command line on these; the C API
//! (`client-ffi`) is written on [`Client`] too.
#![warn(missing_docs)]

pub mod client;
pub mod http;
pub mod markdown;
pub mod store;
pub mod watch;

pub use client::{Client, ClientError, Status};
pub use http::ReqwestHttp;
pub use store::SqliteStore;
