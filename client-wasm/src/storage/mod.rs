//! Local storage of workspaces (design §2), behind one small async trait. Loro-free: the sync
//! worker uses it too, and moves bytes only.
//!
//! Logical stores: `workspaces` (metadata), `snapshots` (latest local snapshot), `pending` (local
//! updates not yet acknowledged by the server), `received` (remote updates and snapshots since the
//! local snapshot), `quarantine` (remote records the engine could not read: kept, never applied)
//! and `outbox` (a compaction snapshot waiting to be uploaded). Beside the local snapshot, a
//! workspace may have an **open cache**: a snapshot of the whole document as an engine last saw
//! it, which only makes the next open fast (see [`Store::save_open_cache`]).
//!
//! Every method is one atomic transaction, and every change to a record is a read-modify-write
//! *inside* that transaction ([`apply_change`], [`Store::store_page`]'s cursor check): no caller
//! ever writes back a record it read before an `await`. [`MemoryStore`] is the in-memory twin used
//! by native tests and the fault simulation; `IdbStore` (wasm32 only) keeps them in IndexedDB.
//!
//! - `record` — [`WorkspaceRecord`] and [`apply_change`], the one way a record changes.
//! - `pending` — [`PendingUpdate`]s: their ordered keys (reserved ahead), merges, staging.

mod pending;
mod record;
pub use pending::*;
pub use record::*;

mod memory;
pub use memory::MemoryStore;

#[cfg(target_arch = "wasm32")]
pub mod idb;
#[cfg(target_arch = "wasm32")]
pub use idb::IdbStore;

use serde::{Deserialize, Serialize};
use shared_schema::frame::PullRecordKind;
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

impl StorageError {
    /// Classifies a DOM exception from IndexedDB by its name and message: a quota
    /// (`QuotaExceededError`) or a full disk is [`StorageError::QuotaExceeded`] — both are what
    /// the user can act on. Chromium reports a full disk as `UnknownError: … IO error: …
    /// FILE_ERROR_NO_SPACE` (seen on a real full disk), or as a quota error "Encountered disk
    /// full", or — for values large enough to be stored as files — as `DataError: Failed to
    /// write blobs (IOError)`; the rest is passed on by name.
    pub fn from_dom(name: &str, message: &str) -> Self {
        let disk_full = [
            "NO_SPACE",
            "disk full",
            "No space",
            "QuotaExceeded",
            "Failed to write blobs",
        ]
        .iter()
        .any(|m| message.contains(m));
        if name == "QuotaExceededError" || disk_full {
            Self::QuotaExceeded
        } else {
            Self::Other(format!("{name}: {message}"))
        }
    }
}

/// A record pulled from the server (or acknowledged by it), kept until a local snapshot covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRecord {
    /// Server seq (a snapshot's `covers`).
    pub seq: u64,
    /// Update or snapshot.
    pub kind: PullRecordKind,
    /// Opaque bytes, exactly as the server stores them.
    pub bytes: Vec<u8>,
}

/// Everything needed to rebuild a workspace's document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedState {
    /// Metadata.
    pub record: WorkspaceRecord,
    /// Latest local snapshot (covers `record.snapshot_covers`).
    pub snapshot: Option<Vec<u8>>,
    /// Remote records since the snapshot, by seq.
    pub received: Vec<RemoteRecord>,
    /// Local updates not yet acknowledged, in causal order.
    pub pending: Vec<PendingUpdate>,
    /// Seqs of remote records that could not be read.
    pub quarantined: Vec<u64>,
}

/// A snapshot of a whole document as an engine saw it, and where that engine's reads of storage
/// had ended ([`Since`]): an open imports it, then only what is stored after `since`
/// ([`Store::save_open_cache`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCache {
    /// Everything stored up to `since` is in `snapshot` (and perhaps more).
    pub since: Since,
    /// Loro snapshot bytes.
    pub snapshot: Vec<u8>,
}

impl OpenCache {
    /// `u32` length (big-endian) of the JSON of `since`, that JSON, then the snapshot.
    pub fn encode(&self) -> Vec<u8> {
        let since = serde_json::to_vec(&self.since).unwrap_or_default();
        let mut out = Vec::with_capacity(4 + since.len() + self.snapshot.len());
        out.extend_from_slice(&(since.len() as u32).to_be_bytes());
        out.extend_from_slice(&since);
        out.extend_from_slice(&self.snapshot);
        out
    }

    /// Reads what [`Self::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        let damaged = || StorageError::Corrupt("the open cache is damaged".into());
        let len = bytes
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| u32::from_be_bytes(b) as usize)
            .ok_or_else(damaged)?;
        let json = bytes.get(4..4 + len).ok_or_else(damaged)?;
        let since = serde_json::from_slice(json).map_err(|_| damaged())?;
        Ok(Self {
            since,
            snapshot: bytes[4 + len..].to_vec(),
        })
    }
}

/// Where a caller's last load ended (see [`Store::load_since`]); the default loads everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Since {
    /// The snapshot the caller has (`None`: read it).
    pub snapshot_covers: Option<u64>,
    /// Highest received seq the caller has.
    pub received_after: u64,
    /// Highest pending key the caller has.
    pub pending_after: Option<String>,
}

/// A verified pull page to store: it applies only if the cursor is still `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Cursor (seq, chain) the page was pulled after.
    pub from: (u64, Chain),
    /// Cursor after the page.
    pub to: (u64, Chain),
    /// Its records.
    pub records: Vec<RemoteRecord>,
    /// The verified chain value at each record's seq ([`remember_chains`]).
    pub chains: Vec<(u64, Chain)>,
}

/// A compaction: the local snapshot becomes `snapshot`, which holds exactly the previous local
/// snapshot and the received records ≤ `covers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compaction {
    /// Snapshot bytes.
    pub snapshot: Vec<u8>,
    /// The seq it covers.
    pub covers: u64,
    /// Also queue these bytes (the snapshot, sealed in an encrypted notebook) for upload to the
    /// server (master devices only).
    pub upload: Option<Vec<u8>>,
}

/// Async storage of workspaces. Every method is one atomic transaction.
#[allow(async_fn_in_trait)]
pub trait Store {
    /// Stores a new workspace; false (and nothing written) when the id is taken.
    async fn create_workspace(&self, record: &WorkspaceRecord) -> Result<bool, StorageError>;
    /// Reads one workspace's metadata.
    async fn get_workspace(&self, id: &str) -> Result<Option<WorkspaceRecord>, StorageError>;
    /// Lists every workspace.
    async fn list_workspaces(&self) -> Result<Vec<WorkspaceRecord>, StorageError>;
    /// Changes one field group of a workspace's metadata ([`apply_change`]).
    async fn update_workspace(&self, id: &str, change: &Change) -> Result<Updated, StorageError>;
    /// Forgets a workspace and all its data.
    async fn delete_workspace(&self, id: &str) -> Result<(), StorageError>;
    /// Loads everything of a workspace in one read transaction.
    async fn load(&self, id: &str) -> Result<Option<LoadedState>, StorageError> {
        self.load_since(id, &Since::default()).await
    }
    /// What is new since a caller last loaded: the snapshot only when it covers another seq than
    /// `since.snapshot_covers`, received records after `since.received_after`, pending updates
    /// after `since.pending_after` (keys sort in append order), and every quarantined seq. One
    /// transaction. A refresh reads this instead of the whole workspace.
    async fn load_since(
        &self,
        id: &str,
        since: &Since,
    ) -> Result<Option<LoadedState>, StorageError>;
    /// Appends one local update under the next causal key (allocated in the same transaction).
    /// With a [`Merge`] that [`may_merge`] allows, the merged bytes replace the run's update
    /// instead (the old key is deleted, the new key holds the whole run): a device offline for a
    /// long time queues one update per run of edits, not one per keystroke.
    ///
    /// `staged`, when given, is called with the update as it will be stored once its key is
    /// allocated, **before** the write commits (IndexedDB's strict commit is a flush to disk), and
    /// the newest other pending key of the workspace at that moment: the page hands both to the
    /// sync worker, which pushes the update meanwhile ([`crate::sync::SyncCore::stage`]). The call
    /// does not mean the update is stored: the write may still fail. A staged append also
    /// reserves the key of the caller's next edit ([`Appended::next`]); given back as
    /// [`Stage::ahead`], the update is stored under it and handed over before anything is read
    /// (no merge then: a merge needs a read). Keys come from [`allocate_keys`].
    async fn append_pending(
        &self,
        id: &str,
        bytes: &[u8],
        merge: Option<Merge<'_>>,
        staged: Staged<'_>,
    ) -> Result<Appended, StorageError>;
    /// Lists pending updates in causal order.
    async fn pending(&self, id: &str) -> Result<Vec<PendingUpdate>, StorageError>;
    /// How many updates are pending (what the sync status shows after every round): counted,
    /// where the store can, without reading their bytes.
    async fn pending_len(&self, id: &str) -> Result<usize, StorageError> {
        Ok(self.pending(id).await?.len())
    }
    /// Lists pending updates in causal order for a push, with the workspace's record (one read
    /// for both), and records in the same transaction that they were read, so no later edit is
    /// merged into an update that may be on the server.
    async fn pending_to_push(&self, id: &str) -> Result<ToPush, StorageError>;
    /// The server stored these pending updates at these seqs: each moves from `pending` to
    /// `received` (so the edit stays on this device until a snapshot covers it).
    async fn acknowledge(&self, id: &str, acks: &[(String, u64)]) -> Result<(), StorageError>;
    /// Stores a verified page and moves the cursor, only if the cursor is still `page.from`;
    /// false otherwise (another tab or worker stored it first).
    async fn store_page(&self, id: &str, page: &Page) -> Result<bool, StorageError>;
    /// How many remote records are stored since the last local snapshot.
    async fn received_len(&self, id: &str) -> Result<usize, StorageError>;
    /// Replaces the local snapshot and drops the received records it covers; false (nothing
    /// written) when a snapshot covering more is already stored or `covers` is past the cursor.
    async fn compact(&self, id: &str, compaction: &Compaction) -> Result<bool, StorageError>;
    /// Keeps a snapshot of the whole document as an engine saw it, to start the next open from:
    /// that open imports it and reads only what is stored after `cache.since`, instead of
    /// replaying (and reading) the whole history. It replaces the previous cache. Everything in
    /// it is also stored the usual way (snapshot, received, pending) or is a verified server
    /// record being stored: it is never uploaded, never the only copy of anything, and an
    /// unreadable cache is ignored. Nothing is written for a workspace that is not stored.
    async fn save_open_cache(&self, id: &str, cache: &OpenCache) -> Result<(), StorageError>;
    /// The open cache, if one was saved ([`Self::save_open_cache`]).
    async fn open_cache(&self, id: &str) -> Result<Option<OpenCache>, StorageError>;
    /// Moves remote records that cannot be read out of `received` into `quarantine`.
    async fn quarantine(&self, id: &str, seqs: &[u64]) -> Result<(), StorageError>;
    /// Replaces the bytes of pending updates that are still stored under the same keys and still
    /// plain — a notebook that gained keys seals what it had not sent yet (same idempotency key,
    /// so a plain copy the worker sent meanwhile is the one the server keeps). Returns how many
    /// were replaced.
    async fn reseal_pending(
        &self,
        id: &str,
        sealed: &[PendingUpdate],
    ) -> Result<usize, StorageError>;
    /// The compaction snapshot waiting for upload: (covers, bytes).
    async fn outbox(&self, id: &str) -> Result<Option<(u64, Vec<u8>)>, StorageError>;
    /// Drops the outbox snapshot if it still covers `covers`.
    async fn clear_outbox(&self, id: &str, covers: u64) -> Result<(), StorageError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_cache_reads_back_as_written_and_a_damaged_one_is_an_error() {
        let cache = OpenCache {
            since: Since {
                snapshot_covers: Some(7),
                received_after: 12,
                pending_after: Some("k".into()),
            },
            snapshot: vec![1, 2, 3, 0, 255],
        };
        let bytes = cache.encode();
        assert_eq!(OpenCache::decode(&bytes), Ok(cache));
        for cut in [0, 3, 10] {
            assert!(matches!(
                OpenCache::decode(&bytes[..cut]),
                Err(StorageError::Corrupt(_))
            ));
        }
    }

    #[test]
    fn a_full_disk_and_a_full_quota_are_both_storage_full_and_other_errors_keep_their_name() {
        let chromium_disk_full = "Connection is closing because of: IO error: .../000005.ldb: \
                                  FILE_ERROR_NO_SPACE (ChromeMethodBFE: 3::WritableFileAppend::8)";
        assert_eq!(
            StorageError::from_dom("UnknownError", chromium_disk_full),
            StorageError::QuotaExceeded
        );
        assert_eq!(
            StorageError::from_dom("DataError", "Failed to write blobs (IOError)"),
            StorageError::QuotaExceeded
        );
        assert_eq!(
            StorageError::from_dom("QuotaExceededError", "quota"),
            StorageError::QuotaExceeded
        );
        assert_eq!(
            StorageError::from_dom("InvalidStateError", "The database connection is closing."),
            StorageError::Other("InvalidStateError: The database connection is closing.".into())
        );
    }

    #[test]
    fn a_link_never_replaces_a_stronger_or_equal_token() {
        let mut r = WorkspaceRecord::new_local("w", "n");
        let remote = |token: &str, role| Change::Remote {
            server_url: "http://s".into(),
            token: token.into(),
            role,
        };
        assert!(apply_change(&mut r, &remote("m", Role::Master)));
        assert!(!apply_change(&mut r, &remote("junk", Role::Read)));
        assert!(!apply_change(&mut r, &remote("other-master", Role::Master)));
        assert_eq!(r.token.as_deref(), Some("m"));
        let mut owned_here = WorkspaceRecord::new_local("w", "n");
        assert!(!apply_change(&mut owned_here, &remote("junk", Role::Read)));
        let mut reader = WorkspaceRecord {
            role: Role::Read,
            ..WorkspaceRecord::new_local("w", "n")
        };
        assert!(apply_change(&mut reader, &remote("r", Role::Read)));
        assert!(apply_change(&mut reader, &remote("w", Role::Write)));
        assert_eq!(
            (reader.role, reader.token.as_deref()),
            (Role::Write, Some("w"))
        );
    }

    #[test]
    fn a_stale_rotation_does_not_write_back_an_old_token() {
        let mut r = WorkspaceRecord::new_local("w", "n");
        r.token = Some("t2".into());
        let stale = Change::Token {
            old: "t1".into(),
            new: "t1b".into(),
        };
        assert!(!apply_change(&mut r, &stale));
        assert_eq!(r.token.as_deref(), Some("t2"));
    }

    #[test]
    fn pending_keys_sort_by_counter_and_after_older_formats_and_are_short() {
        let mut keys: Vec<String> = [0u64, 9, 15, 16, 255, 256, 4095, 1 << 40, u64::MAX]
            .iter()
            .map(|n| pending_key(*n, n.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        let made = keys.clone();
        keys.sort();
        assert_eq!(keys, made, "keys sort in the order they were made");
        assert!(pending_key(9, u64::MAX) < pending_key(10, 0));
        assert!("1763900000000-0001-abcdefabcdef" < keys[0].as_str());
        assert!("cffffffffffffffff-ffffffffffff" < keys[0].as_str());
        assert_eq!(pending_key(3, 7).len(), 11);
        assert_eq!(pending_key(u64::MAX, 7).len(), 26);
        assert_ne!(pending_key(3, 1), pending_key(3, 2));
    }

    #[test]
    fn an_edit_is_merged_only_into_the_last_update_and_never_one_a_push_has_read() {
        let mut r = WorkspaceRecord::new_local("w", "n");
        let (k1, k2) = (pending_key(1, 1), pending_key(2, 2));
        assert_eq!(pending_key_counter(&k2), Some(2));
        assert_eq!(pending_key_counter("c0000000000000002-abcdefabcdef"), None);
        r.next_pending = 3;
        assert!(may_merge(&r, &k2, true));
        assert!(
            !may_merge(&r, &k1, true),
            "another update was appended after it"
        );
        assert!(!may_merge(&r, &k2, false), "acknowledged meanwhile");
        r.pushed_upto = Some(k2.clone());
        assert!(!may_merge(&r, &k2, true), "a push read it");
        r.pushed_upto = Some(k1);
        assert!(may_merge(&r, &k2, true));
    }
}
