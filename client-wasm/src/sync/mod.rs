//! The client sync core: one path for pushing, pulling, verifying and storing, shared by the
//! browser worker (over `fetch` and IndexedDB) and the tests and fault simulation (in-process
//! transport, [`crate::storage::MemoryStore`]). Loro-free: it moves opaque bytes only; decoding,
//! quarantine and building snapshots happen in the engine.
//!
//! - [`Transport`] (`transport`) — the server calls (push, pull, put snapshot, join, create,
//!   rotate); [`SyncError`] (`error`) — what a step fails with, and what stops sync.
//! - [`SyncCore`] — one round for one workspace (here): push pending in batches and acknowledge
//!   what the server stored, upload the compaction snapshot the engine left in the outbox (master
//!   devices only) (`push`); pull pages after the cursor, verify the integrity chain (re-pulling
//!   once before calling a gap a mismatch) and store each page in one transaction, take a live
//!   event's inline record without a pull when it verifies as the next one (`pull`).
//! - [`join`], [`connect`], [`rotate`] (`attach`) — attach a workspace to a server, never
//!   weakening a token.
//! - `staged` — edits handed over while the page's write of them commits ([`SyncCore::stage`]):
//!   pushed without reading storage while storage holds nothing unsent before them.
//! - [`keys`] — end-to-end encryption between devices: [`keys::share`] makes a link whose keys
//!   are on the server, a join learns them, a pull refreshes them after a rotation.
//! - [`memory`] — [`memory::MemoryServer`], the in-memory twin of the server (its log rules are
//!   `shared_schema::log`, the same the SQL stores run) for tests and the fault simulation.
//! - [`http`] — the protocol's calls written once over [`http::Http`] (one request, one reply):
//!   every HTTP client is a [`Transport`].
//! - `fetch` (wasm32) — `FetchTransport`, the browser's [`http::Http`], for the worker and the JS
//!   API; the native client's is `reqwest` (`client-native`). `socket` (wasm32) — its pushes over
//!   the push socket (a WebSocket) while one is open.

#[cfg(target_arch = "wasm32")]
pub mod fetch;
pub mod http;
pub mod keys;
pub mod memory;
#[cfg(target_arch = "wasm32")]
mod socket;
#[cfg(target_arch = "wasm32")]
pub use socket::warm as warm_push_socket;
mod attach;
mod error;
mod pull;
mod push;
mod staged;
mod transport;

pub use attach::{check_link, connect, join, rotate};
pub use error::SyncError;
pub use transport::{Pulled, Remote, Transport, TransportError};

use crate::storage::{
    Change, Page, PendingUpdate, RemoteRecord, StorageError, Store, Updated, WorkspaceRecord,
};
use shared_schema::api::{
    CreatedWorkspace, JoinInfo, LiveEvent, MintTokenRequest, MintedToken, PushReply, PutKeys,
    TokenList,
};
use shared_schema::chain::Chain;
use shared_schema::frame::{self, PullRecordKind, PushRecord};
use shared_schema::live;
use shared_schema::sync::{batch_len, verify_page, PageError, StopReason};
use shared_schema::{ErrorCode, Role};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use thiserror::Error;

/// Largest push batch the client sends, bytes of frame.
pub const MAX_BATCH: usize = 1024 * 1024;

/// What one round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Round {
    /// Pending updates the server acknowledged.
    pub pushed: usize,
    /// Records pulled and stored.
    pub pulled: usize,
    /// The cursor after the round.
    pub seq: u64,
    /// A compaction snapshot was uploaded.
    pub uploaded: bool,
}

/// What a live event led to ([`SyncCore::take_live`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Live {
    /// Its inline record was stored: tell the tabs (these are its update's bytes, so they can
    /// show it before reading storage).
    Stored(Vec<u8>),
    /// Its inline record was stored, and it is an update this core pushed itself: the tabs
    /// have it already (they made it), so `verified` was not called and nothing needs showing.
    Echo,
    /// A tentative record was verified and held (shown through `verified` unless this core
    /// pushed it); it is stored when its marker confirms it.
    Held,
    /// Nothing past the cursor: nothing to do.
    Current,
    /// Pull from the cursor.
    Pull,
}

/// A pull's progress callback: `(seq reached, records stored, the head seq if the server said it)`.
type PullProgress = Box<dyn Fn(u64, usize, Option<u64>)>;

/// The sync core of one device: a store and a transport.
pub struct SyncCore<S: Store, T: Transport> {
    /// Local storage.
    pub store: S,
    /// The server.
    pub transport: T,
    /// The cursor (seq, chain) of each workspace as this core last stored it, so a live event
    /// is verified without reading storage first. Only a hint: storing checks the stored cursor
    /// in the same transaction, and a stale hint just makes the caller pull.
    cursors: RefCell<HashMap<String, (u64, Chain)>>,
    /// Hashes of the last updates this core pushed, to know its own records when the live
    /// channel brings them back ([`Live::Echo`]). Only a hint: a record taken for an echo by
    /// mistake is still stored, just not shown before the tabs' next refresh.
    pushed: RefCell<VecDeque<u64>>,
    /// Told `(seq, records, head)` after each pulled page is stored ([`Self::on_pull_page`]).
    pulled_page: Option<PullProgress>,
    /// The newest key epoch each workspace's record held when this core last read it, so a live
    /// event under a known epoch needs no storage read.
    epochs: RefCell<HashMap<String, u32>>,
    /// Staged edits and what is known of storage ([`Self::stage`]).
    staging: RefCell<staged::Staging>,
    /// Per workspace: what the server acknowledged to a push of staged edits, not stored yet
    /// ([`Self::settle`]).
    unstored: RefCell<HashMap<String, Vec<(String, u64)>>>,
}

/// How many pushed updates [`SyncCore`] remembers to tell its own echoes.
const ECHOES: usize = 256;

fn digest(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Sync stops for good once a member's sealed edit showed the server forked the notebook.
fn stop_if_forked(record: &WorkspaceRecord) -> Result<(), SyncError> {
    match record.forked {
        Some(seq) => Err(SyncError::stop(
            StopReason::ServerFork,
            format!("a member's edit says the server showed it another history at seq {seq}"),
        )),
        None => Ok(()),
    }
}

async fn remote_of<S: Store>(store: &S, ws: &str) -> Result<(WorkspaceRecord, Remote), SyncError> {
    remote_from(ws, store.get_workspace(ws).await?)
}

fn remote_from(
    ws: &str,
    record: Option<WorkspaceRecord>,
) -> Result<(WorkspaceRecord, Remote), SyncError> {
    let record = record.ok_or_else(|| {
        SyncError::stop(
            StopReason::Forgotten,
            "this notebook was removed from this browser",
        )
    })?;
    let (Some(server_url), Some(token)) = (record.server_url.clone(), record.token.clone()) else {
        return Err(SyncError::LocalOnly);
    };
    let remote = Remote {
        server_url,
        ws: ws.to_owned(),
        token,
    };
    Ok((record, remote))
}

impl<S: Store, T: Transport> SyncCore<S, T> {
    /// A core over a store and a transport.
    pub fn new(store: S, transport: T) -> Self {
        Self {
            store,
            transport,
            cursors: RefCell::new(HashMap::new()),
            pushed: RefCell::new(VecDeque::new()),
            epochs: RefCell::new(HashMap::new()),
            staging: RefCell::new(staged::Staging::default()),
            unstored: RefCell::new(HashMap::new()),
            pulled_page: None,
        }
    }

    /// Calls `f(seq, records, head)` after each page a pull stores: the cursor it reached, the
    /// records stored so far in this pull, and the server's head seq when its reply said it (a
    /// progress bar on a long first pull).
    pub fn on_pull_page(mut self, f: impl Fn(u64, usize, Option<u64>) + 'static) -> Self {
        self.pulled_page = Some(Box::new(f));
        self
    }

    fn note_epoch(&self, record: &WorkspaceRecord) {
        if let Some(k) = record.keys.as_ref().and_then(|r| r.current()) {
            self.epochs.borrow_mut().insert(record.id.clone(), k.epoch);
        }
    }

    fn remember(&self, ws: &str, cursor: Option<(u64, Chain)>) {
        let mut cursors = self.cursors.borrow_mut();
        match cursor {
            Some(c) => cursors.insert(ws.to_owned(), c),
            None => cursors.remove(ws),
        };
    }

    /// One full round: push everything pending, pull everything new, upload a waiting snapshot.
    /// `progress(updates_left, bytes_left)` is called before each push batch.
    pub async fn sync_once(
        &self,
        ws: &str,
        progress: &dyn Fn(u64, u64),
    ) -> Result<Round, SyncError> {
        self.round(ws, true, progress).await
    }

    /// A round after a local edit while the live channel is up: push everything pending and
    /// upload a waiting snapshot, but do not pull — the live channel delivers this device's own
    /// records back (and everyone else's) and asks for a pull when it cannot. `seq` is the
    /// stored cursor as the round found it.
    ///
    /// A round that pushes only staged edits returns once the server answered, before it stores
    /// the acknowledgement or uploads a snapshot: those are IndexedDB transactions that wait
    /// behind every write begun before them — the page's write of the next edit among them — and
    /// the next staged edit should not wait for that write to be pushed. The caller runs
    /// [`Self::settle`] after it, and may run it beside the next round. Until then the edits stay
    /// pending in storage; one pushed again (this core crashed first, or a round read storage
    /// meanwhile) gets the same seq back, since the server's log is idempotent per key.
    pub async fn push_round(
        &self,
        ws: &str,
        progress: &dyn Fn(u64, u64),
    ) -> Result<Round, SyncError> {
        self.round(ws, false, progress).await
    }

    /// Stores what the server acknowledged to the last rounds' pushes of staged edits and
    /// uploads a waiting snapshot (what [`Self::push_round`] leaves); true when one was uploaded.
    /// If storing fails, the edits stay pending and the next round reads storage: the server
    /// gives their seqs again.
    pub async fn settle(&self, ws: &str) -> Result<bool, SyncError> {
        self.store_acks(ws).await?;
        self.upload_snapshot(ws).await
    }

    async fn store_acks(&self, ws: &str) -> Result<(), SyncError> {
        let acks = self.unstored.borrow_mut().remove(ws).unwrap_or_default();
        if acks.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store.acknowledge(ws, &acks).await {
            self.staging.borrow_mut().mark(ws);
            return Err(e.into());
        }
        Ok(())
    }

    /// Queues an edit the page handed over while its write commits (the engine's stager), with
    /// the newest other pending key when it was stored (`after`): the next round pushes it —
    /// without reading storage first when `after` is known to be on the server (module
    /// `staged`). It stays pending in storage until the server acknowledges it, as every edit
    /// does; a round that cannot push it leaves it there.
    pub fn stage(&self, ws: &str, update: PendingUpdate, after: Option<String>) {
        self.staging.borrow_mut().stage(ws, update, after);
    }

    /// A tab stored an edit (its pending `key`, when it said which): true when the next round
    /// must read storage for it — it was not staged here.
    pub fn stored(&self, ws: &str, key: Option<&str>) -> bool {
        self.staging.borrow_mut().stored(ws, key)
    }

    /// The workspace's keys or token changed in storage: the next round reads its record (and
    /// the staged edits from storage, where they are).
    pub fn forget_record(&self, ws: &str) {
        self.staging.borrow_mut().forget(ws);
    }

    async fn round(
        &self,
        ws: &str,
        pull: bool,
        progress: &dyn Fn(u64, u64),
    ) -> Result<Round, SyncError> {
        let queue = self.staging.borrow_mut().take(ws);
        let record = match self.staging.borrow().fast(ws) {
            Some(record) if !pull && !queue.is_empty() => Some(record.clone()),
            _ => None,
        };
        let updates = |q: Vec<staged::Staged>| q.into_iter().map(|s| s.update).collect();
        let (fast, mut staged): (_, Vec<PendingUpdate>) = match record {
            Some(record) => match self.staging.borrow().in_order(ws, queue) {
                Ok(in_order) => (Some(record), in_order),
                Err(queue) => (None, updates(queue)),
            },
            None => (None, updates(queue)),
        };
        if let Some(record) = fast {
            // Only the staged edits, with the record the last read found (no progress report:
            // one small batch). Anything else — a refused or partial push, a stale token — and
            // this round reads storage below, with the staged edits merged in.
            let (_, remote) = remote_from(ws, Some(record.clone()))?;
            let n = staged.len();
            match self
                .push_from(ws, &record, &remote, staged.clone(), &|_, _| {}, false)
                .await
            {
                Ok(pushed) if pushed == n => {
                    let seq = self
                        .cursors
                        .borrow()
                        .get(ws)
                        .map_or(record.last_pulled_seq, |c| c.0);
                    return Ok(Round {
                        pushed,
                        pulled: 0,
                        seq,
                        uploaded: false,
                    });
                }
                Ok(_) => staged.clear(),
                Err(_) => {}
            }
            self.staging.borrow_mut().forget(ws);
        }
        // What earlier staged pushes were told, stored before storage is read for what to push.
        self.store_acks(ws).await?;
        let marks = self.staging.borrow().marks(ws);
        // One read gives the record and what to push (the round's first storage access after).
        let mut read = self.store.pending_to_push(ws).await?;
        let (mut record, mut remote) = remote_from(ws, read.record.take())?;
        stop_if_forked(&record)?;
        if record.rotating.is_some() {
            // A rotation whose new token was never stored: finish it before using the old one.
            rotate(&self.store, &self.transport, ws).await?;
            read = self.store.pending_to_push(ws).await?;
            (record, remote) = remote_from(ws, read.record.take())?;
        }
        // Staged edits whose writes were still committing when storage was read go too, in
        // the order they were made.
        let pending = staged::merged(read.pending, staged);
        let pushed = match self
            .push_from(ws, &record, &remote, pending, progress, true)
            .await
        {
            Ok(pushed) => pushed,
            Err(e) => {
                self.staging.borrow_mut().mark(ws);
                return Err(e);
            }
        };
        self.staging.borrow_mut().cleaned(ws, marks, &record);
        let (seq, pulled) = if pull {
            self.pull(ws).await?
        } else {
            (record.last_pulled_seq, 0)
        };
        let uploaded = self.upload_snapshot(ws).await?;
        Ok(Round {
            pushed,
            pulled,
            seq,
            uploaded,
        })
    }
}
