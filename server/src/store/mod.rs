//! Storage of opaque workspace data behind one async trait, with two implementations over sqlx:
//! Postgres (production, [`postgres`]) and SQLite (embedded default, [`sqlite`]).
//!
//! - [`writer`] — group commit: concurrent pushes (to one or many workspaces) are gathered by one
//!   writer per process and committed in one transaction, each caller answered after that commit.
//!   The plan of a batch (seqs, chain, keys, quota) is I/O-free; the backends only run queries.
//! - `sql` — the [`sql::Backend`] trait every backend implements (pool, write guard, consistent
//!   read, announcing) and the SQL both share.
//!
//! Every read that answers one request (a pull page, a backup, the live head) is one consistent
//! read: REPEATABLE READ on Postgres, one read transaction on SQLite.

pub mod postgres;
mod sql;
pub use sql::{Announcement, Revocation};
pub mod sqlite;
pub mod writer;

use async_trait::async_trait;
use shared_schema::api::{PushReply, TokenInfo};
use shared_schema::backup::Backup;
use shared_schema::frame::{PullRecord, PushRecord};
use shared_schema::{Chain, Role};
use thiserror::Error;
use tokio::sync::{broadcast, mpsc};

/// A storage operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The workspace does not exist.
    #[error("workspace not found")]
    NotFound,
    /// The workspace was deleted by its owner.
    #[error("workspace was deleted")]
    Deleted,
    /// The request conflicts with stored state.
    #[error("{0}")]
    Conflict(String),
    /// The caller's token was revoked (checked inside the transaction, e.g. by a rotation that
    /// committed first).
    #[error("the token was revoked")]
    Revoked,
    /// A storage quota would be exceeded.
    #[error("{scope} quota exceeded: {used} + {adding} bytes > {limit} bytes")]
    Quota {
        /// `workspace` or `server`.
        scope: &'static str,
        /// Bytes stored now.
        used: i64,
        /// Bytes the request adds.
        adding: i64,
        /// The quota.
        limit: i64,
    },
    /// A seq is past what the log can hold.
    #[error("{0}")]
    BadSeq(String),
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The batch this request was committed in failed (the database error is logged once).
    #[error("the group commit failed: {0}")]
    BatchFailed(String),
    /// Migrations failed at start.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value is damaged.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

/// Options of a store (from the server's config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Most pooled database connections of this process.
    pub max_connections: u32,
    /// Bytes one workspace may hold (updates + snapshot); `None` = no limit.
    pub workspace_quota: Option<i64>,
    /// Bytes all workspaces together may hold; `None` = no limit.
    pub total_quota: Option<i64>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            workspace_quota: None,
            total_quota: None,
        }
    }
}

/// One page of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullPage {
    /// Snapshot (if the cursor predates it) then updates, in seq order.
    pub records: Vec<PullRecord>,
    /// The workspace's head seq.
    pub head_seq: u64,
    /// True when the page was cut by the size or record limit.
    pub more: bool,
}

/// A backup being read in one consistent read: the head, then every record in order.
pub struct BackupReader {
    /// The head seq the records end at.
    pub head_seq: u64,
    /// The chain at the head.
    pub chain_head: Chain,
    /// Snapshot (if any), then updates; a read error ends the stream with that error.
    pub records: mpsc::Receiver<Result<PullRecord, StoreError>>,
}

/// A token row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Token id (JWT `sub`).
    pub id: String,
    /// Workspace.
    pub workspace_id: String,
    /// Role.
    pub role: Role,
    /// Label.
    pub label: String,
    /// Created, seconds.
    pub created_at: i64,
    /// Expiry, seconds.
    pub expires_at: Option<i64>,
    /// Revoked, seconds.
    pub revoked_at: Option<i64>,
}

/// What the revocation check needs to know of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// Valid.
    Active,
    /// Revoked by the owner.
    Revoked,
    /// Its workspace was deleted.
    WorkspaceDeleted,
    /// Not in the tokens table.
    Unknown,
}

/// A push as the route hands it to storage.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// Workspace.
    pub ws: String,
    /// The pushing token (for the audit row).
    pub token_id: String,
    /// The batch.
    pub records: Vec<PushRecord>,
    /// Size of the request body (for the audit row).
    pub body_bytes: i64,
    /// Seconds.
    pub now: i64,
}

/// The storage trait.
#[async_trait]
pub trait Storage: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Checks the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Creates a workspace with its first (master) token. Conflict if the id is taken.
    async fn create_workspace(
        &self,
        id: &str,
        master: &TokenRow,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Stores a batch atomically through the group-commit writer, with its audit row in the same
    /// transaction; known idempotency keys (also of updates dropped by retention, for the
    /// retention window) return their original seq.
    async fn push(&self, request: PushRequest) -> Result<PushReply, StoreError>;
    /// Reads updates after `after`, snapshot first when `after` predates it, up to `limit_bytes`
    /// and `limit_records` (at least one record), in one consistent read.
    async fn pull(
        &self,
        ws: &str,
        after: u64,
        limit_bytes: usize,
        limit_records: usize,
    ) -> Result<PullPage, StoreError>;
    /// The workspace's head seq.
    async fn head(&self, ws: &str) -> Result<u64, StoreError>;
    /// The last head this process has seen announced for `ws`, if any (no database access).
    fn announced_head(&self, ws: &str) -> Option<u64>;
    /// Stores a snapshot covering updates ≤ `covers`. Updates are dropped only once a snapshot
    /// covering them is older than `retain_before` (seconds); their keys are kept until
    /// `retain_before` passes their drop time.
    async fn put_snapshot(
        &self,
        ws: &str,
        covers: u64,
        bytes: &[u8],
        now: i64,
        retain_before: i64,
    ) -> Result<(), StoreError>;
    /// Adds a token.
    async fn insert_token(&self, token: &TokenRow) -> Result<(), StoreError>;
    /// Lists a workspace's tokens, oldest first.
    async fn list_tokens(&self, ws: &str) -> Result<Vec<TokenInfo>, StoreError>;
    /// Revokes a token of the workspace; false if there is no such token.
    async fn revoke_token(&self, ws: &str, id: &str, now: i64) -> Result<bool, StoreError>;
    /// Stores wrapped epoch keys `(token_id, epoch, wrapped)` of `ws`, replacing the same
    /// `(token_id, epoch)`; [`StoreError::Conflict`] when a token id is not one of `ws`'s.
    async fn put_keys(&self, ws: &str, keys: &[(String, u32, Vec<u8>)]) -> Result<(), StoreError>;
    /// The wrapped keys of `ws` for `token_id`, oldest epoch first.
    async fn keys_for(&self, ws: &str, token_id: &str) -> Result<Vec<(u32, Vec<u8>)>, StoreError>;
    /// In one transaction: checks `caller` is an active master token of `ws` ([`StoreError::Revoked`]
    /// if not), adds `new` and revokes every other master token.
    async fn rotate(
        &self,
        ws: &str,
        caller: &str,
        new: &TokenRow,
        now: i64,
    ) -> Result<(), StoreError>;
    /// One token row.
    async fn get_token(&self, id: &str) -> Result<Option<TokenRow>, StoreError>;
    /// The state of a token (for the revocation check).
    async fn token_state(&self, id: &str) -> Result<TokenState, StoreError>;
    /// Deletes a workspace's data, keeping a tombstone so its tokens get "deleted".
    async fn delete_workspace(&self, ws: &str, now: i64) -> Result<(), StoreError>;
    /// Restores a verified backup into a new workspace `ws` with master token `master`.
    async fn import(
        &self,
        ws: &str,
        master: &TokenRow,
        backup: &Backup,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Reads a whole workspace for a backup, streaming, in one consistent read.
    async fn backup(&self, ws: &str) -> Result<BackupReader, StoreError>;
    /// Appends to the audit log.
    async fn audit(
        &self,
        token_id: Option<&str>,
        action: &str,
        ws: Option<&str>,
        bytes: i64,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Bytes stored for one workspace (updates + snapshot).
    async fn workspace_bytes(&self, ws: &str) -> Result<i64, StoreError>;
    /// Total bytes of stored updates and snapshots.
    async fn bytes_stored(&self) -> Result<i64, StoreError>;
    /// Checks that `adding` more bytes fit the server's total quota (from a total refreshed every
    /// few seconds).
    async fn check_total_quota(&self, adding: i64) -> Result<(), StoreError>;
    /// Subscribes to announcements of new updates from every process on this database
    /// (Postgres: `LISTEN/NOTIFY`; SQLite: this process). Updates this process stored come with
    /// their inline record when small.
    fn subscribe(&self) -> broadcast::Receiver<Announcement>;
    /// Shares a presence heartbeat (JSON of `presence::Heartbeat`) with every process on this
    /// database, this one included (Postgres: `NOTIFY` on `hearth_presence`, never a table;
    /// SQLite: this process). Nothing is stored.
    async fn share_presence(&self, json: &str) -> Result<(), StoreError>;
    /// Presence heartbeats from every process, as shared.
    fn presence_updates(&self) -> broadcast::Receiver<String>;
    /// Tells every *other* process on this database that `tokens` of `ws` (every token of it
    /// when empty) no longer open it, so their live streams and push sockets end now rather than
    /// at their next keepalive (Postgres: `NOTIFY` on `hearth_revocations`; SQLite: one process,
    /// nothing to tell).
    async fn share_revocation(&self, ws: &str, tokens: &[String]) -> Result<(), StoreError>;
    /// Revocations other processes shared.
    fn revocation_updates(&self) -> broadcast::Receiver<Revocation>;
}

/// Opens the storage for a database URL and runs its migrations.
pub async fn open(
    url: &str,
    options: StoreOptions,
) -> Result<std::sync::Arc<dyn Storage>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(
            postgres::PgStore::connect(url, options).await?,
        ))
    } else {
        Ok(std::sync::Arc::new(
            sqlite::SqliteStore::connect(url, options).await?,
        ))
    }
}
