//! # shared-schema
//!
//! Everything two parts of Hearth must agree on, as I/O-free code used by the engine, the worker
//! and the server alike (see `docs/protocol.md`):
//!
//! - [`error`] — the error codes of the HTTP API and the JSON error body.
//! - [`frame`] — the binary push batch and pull stream formats.
//! - [`chain`] — the integrity chain `chain_n = SHA-256(chain_{n-1} || SHA-256(update_n))`.
//! - [`claims`] — JWT claims and roles of master and access tokens.
//! - [`api`] — JSON request and response bodies of `/v1`.
//! - [`sync`] — pulled-page verification, push batching, backoff, sync status.
//! - [`link`] — share links (`{server}/#/join/{workspace}?t={token}`): make and read them.
//! - [`live`] — records carried inline on the live channel: which the server sends, which a
//!   client may store without a pull.
//! - [`socket`] — the push socket's subprotocol offer and request/reply frames.
//! - [`log`] — the server's log rules (seqs, key dedupe, page cut, snapshot covers).
//! - [`text`] — caret positions between the engine (Unicode scalars) and the DOM (UTF-16).
//! - [`seal`] — end-to-end encryption: sealed records, epoch keys, link secrets, wrapped keys.
//! - [`backup`] — the self-describing backup file shared by server and client.
//! - [`model`] — the workspace (notebook) schema on Loro and its migrations (feature `model`).
#![warn(missing_docs)]

pub mod api;
pub mod backup;
pub mod chain;
pub mod claims;
pub mod error;
pub mod frame;
pub mod link;
pub mod live;
pub mod log;
#[cfg(feature = "model")]
pub mod model;
pub mod seal;
pub mod socket;
pub mod sync;
pub mod text;

pub use chain::Chain;
pub use claims::{Claims, Role};
pub use error::{ErrorBody, ErrorCode};
pub use frame::{FrameError, PullRecord, PullRecordKind, PushRecord};
