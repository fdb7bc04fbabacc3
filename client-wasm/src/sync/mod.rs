//! The client sync core: one path for pushing, pulling, verifying and storing, shared by the
//! browser worker (over `fetch` and IndexedDB) and the tests and fault simulation (in-process
//! transport, [`crate::storage::MemoryStore`]). Loro-free: it moves opaque bytes only; decoding,
//! quarantine and building snapshots happen in the engine.
//!
//! - [`Transport`] — the server calls (push, pull, put snapshot, join, create, rotate).
//! - [`SyncCore`] — one round for one workspace: push pending in batches and acknowledge what the
//!   server stored; pull pages after the cursor, verify the integrity chain (re-pulling once before
//!   calling a gap a mismatch) and store each page in one transaction; upload the compaction
//!   snapshot the engine left in the outbox (master devices only); take a live event's inline
//!   record without a pull when it verifies as the next one.
//! - [`join`], [`connect`], [`rotate`] — attach a workspace to a server, never weakening a token.
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
mod staged;

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

/// Where and as whom a workspace syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Server base URL (no trailing slash).
    pub server_url: String,
    /// Workspace id.
    pub ws: String,
    /// Bearer token.
    pub token: String,
}

impl Remote {
    /// `{server}/v1/workspaces/{ws}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v1/workspaces/{}{path}", self.server_url, self.ws)
    }
}

/// A pulled page as it came off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The pull-stream body.
    pub body: Vec<u8>,
    /// `Hearth-More: 1` was set.
    pub more: bool,
    /// The workspace's head seq (`Hearth-Head-Seq`), if the server said it: how far a pull has
    /// to go (progress).
    pub head_seq: Option<u64>,
}

/// A server call failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum TransportError {
    /// The server could not be reached, or the connection dropped (the request may or may not
    /// have been applied).
    #[error("cannot reach the server: {0}")]
    Network(String),
    /// The server answered with an error.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Error code.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
}

/// The server, as the sync core sees it. `?Send`: on wasm32 it runs on one thread.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// `POST …/updates` with a push batch.
    async fn push(&self, remote: &Remote, body: Vec<u8>) -> Result<PushReply, TransportError>;
    /// `GET …/updates?after=N`.
    async fn pull(&self, remote: &Remote, after: u64) -> Result<Pulled, TransportError>;
    /// `PUT …/snapshot?covers=N`.
    async fn put_snapshot(
        &self,
        remote: &Remote,
        covers: u64,
        bytes: Vec<u8>,
    ) -> Result<(), TransportError>;
    /// `GET /v1/workspaces/{id}`: checks the token.
    async fn join(&self, remote: &Remote) -> Result<JoinInfo, TransportError>;
    /// `POST /v1/workspaces` with the workspace's own id.
    /// Registers `ws` with its creation secret; the same id and secret give the same token.
    async fn create(
        &self,
        server_url: &str,
        ws: &str,
        secret: &str,
    ) -> Result<CreatedWorkspace, TransportError>;
    /// `POST …/tokens/rotate` with `{"rotation_id"}` (idempotent).
    async fn rotate(
        &self,
        remote: &Remote,
        rotation_id: &str,
    ) -> Result<MintedToken, TransportError>;
    /// `POST …/tokens` (master): a share token.
    async fn mint(
        &self,
        remote: &Remote,
        request: &MintTokenRequest,
    ) -> Result<MintedToken, TransportError>;
    /// `PUT …/keys` (master): wrapped epoch keys for links.
    async fn put_keys(&self, remote: &Remote, keys: &PutKeys) -> Result<(), TransportError>;
    /// `GET …/tokens` (master): every token of the workspace.
    async fn list_tokens(&self, remote: &Remote) -> Result<TokenList, TransportError>;
    /// `DELETE …/tokens/{id}` (master).
    async fn revoke(&self, remote: &Remote, token_id: &str) -> Result<(), TransportError>;
}

/// A sync step failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SyncError {
    /// The server could not be reached; retry with backoff.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Local storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The OS gave no random bytes for a key.
    #[error(transparent)]
    Random(#[from] crate::keys::NoRandom),
    /// The workspace has no server or token: nothing to sync.
    #[error("this notebook is only on this device")]
    LocalOnly,
    /// A share link is malformed.
    #[error("this link is not a Hearth share link: {0}")]
    BadLink(String),
    /// Sync must stop until the user acts.
    #[error("{message}")]
    Stop {
        /// Why.
        reason: StopReason,
        /// Details.
        message: String,
    },
}

impl SyncError {
    fn stop(reason: StopReason, message: impl Into<String>) -> Self {
        SyncError::Stop {
            reason,
            message: message.into(),
        }
    }

    /// Why this error stops sync until the user acts; `None` when a retry may succeed.
    pub fn stop_reason(&self) -> Option<StopReason> {
        match self {
            SyncError::Stop { reason, .. } => Some(*reason),
            SyncError::Transport(TransportError::Api { code, .. }) => {
                StopReason::for_error_code(*code)
            }
            SyncError::Storage(StorageError::QuotaExceeded) => Some(StopReason::StorageFull),
            _ => None,
        }
    }
}

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
    pub async fn push_round(
        &self,
        ws: &str,
        progress: &dyn Fn(u64, u64),
    ) -> Result<Round, SyncError> {
        self.round(ws, false, progress).await
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
                        uploaded: self.upload_snapshot(ws).await?,
                    });
                }
                Ok(_) => staged.clear(),
                Err(_) => {}
            }
            self.staging.borrow_mut().forget(ws);
        }
        let marks = self.staging.borrow().marks(ws);
        // One read gives the record and what to push (the round's first storage access).
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

    /// Pushes pending updates in batches; each is acknowledged only after the server stored it.
    /// A batch the server finds too large is halved; a single update it refuses stops sync.
    pub async fn push(&self, ws: &str, progress: &dyn Fn(u64, u64)) -> Result<usize, SyncError> {
        let mut read = self.store.pending_to_push(ws).await?;
        let (record, remote) = remote_from(ws, read.record.take())?;
        self.push_from(ws, &record, &remote, read.pending, progress, true)
            .await
    }

    /// Pushes `pending` (in key order), then — with `refill` — whatever is pending in storage
    /// after each acknowledged batch; without it, only `pending`.
    async fn push_from(
        &self,
        ws: &str,
        record: &WorkspaceRecord,
        remote: &Remote,
        mut pending: Vec<PendingUpdate>,
        progress: &dyn Fn(u64, u64),
        refill: bool,
    ) -> Result<usize, SyncError> {
        if !record.role.can_write() {
            return Ok(0);
        }
        let mut limit = MAX_BATCH;
        let mut pushed = 0;
        loop {
            never_in_the_clear(record, &mut pending);
            if pending.is_empty() {
                return Ok(pushed);
            }
            let bytes_left: usize = pending.iter().map(|p| p.bytes.len()).sum();
            progress(pending.len() as u64, bytes_left as u64);
            let sizes: Vec<(usize, usize)> = pending
                .iter()
                .map(|p| (p.key.len(), p.bytes.len()))
                .collect();
            let n = batch_len(&sizes, limit);
            let batch = &pending[..n];
            let records: Vec<PushRecord> = batch
                .iter()
                .map(|p| PushRecord {
                    key: p.key.as_bytes().to_vec(),
                    bytes: p.bytes.clone(),
                })
                .collect();
            let body = frame::encode_push_batch(&records).map_err(|e| {
                SyncError::stop(StopReason::TooLarge, format!("an edit cannot be sent: {e}"))
            })?;
            {
                // Before the request: the live channel may bring them back before the reply.
                let mut pushed = self.pushed.borrow_mut();
                for r in &records {
                    if pushed.len() == ECHOES {
                        pushed.pop_front();
                    }
                    pushed.push_back(digest(&r.bytes));
                }
            }
            let size = body.len();
            match self.transport.push(remote, body).await {
                Ok(reply) => {
                    if reply.seqs.len() != n {
                        return Err(TransportError::Network(format!(
                            "the server acknowledged {} of {n} updates",
                            reply.seqs.len()
                        ))
                        .into());
                    }
                    let acks: Vec<(String, u64)> = batch
                        .iter()
                        .map(|p| p.key.clone())
                        .zip(reply.seqs)
                        .collect();
                    self.store.acknowledge(ws, &acks).await?;
                    self.staging
                        .borrow_mut()
                        .acked(ws, acks.iter().map(|(k, _)| k.as_str()));
                    pushed += n;
                    if !refill {
                        pending.drain(..n);
                        continue;
                    }
                }
                Err(TransportError::Api {
                    code: ErrorCode::PayloadTooLarge,
                    message,
                    ..
                }) => {
                    if n == 1 {
                        return Err(SyncError::stop(
                            StopReason::TooLarge,
                            format!(
                                "an edit of {size} bytes is over the server's limit: {message}"
                            ),
                        ));
                    }
                    limit = size / 2;
                }
                Err(e) => return Err(e.into()),
            }
            if refill {
                pending = self.store.pending_to_push(ws).await?.pending;
            }
        }
    }

    /// Pulls every page after the cursor. Each page's chain is verified before anything is stored
    /// and the page is stored in one transaction with the new cursor. A gap or a bad chain is
    /// pulled once more before it stops sync as a mismatch. Returns (cursor, records stored).
    pub async fn pull(&self, ws: &str) -> Result<(u64, usize), SyncError> {
        let mut stored = 0;
        let mut retried = false;
        loop {
            let (record, remote) = remote_of(&self.store, ws).await?;
            stop_if_forked(&record)?;
            let from = (record.last_pulled_seq, record.chain_head);
            let pulled = self.transport.pull(&remote, from.0).await?;
            let records = frame::decode_pull_stream(&pulled.body)
                .map_err(|e| TransportError::Network(format!("a damaged pull page: {e}")))?;
            let page = match verify_page(from.0, from.1, &records) {
                Ok(page) => page,
                Err(_) if !retried => {
                    retried = true;
                    continue;
                }
                Err(e) => {
                    let message = match e {
                        PageError::Chain(c) => c.to_string(),
                        PageError::OutOfOrder { expected, got } => {
                            format!("the server skipped from seq {expected} to {got}")
                        }
                    };
                    return Err(SyncError::stop(StopReason::ChainMismatch, message));
                }
            };
            if page.seq == from.0 {
                self.remember(ws, Some(from));
                return Ok((from.0, stored));
            }
            let mut kept: Vec<RemoteRecord> = Vec::with_capacity(page.updates.len() + 1);
            if let Some(s) = page.snapshot {
                kept.push(RemoteRecord {
                    seq: s.seq,
                    kind: PullRecordKind::Snapshot,
                    bytes: s.bytes.clone(),
                });
            }
            kept.extend(page.updates.iter().map(|r| RemoteRecord {
                seq: r.seq,
                kind: PullRecordKind::Update,
                bytes: r.bytes.clone(),
            }));
            self.note_epoch(&record);
            if keys::lacks_epoch(&record, kept.iter().map(|r| r.bytes.as_slice())) {
                keys::refresh(&self.store, &self.transport, &remote, &record).await?;
            }
            let chains = page
                .snapshot
                .iter()
                .chain(page.updates.iter())
                .map(|r| (r.seq, r.chain))
                .collect();
            let to = (page.seq, page.chain);
            let n = kept.len();
            let page = Page {
                from,
                to,
                records: kept,
                chains,
            };
            if self.store.store_page(ws, &page).await? {
                self.remember(ws, Some(to));
                stored += n;
                retried = false;
                if let Some(report) = &self.pulled_page {
                    report(to.0, stored, pulled.head_seq);
                }
                if !pulled.more {
                    return Ok((to.0, stored));
                }
            } else {
                self.remember(ws, None);
            }
            // Otherwise another tab's worker stored a page first: pull again from its cursor.
        }
    }

    /// Takes one live event: stores its inline record when it is the next one after the cursor
    /// and its chain verifies (`shared_schema::live::accept`), in one transaction with the new
    /// cursor, exactly as a pulled page. [`Live::Pull`] when the caller must pull instead — no
    /// record, a gap, a damaged or tampered record, or another tab's worker moved the cursor
    /// first; [`Live::Current`] when the event announces nothing past the cursor (the head sent
    /// when a stream opens, a replay). A tampered record is never stored: the pull that follows
    /// verifies what the server really has.
    ///
    /// `verified` gets the record's update as soon as its chain verifies, before it is stored,
    /// so the tabs can show it while storage writes it: it is the server's own stored record
    /// (the chain proves it), and if this device fails to store it the cursor stays put and the
    /// next pull fetches it again. It is not called for an update this core pushed itself
    /// ([`Live::Echo`]). The cursor comes from the core's memory when it has one; a stale one
    /// only makes the store refuse the page, and the caller pulls.
    pub async fn take_live(
        &self,
        ws: &str,
        event: &LiveEvent,
        verified: &dyn Fn(&[u8]),
    ) -> Result<Live, SyncError> {
        let known = self.cursors.borrow().get(ws).copied();
        let from = match known {
            Some(c) => c,
            None => {
                let (record, _) = remote_of(&self.store, ws).await?;
                (record.last_pulled_seq, record.chain_head)
            }
        };
        if event.seq <= from.0 {
            return Ok(Live::Current);
        }
        let Ok(update) = live::accept(event, from.0, from.1) else {
            return Ok(Live::Pull);
        };
        if let Some(epoch) = shared_schema::seal::epoch_of(&update.bytes) {
            // Under an epoch this device may lack (checked in storage only when it is newer than
            // the last one seen): the pull learns the keys first.
            if self
                .epochs
                .borrow()
                .get(ws)
                .is_none_or(|known| epoch > *known)
            {
                if let Some(record) = self.store.get_workspace(ws).await? {
                    self.note_epoch(&record);
                    if keys::lacks_epoch(&record, std::iter::once(update.bytes.as_slice())) {
                        return Ok(Live::Pull);
                    }
                }
            }
        }
        let echo = self.pushed.borrow().contains(&digest(&update.bytes));
        if !echo {
            verified(&update.bytes);
        }
        let page = Page {
            from,
            to: (update.seq, update.chain),
            chains: vec![(update.seq, update.chain)],
            records: vec![RemoteRecord {
                seq: update.seq,
                kind: PullRecordKind::Update,
                bytes: update.bytes,
            }],
        };
        let stored = self.store.store_page(ws, &page).await?;
        self.remember(ws, stored.then_some(page.to));
        Ok(if stored && echo {
            Live::Echo
        } else if stored {
            Live::Stored(
                page.records
                    .into_iter()
                    .map(|r| r.bytes)
                    .next()
                    .unwrap_or_default(),
            )
        } else {
            Live::Pull
        })
    }

    /// Uploads the compaction snapshot the engine left in the outbox (master devices only).
    pub async fn upload_snapshot(&self, ws: &str) -> Result<bool, SyncError> {
        let Some((covers, bytes)) = self.store.outbox(ws).await? else {
            return Ok(false);
        };
        let (record, remote) = remote_of(&self.store, ws).await?;
        if record.role != Role::Master {
            self.store.clear_outbox(ws, covers).await?;
            return Ok(false);
        }
        match self.transport.put_snapshot(&remote, covers, bytes).await {
            Ok(()) => {}
            // A newer snapshot is stored, or this one is over the limit: the log stays as it is.
            Err(TransportError::Api {
                code: ErrorCode::Conflict | ErrorCode::PayloadTooLarge,
                ..
            }) => {}
            Err(e) => return Err(e.into()),
        }
        self.store.clear_outbox(ws, covers).await?;
        Ok(true)
    }
}

/// Checks a share link's parts before anything is stored: a workspace id that is a UUID and a
/// token that looks like a JWT.
pub fn check_link(ws: &str, token: &str) -> Result<(), SyncError> {
    if uuid::Uuid::parse_str(ws).is_err() {
        return Err(SyncError::BadLink(format!(
            "“{}” is not a notebook id",
            ws.chars().take(40).collect::<String>()
        )));
    }
    let jwt_like = !token.is_empty()
        && token.len() <= 4096
        && token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !jwt_like {
        return Err(SyncError::BadLink("its access token is damaged".into()));
    }
    Ok(())
}

/// Joins a workspace from a share link: the id, token and key (`&k=`, the link's secret) are
/// checked, the token is verified with the server and the notebook's keys opened with the secret
/// ([`keys::learn`]), and only then stored — as a new workspace, or on an existing one only when
/// the token is stronger than the one already there (keys are added either way). Returns the
/// record as stored.
pub async fn join<S: Store, T: Transport>(
    store: &S,
    transport: &T,
    server_url: &str,
    ws: &str,
    token: &str,
    key: Option<&str>,
) -> Result<WorkspaceRecord, SyncError> {
    check_link(ws, token)?;
    let secret = key
        .map(shared_schema::seal::Secret::from_text)
        .transpose()
        .map_err(|e| SyncError::BadLink(e.to_string()))?;
    let remote = Remote {
        server_url: server_url.trim_end_matches('/').to_owned(),
        ws: ws.to_owned(),
        token: token.to_owned(),
    };
    let info = transport.join(&remote).await?;
    if info.workspace_id != ws {
        return Err(SyncError::BadLink(
            "the server answered for another notebook".into(),
        ));
    }
    let ring = keys::learn(ws, &info, secret)?;
    let record = WorkspaceRecord {
        role: info.role,
        token: Some(remote.token.clone()),
        server_url: Some(remote.server_url.clone()),
        keys: ring.clone(),
        ..WorkspaceRecord::new_local(ws, "Shared notebook")
    };
    if store.create_workspace(&record).await? {
        return Ok(record);
    }
    let held_plain = store
        .get_workspace(ws)
        .await?
        .is_some_and(|r| r.keys.is_none());
    if let Some(ring) = ring.clone() {
        store.update_workspace(ws, &Change::Keys(ring)).await?;
    }
    let change = if held_plain && ring.is_some() {
        // Encryption was turned on since this device joined: its plain link was revoked.
        Change::Relink {
            server_url: remote.server_url,
            token: remote.token,
            role: info.role,
        }
    } else {
        Change::Remote {
            server_url: remote.server_url,
            token: remote.token,
            role: info.role,
        }
    };
    match store.update_workspace(ws, &change).await? {
        Updated::Changed(r) | Updated::Unchanged(r) => Ok(r),
        Updated::Missing => Err(SyncError::stop(
            StopReason::Forgotten,
            "the notebook was removed while joining",
        )),
    }
}

/// Registers a local workspace on a server under its own id and stores the master token.
pub async fn connect<S: Store, T: Transport>(
    store: &S,
    transport: &T,
    server_url: &str,
    ws: &str,
) -> Result<WorkspaceRecord, SyncError> {
    let server_url = server_url.trim_end_matches('/');
    // The secret is stored before the server is asked, so a retry after a lost reply (even after
    // a reload) repeats the same create and gets the same master token.
    let fresh = format!(
        "{:016x}{:016x}",
        crate::ids::random_u64(),
        crate::ids::random_u64()
    );
    let record = match store
        .update_workspace(ws, &Change::CreationSecret(fresh))
        .await?
    {
        Updated::Changed(r) | Updated::Unchanged(r) => r,
        Updated::Missing => {
            return Err(SyncError::stop(
                StopReason::Forgotten,
                "the notebook was removed while connecting",
            ))
        }
    };
    let secret = record.creation_secret.unwrap_or_default();
    let created = transport.create(server_url, ws, &secret).await?;
    let change = Change::Remote {
        server_url: server_url.to_owned(),
        token: created.master_token,
        role: Role::Master,
    };
    match store.update_workspace(ws, &change).await? {
        Updated::Changed(r) | Updated::Unchanged(r) => Ok(r),
        Updated::Missing => Err(SyncError::stop(
            StopReason::Forgotten,
            "the notebook was removed while connecting",
        )),
    }
}

/// Rotates the master token; the new one replaces exactly the one the rotation was made with.
/// The rotation's id is stored before the server is asked, so a lost reply or a failed write is
/// finished later (by the next [`SyncCore::sync_once`]) with the same id and the same new token:
/// the only master token is never lost.
pub async fn rotate<S: Store, T: Transport>(
    store: &S,
    transport: &T,
    ws: &str,
) -> Result<(), SyncError> {
    let fresh = format!("{:016x}", crate::ids::random_u64());
    let record = match store
        .update_workspace(ws, &Change::BeginRotation(fresh))
        .await?
    {
        Updated::Changed(r) | Updated::Unchanged(r) => r,
        Updated::Missing => {
            return Err(SyncError::stop(
                StopReason::Forgotten,
                "this notebook was removed from this browser",
            ))
        }
    };
    let (Some(rotation_id), Some(old), Some(server_url)) =
        (record.rotating, record.token, record.server_url)
    else {
        return Err(SyncError::LocalOnly);
    };
    let remote = Remote {
        server_url,
        ws: ws.to_owned(),
        token: old.clone(),
    };
    let minted = transport.rotate(&remote, &rotation_id).await?;
    let change = Change::Token {
        old,
        new: minted.token,
    };
    match store.update_workspace(ws, &change).await? {
        Updated::Changed(_) => Ok(()),
        Updated::Unchanged(_) | Updated::Missing => Err(SyncError::stop(
            StopReason::InvalidToken,
            "the owner token was replaced on this device while rotating: rotate again",
        )),
    }
}

/// Keeps the pending updates of an encrypted notebook that may be sent: those before the first
/// plain one. A notebook that gained keys has its plain updates from before sealed by the page's
/// engine (`Store::reseal_pending`); until then they wait — nothing goes to the server in the
/// clear once a notebook has keys.
fn never_in_the_clear(record: &WorkspaceRecord, pending: &mut Vec<PendingUpdate>) {
    if record.keys.is_some() {
        let plain = pending
            .iter()
            .position(|p| !shared_schema::seal::is_sealed(&p.bytes));
        if let Some(first) = plain {
            pending.truncate(first);
        }
    }
}
