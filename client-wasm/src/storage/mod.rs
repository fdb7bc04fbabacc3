//! Local storage of workspaces (design §2), behind one small async trait.
//!
//! Four logical stores: `workspaces` (metadata), `snapshots` (latest local snapshot),
//! `pending` (local updates not yet acknowledged by the server) and `received` (remote updates
//! applied since the last local snapshot). [`MemoryStore`] is the in-memory twin used by native
//! tests; `IdbStore` (wasm32 only) keeps them in IndexedDB.

mod memory;
pub use memory::MemoryStore;

#[cfg(target_arch = "wasm32")]
pub mod idb;
#[cfg(target_arch = "wasm32")]
pub use idb::IdbStore;

use serde::{Deserialize, Serialize};
use shared_schema::{Chain, Role};
use thiserror::Error;

/// A storage operation failed. Nothing already stored is lost by a failed write: every write is
/// one transaction that either commits whole or not at all.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StorageError {
    /// The browser's storage quota is full.
    #[error("browser storage is full: free space (delete old workspaces or site data) and retry; nothing stored was lost")]
    QuotaExceeded,
    /// Another tab holds an older version of the database open and blocks the upgrade.
    #[error("another Hearth tab is blocking a storage upgrade: close other tabs and reload")]
    Blocked,
    /// IndexedDB is not available (private mode, disabled, or not a browser).
    #[error("local storage is unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be decoded.
    #[error("a stored record is damaged: {0}")]
    Corrupt(String),
    /// Any other storage failure.
    #[error("storage failed: {0}")]
    Other(String),
}

/// What the client knows about one workspace (the `workspaces` store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceRecord {
    /// Workspace id.
    pub id: String,
    /// Display name (also kept in the document).
    pub name: String,
    /// This device's role; `master` for a workspace created here.
    pub role: Role,
    /// Access or master token, if the workspace syncs.
    pub token: Option<String>,
    /// Server base URL, if the workspace syncs.
    pub server_url: Option<String>,
    /// Highest seq pulled from the server.
    pub last_pulled_seq: u64,
    /// Chain value at `last_pulled_seq`.
    pub chain_head: Chain,
    /// Schema version of the document after the last open.
    pub schema_version: i64,
    /// This device's Loro peer id for this workspace.
    pub peer_id: u64,
}

/// A local update waiting for the server's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpdate {
    /// Idempotency key (also its order: keys sort by creation time).
    pub key: String,
    /// Loro update bytes.
    pub bytes: Vec<u8>,
}

/// Everything needed to rebuild a workspace's document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedState {
    /// Metadata.
    pub record: WorkspaceRecord,
    /// Latest local snapshot.
    pub snapshot: Option<Vec<u8>>,
    /// Remote updates since the snapshot, by seq.
    pub received: Vec<(u64, Vec<u8>)>,
    /// Local updates not yet acknowledged.
    pub pending: Vec<PendingUpdate>,
}

/// Async storage of workspaces. Every method is one atomic transaction.
#[allow(async_fn_in_trait)]
pub trait Store {
    /// Creates or replaces a workspace's metadata.
    async fn put_workspace(&self, record: &WorkspaceRecord) -> Result<(), StorageError>;
    /// Reads one workspace's metadata.
    async fn get_workspace(&self, id: &str) -> Result<Option<WorkspaceRecord>, StorageError>;
    /// Lists every workspace.
    async fn list_workspaces(&self) -> Result<Vec<WorkspaceRecord>, StorageError>;
    /// Forgets a workspace and all its data.
    async fn delete_workspace(&self, id: &str) -> Result<(), StorageError>;
    /// Loads everything of a workspace in one read transaction.
    async fn load(&self, id: &str) -> Result<Option<LoadedState>, StorageError>;
    /// Appends one local update.
    async fn append_pending(&self, id: &str, update: &PendingUpdate) -> Result<(), StorageError>;
    /// Lists pending updates in key order.
    async fn pending(&self, id: &str) -> Result<Vec<PendingUpdate>, StorageError>;
    /// Deletes acknowledged pending updates.
    async fn ack_pending(&self, id: &str, keys: &[String]) -> Result<(), StorageError>;
    /// Stores pulled updates and the new pull position together.
    async fn put_received(
        &self,
        record: &WorkspaceRecord,
        updates: &[(u64, Vec<u8>)],
    ) -> Result<(), StorageError>;
    /// How many pulled updates are stored since the last local snapshot.
    async fn received_len(&self, id: &str) -> Result<usize, StorageError>;
    /// Writes a local snapshot and drops received updates it covers (`seq <= covers`).
    async fn compact(&self, id: &str, snapshot: &[u8], covers: u64) -> Result<(), StorageError>;
}
