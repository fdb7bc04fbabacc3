//! # client-wasm — the Hearth client
//!
//! Loro CRDT state of each workspace, persisted locally (design §2), and the sync core that moves
//! it to and from the server:
//!
//! - [`storage`] — the [`storage::Store`] trait, its in-memory twin and (wasm32) IndexedDB.
//! - [`sync`] — [`sync::SyncCore`]: the one push/pull/verify/store path, over a
//!   [`sync::Transport`]; Loro-free, so the sync worker links it without Loro.
//! - [`keys`] — a workspace's encryption as this device applies it: seal before storing, open
//!   after reading, fresh secrets from the OS.
//! - [`ids`] — random peer ids and key tails (seedable for the simulation).
//! - [`engine`] (feature `engine`) — [`Engine`]: open a workspace (quarantining unreadable remote
//!   records), migrate, typed reads and durable edits, refresh, compaction, history and backup.
//! - [`error`] (feature `engine`) — [`EngineError`], the engine's error type.
//! - [`bench`] — the typing-trace workload of the benchmarks.
//! - `bindings` (wasm32 + feature `js`, on by default) — the `wasm-bindgen` API for plain JavaScript.
#![warn(missing_docs)]

pub mod bench;
pub mod ids;
pub mod keys;
pub mod storage;
pub mod sync;

#[cfg(feature = "engine")]
pub mod engine;
#[cfg(feature = "engine")]
pub mod error;

#[cfg(all(target_arch = "wasm32", feature = "js"))]
pub mod bindings;

#[cfg(feature = "engine")]
pub use engine::Engine;
#[cfg(feature = "engine")]
pub use error::EngineError;
