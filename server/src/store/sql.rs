//! What the two SQL backends share: the [`Backend`] trait (the contract `impl_store!` relies on),
//! the [`Announcer`] of new heads, the server-wide quota, and `impl_store!`, which expands the SQL
//! both run once per backend (sqlx has no cheap way to be generic over the database).
//! Parameters are numbered `$1, $2, …` in order of appearance (valid in Postgres and SQLite).

use shared_schema::api::LiveEvent;
use shared_schema::Chain;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

use super::StoreError;

/// What `impl_store!` needs of a backend.
pub(crate) trait Backend {
    /// The sqlx database.
    type Db: sqlx::Database;
    /// Held for the length of a write transaction.
    type Guard<'a>
    where
        Self: 'a;
    /// Appended to the `SELECT` that locks a workspace row for a write (` FOR UPDATE` on Postgres;
    /// empty on SQLite, where [`Backend::write_guard`] serialises writers).
    const LOCK: &'static str;
    /// The pool.
    fn pool(&self) -> &sqlx::Pool<Self::Db>;
    /// Waits for the right to write.
    async fn write_guard(&self) -> Self::Guard<'_>;
    /// Begins a write transaction (call with the write guard held). SQLite takes its write lock
    /// at `BEGIN IMMEDIATE`, so a write never fails with `SQLITE_BUSY_SNAPSHOT` because another
    /// connection (or process) committed after this transaction's first read.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, StoreError>;
    /// Begins a read-only transaction whose reads are one consistent snapshot.
    async fn begin_read(&self) -> Result<sqlx::Transaction<'static, Self::Db>, StoreError>;
    /// The announcer of new heads.
    fn announcer(&self) -> &Announcer;
    /// The server-wide quota.
    fn total_quota(&self) -> &TotalQuota;
}

/// One announcement to live streams (`shared_schema::live`): the tentative records of one
/// workspace in a batch this process's writer is committing (`tentative`, all at once, so a
/// stream sees the batch whole), the marker of its commit (`chain`), or a stored head by seq only
/// (another process's commit, through `LISTEN`).
#[derive(Debug, Clone)]
pub struct Announcement {
    /// Workspace.
    pub ws: String,
    /// The new head, for markers and seq-only announcements; the last record's seq for
    /// tentative ones.
    pub seq: u64,
    /// Tentative records (`shared_schema::live::tentative`), in seq order; empty on a marker or
    /// a seq-only announcement.
    pub tentative: Arc<[LiveEvent]>,
    /// On a marker: the chain after `seq`, durable.
    pub chain: Option<Chain>,
}

impl Announcement {
    /// Whether this announces records that are not durable yet.
    pub fn is_tentative(&self) -> bool {
        !self.tentative.is_empty()
    }
}

/// Tokens of `ws` another process revoked (all of the workspace's cached states when `tokens` is
/// empty: a rotation or deletion), so this process's live streams and push sockets check theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Workspace.
    pub ws: String,
    /// Token ids, or none for every token.
    pub tokens: Vec<String>,
}

/// Fans out announcements of new updates to live streams and remembers each workspace's last
/// announced head, so a new live stream needs no database read.
pub struct Announcer {
    events: broadcast::Sender<Announcement>,
    heads: Mutex<HashMap<String, u64>>,
    presence: broadcast::Sender<String>,
    revocations: broadcast::Sender<Revocation>,
}

impl Default for Announcer {
    fn default() -> Self {
        Self {
            events: broadcast::channel(4096).0,
            heads: Mutex::new(HashMap::new()),
            presence: broadcast::channel(1024).0,
            revocations: broadcast::channel(1024).0,
        }
    }
}

impl Announcer {
    /// Announces a new head by seq only (never moves a remembered head back).
    pub fn announce(&self, ws: &str, seq: u64) {
        self.durable(ws, seq, None);
    }

    /// Announces the updates of `ws` that this process's writer is committing, before the commit
    /// is durable: `records` are their tentative events (`shared_schema::live::tentative`), in
    /// seq order. The remembered head does not move: it is the durable one.
    pub fn announce_tentative(&self, ws: &str, records: Vec<LiveEvent>) {
        let Some(last) = records.last() else {
            return;
        };
        let _ = self.events.send(Announcement {
            ws: ws.to_owned(),
            seq: last.seq,
            tentative: records.into(),
            chain: None,
        });
    }

    /// Announces that `ws` is durable up to `seq`, with the chain after it (the marker that
    /// confirms the tentative records sent before).
    pub fn announce_durable(&self, ws: &str, seq: u64, chain: Chain) {
        self.durable(ws, seq, Some(chain));
    }

    fn durable(&self, ws: &str, seq: u64, chain: Option<Chain>) {
        if let Ok(mut heads) = self.heads.lock() {
            if heads.len() > 200_000 {
                heads.clear();
            }
            let head = heads.entry(ws.to_owned()).or_insert(seq);
            *head = (*head).max(seq);
        }
        let _ = self.events.send(Announcement {
            ws: ws.to_owned(),
            seq,
            tentative: Arc::from([]),
            chain,
        });
    }

    /// Remembers a head read from the database (without announcing it).
    pub fn remember(&self, ws: &str, seq: u64) {
        if let Ok(mut heads) = self.heads.lock() {
            let head = heads.entry(ws.to_owned()).or_insert(seq);
            *head = (*head).max(seq);
        }
    }

    /// Forgets a workspace (deleted).
    pub fn forget(&self, ws: &str) {
        if let Ok(mut heads) = self.heads.lock() {
            heads.remove(ws);
        }
    }

    /// Workspaces whose head this process remembers (those it has announced or served).
    pub fn known(&self) -> Vec<String> {
        self.heads
            .lock()
            .map(|h| h.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Announces `seq` only if it is past the remembered head (a catch-up after missed events).
    pub fn catch_up(&self, ws: &str, seq: u64) {
        if self.head(ws).is_none_or(|h| seq > h) {
            self.announce(ws, seq);
        }
    }

    /// The last head seen for `ws`.
    pub fn head(&self, ws: &str) -> Option<u64> {
        self.heads.lock().ok()?.get(ws).copied()
    }

    /// Passes on a presence heartbeat (JSON) to this process.
    pub fn presence(&self, json: &str) {
        let _ = self.presence.send(json.to_owned());
    }

    /// Presence heartbeats this process hears of.
    pub fn presence_updates(&self) -> broadcast::Receiver<String> {
        self.presence.subscribe()
    }

    /// Passes on a revocation another process shared.
    pub fn revoked(&self, revocation: Revocation) {
        let _ = self.revocations.send(revocation);
    }

    /// Revocations other processes shared.
    pub fn revocation_updates(&self) -> broadcast::Receiver<Revocation> {
        self.revocations.subscribe()
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Announcement> {
        self.events.subscribe()
    }
}

/// How often the server-wide byte total is re-read from the database (other processes write too).
pub const TOTAL_REFRESH: Duration = Duration::from_secs(5);

/// The server-wide quota: a byte total re-read every [`TOTAL_REFRESH`] and counted up by this
/// process's writes in between.
pub struct TotalQuota {
    limit: Option<i64>,
    total: AtomicI64,
    read_at: Mutex<Option<Instant>>,
}

impl TotalQuota {
    /// A quota of `limit` bytes (none = unlimited).
    pub fn new(limit: Option<i64>) -> Self {
        Self {
            limit,
            total: AtomicI64::new(0),
            read_at: Mutex::new(None),
        }
    }

    /// Whether the total must be re-read.
    pub fn stale(&self) -> bool {
        self.limit.is_some()
            && self
                .read_at
                .lock()
                .map(|at| at.is_none_or(|t| t.elapsed() > TOTAL_REFRESH))
                .unwrap_or(true)
    }

    /// Sets the total read from the database.
    pub fn set(&self, total: i64) {
        self.total.store(total, Ordering::Relaxed);
        if let Ok(mut at) = self.read_at.lock() {
            *at = Some(Instant::now());
        }
    }

    /// Counts bytes this process wrote.
    pub fn add(&self, bytes: i64) {
        self.total.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Checks `adding` more bytes fit.
    pub fn check(&self, adding: i64) -> Result<(), StoreError> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let used = self.total.load(Ordering::Relaxed);
        if adding > 0 && used.saturating_add(adding) > limit {
            return Err(StoreError::Quota {
                scope: "server",
                used,
                adding,
                limit,
            });
        }
        Ok(())
    }
}

pub(crate) fn chain_of(bytes: &[u8]) -> Result<Chain, StoreError> {
    Chain::from_slice(bytes).ok_or_else(|| StoreError::Corrupt("chain is not 32 bytes".into()))
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::BadSeq(format!("seq {v} is past {}", i64::MAX)))
}

pub(crate) fn size_of(bytes: &[u8]) -> i64 {
    i64::try_from(bytes.len()).unwrap_or(i64::MAX)
}

/// Implements [`super::Storage`] for a store that implements [`Backend`] and has a `writer`
/// field (the group-commit [`super::writer::Writer`]).
macro_rules! impl_store {
    ($store:ty, $backend:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::Storage for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(self.pool()).await?;
                Ok(())
            }

            async fn create_workspace(&self, id: &str, master: &TokenRow, now: i64) -> Result<(), StoreError> {
                let _guard = self.write_guard().await;
                let mut tx = self.begin_write().await?;
                sqlx::query("INSERT INTO workspaces (id, created_at, head_seq, chain) VALUES ($1, $2, 0, $3)")
                    .bind(id)
                    .bind(now)
                    .bind(Chain::genesis().as_bytes().to_vec())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| match e.as_database_error() {
                        Some(d) if d.is_unique_violation() => StoreError::Conflict("a workspace with this id already exists".into()),
                        _ => StoreError::Database(e),
                    })?;
                insert_token_tx(&mut tx, master).await?;
                audit_tx(&mut tx, Some(&master.id), "create", id, 0, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn push(&self, request: $crate::store::PushRequest) -> Result<PushReply, StoreError> {
                self.writer.push(request).await
            }

            async fn pull(&self, ws: &str, after: u64, limit_bytes: usize, limit_records: usize) -> Result<PullPage, StoreError> {
                let mut tx = self.begin_read().await?;
                let (head, _chain, covers) = workspace_row(&mut tx, ws).await?;
                let mut records = Vec::new();
                let mut size = 0usize;
                let mut after = after;
                if after < covers {
                    let (seq, chain, bytes): (i64, Vec<u8>, Vec<u8>) = sqlx::query_as(
                        "SELECT covers, chain, bytes FROM snapshots WHERE workspace_id = $1",
                    )
                    .bind(ws)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt(format!("workspace {ws} has snapshot_covers {covers} but no snapshot")))?;
                    size += shared_schema::log::record_size(bytes.len());
                    records.push(PullRecord { kind: PullRecordKind::Snapshot, seq: to_u64(seq), chain: chain_of(&chain)?, bytes });
                    after = to_u64(seq);
                }
                let mut more = false;
                while !more && after < head {
                    let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = sqlx::query_as(
                        "SELECT seq, chain, bytes FROM updates WHERE workspace_id = $1 AND seq > $2 ORDER BY seq LIMIT 256",
                    )
                    .bind(ws)
                    .bind(to_i64(after)?)
                    .fetch_all(&mut *tx)
                    .await?;
                    if rows.is_empty() {
                        break;
                    }
                    for (seq, chain, bytes) in rows {
                        if records.len() >= limit_records
                            || !shared_schema::log::page_admits(records.len(), size, bytes.len(), limit_bytes)
                        {
                            more = true;
                            break;
                        }
                        size += shared_schema::log::record_size(bytes.len());
                        after = to_u64(seq);
                        records.push(PullRecord { kind: PullRecordKind::Update, seq: after, chain: chain_of(&chain)?, bytes });
                    }
                }
                tx.commit().await?;
                self.announcer().remember(ws, head);
                Ok(PullPage { records, head_seq: head, more })
            }

            async fn head(&self, ws: &str) -> Result<u64, StoreError> {
                let mut tx = self.begin_read().await?;
                let head = workspace_row(&mut tx, ws).await?.0;
                tx.commit().await?;
                self.announcer().remember(ws, head);
                Ok(head)
            }

            fn announced_head(&self, ws: &str) -> Option<u64> {
                self.announcer().head(ws)
            }

            async fn put_snapshot(&self, ws: &str, covers: u64, bytes: &[u8], now: i64, retain_before: i64) -> Result<(), StoreError> {
                let _guard = self.write_guard().await;
                let mut tx = self.begin_write().await?;
                let (head, _, _) = lock_workspace(&mut tx, ws).await?;
                let (old_covers,): (i64,) = sqlx::query_as("SELECT snapshot_covers FROM workspaces WHERE id = $1")
                    .bind(ws)
                    .fetch_one(&mut *tx)
                    .await?;
                shared_schema::log::check_covers(covers, head, to_u64(old_covers))
                    .map_err(|e| StoreError::Conflict(e.to_string()))?;
                let covers_i = to_i64(covers)?;
                let chain: Vec<u8> = if covers == 0 {
                    Chain::genesis().as_bytes().to_vec()
                } else {
                    let row: Option<(Vec<u8>,)> = sqlx::query_as(
                        "SELECT chain FROM updates WHERE workspace_id = $1 AND seq = $2 \
                         UNION ALL SELECT chain FROM snapshots WHERE workspace_id = $1 AND covers = $2",
                    )
                    .bind(ws)
                    .bind(covers_i)
                    .fetch_optional(&mut *tx)
                    .await?;
                    row.map(|(c,)| c).ok_or_else(|| StoreError::Conflict(format!("seq {covers} is no longer stored")))?
                };
                sqlx::query("DELETE FROM snapshots WHERE workspace_id = $1").bind(ws).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO snapshots (workspace_id, covers, chain, bytes, size, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(ws)
                    .bind(covers_i)
                    .bind(chain)
                    .bind(bytes)
                    .bind(i32::try_from(bytes.len()).unwrap_or(i32::MAX))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO snapshot_marks (workspace_id, covers, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind(ws)
                    .bind(covers_i)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                // Retention counts from the snapshot: updates are dropped only once a snapshot that
                // covers them is older than the window; their keys stay for another window.
                let (cut,): (Option<i64>,) = sqlx::query_as(
                    "SELECT MAX(covers) FROM snapshot_marks WHERE workspace_id = $1 AND created_at <= $2",
                )
                .bind(ws)
                .bind(retain_before)
                .fetch_one(&mut *tx)
                .await?;
                if let Some(cut) = cut {
                    sqlx::query(
                        "INSERT INTO retired_keys (workspace_id, idempotency_key, seq, retired_at) \
                         SELECT workspace_id, idempotency_key, seq, $3 FROM updates WHERE workspace_id = $1 AND seq <= $2 \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(ws)
                    .bind(cut)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM updates WHERE workspace_id = $1 AND seq <= $2")
                        .bind(ws)
                        .bind(cut)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM snapshot_marks WHERE workspace_id = $1 AND covers < $2")
                        .bind(ws)
                        .bind(cut)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query("DELETE FROM retired_keys WHERE workspace_id = $1 AND retired_at < $2")
                    .bind(ws)
                    .bind(retain_before)
                    .execute(&mut *tx)
                    .await?;
                let (updates,): (Option<i64>,) = sqlx::query_as("SELECT CAST(SUM(size) AS BIGINT) FROM updates WHERE workspace_id = $1")
                    .bind(ws)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query("UPDATE workspaces SET snapshot_covers = $1, stored_bytes = $2 WHERE id = $3")
                    .bind(covers_i)
                    .bind(updates.unwrap_or(0).saturating_add(size_of(bytes)))
                    .bind(ws)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn insert_token(&self, token: &TokenRow) -> Result<(), StoreError> {
                let _guard = self.write_guard().await;
                let mut tx = self.begin_write().await?;
                lock_workspace(&mut tx, &token.workspace_id).await?;
                insert_token_tx(&mut tx, token).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_tokens(&self, ws: &str) -> Result<Vec<TokenInfo>, StoreError> {
                let rows: Vec<(String, String, String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT id, role, label, created_at, expires_at, revoked_at FROM tokens WHERE workspace_id = $1 ORDER BY created_at, id",
                )
                .bind(ws)
                .fetch_all(self.pool())
                .await?;
                rows.into_iter()
                    .map(|(id, role, label, created_at, expires_at, revoked_at)| {
                        Ok(TokenInfo {
                            id,
                            role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
                            label,
                            created_at: to_u64(created_at),
                            expires_at: expires_at.map(to_u64),
                            revoked_at: revoked_at.map(to_u64),
                        })
                    })
                    .collect()
            }

            async fn revoke_token(&self, ws: &str, id: &str, now: i64) -> Result<bool, StoreError> {
                let _guard = self.write_guard().await;
                let mut tx = self.begin_write().await?;
                lock_workspace(&mut tx, ws).await?;
                let exists: Option<(String,)> = sqlx::query_as("SELECT id FROM tokens WHERE workspace_id = $1 AND id = $2")
                    .bind(ws)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if exists.is_none() {
                    return Ok(false);
                }
                sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE workspace_id = $2 AND id = $3 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(ws)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn put_keys(&self, ws: &str, keys: &[(String, u32, Vec<u8>)]) -> Result<(), StoreError> {
                let _guard = self.write_guard().await;
                let mut tx = self.begin_write().await?;
                lock_workspace(&mut tx, ws).await?;
                for (token_id, epoch, wrapped) in keys {
                    let known: Option<(String,)> = sqlx::query_as("SELECT id FROM tokens WHERE workspace_id = $1 AND id = $2")
                        .bind(ws)
                        .bind(token_id.as_str())
                        .fetch_optional(&mut *tx)
                        .await?;
                    if known.is_none() {
                        return Err(StoreError::Conflict("a key names a token that is not one of this workspace's".into()));
                    }
                    sqlx::query("INSERT INTO wrapped_keys (workspace_id, token_id, epoch, wrapped) VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id, token_id, epoch) DO UPDATE SET wrapped = excluded.wrapped")
                        .bind(ws)
                        .bind(token_id.as_str())
                        .bind(i64::from(*epoch))
                        .bind(wrapped.as_slice())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn keys_for(&self, ws: &str, token_id: &str) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
                let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT epoch, wrapped FROM wrapped_keys WHERE workspace_id = $1 AND token_id = $2 ORDER BY epoch")
                    .bind(ws)
                    .bind(token_id)
                    .fetch_all(self.pool())
                    .await?;
                rows.into_iter()
                    .map(|(epoch, wrapped)| {
                        u32::try_from(epoch)
                            .map(|e| (e, wrapped))
                            .map_err(|_| StoreError::Corrupt(format!("key epoch {epoch}")))
                    })
                    .collect()
            }

            async fn rotate(&self, ws: &str, caller: &str, new: &TokenRow, now: i64) -> Result<(), StoreError> {
                let _guard = self.write_guard().await;
                let mut tx = self.begin_write().await?;
                lock_workspace(&mut tx, ws).await?;
                // Checked under the workspace lock: of two concurrent rotations with one token,
                // the second sees it revoked by the first.
                let row: Option<(String, String, Option<i64>)> =
                    sqlx::query_as("SELECT workspace_id, role, revoked_at FROM tokens WHERE id = $1")
                        .bind(caller)
                        .fetch_optional(&mut *tx)
                        .await?;
                match row {
                    Some((w, role, None)) if w == ws && role == Role::Master.as_str() => {}
                    _ => return Err(StoreError::Revoked),
                }
                insert_token_tx(&mut tx, new).await?;
                sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE workspace_id = $2 AND role = 'master' AND id <> $3 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(ws)
                    .bind(new.id.as_str())
                    .execute(&mut *tx)
                    .await?;
                audit_tx(&mut tx, Some(caller), "rotate", ws, 0, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_token(&self, id: &str) -> Result<Option<TokenRow>, StoreError> {
                let row: Option<(String, String, String, String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT id, workspace_id, role, label, created_at, expires_at, revoked_at FROM tokens WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
                row.map(|(id, workspace_id, role, label, created_at, expires_at, revoked_at)| {
                    Ok(TokenRow {
                        id,
                        workspace_id,
                        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
                        label,
                        created_at,
                        expires_at,
                        revoked_at,
                    })
                })
                .transpose()
            }

            async fn token_state(&self, id: &str) -> Result<TokenState, StoreError> {
                let row: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT t.revoked_at, w.deleted_at FROM tokens t JOIN workspaces w ON w.id = t.workspace_id WHERE t.id = $1",
                )
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
                Ok(match row {
                    None => TokenState::Unknown,
                    Some((_, Some(_))) => TokenState::WorkspaceDeleted,
                    Some((Some(_), None)) => TokenState::Revoked,
                    Some((None, None)) => TokenState::Active,
                })
            }

            async fn delete_workspace(&self, ws: &str, now: i64) -> Result<(), StoreError> {
                let _guard = self.write_guard().await;
                let mut tx = self.begin_write().await?;
                lock_workspace(&mut tx, ws).await?;
                for table in ["updates", "snapshots", "snapshot_marks", "retired_keys", "wrapped_keys"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE workspace_id = $1")).bind(ws).execute(&mut *tx).await?;
                }
                sqlx::query("UPDATE workspaces SET deleted_at = $1, stored_bytes = 0 WHERE id = $2").bind(now).bind(ws).execute(&mut *tx).await?;
                tx.commit().await?;
                self.announcer().forget(ws);
                Ok(())
            }

            async fn import(&self, ws: &str, master: &TokenRow, backup: &Backup, now: i64) -> Result<(), StoreError> {
                let _guard = self.write_guard().await;
                let mut tx = self.begin_write().await?;
                let mut covers = 0u64;
                let mut stored = 0i64;
                for r in &backup.records {
                    to_i64(r.seq)?;
                    stored = stored.saturating_add(size_of(&r.bytes));
                    if r.kind == PullRecordKind::Snapshot {
                        covers = r.seq;
                    }
                }
                sqlx::query("INSERT INTO workspaces (id, created_at, head_seq, chain, snapshot_covers, stored_bytes) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(ws)
                    .bind(now)
                    .bind(to_i64(backup.header.head_seq)?)
                    .bind(backup.header.chain_head.as_bytes().to_vec())
                    .bind(to_i64(covers)?)
                    .bind(stored)
                    .execute(&mut *tx)
                    .await?;
                for r in &backup.records {
                    match r.kind {
                        PullRecordKind::Snapshot => {
                            sqlx::query("INSERT INTO snapshots (workspace_id, covers, chain, bytes, size, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                                .bind(ws)
                                .bind(to_i64(r.seq)?)
                                .bind(r.chain.as_bytes().to_vec())
                                .bind(r.bytes.as_slice())
                                .bind(i32::try_from(r.bytes.len()).unwrap_or(i32::MAX))
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                        }
                        PullRecordKind::Update => {
                            sqlx::query(
                                "INSERT INTO updates (workspace_id, seq, bytes, size, idempotency_key, chain, token_id, created_at) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                            )
                            .bind(ws)
                            .bind(to_i64(r.seq)?)
                            .bind(r.bytes.as_slice())
                            .bind(i32::try_from(r.bytes.len()).unwrap_or(i32::MAX))
                            .bind(format!("import-{}", r.seq).into_bytes())
                            .bind(r.chain.as_bytes().to_vec())
                            .bind(master.id.as_str())
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                }
                insert_token_tx(&mut tx, master).await?;
                audit_tx(&mut tx, Some(&master.id), "import", ws, stored, now).await?;
                tx.commit().await?;
                self.total_quota().add(stored);
                Ok(())
            }

            async fn backup(&self, ws: &str) -> Result<$crate::store::BackupReader, StoreError> {
                let mut tx = self.begin_read().await?;
                let (head, chain, covers) = workspace_row(&mut tx, ws).await?;
                let (records, rx) = tokio::sync::mpsc::channel(8);
                let ws = ws.to_owned();
                tokio::spawn(async move {
                    let read = async {
                        let mut after = 0u64;
                        if covers > 0 {
                            let (seq, chain, bytes): (i64, Vec<u8>, Vec<u8>) = sqlx::query_as(
                                "SELECT covers, chain, bytes FROM snapshots WHERE workspace_id = $1",
                            )
                            .bind(&ws)
                            .fetch_one(&mut *tx)
                            .await?;
                            after = to_u64(seq);
                            let r = PullRecord { kind: PullRecordKind::Snapshot, seq: after, chain: chain_of(&chain)?, bytes };
                            if records.send(Ok(r)).await.is_err() {
                                return Ok(());
                            }
                        }
                        while after < head {
                            let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = sqlx::query_as(
                                "SELECT seq, chain, bytes FROM updates WHERE workspace_id = $1 AND seq > $2 ORDER BY seq LIMIT 64",
                            )
                            .bind(&ws)
                            .bind(to_i64(after)?)
                            .fetch_all(&mut *tx)
                            .await?;
                            if rows.is_empty() {
                                break;
                            }
                            for (seq, chain, bytes) in rows {
                                after = to_u64(seq);
                                let r = PullRecord { kind: PullRecordKind::Update, seq: after, chain: chain_of(&chain)?, bytes };
                                if records.send(Ok(r)).await.is_err() {
                                    return Ok(());
                                }
                            }
                        }
                        Ok::<(), StoreError>(())
                    };
                    if let Err(e) = read.await {
                        let _ = records.send(Err(e)).await;
                    }
                });
                Ok($crate::store::BackupReader { head_seq: head, chain_head: chain_of(&chain)?, records: rx })
            }

            async fn audit(&self, token_id: Option<&str>, action: &str, ws: Option<&str>, bytes: i64, now: i64) -> Result<(), StoreError> {
                // A write like any other: under the write guard, in a write transaction.
                let _guard = self.write_guard().await;
                let mut tx = self.begin_write().await?;
                sqlx::query("INSERT INTO audit_log (token_id, action, workspace_id, bytes, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(token_id)
                    .bind(action)
                    .bind(ws)
                    .bind(bytes)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn workspace_bytes(&self, ws: &str) -> Result<i64, StoreError> {
                let row: Option<(i64,)> = sqlx::query_as("SELECT stored_bytes FROM workspaces WHERE id = $1")
                    .bind(ws)
                    .fetch_optional(self.pool())
                    .await?;
                row.map(|(b,)| b).ok_or(StoreError::NotFound)
            }

            async fn bytes_stored(&self) -> Result<i64, StoreError> {
                let (total,): (Option<i64>,) = sqlx::query_as("SELECT CAST(SUM(stored_bytes) AS BIGINT) FROM workspaces")
                    .fetch_one(self.pool())
                    .await?;
                let total = total.unwrap_or(0);
                self.total_quota().set(total);
                Ok(total)
            }

            async fn check_total_quota(&self, adding: i64) -> Result<(), StoreError> {
                if self.total_quota().stale() {
                    self.bytes_stored().await?;
                }
                self.total_quota().check(adding)
            }

            fn subscribe(&self) -> tokio::sync::broadcast::Receiver<crate::store::sql::Announcement> {
                self.announcer().subscribe()
            }

            async fn share_presence(&self, json: &str) -> Result<(), StoreError> {
                self.share_presence_impl(json).await
            }

            fn presence_updates(&self) -> tokio::sync::broadcast::Receiver<String> {
                self.announcer().presence_updates()
            }

            async fn share_revocation(&self, ws: &str, tokens: &[String]) -> Result<(), StoreError> {
                self.share_revocation_impl(ws, tokens).await
            }

            fn revocation_updates(&self) -> tokio::sync::broadcast::Receiver<crate::store::sql::Revocation> {
                self.announcer().revocation_updates()
            }
        }

        async fn insert_token_tx(tx: &mut sqlx::Transaction<'_, Db>, t: &TokenRow) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO tokens (id, workspace_id, role, label, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(t.id.as_str())
                .bind(t.workspace_id.as_str())
                .bind(t.role.as_str())
                .bind(t.label.as_str())
                .bind(t.created_at)
                .bind(t.expires_at)
                .bind(t.revoked_at)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        async fn audit_tx(tx: &mut sqlx::Transaction<'_, Db>, token_id: Option<&str>, action: &str, ws: &str, bytes: i64, now: i64) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO audit_log (token_id, action, workspace_id, bytes, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(token_id)
                .bind(action)
                .bind(ws)
                .bind(bytes)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        /// Locks the workspace row for the transaction; returns (head_seq, chain, stored_bytes).
        async fn lock_workspace(tx: &mut sqlx::Transaction<'_, Db>, ws: &str) -> Result<(u64, Vec<u8>, i64), StoreError> {
            let sql = format!(
                "SELECT head_seq, chain, deleted_at, stored_bytes FROM workspaces WHERE id = $1{}",
                <$store as Backend>::LOCK
            );
            let row: Option<(i64, Vec<u8>, Option<i64>, i64)> = sqlx::query_as(&sql)
                .bind(ws)
                .fetch_optional(&mut **tx)
                .await?;
            match row {
                None => Err(StoreError::NotFound),
                Some((_, _, Some(_), _)) => Err(StoreError::Deleted),
                Some((head, chain, None, stored)) => Ok((to_u64(head), chain, stored)),
            }
        }

        /// (head_seq, chain, snapshot_covers) of a live workspace.
        async fn workspace_row(tx: &mut sqlx::Transaction<'_, Db>, ws: &str) -> Result<(u64, Vec<u8>, u64), StoreError> {
            let row: Option<(i64, Vec<u8>, i64, Option<i64>)> =
                sqlx::query_as("SELECT head_seq, chain, snapshot_covers, deleted_at FROM workspaces WHERE id = $1")
                    .bind(ws)
                    .fetch_optional(&mut **tx)
                    .await?;
            match row {
                None => Err(StoreError::NotFound),
                Some((_, _, _, Some(_))) => Err(StoreError::Deleted),
                Some((head, chain, covers, None)) => Ok((to_u64(head), chain, to_u64(covers))),
            }
        }
    };
}

pub(crate) use impl_store;
