//! [`Engine`]: one open workspace — its Loro document and its local storage (design §2).
//!
//! - Open = import snapshot, then `received`, then `pending` (Loro import is idempotent and
//!   order-free, so replay after a crash is safe), then run schema migrations. A remote record that
//!   cannot be read never fails an open: it is quarantined (kept, counted, never applied) and the
//!   rest applies. A pulled snapshot is merged like any update, never substituted for local state.
//! - Every engine session (each tab, each reopen, each rollback) has its own Loro peer id, so two
//!   sessions never create different ops with the same id.
//! - Every edit is one Loro commit whose update bytes are in `pending` **before** the call returns.
//!   If storage refuses the write (full quota), the document is rolled back to its state before the
//!   edit and the error is returned; nothing stored before is touched.
//! - The sync worker ([`crate::sync`]) moves bytes between the store and the server; tabs learn of
//!   new records and [`Engine::refresh`]. Compaction builds the snapshot the worker uploads.

mod edit_at;
mod edit_lock;
mod history;
mod import;
mod sync;

pub use crate::ids::random_peer_id;
pub use history::{NoteChange, Session, Version, SESSION_GAP_SECS};

use crate::error::EngineError;
use crate::storage::{
    Ahead, Change, LoadedState, Merge, OpenCache, PendingUpdate, Stage, Store, WorkspaceRecord,
};
use import::{import_state, Seen};
use loro::{ExportMode, LoroDoc};
use shared_schema::model::{self, Field, Flag, Note};
use shared_schema::Role;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An edit on this engine.
    Local,
    /// Updates pulled from the server or another tab.
    Remote,
}

type Listener = Rc<dyn Fn(Origin)>;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now() as i64
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

fn new_doc(peer_id: u64) -> Result<LoroDoc, EngineError> {
    let doc = LoroDoc::new();
    configure(&doc, peer_id)?;
    Ok(doc)
}

/// The engine's settings for a document it works on, under `peer_id`.
fn configure(doc: &LoroDoc, peer_id: u64) -> Result<(), loro::LoroError> {
    doc.set_peer_id(peer_id)?;
    doc.set_record_timestamp(true);
    // Never merge two commits into one change, so every edit is a version in the history.
    doc.set_change_merge_interval(-1);
    Ok(())
}

/// One open workspace.
pub struct Engine<S: Store> {
    store: S,
    record: RefCell<WorkspaceRecord>,
    doc: RefCell<LoroDoc>,
    listeners: RefCell<Vec<(u64, Listener)>>,
    next_listener: std::cell::Cell<u64>,
    quarantined: RefCell<Vec<u64>>,
    /// The order edits are stored in ([`edit_lock`]).
    edits: edit_lock::EditLock,
    /// How many writes of edits failed (each rolled back the edits after it): an edit that
    /// committed to the document before such a failure knows its ops are gone.
    failed_writes: std::cell::Cell<u64>,
    /// Why the last write of an edit failed.
    last_failure: RefCell<String>,
    seen: RefCell<Seen>,
    /// What Loro's events said changed since [`Engine::take_changes`] (shared with the callback).
    changes: Arc<Mutex<model::Changes>>,
    /// The subscription feeding `changes`; replaced with the document.
    watch: RefCell<Option<loro::Subscription>>,
    /// This session's run of edits still in one pending update ([`Run`]).
    run: RefCell<Option<Run>>,
    /// The pending update the last edit stored (its run's, when merged).
    last_stored: RefCell<Option<PendingUpdate>>,
    /// Hands each edit's update to the sync worker while its write commits
    /// ([`Engine::set_stager`]); such an update is never merged into afterwards.
    stager: RefCell<Option<Stager>>,
    /// Hands each edit's update to the other tabs before its write begins ([`Engine::set_preview`]).
    preview: RefCell<Option<Preview>>,
    /// The key reserved for the next staged edit by the last one's write
    /// ([`crate::storage::Ahead`]): that edit is handed to the sync worker without a read first.
    ahead: RefCell<Option<String>>,
    /// The newest pending key this engine stored or heard of (beside what its storage reads
    /// found, [`Seen`]): a reserved key at or below it is not used.
    newest_pending: RefCell<Option<String>>,
    /// Other tabs' edits shown before they were stored ([`Engine::show_unstored`]), by their
    /// stored bytes: until one is known stored, this engine's own edits carry its ops too, so
    /// nothing made here can depend on ops stored nowhere.
    shown: RefCell<std::collections::BTreeMap<Vec<u8>, Shown>>,
    /// The last seq of an unbroken run of live records shown while the sync worker held them,
    /// after what storage reads found ([`Engine::show_held`]): the document holds every record
    /// of the server's log up to it.
    held_upto: std::cell::Cell<u64>,
    /// The document's op count when the open cache was last written or read
    /// ([`Engine::save_open_cache_if_due`]).
    cached_ops: std::cell::Cell<usize>,
    /// Every peer id this engine has edited under (a rollback or a large import moves it to a
    /// new one), so History can tell this device's sessions from others'.
    peers: RefCell<Vec<u64>>,
}

/// Ops added to the document (a pasted character is one op) before the engine writes a new open
/// cache: one huge paste or a long session writes one, a day of typing a few.
pub const OPEN_CACHE_AFTER_OPS: usize = 64 * 1024;

/// A pending update holding a run of this session's consecutive edits, merged while no push has
/// read it ([`crate::storage::Merge`]): a device offline for 100,000 keystrokes keeps a few
/// hundred updates about the size of one covering update, not 100,000 of ~100 bytes each. Every
/// edit stays its own Loro change (its own version in the history); only the storage is shared.
struct Run {
    /// Key of the pending update holding the run.
    key: String,
    /// This session's peer and the counter of the run's first op.
    peer: u64,
    start: i32,
    /// Size of the run's update.
    len: usize,
}

/// An edit committed to the document and exported, not stored yet ([`Engine::prepare_commit`]).
struct Prepared {
    /// The document's version before the edit.
    vv: loro::VersionVector,
    /// The peer the edit was made under.
    peer: u64,
    /// Its update (sealed for an encrypted notebook).
    bytes: Vec<u8>,
    /// The open run it is merged into — (its key, its start), the merged update — if any.
    run: Option<((String, i32), Vec<u8>)>,
    /// Other tabs' shown edits it carries.
    carried: Vec<Vec<u8>>,
    /// It was shown to the other tabs before its write.
    previewed: bool,
}

/// The ops of an edit shown before it was stored ([`Engine::show_unstored`]): from `start` to
/// `end`, per peer.
struct Shown {
    start: loro::VersionVector,
    end: loro::VersionVector,
}

/// Receives an edit's pending update while its write commits, and the newest other pending key
/// stored before it (see [`Engine::set_stager`]).
pub type Stager = Rc<dyn Fn(&PendingUpdate, Option<&str>)>;

/// Receives an edit's update (as it will be stored) before its write begins, for the other tabs
/// to show (see [`Engine::set_preview`]).
pub type Preview = Rc<dyn Fn(&[u8])>;

/// A run is closed (the next edit starts a new pending update) once its update reaches this
/// size: each edit rewrites its run's update, so this bounds that work and the write per edit.
pub const MAX_RUN_BYTES: usize = 4 * 1024;

impl<S: Store> Engine<S> {
    /// Creates a new local workspace owned by this device (role `master`, no server yet).
    pub async fn create(store: S, name: &str) -> Result<Self, EngineError> {
        let id = uuid::Uuid::new_v4().to_string();
        let record = WorkspaceRecord {
            keys: Some(crate::keys::new_owner_ring()?),
            ..WorkspaceRecord::new_local(&id, name)
        };
        if !store.create_workspace(&record).await? {
            return Err(EngineError::Storage(crate::storage::StorageError::Other(
                "a workspace with this id already exists".into(),
            )));
        }
        let engine = Self::from_record(store, record, new_doc(random_peer_id())?);
        engine.migrate_and_name(Some(name)).await?;
        Ok(engine)
    }

    /// Opens a stored workspace: the open cache when there is one, then what is stored after it
    /// (everything without a cache: snapshot, received, pending), then migrations. Remote
    /// records that cannot be read are quarantined, never a reason to fail; an unreadable cache
    /// is ignored.
    ///
    /// A joined workspace that has pulled nothing yet is not migrated: its first pull then
    /// lands in an empty document, a fast-forward ([`import`]); [`Self::refresh`] migrates
    /// once content arrived, if it is older.
    pub async fn open(store: S, id: &str) -> Result<Self, EngineError> {
        let mut doc = new_doc(random_peer_id())?;
        let mut seen = Seen::default();
        let mut cached_ops = 0;
        if let Ok(Some(cache)) = store.open_cache(id).await {
            if doc.import(&cache.snapshot).is_ok() {
                seen.since = cache.since;
                cached_ops = doc.len_ops();
            } else {
                doc = new_doc(random_peer_id())?;
            }
        }
        let state = store
            .load_since(id, &seen.since)
            .await?
            .ok_or_else(|| EngineError::UnknownWorkspace(id.to_owned()))?;
        let imported = import_state(&mut doc, &state, &mut seen)?;
        let awaiting_first_pull = doc.oplog_vv().is_empty() && state.record.server_url.is_some();
        let engine = Self::from_record(store, state.record.clone(), doc);
        *engine.seen.borrow_mut() = seen;
        engine.cached_ops.set(cached_ops);
        engine.quarantine(&state, imported).await;
        if !awaiting_first_pull {
            match engine.migrate_and_name(None).await {
                // A full disk does not keep anyone from their notes: the migration edit was
                // rolled back and is made again at the next open (found by the simulation).
                Err(EngineError::Storage(crate::storage::StorageError::QuotaExceeded)) => {}
                other => other?,
            }
        }
        engine.save_open_cache_if_due().await;
        Ok(engine)
    }

    /// Writes the open cache ([`Store::save_open_cache`]) once [`OPEN_CACHE_AFTER_OPS`] ops were
    /// added since it was last written or read. Best effort: a refused write (a full quota) only
    /// makes the next open slower, so it is not an error.
    pub(crate) async fn save_open_cache_if_due(&self) {
        let doc = self.doc();
        let ops = doc.len_ops();
        if ops < self.cached_ops.get().saturating_add(OPEN_CACHE_AFTER_OPS) {
            return;
        }
        let Ok(snapshot) = doc.export(ExportMode::Snapshot) else {
            return;
        };
        self.cached_ops.set(ops);
        let cache = OpenCache {
            since: self.seen.borrow().since.clone(),
            snapshot,
        };
        let _ = self.store.save_open_cache(&self.id(), &cache).await;
    }

    /// Moves unreadable remote records into quarantine (best effort: if storage refuses, they stay
    /// in `received` and are found again by the next open). The engine's list only grows: a read
    /// that finished late, or a refused move, never hides a record already found unreadable.
    /// Quarantines what could not be read, and records a fork a witness showed (sync then stops
    /// with `server_fork`; the data stays).
    async fn quarantine(&self, state: &LoadedState, imported: import::Imported) {
        let import::Imported { bad, forked } = imported;
        if let Some(seq) = forked {
            let marked = self
                .store
                .update_workspace(&state.record.id, &Change::Forked(seq))
                .await;
            if let Ok(crate::storage::Updated::Changed(r) | crate::storage::Updated::Unchanged(r)) =
                marked
            {
                *self.record.borrow_mut() = r;
            }
        }
        if !bad.is_empty() {
            let _ = self.store.quarantine(&state.record.id, &bad).await;
        }
        let mut all = self.quarantined.borrow().clone();
        all.extend(state.quarantined.iter().copied());
        all.extend(bad);
        all.sort_unstable();
        all.dedup();
        *self.quarantined.borrow_mut() = all;
        self.reseal_plain_pending().await;
    }

    /// Seals the pending updates of a notebook that gained keys after they were made (encryption
    /// turned on, or a member's device rejoined with a keyed link): the worker sends no plain
    /// update of a notebook with keys, so these wait for this. Best effort, like quarantine: a
    /// refused write is tried again by the next load.
    async fn reseal_plain_pending(&self) {
        let record = self.record();
        if record
            .keys
            .as_ref()
            .is_none_or(|r| r.plain_through.is_none())
        {
            return;
        }
        let Ok(pending) = self.store.pending(&record.id).await else {
            return;
        };
        let sealed: Vec<PendingUpdate> = pending
            .into_iter()
            .filter(|p| !shared_schema::seal::is_sealed(&p.bytes))
            .filter_map(|p| {
                let bytes = crate::keys::sealed(&record, p.bytes).ok()?;
                Some(PendingUpdate { key: p.key, bytes })
            })
            .collect();
        if !sealed.is_empty() {
            let _ = self.store.reseal_pending(&record.id, &sealed).await;
        }
    }

    fn from_record(store: S, record: WorkspaceRecord, doc: LoroDoc) -> Self {
        let engine = Self {
            store,
            record: RefCell::new(record),
            peers: RefCell::new(vec![doc.peer_id()]),
            doc: RefCell::new(doc),
            listeners: RefCell::new(Vec::new()),
            next_listener: std::cell::Cell::new(0),
            quarantined: RefCell::new(Vec::new()),
            edits: Default::default(),
            failed_writes: Default::default(),
            last_failure: Default::default(),
            seen: RefCell::new(Seen::default()),
            changes: Arc::new(Mutex::new(model::Changes::everything())),
            watch: RefCell::new(None),
            run: RefCell::new(None),
            last_stored: RefCell::new(None),
            stager: RefCell::new(None),
            preview: RefCell::new(None),
            ahead: RefCell::new(None),
            newest_pending: RefCell::new(None),
            shown: RefCell::new(std::collections::BTreeMap::new()),
            held_upto: std::cell::Cell::new(0),
            cached_ops: std::cell::Cell::new(0),
        };
        engine.watch_doc();
        engine
    }

    /// Continues on `doc` when an import replaced the engine's document ([`import::import_one`]).
    fn adopt(&self, doc: LoroDoc) {
        if doc.peer_id() != self.doc().peer_id() {
            self.peers.borrow_mut().push(doc.peer_id());
            self.doc.replace(doc);
            self.watch_doc();
        }
    }

    /// Follows the current document's events into `changes` (a new document: everything changed).
    fn watch_doc(&self) {
        let sink = self.changes.clone();
        let sub = self.doc().subscribe_root(Arc::new(move |event| {
            sink.lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .record(&event);
        }));
        *self.changes.lock().unwrap_or_else(|p| p.into_inner()) = model::Changes::everything();
        self.watch.replace(Some(sub));
    }

    /// What changed since the last call — which notes, the metadata, or everything — so a reader
    /// re-reads only those notes ([`Self::note`]) instead of the whole notebook. From Loro's diff
    /// events of local edits and of imports alike; the first call after open says everything.
    pub fn take_changes(&self) -> model::Changes {
        std::mem::take(&mut *self.changes.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs pending migrations as one durable edit (read-only members only read).
    async fn migrate_and_name(&self, name: Option<&str>) -> Result<(), EngineError> {
        model::check_schema(&self.doc())?;
        if self.is_read_only() {
            return Ok(());
        }
        let _edit = self.edits.lock().await;
        let doc = &self.doc();
        let before = model::schema_version(doc);
        let needs_name = name.is_some();
        let vv = doc.oplog_vv();
        let applied = model::migrate(doc, now_ms())?;
        if let Some(name) = name {
            model::set_name(doc, name)?;
        }
        if applied.is_empty() && !needs_name && doc.oplog_vv() == vv {
            return Ok(());
        }
        doc.set_next_commit_message(&format!(
            "migrate schema v{before} → v{}",
            model::schema_version(doc)
        ));
        self.persist_commit(&vv).await
    }

    /// Commits the document and appends the update since `vv` to `pending` — merged into this
    /// session's open [`Run`] when storage allows; on a storage error the document is rolled back
    /// to `vv`.
    async fn persist_commit(&self, vv: &loro::VersionVector) -> Result<(), EngineError> {
        self.persist_commit_of(vv, self.doc().peer_id()).await
    }

    /// [`Self::persist_commit`] of an edit made under `peer` (the document's own, or a fork's:
    /// [`Self::edit_at`]); a storage error drops that peer's ops after `vv`. The caller holds
    /// the edit lock.
    async fn persist_commit_of(
        &self,
        vv: &loro::VersionVector,
        peer: u64,
    ) -> Result<(), EngineError> {
        let prepared = self.prepare_commit(vv, peer)?;
        self.store_commit(prepared).await
    }

    /// The part of storing an edit that needs no storage: commits the document, exports the
    /// update since `vv` (merged into this session's open [`Run`] when there is one) and shows
    /// it to the other tabs ([`Self::set_preview`]). No `await`: an edit prepares as it is made,
    /// even while an earlier edit's write is in flight ([`Self::edit_if`]). On an error the
    /// edit's ops are dropped.
    fn prepare_commit(&self, vv: &loro::VersionVector, peer: u64) -> Result<Prepared, EngineError> {
        let doc = self.doc();
        doc.commit();
        let record = self.record();
        // Other tabs' edits shown before they were stored go along in this update.
        let (base, carried) = self.carry_shown(vv);
        let bytes = doc
            .export(ExportMode::updates(&base))
            .map_err(|e| EngineError::Encode(e.to_string()))?;
        let end = doc.oplog_vv().get(&peer).copied().unwrap_or(0);
        let open = self
            .run
            .borrow()
            .as_ref()
            .filter(|r| r.peer == peer && r.len < MAX_RUN_BYTES && carried.is_empty())
            .map(|r| (r.key.clone(), r.start));
        let merged = match &open {
            Some((_, start)) => Some(
                doc.export(ExportMode::updates_in_range(vec![loro::IdSpan::new(
                    peer, *start, end,
                )]))
                .map_err(|e| EngineError::Encode(e.to_string()))?,
            ),
            None => None,
        };
        // Sealed for the server (an encrypted notebook); no randomness → nothing stored.
        let seal = |b: Vec<u8>| crate::keys::sealed(&record, b);
        let (bytes, merged) = match seal(bytes).and_then(|b| Ok((b, merged.map(seal).transpose()?)))
        {
            Ok(sealed) => sealed,
            Err(e) => {
                self.rollback(vv, peer)?;
                return Err(e.into());
            }
        };
        // The other tabs show it now; a merged update is not what they would be told is stored.
        let preview = self.preview.borrow().clone();
        if let Some(preview) = preview.as_ref().filter(|_| merged.is_none()) {
            preview(&bytes);
        }
        Ok(Prepared {
            vv: vv.clone(),
            peer,
            bytes,
            run: open.zip(merged),
            carried,
            previewed: preview.is_some(),
        })
    }

    /// Stores a [`Self::prepare_commit`]ed edit in `pending` (handing it to the sync worker while
    /// the write commits, [`Self::set_stager`]); on a storage error the edit's ops, and those of
    /// every edit prepared after it, are dropped from the document. The caller holds the edit
    /// lock.
    async fn store_commit(&self, prepared: Prepared) -> Result<(), EngineError> {
        let Prepared {
            vv,
            peer,
            bytes,
            run,
            carried,
            previewed,
        } = prepared;
        let merge = run.as_ref().map(|((key, _), bytes)| Merge {
            replaces: key,
            bytes,
        });
        let stager = self.stager.borrow().clone();
        // The key the last staged edit reserved, while it is above every key known here: this
        // edit then reaches the worker before any storage round trip.
        let newest = self.newest_pending();
        let reserved = self.ahead.take().filter(|k| {
            stager.is_some()
                && merge.is_none()
                && crate::storage::reserve_is_usable(k, newest.as_deref())
        });
        let staged = stager.as_deref().map(|f| Stage {
            hand: f as &dyn Fn(&PendingUpdate, Option<&str>),
            ahead: reserved.as_deref().map(|key| Ahead {
                key,
                after: newest.as_deref(),
            }),
        });
        match self
            .store
            .append_pending(&self.id(), &bytes, merge, staged)
            .await
        {
            Ok(stored) => {
                let start = match (&run, stored.merged) {
                    (Some(((_, start), _)), true) => *start,
                    _ => vv.get(&peer).copied().unwrap_or(0),
                };
                // A staged update may be on the server under its key already, and a previewed
                // one shown by other tabs as these bytes: nothing is ever merged into either
                // (the next edit starts a run of its own); nor into one carrying other tabs' ops
                // (a merge keeps only this session's).
                let mut shown = self.shown.borrow_mut();
                for bytes in &carried {
                    shown.remove(bytes);
                }
                drop(shown);
                *self.run.borrow_mut() = (stager.is_none() && !previewed && carried.is_empty())
                    .then(|| Run {
                        key: stored.update.key.clone(),
                        peer,
                        start,
                        len: stored.update.bytes.len(),
                    });
                self.seen.borrow_mut().own.insert(stored.update.key.clone());
                self.heard_pending(&stored.update.key);
                let newest = self.newest_pending();
                *self.ahead.borrow_mut() = stored
                    .next
                    .filter(|k| crate::storage::reserve_is_usable(k, newest.as_deref()));
                self.last_stored.replace(Some(stored.update));
                Ok(())
            }
            Err(e) => {
                // Edits prepared after this one built on its ops: the rollback drops theirs too.
                self.failed_writes.set(self.failed_writes.get() + 1);
                self.last_failure.replace(e.to_string());
                self.rollback(&vv, peer)?;
                Err(e.into())
            }
        }
    }

    /// The version an edit's update is exported from: `vv` (the document's before the edit),
    /// lowered to where the ops of every edit [`Self::show_unstored`] showed, and no storage read
    /// or broadcast has confirmed, start — and the keys of those edits the document holds whole
    /// (stored by this write, once it succeeds). One Loro could not apply yet (it waits for ops
    /// this tab has not read) stays shown: an edit made before it applies cannot depend on it.
    fn carry_shown(&self, vv: &loro::VersionVector) -> (loro::VersionVector, Vec<Vec<u8>>) {
        let shown = self.shown.borrow();
        let mut base = vv.clone();
        let mut carried = Vec::new();
        for (bytes, span) in shown.iter() {
            for (peer, start) in span.start.iter() {
                if vv.get(peer).is_some_and(|c| c > start) {
                    let lowest = base.get(peer).copied().unwrap_or(0).min(*start);
                    base.insert(*peer, lowest);
                }
            }
            if span
                .end
                .iter()
                .all(|(peer, end)| vv.get(peer).is_some_and(|c| c >= end))
            {
                carried.push(bytes.clone());
            }
        }
        (base, carried)
    }

    /// Drops this session's ops after `vv` (the edit whose write failed) from memory, keeping
    /// everything else (remote updates a refresh imported meanwhile cannot depend on them).
    /// `peer` is the edit's: a large import may have moved the engine to a new document (and a
    /// new peer) while the write was in flight ([`import::import_one`]); the edit's ops came along.
    fn rollback(&self, vv: &loro::VersionVector, peer: u64) -> Result<(), EngineError> {
        let doc = self.doc();
        let mut keep = doc.oplog_vv();
        match vv.get(&peer) {
            Some(counter) => {
                keep.insert(peer, *counter);
            }
            None => {
                keep.remove(&peer);
            }
        }
        let bytes = doc
            .fork_at(&doc.vv_to_frontiers(&keep))?
            .export(ExportMode::Snapshot)
            .map_err(|e| EngineError::Encode(e.to_string()))?;
        // A fresh doc with a fresh peer, holding only what was stored: the dropped change's ids
        // are never reused, even if its write did reach storage after all.
        let doc = new_doc(random_peer_id())?;
        doc.import(&bytes)?;
        self.peers.borrow_mut().push(doc.peer_id());
        self.doc.replace(doc);
        self.watch_doc();
        Ok(())
    }

    /// Every peer id this engine has edited under, oldest first.
    pub fn own_peers(&self) -> Vec<u64> {
        self.peers.borrow().clone()
    }

    /// The current document handle (cheap clone of a shared handle).
    pub fn doc(&self) -> LoroDoc {
        self.doc.borrow().clone()
    }
}

/// Reads and edits.
impl<S: Store> Engine<S> {
    /// Workspace id.
    pub fn id(&self) -> String {
        self.record.borrow().id.clone()
    }

    /// The stored metadata as of the last write by this engine.
    pub fn record(&self) -> WorkspaceRecord {
        self.record.borrow().clone()
    }

    /// The storage this engine writes to.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Seqs of remote records that could not be read (kept, never applied).
    pub fn quarantined(&self) -> Vec<u64> {
        self.quarantined.borrow().clone()
    }

    /// True when this device may only read.
    pub fn is_read_only(&self) -> bool {
        self.record.borrow().role == Role::Read
    }

    /// Workspace name, from the document (falls back to the stored one).
    pub fn name(&self) -> String {
        let name = model::name(&self.doc());
        if name.is_empty() {
            self.record.borrow().name.clone()
        } else {
            name
        }
    }

    /// Every note, pinned first, then newest.
    pub fn notes(&self) -> Vec<Note> {
        model::notes(&self.doc())
    }

    /// One note.
    pub fn note(&self, id: &str) -> Option<Note> {
        model::note(&self.doc(), id)
    }

    /// Subscribes to changes (local edits and remote updates). Returns an id for [`Self::unsubscribe`].
    pub fn subscribe(&self, f: impl Fn(Origin) + 'static) -> u64 {
        let id = self.next_listener.get();
        self.next_listener.set(id + 1);
        self.listeners.borrow_mut().push((id, Rc::new(f)));
        id
    }

    /// Removes a subscription.
    pub fn unsubscribe(&self, id: u64) {
        self.listeners.borrow_mut().retain(|(i, _)| *i != id);
    }

    fn notify(&self, origin: Origin) {
        let listeners: Vec<Listener> = self
            .listeners
            .borrow()
            .iter()
            .map(|(_, l)| l.clone())
            .collect();
        for l in listeners {
            l(origin);
        }
    }

    /// Runs one edit as one durable commit; on any error the document is unchanged.
    async fn edit<T>(
        &self,
        message: &str,
        f: impl FnOnce(&LoroDoc, i64) -> Result<T, model::ModelError>,
    ) -> Result<T, EngineError> {
        self.edit_if(message, |d, now| f(d, now).map(|v| (v, true)))
            .await
    }

    /// [`Self::edit`] for an edit that may find nothing to change (`f` says so): then nothing is
    /// committed or stored.
    async fn edit_if<T>(
        &self,
        message: &str,
        f: impl FnOnce(&LoroDoc, i64) -> Result<(T, bool), model::ModelError>,
    ) -> Result<T, EngineError> {
        if self.is_read_only() {
            return Err(EngineError::ReadOnly);
        }
        let value = {
            // Made, committed and shown to the other tabs now — while an earlier edit's write may
            // still be in flight — and stored in the order made (the ticket, taken before any
            // `await`).
            let ticket = self.edits.ticket();
            let doc = self.doc();
            let vv = doc.oplog_vv();
            let peer = doc.peer_id();
            match f(&doc, now_ms()) {
                Ok((value, false)) => return Ok(value),
                Ok((value, true)) => {
                    doc.set_next_commit_message(message);
                    let failed = self.failed_writes.get();
                    let prepared = self.prepare_commit(&vv, peer)?;
                    let _edit = ticket.wait().await;
                    if self.failed_writes.get() != failed {
                        // An edit made before this one could not be stored, and its rollback
                        // dropped this one's ops (they built on it).
                        return Err(EngineError::EarlierEditNotStored(
                            self.last_failure.borrow().clone(),
                        ));
                    }
                    self.store_commit(prepared).await?;
                    self.notify(Origin::Local);
                    value
                }
                Err(e) => {
                    self.rollback(&vv, peer)?;
                    return Err(e.into());
                }
            }
        };
        self.save_open_cache_if_due().await;
        Ok(value)
    }

    /// Renames the workspace.
    pub async fn rename(&self, name: &str) -> Result<(), EngineError> {
        self.edit("rename workspace", |d, _| model::set_name(d, name))
            .await?;
        self.store
            .update_workspace(&self.id(), &Change::Name(name.to_owned()))
            .await?;
        Ok(())
    }

    /// Creates a note; returns its id.
    pub async fn create_note(&self, title: &str) -> Result<String, EngineError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.edit("create note", |d, now| {
            model::create_note(d, &id, title, now)
        })
        .await?;
        Ok(id)
    }

    /// Replaces characters `start..end` of the title or body with `insert`.
    pub async fn splice_text(
        &self,
        note: &str,
        field: Field,
        start: usize,
        end: usize,
        insert: &str,
    ) -> Result<(), EngineError> {
        self.edit("edit text", |d, now| {
            model::splice_text(d, note, field, start, end, insert, now)
        })
        .await
    }

    /// Applies a text field's change (it held `base`, now `new`) to a note's title or body,
    /// placed against the text as it is when the edit runs ([`model::set_text`]): keystrokes
    /// queued behind a slow write are applied once each, and a remote edit the field had not
    /// shown yet is kept.
    pub async fn set_text(
        &self,
        note: &str,
        field: Field,
        base: &str,
        new: &str,
    ) -> Result<(), EngineError> {
        self.edit_if("edit text", |d, now| {
            model::set_text(d, note, field, base, new, now).map(|changed| ((), changed))
        })
        .await
    }

    /// Appends a task to a note's checklist.
    pub async fn add_task(&self, note: &str, text: &str) -> Result<(), EngineError> {
        self.edit("add task", |d, now| model::add_task(d, note, text, now))
            .await
    }

    /// Marks a task done or not done.
    pub async fn set_task_done(
        &self,
        note: &str,
        index: usize,
        done: bool,
    ) -> Result<(), EngineError> {
        self.edit("toggle task", |d, now| {
            model::set_task_done(d, note, index, done, now)
        })
        .await
    }

    /// Moves a task.
    pub async fn move_task(&self, note: &str, from: usize, to: usize) -> Result<(), EngineError> {
        self.edit("move task", |d, now| {
            model::move_task(d, note, from, to, now)
        })
        .await
    }

    /// Deletes a task.
    pub async fn delete_task(&self, note: &str, index: usize) -> Result<(), EngineError> {
        self.edit("delete task", |d, now| {
            model::delete_task(d, note, index, now)
        })
        .await
    }

    /// Adds or removes a tag.
    pub async fn set_tag(&self, note: &str, tag: &str, on: bool) -> Result<(), EngineError> {
        self.edit("tag", |d, now| model::set_tag(d, note, tag, on, now))
            .await
    }

    /// Pins or unpins a note.
    pub async fn set_pinned(&self, note: &str, pinned: bool) -> Result<(), EngineError> {
        self.edit("pin", |d, now| {
            model::set_flag(d, note, Flag::Pinned, pinned, now)
        })
        .await
    }

    /// Moves a note to the trash, or restores it (`trashed = false`).
    pub async fn set_trashed(&self, note: &str, trashed: bool) -> Result<(), EngineError> {
        self.edit("trash", |d, now| {
            model::set_flag(d, note, Flag::Trashed, trashed, now)
        })
        .await
    }

    /// Deletes a note for good.
    pub async fn purge(&self, note: &str) -> Result<(), EngineError> {
        self.edit("purge note", |d, _| model::purge_note(d, note))
            .await
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod cache_tests;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod history_tests;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod live_tests;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod sealing_tests;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod staged_tests;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
