//! Storage of opaque workspace data behind one async trait, with two implementations over sqlx:
//! Postgres (production, [`postgres`]) and SQLite (embedded default, [`sqlite`]). Both share the
//! same SQL and logic (`impl_store!` in [`sql`]); they differ in locking and fan-out.
//!
//! Every push is one transaction: the workspace row is locked, each record gets the next seq (or
//! its original seq when its idempotency key is known) and its chain value, and the head moves —
//! so seqs are gap-free and the integrity chain is computed with the insert.

pub mod postgres;
mod sql;
pub mod sqlite;

use async_trait::async_trait;
use shared_schema::api::{PushReply, TokenInfo};
use shared_schema::backup::Backup;
use shared_schema::frame::{PullRecord, PushRecord};
use shared_schema::Role;
use thiserror::Error;
use tokio::sync::broadcast;

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
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed at start.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value is damaged.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

/// One page of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullPage {
    /// Snapshot (if the cursor predates it) then updates, in seq order.
    pub records: Vec<PullRecord>,
    /// The workspace's head seq.
    pub head_seq: u64,
    /// True when the page was cut by the size limit.
    pub more: bool,
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

/// The storage trait.
#[async_trait]
pub trait Storage: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Checks the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Creates a workspace with its first (master) token.
    async fn create_workspace(
        &self,
        id: &str,
        master: &TokenRow,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Stores a batch atomically; known idempotency keys return their original seq.
    async fn push(
        &self,
        ws: &str,
        token_id: &str,
        records: &[PushRecord],
        now: i64,
    ) -> Result<PushReply, StoreError>;
    /// Reads updates after `after`, snapshot first when `after` predates it, up to `limit_bytes`
    /// (at least one record).
    async fn pull(&self, ws: &str, after: u64, limit_bytes: usize) -> Result<PullPage, StoreError>;
    /// The workspace's head seq.
    async fn head(&self, ws: &str) -> Result<u64, StoreError>;
    /// Stores a snapshot covering updates ≤ `covers`, and drops covered updates older than
    /// `retain_before` (seconds).
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
    /// Revokes every master token of `ws` except `keep`.
    async fn revoke_masters_except(&self, ws: &str, keep: &str, now: i64)
        -> Result<(), StoreError>;
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
    /// Appends to the audit log.
    async fn audit(
        &self,
        token_id: Option<&str>,
        action: &str,
        ws: Option<&str>,
        bytes: i64,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Total bytes of stored updates and snapshots (for metrics).
    async fn bytes_stored(&self) -> Result<i64, StoreError>;
    /// Subscribes to `(workspace, seq)` announcements of new updates from every process on
    /// this database (Postgres: `LISTEN/NOTIFY`; SQLite: this process).
    fn subscribe(&self) -> broadcast::Receiver<(String, u64)>;
}

/// Opens the storage for a database URL and runs its migrations.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Storage>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(postgres::PgStore::connect(url).await?))
    } else {
        Ok(std::sync::Arc::new(
            sqlite::SqliteStore::connect(url).await?,
        ))
    }
}
