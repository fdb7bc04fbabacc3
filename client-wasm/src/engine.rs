//! [`Engine`]: one open workspace — its Loro document and its local storage (design §2).
//!
//! - Open = import snapshot, then `received`, then `pending` (Loro import is idempotent and
//!   order-free, so replay after a crash is safe), then run schema migrations.
//! - Every edit is one Loro commit whose update bytes are in `pending` **before** the call returns.
//!   If storage refuses the write (full quota), the document is rolled back to its state before the
//!   edit and the error is returned; nothing stored before is touched.
//! - The sync worker reads `pending`, acknowledges keys, and applies pulled records after checking
//!   the integrity chain.

mod history;
mod sync;

pub use history::Version;
pub use sync::ApplyOutcome;

use crate::error::EngineError;
use crate::storage::{LoadedState, PendingUpdate, Store, WorkspaceRecord};
use loro::{ExportMode, LoroDoc};
use shared_schema::model::{self, Field, Flag, Note};
use shared_schema::{Chain, Role};
use std::cell::RefCell;
use std::rc::Rc;

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

/// A fresh random Loro peer id for a new device or workspace.
pub fn random_peer_id() -> u64 {
    let (hi, _) = uuid::Uuid::new_v4().as_u64_pair();
    // Loro reserves u64::MAX; keep ids well inside the range.
    hi >> 1
}

/// Imports a loaded state into `doc` — snapshot, then received, then pending (Loro import is
/// idempotent and order-free, so this is also how a refresh catches up) — and returns its record.
fn import_state(doc: &LoroDoc, state: LoadedState) -> Result<WorkspaceRecord, EngineError> {
    if let Some(snapshot) = &state.snapshot {
        doc.import(snapshot)?;
    }
    let mut batch: Vec<Vec<u8>> = state.received.into_iter().map(|(_, b)| b).collect();
    batch.extend(state.pending.into_iter().map(|p| p.bytes));
    if !batch.is_empty() {
        doc.import_batch(&batch)?;
    }
    Ok(state.record)
}

fn new_doc(peer_id: u64) -> Result<LoroDoc, EngineError> {
    let doc = LoroDoc::new();
    doc.set_peer_id(peer_id)?;
    doc.set_record_timestamp(true);
    // Never merge two commits into one change, so every edit is a version in the history.
    doc.set_change_merge_interval(-1);
    Ok(doc)
}

/// One open workspace.
pub struct Engine<S: Store> {
    store: S,
    record: RefCell<WorkspaceRecord>,
    doc: RefCell<LoroDoc>,
    listeners: RefCell<Vec<(u64, Listener)>>,
    next_listener: std::cell::Cell<u64>,
    seq: std::cell::Cell<u64>,
}

impl<S: Store> Engine<S> {
    /// Creates a new local workspace owned by this device (role `master`, no server yet).
    pub async fn create(store: S, name: &str, peer_id: u64) -> Result<Self, EngineError> {
        let record = WorkspaceRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            role: Role::Master,
            token: None,
            server_url: None,
            last_pulled_seq: 0,
            chain_head: Chain::genesis(),
            schema_version: 0,
            peer_id,
        };
        let engine = Self::from_record(store, record, new_doc(peer_id)?);
        engine.store.put_workspace(&engine.record()).await?;
        engine.migrate_and_name(Some(name)).await?;
        Ok(engine)
    }

    /// Registers a workspace that lives on a server (a joined share link, or one created there)
    /// and opens it. Its content arrives by sync.
    pub async fn join(store: S, record: WorkspaceRecord) -> Result<Self, EngineError> {
        if store.get_workspace(&record.id).await?.is_none() {
            store.put_workspace(&record).await?;
        }
        Self::open(store, &record.id).await
    }

    /// Opens a stored workspace: snapshot, then received, then pending, then migrations.
    pub async fn open(store: S, id: &str) -> Result<Self, EngineError> {
        let state = store
            .load(id)
            .await?
            .ok_or_else(|| EngineError::UnknownWorkspace(id.to_owned()))?;
        let doc = new_doc(state.record.peer_id)?;
        let record = import_state(&doc, state)?;
        let engine = Self::from_record(store, record, doc);
        engine.migrate_and_name(None).await?;
        Ok(engine)
    }

    fn from_record(store: S, record: WorkspaceRecord, doc: LoroDoc) -> Self {
        Self {
            store,
            record: RefCell::new(record),
            doc: RefCell::new(doc),
            listeners: RefCell::new(Vec::new()),
            next_listener: std::cell::Cell::new(0),
            seq: std::cell::Cell::new(0),
        }
    }

    /// Runs pending migrations as one durable edit (read-only members only read).
    async fn migrate_and_name(&self, name: Option<&str>) -> Result<(), EngineError> {
        if self.is_read_only() {
            return Ok(());
        }
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

    /// Commits the document and appends the update since `vv` to `pending`; on a storage error
    /// the document is rolled back to `vv`.
    async fn persist_commit(&self, vv: &loro::VersionVector) -> Result<(), EngineError> {
        let doc = self.doc();
        let before = doc.vv_to_frontiers(vv);
        doc.commit();
        let bytes = doc
            .export(ExportMode::updates(vv))
            .map_err(|e| EngineError::Encode(e.to_string()))?;
        let update = PendingUpdate {
            key: self.next_key(),
            bytes,
        };
        if let Err(e) = self.store.append_pending(&self.id(), &update).await {
            self.rollback(&before)?;
            return Err(e.into());
        }
        Ok(())
    }

    fn rollback(&self, to: &loro::Frontiers) -> Result<(), EngineError> {
        let bytes = self
            .doc()
            .fork_at(to)?
            .export(ExportMode::Snapshot)
            .map_err(|e| EngineError::Encode(e.to_string()))?;
        // A fresh doc with the same peer, holding only what was stored. Reusing the peer is safe:
        // the dropped change never left this device, so its counters are free again.
        let doc = new_doc(self.record.borrow().peer_id)?;
        doc.import(&bytes)?;
        self.doc.replace(doc);
        Ok(())
    }

    /// The current document handle (cheap clone of a shared handle).
    pub fn doc(&self) -> LoroDoc {
        self.doc.borrow().clone()
    }

    fn next_key(&self) -> String {
        let n = self.seq.get();
        self.seq.set(n + 1);
        // Sorts by time, unique across tabs and devices, ≤ 64 bytes.
        format!(
            "{:013}-{:04}-{}",
            now_ms().max(0),
            n % 10_000,
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        )
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
        if self.is_read_only() {
            return Err(EngineError::ReadOnly);
        }
        let doc = self.doc();
        let vv = doc.oplog_vv();
        match f(&doc, now_ms()) {
            Ok(value) => {
                doc.set_next_commit_message(message);
                self.persist_commit(&vv).await?;
                self.notify(Origin::Local);
                Ok(value)
            }
            Err(e) => {
                self.rollback(&doc.vv_to_frontiers(&vv))?;
                Err(e.into())
            }
        }
    }

    /// Renames the workspace.
    pub async fn rename(&self, name: &str) -> Result<(), EngineError> {
        self.edit("rename workspace", |d, _| model::set_name(d, name))
            .await
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
mod tests;
