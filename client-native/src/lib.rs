//! Hearth's sync core outside the browser (issue "native client"): the engine and sync core of
//! `client-wasm` — the same push, pull, verify, seal and quarantine code the browser runs — on
//! native storage.
//!
//! - [`store`] — [`SqliteStore`]: the sync core's `Store` on one SQLite file, durable before each
//!   call returns; the store contract the browser's IndexedDB store passes runs on it too.
//!
//! Not built yet (README "Not finished"): the HTTP transport, the `hearth` command line and the C
//! API.
#![warn(missing_docs)]

pub mod store;

pub use store::SqliteStore;
