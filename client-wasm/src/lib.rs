//! # client-wasm — the Hearth engine
//!
//! Loro CRDT state of each workspace, persisted locally (design §2):
//!
//! - [`storage`] — the [`storage::Store`] trait, its in-memory twin and (wasm32) IndexedDB.
//! - [`engine`] — [`Engine`]: open/load a workspace, migrate, typed reads and durable edits, what
//!   the sync worker needs (pending, acknowledge, apply remote, compaction), history and backup.
//! - [`error`] — [`EngineError`], the one error type of this crate.
//! - [`bench`] — the typing-trace workload of the benchmarks.
//! - `bindings` (wasm32) — the `wasm-bindgen` API for plain JavaScript.
#![warn(missing_docs)]

pub mod bench;
pub mod engine;
pub mod error;
pub mod storage;

#[cfg(target_arch = "wasm32")]
pub mod bindings;

pub use engine::Engine;
pub use error::EngineError;
