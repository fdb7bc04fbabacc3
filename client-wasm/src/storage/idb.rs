//! The IndexedDB [`Store`] (wasm32 only), on `indexed_db_futures`.
//!
//! One database per origin (default name `hearth`), version 2, object stores with string keys:
//! `workspaces` (`{id}` → JSON), `snapshots` (`{id}` → bytes; `{id}:open` → the open cache), `pending` (`{id}/{key}` → bytes),
//! `received` (`{id}/{seq:020}` → update bytes), `remote_snapshots` (`{id}/{seq:020}` → pulled
//! snapshot bytes), `quarantine` (`{id}/{seq:020}` → bytes) and `outbox` (`{id}/{covers:020}` →
//! snapshot bytes, at most one per workspace). Version 1 databases are upgraded by adding the new
//! stores; nothing is rewritten. Every method runs in one transaction that is committed explicitly
//! (indexed_db_futures rolls back by default); read-modify-writes of a record happen inside it.
//!
//! A full disk, as Chromium really reports it (checked on a profile whose IndexedDB folder sits on
//! a 4 MB tmpfs): the commit aborts with `UnknownError: … IO error … FILE_ERROR_NO_SPACE`, and the
//! browser then *closes the connection* — every later transaction throws `InvalidStateError`.
//! So a commit's failure is read from the transaction's own `error` (the wrapper only says
//! "aborted"), a disk-full message counts as [`StorageError::QuotaExceeded`] like a quota
//! `QuotaExceededError`, and a connection the browser closed is reopened on the next call: once
//! the user frees space, the next edit is stored without a reload.

use super::{
    allocate_keys, apply_change, may_merge, Appended, Change, Compaction, LoadedState, Merge,
    OpenCache, Page, PendingUpdate, RemoteRecord, Since, Staged, StorageError, Store, ToPush,
    Updated, WorkspaceRecord,
};
use futures::future::try_join;
use indexed_db_futures::database::Database;
use indexed_db_futures::internals::SystemRepr;
use indexed_db_futures::prelude::*;
use indexed_db_futures::transaction::{TransactionDurability, TransactionMode, TransactionOptions};
use indexed_db_futures::KeyRange;
use js_sys::Uint8Array;
use shared_schema::frame::PullRecordKind;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

const WORKSPACES: &str = "workspaces";
const SNAPSHOTS: &str = "snapshots";
const PENDING: &str = "pending";
const RECEIVED: &str = "received";
const REMOTE_SNAPSHOTS: &str = "remote_snapshots";
const QUARANTINE: &str = "quarantine";
const OUTBOX: &str = "outbox";

/// The open cache's key in the `snapshots` store (beside the local snapshot under the bare id;
/// no schema upgrade needed).
fn open_cache_key(id: &str) -> String {
    format!("{id}:open")
}
const ALL: [&str; 7] = [
    WORKSPACES,
    SNAPSHOTS,
    PENDING,
    RECEIVED,
    REMOTE_SNAPSHOTS,
    QUARANTINE,
    OUTBOX,
];
const DB_VERSION: u32 = 2;

/// IndexedDB-backed store. Cheap to clone (one shared connection, reopened after the browser
/// closes it).
#[derive(Clone)]
pub struct IdbStore {
    name: Rc<str>,
    conn: Rc<RefCell<Connection>>,
}

/// One open connection and whether the browser has closed it since.
struct Connection {
    db: Rc<Database>,
    closed: Rc<Cell<bool>>,
    _on_close: Closure<dyn FnMut()>,
}

impl Drop for Connection {
    /// A connection replaced after the browser closed it may still fire its `close` event (we
    /// can learn of the closing from a failed transaction first): unhook the handler before its
    /// closure is freed, or the event throws "closure invoked … after being dropped" in the page
    /// (seen on a really full disk).
    fn drop(&mut self) {
        let sys: &web_sys::IdbDatabase = self.db.as_sys().unchecked_ref();
        sys.set_onclose(None);
    }
}

/// Classifies an IndexedDB error (see [`StorageError::from_dom`]).
pub fn map_err(e: indexed_db_futures::error::Error) -> StorageError {
    use indexed_db_futures::error::Error;
    match e {
        Error::DomException(ex) => {
            let sys: web_sys::DomException = ex.into();
            StorageError::from_dom(&sys.name(), &sys.message())
        }
        other => StorageError::Other(other.to_string()),
    }
}

/// Commits `tx`; when the browser aborts it, the error is the transaction's own (a full disk, a
/// quota), not the wrapper's "expected committed, was aborted".
async fn commit(tx: Tx<'_>) -> Result<(), StorageError> {
    let sys: web_sys::IdbTransaction = tx.as_sys().clone().unchecked_into();
    match tx.commit().await {
        Ok(()) => Ok(()),
        Err(e) => Err(match sys.error() {
            Some(dom) => StorageError::from_dom(&dom.name(), &dom.message()),
            None => map_err(e),
        }),
    }
}

fn map_open_err(e: indexed_db_futures::error::OpenDbError) -> StorageError {
    use indexed_db_futures::error::OpenDbError;
    match e {
        OpenDbError::Base(e) => map_err(e),
        other => StorageError::Unavailable(other.to_string()),
    }
}

fn bytes_of(v: JsValue) -> Result<Vec<u8>, StorageError> {
    v.dyn_into::<Uint8Array>()
        .map(|a| a.to_vec())
        .map_err(|_| StorageError::Corrupt("expected bytes".into()))
}

fn js_bytes(b: &[u8]) -> JsValue {
    Uint8Array::from(b).into()
}

fn prefix_range(id: &str) -> KeyRange<String> {
    KeyRange::Bound(format!("{id}/"), false, format!("{id}/\u{ffff}"), false)
}

fn seq_key(id: &str, seq: u64) -> String {
    format!("{id}/{seq:020}")
}

/// Keys `{id}/…` with a seq ≤ `upto`.
fn upto_range(id: &str, upto: u64) -> KeyRange<String> {
    KeyRange::Bound(format!("{id}/"), false, seq_key(id, upto), false)
}

fn parse_seq(key: &str) -> Result<u64, StorageError> {
    key.parse::<u64>()
        .map_err(|_| StorageError::Corrupt(format!("bad seq key {key}")))
}

type Tx<'a> = indexed_db_futures::transaction::Transaction<'a>;

async fn get_record(tx: &Tx<'_>, id: &str) -> Result<Option<WorkspaceRecord>, StorageError> {
    let store = tx.object_store(WORKSPACES).map_err(map_err)?;
    let v: Option<JsValue> = store
        .get(id.to_owned())
        .primitive()
        .map_err(map_err)?
        .await
        .map_err(map_err)?;
    v.map(record_from).transpose()
}

fn put_record(tx: &Tx<'_>, record: &WorkspaceRecord) -> Result<(), StorageError> {
    let store = tx.object_store(WORKSPACES).map_err(map_err)?;
    store
        .put(record_js(record)?)
        .with_key(record.id.clone())
        .primitive()
        .map_err(map_err)?;
    Ok(())
}

fn put_bytes(tx: &Tx<'_>, store: &str, key: String, bytes: &[u8]) -> Result<(), StorageError> {
    tx.object_store(store)
        .map_err(map_err)?
        .put(js_bytes(bytes))
        .with_key(key)
        .primitive()
        .map_err(map_err)?;
    Ok(())
}

fn delete_key(tx: &Tx<'_>, store: &str, key: String) -> Result<(), StorageError> {
    tx.object_store(store)
        .map_err(map_err)?
        .delete(key)
        .primitive()
        .map_err(map_err)?;
    Ok(())
}

fn delete_range(tx: &Tx<'_>, store: &str, range: KeyRange<String>) -> Result<(), StorageError> {
    tx.object_store(store)
        .map_err(map_err)?
        .delete::<String, _>(range)
        .primitive()
        .map_err(map_err)?;
    Ok(())
}

async fn get_bytes(tx: &Tx<'_>, store: &str, key: String) -> Result<Option<Vec<u8>>, StorageError> {
    let v: Option<JsValue> = tx
        .object_store(store)
        .map_err(map_err)?
        .get(key)
        .primitive()
        .map_err(map_err)?
        .await
        .map_err(map_err)?;
    v.map(bytes_of).transpose()
}

async fn count(tx: &Tx<'_>, store: &str, id: &str) -> Result<usize, StorageError> {
    let n: u32 = tx
        .object_store(store)
        .map_err(map_err)?
        .count()
        .with_query::<String, _>(prefix_range(id))
        .primitive()
        .map_err(map_err)?
        .await
        .map_err(map_err)?;
    Ok(n as usize)
}

fn record_from(v: JsValue) -> Result<WorkspaceRecord, StorageError> {
    let s = v
        .as_string()
        .ok_or_else(|| StorageError::Corrupt("workspace record is not text".into()))?;
    serde_json::from_str(&s).map_err(|e| StorageError::Corrupt(e.to_string()))
}

fn record_js(r: &WorkspaceRecord) -> Result<JsValue, StorageError> {
    serde_json::to_string(r)
        .map(JsValue::from)
        .map_err(|e| StorageError::Other(e.to_string()))
}

impl IdbStore {
    /// Opens (creating or upgrading) the database `name`.
    pub async fn open(name: &str) -> Result<Self, StorageError> {
        let conn = connect(name).await?;
        Ok(Self {
            name: name.into(),
            conn: Rc::new(RefCell::new(conn)),
        })
    }

    /// The open connection, reopened first if the browser closed it (after a full disk, or when
    /// the user cleared site data).
    async fn db(&self) -> Result<Rc<Database>, StorageError> {
        let (db, closed) = {
            let c = self.conn.borrow();
            (c.db.clone(), c.closed.get())
        };
        if !closed {
            return Ok(db);
        }
        let fresh = connect(&self.name).await?;
        let db = fresh.db.clone();
        *self.conn.borrow_mut() = fresh;
        Ok(db)
    }

    /// Deletes the database `name` (tests and "forget everything").
    pub async fn delete_database(name: &str) -> Result<(), StorageError> {
        Database::delete_by_name(name)
            .map_err(map_open_err)?
            .await
            .map_err(map_err)
    }

    /// Marks the connection closed when a transaction cannot even start on it.
    fn note_closed(&self, err: &StorageError) {
        if matches!(err, StorageError::Other(m) if m.starts_with("InvalidStateError")) {
            self.conn.borrow().closed.set(true);
        }
    }
}

/// Opens the database and watches for the browser closing the connection.
async fn connect(name: &str) -> Result<Connection, StorageError> {
    let blocked = Rc::new(Cell::new(false));
    let blocked_flag = blocked.clone();
    let db = Database::open(name)
        .with_version(DB_VERSION)
        .with_on_blocked(move |_event| {
            blocked_flag.set(true);
            Ok(())
        })
        .with_on_upgrade_needed(|_event, db| {
            let existing: Vec<String> = db.object_store_names().collect();
            for store in ALL {
                if !existing.iter().any(|s| s == store) {
                    db.create_object_store(store).build()?;
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| {
            if blocked.get() {
                StorageError::Blocked
            } else {
                map_open_err(e)
            }
        })?;
    let closed = Rc::new(Cell::new(false));
    let flag = closed.clone();
    let on_close = Closure::<dyn FnMut()>::new(move || flag.set(true));
    let sys: &web_sys::IdbDatabase = db.as_sys().unchecked_ref();
    sys.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    Ok(Connection {
        db: Rc::new(db),
        closed,
        _on_close: on_close,
    })
}

/// Begins a transaction on `db` over `stores`.
fn begin<'a>(
    store: &IdbStore,
    db: &'a Database,
    stores: &[&str],
    mode: TransactionMode,
) -> Result<Tx<'a>, StorageError> {
    db.transaction(stores)
        .with_mode(mode)
        .build()
        .map_err(map_err)
        .inspect_err(|e| store.note_closed(e))
}

/// A read-write transaction whose commit waits until the data is flushed to disk (`durability:
/// "strict"`), for what exists nowhere else: a local edit not yet on the server, a workspace's
/// record with its token. Chromium's default since version 121 is `relaxed` (the commit is
/// reported once the OS has the data), which an OS crash or a power cut can undo. Everything else
/// — pulled records, acknowledgements, caches, compaction — can be fetched or rebuilt again and
/// keeps the default.
fn begin_durable<'a>(
    store: &IdbStore,
    db: &'a Database,
    stores: &[&str],
) -> Result<Tx<'a>, StorageError> {
    let mut options = TransactionOptions::new();
    options.set_durability(TransactionDurability::Strict);
    db.transaction(stores)
        .with_mode(TransactionMode::Readwrite)
        .with_options(options)
        .build()
        .map_err(map_err)
        .inspect_err(|e| store.note_closed(e))
}

impl Store for IdbStore {
    async fn create_workspace(&self, record: &WorkspaceRecord) -> Result<bool, StorageError> {
        let db = self.db().await?;
        let tx = begin_durable(self, &db, &[WORKSPACES])?;
        if get_record(&tx, &record.id).await?.is_some() {
            return Ok(false);
        }
        put_record(&tx, record)?;
        commit(tx).await?;
        Ok(true)
    }

    async fn get_workspace(&self, id: &str) -> Result<Option<WorkspaceRecord>, StorageError> {
        let db = self.db().await?;
        let tx = begin(self, &db, &[WORKSPACES], TransactionMode::Readonly)?;
        get_record(&tx, id).await
    }

    async fn list_workspaces(&self) -> Result<Vec<WorkspaceRecord>, StorageError> {
        let db = self.db().await?;
        let tx = begin(self, &db, &[WORKSPACES], TransactionMode::Readonly)?;
        let store = tx.object_store(WORKSPACES).map_err(map_err)?;
        let all: Vec<JsValue> = store
            .get_all()
            .primitive()
            .map_err(map_err)?
            .await
            .map_err(map_err)?
            .collect::<Result<Vec<JsValue>, _>>()
            .map_err(map_err)?;
        all.into_iter().map(record_from).collect()
    }

    async fn update_workspace(&self, id: &str, change: &Change) -> Result<Updated, StorageError> {
        let db = self.db().await?;
        let tx = begin_durable(self, &db, &[WORKSPACES])?;
        let Some(mut record) = get_record(&tx, id).await? else {
            return Ok(Updated::Missing);
        };
        if !apply_change(&mut record, change) {
            return Ok(Updated::Unchanged(record));
        }
        put_record(&tx, &record)?;
        commit(tx).await?;
        Ok(Updated::Changed(record))
    }

    async fn delete_workspace(&self, id: &str) -> Result<(), StorageError> {
        let db = self.db().await?;
        let tx = begin(self, &db, &ALL, TransactionMode::Readwrite)?;
        for name in [WORKSPACES, SNAPSHOTS] {
            delete_key(&tx, name, id.to_owned())?;
        }
        delete_key(&tx, SNAPSHOTS, open_cache_key(id))?;
        for name in [PENDING, RECEIVED, REMOTE_SNAPSHOTS, QUARANTINE, OUTBOX] {
            delete_range(&tx, name, prefix_range(id))?;
        }
        commit(tx).await
    }

    async fn load_since(
        &self,
        id: &str,
        since: &Since,
    ) -> Result<Option<LoadedState>, StorageError> {
        let db = self.db().await?;
        let tx = begin(self, &db, &ALL, TransactionMode::Readonly)?;
        let Some(record) = get_record(&tx, id).await? else {
            return Ok(None);
        };
        let snapshot = if since.snapshot_covers == Some(record.snapshot_covers) {
            None
        } else {
            get_bytes(&tx, SNAPSHOTS, id.to_owned()).await?
        };
        let mut received = Vec::new();
        let after_seq = after_range(id, &format!("{:020}", since.received_after));
        for (store, kind) in [
            (REMOTE_SNAPSHOTS, PullRecordKind::Snapshot),
            (RECEIVED, PullRecordKind::Update),
        ] {
            for (k, bytes) in read_range_in(&tx, store, id, after_seq.clone()).await? {
                received.push(RemoteRecord {
                    seq: parse_seq(&k)?,
                    kind,
                    bytes,
                });
            }
        }
        received.sort_by_key(|r| r.seq);
        let pending_range = match &since.pending_after {
            Some(key) => after_range(id, key),
            None => prefix_range(id),
        };
        let pending = read_range_in(&tx, PENDING, id, pending_range)
            .await?
            .into_iter()
            .map(|(key, bytes)| PendingUpdate { key, bytes })
            .collect();
        let quarantined = read_keys(&tx, QUARANTINE, id)
            .await?
            .iter()
            .map(|k| parse_seq(k))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(LoadedState {
            record,
            snapshot,
            received,
            pending,
            quarantined,
        }))
    }

    async fn append_pending(
        &self,
        id: &str,
        bytes: &[u8],
        merge: Option<Merge<'_>>,
        staged: Staged<'_>,
    ) -> Result<Appended, StorageError> {
        let ahead = staged.and_then(|s| s.ahead);
        let merge = merge.filter(|_| ahead.is_none());
        let db = self.db().await?;
        // Opened before the update is handed over: the sync worker's transaction that stores the
        // server's acknowledgement is then created after this one, so IndexedDB runs it after
        // this write and it finds the update pending. Handed over the other way round (0.2–0.3
        // ms sooner), a page paused between the two could have the acknowledgement stored
        // first, find nothing, and leave the update pending until a later round pushed it again.
        let tx = begin_durable(self, &db, &[WORKSPACES, PENDING])?;
        // A key reserved ahead: handed over now, in the task that made the edit — the reply to
        // a read would wait behind the frame the edit caused.
        if let (Some(stage), Some(ahead)) = (staged, ahead) {
            let update = PendingUpdate {
                key: ahead.key.to_owned(),
                bytes: bytes.to_vec(),
            };
            (stage.hand)(&update, ahead.after);
        }
        let replaced = async {
            match &merge {
                Some(m) => get_bytes(&tx, PENDING, format!("{id}/{}", m.replaces)).await,
                None => Ok(None),
            }
        };
        // Both reads (and the keys a staged update is pushed after) are sent at once: each is a
        // round trip to the browser's storage process.
        let keys = async {
            match staged {
                Some(_) if ahead.is_none() => read_keys(&tx, PENDING, id).await,
                _ => Ok(Vec::new()),
            }
        };
        let ((record, replaced), keys) =
            try_join(try_join(get_record(&tx, id), replaced), keys).await?;
        let mut record =
            record.ok_or_else(|| StorageError::Other(format!("workspace {id} is not stored")))?;
        let merge = merge.filter(|m| may_merge(&record, m.replaces, replaced.is_some()));
        let (key, next) = allocate_keys(&mut record, ahead.map(|a| a.key), staged.is_some());
        put_record(&tx, &record)?;
        let bytes = match merge {
            Some(m) => {
                delete_key(&tx, PENDING, format!("{id}/{}", m.replaces))?;
                m.bytes
            }
            None => bytes,
        };
        put_bytes(&tx, PENDING, format!("{id}/{key}"), bytes)?;
        let update = PendingUpdate {
            key,
            bytes: bytes.to_vec(),
        };
        // Handed over while the strict commit flushes (the longest part of an edit).
        if let (Some(stage), None) = (staged, ahead) {
            let replaced = merge.map(|m| m.replaces);
            (stage.hand)(
                &update,
                super::newest_other(keys.iter().map(String::as_str), replaced),
            );
        }
        commit(tx).await?;
        Ok(Appended {
            update,
            merged: merge.is_some(),
            next,
        })
    }

    async fn pending(&self, id: &str) -> Result<Vec<PendingUpdate>, StorageError> {
        let db = self.db().await?;
        let tx = begin(self, &db, &[PENDING], TransactionMode::Readonly)?;
        Ok(read_range(&tx, PENDING, id)
            .await?
            .into_iter()
            .map(|(key, bytes)| PendingUpdate { key, bytes })
            .collect())
    }

    async fn pending_len(&self, id: &str) -> Result<usize, StorageError> {
        let db = self.db().await?;
        let tx = begin(self, &db, &[PENDING], TransactionMode::Readonly)?;
        count(&tx, PENDING, id).await
    }

    async fn pending_to_push(&self, id: &str) -> Result<ToPush, StorageError> {
        let db = self.db().await?;
        let tx = begin(
            self,
            &db,
            &[WORKSPACES, PENDING],
            TransactionMode::Readwrite,
        )?;
        let (pending, record) = try_join(read_range(&tx, PENDING, id), get_record(&tx, id)).await?;
        let pending: Vec<PendingUpdate> = pending
            .into_iter()
            .map(|(key, bytes)| PendingUpdate { key, bytes })
            .collect();
        let mut record = record;
        if let (Some(last), Some(record)) = (pending.last(), record.as_mut()) {
            if record.pushed_upto.as_ref() != Some(&last.key) {
                record.pushed_upto = Some(last.key.clone());
                put_record(&tx, record)?;
            }
        }
        commit(tx).await?;
        Ok(ToPush { record, pending })
    }

    async fn acknowledge(&self, id: &str, acks: &[(String, u64)]) -> Result<(), StorageError> {
        let db = self.db().await?;
        let tx = begin(
            self,
            &db,
            &[WORKSPACES, PENDING, RECEIVED],
            TransactionMode::Readwrite,
        )?;
        let cursor = get_record(&tx, id).await?.map_or(0, |r| r.last_pulled_seq);
        for (key, seq) in acks {
            let pending_key = format!("{id}/{key}");
            let Some(bytes) = get_bytes(&tx, PENDING, pending_key.clone()).await? else {
                continue;
            };
            if *seq > cursor && get_bytes(&tx, RECEIVED, seq_key(id, *seq)).await?.is_none() {
                put_bytes(&tx, RECEIVED, seq_key(id, *seq), &bytes)?;
            }
            delete_key(&tx, PENDING, pending_key)?;
        }
        commit(tx).await
    }

    async fn store_page(&self, id: &str, page: &Page) -> Result<bool, StorageError> {
        let db = self.db().await?;
        let tx = begin(
            self,
            &db,
            &[WORKSPACES, RECEIVED, REMOTE_SNAPSHOTS],
            TransactionMode::Readwrite,
        )?;
        let Some(mut record) = get_record(&tx, id).await? else {
            return Ok(false);
        };
        if (record.last_pulled_seq, record.chain_head) != page.from {
            return Ok(false);
        }
        (record.last_pulled_seq, record.chain_head) = page.to;
        super::remember_chains(&mut record, &page.chains);
        for r in &page.records {
            let store = match r.kind {
                PullRecordKind::Update => RECEIVED,
                PullRecordKind::Snapshot => REMOTE_SNAPSHOTS,
            };
            put_bytes(&tx, store, seq_key(id, r.seq), &r.bytes)?;
        }
        put_record(&tx, &record)?;
        commit(tx).await?;
        Ok(true)
    }

    async fn received_len(&self, id: &str) -> Result<usize, StorageError> {
        let db = self.db().await?;
        let tx = begin(
            self,
            &db,
            &[RECEIVED, REMOTE_SNAPSHOTS],
            TransactionMode::Readonly,
        )?;
        Ok(count(&tx, RECEIVED, id).await? + count(&tx, REMOTE_SNAPSHOTS, id).await?)
    }

    async fn open_cache(&self, id: &str) -> Result<Option<OpenCache>, StorageError> {
        let db = self.db().await?;
        let tx = begin(self, &db, &[SNAPSHOTS], TransactionMode::Readonly)?;
        match get_bytes(&tx, SNAPSHOTS, open_cache_key(id)).await? {
            Some(bytes) => OpenCache::decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    async fn save_open_cache(&self, id: &str, cache: &OpenCache) -> Result<(), StorageError> {
        let db = self.db().await?;
        let tx = begin(
            self,
            &db,
            &[WORKSPACES, SNAPSHOTS],
            TransactionMode::Readwrite,
        )?;
        // Not for a workspace forgotten meanwhile (its cache would outlive it).
        if get_record(&tx, id).await?.is_some() {
            put_bytes(&tx, SNAPSHOTS, open_cache_key(id), &cache.encode())?;
        }
        commit(tx).await
    }

    async fn compact(&self, id: &str, c: &Compaction) -> Result<bool, StorageError> {
        let db = self.db().await?;
        let tx = begin(
            self,
            &db,
            &[WORKSPACES, SNAPSHOTS, RECEIVED, REMOTE_SNAPSHOTS, OUTBOX],
            TransactionMode::Readwrite,
        )?;
        let Some(mut record) = get_record(&tx, id).await? else {
            return Ok(false);
        };
        if c.covers < record.snapshot_covers || c.covers > record.last_pulled_seq {
            return Ok(false);
        }
        record.snapshot_covers = c.covers;
        put_record(&tx, &record)?;
        put_bytes(&tx, SNAPSHOTS, id.to_owned(), &c.snapshot)?;
        delete_range(&tx, RECEIVED, upto_range(id, c.covers))?;
        delete_range(&tx, REMOTE_SNAPSHOTS, upto_range(id, c.covers))?;
        if let Some(upload) = &c.upload {
            delete_range(&tx, OUTBOX, prefix_range(id))?;
            put_bytes(&tx, OUTBOX, seq_key(id, c.covers), upload)?;
        }
        commit(tx).await?;
        Ok(true)
    }

    async fn quarantine(&self, id: &str, seqs: &[u64]) -> Result<(), StorageError> {
        let db = self.db().await?;
        let tx = begin(
            self,
            &db,
            &[RECEIVED, REMOTE_SNAPSHOTS, QUARANTINE],
            TransactionMode::Readwrite,
        )?;
        for seq in seqs {
            for store in [RECEIVED, REMOTE_SNAPSHOTS] {
                if let Some(bytes) = get_bytes(&tx, store, seq_key(id, *seq)).await? {
                    put_bytes(&tx, QUARANTINE, seq_key(id, *seq), &bytes)?;
                    delete_key(&tx, store, seq_key(id, *seq))?;
                }
            }
        }
        commit(tx).await
    }

    async fn reseal_pending(
        &self,
        id: &str,
        sealed: &[PendingUpdate],
    ) -> Result<usize, StorageError> {
        let db = self.db().await?;
        let tx = begin_durable(self, &db, &[PENDING])?;
        let mut replaced = 0;
        for p in sealed {
            let key = format!("{id}/{}", p.key);
            let stored = get_bytes(&tx, PENDING, key.clone()).await?;
            if stored.is_some_and(|b| !shared_schema::seal::is_sealed(&b)) {
                put_bytes(&tx, PENDING, key, &p.bytes)?;
                replaced += 1;
            }
        }
        commit(tx).await?;
        Ok(replaced)
    }

    async fn outbox(&self, id: &str) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        let db = self.db().await?;
        let tx = begin(self, &db, &[OUTBOX], TransactionMode::Readonly)?;
        match read_range(&tx, OUTBOX, id).await?.into_iter().next() {
            Some((k, bytes)) => Ok(Some((parse_seq(&k)?, bytes))),
            None => Ok(None),
        }
    }

    async fn clear_outbox(&self, id: &str, covers: u64) -> Result<(), StorageError> {
        let db = self.db().await?;
        let tx = begin(self, &db, &[OUTBOX], TransactionMode::Readwrite)?;
        delete_key(&tx, OUTBOX, seq_key(id, covers))?;
        commit(tx).await
    }
}

/// Reads the keys (without the "{id}/" prefix) of every record under a workspace.
async fn read_keys(tx: &Tx<'_>, store_name: &str, id: &str) -> Result<Vec<String>, StorageError> {
    read_keys_in(tx, store_name, id, prefix_range(id)).await
}

/// Keys `{id}/…` strictly after `{id}/{after}`.
fn after_range(id: &str, after: &str) -> KeyRange<String> {
    KeyRange::Bound(
        format!("{id}/{after}"),
        true,
        format!("{id}/\u{ffff}"),
        false,
    )
}

/// Reads the keys (without the "{id}/" prefix) of the records of a workspace in `range`.
async fn read_keys_in(
    tx: &Tx<'_>,
    store_name: &str,
    id: &str,
    range: KeyRange<String>,
) -> Result<Vec<String>, StorageError> {
    let store = tx.object_store(store_name).map_err(map_err)?;
    let keys: Vec<String> = store
        .get_all_keys::<String>()
        .with_query::<String, _>(range)
        .primitive()
        .map_err(map_err)?
        .await
        .map_err(map_err)?
        .collect::<Result<Vec<String>, _>>()
        .map_err(map_err)?;
    let prefix = format!("{id}/");
    Ok(keys
        .into_iter()
        .map(|k| k.strip_prefix(&prefix).unwrap_or(&k).to_owned())
        .collect())
}

/// Reads `(key without the "{id}/" prefix, bytes)` of every record under a workspace.
async fn read_range(
    tx: &Tx<'_>,
    store_name: &str,
    id: &str,
) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
    read_range_in(tx, store_name, id, prefix_range(id)).await
}

/// Reads `(key without the "{id}/" prefix, bytes)` of the records of a workspace in `range`.
async fn read_range_in(
    tx: &Tx<'_>,
    store_name: &str,
    id: &str,
    range: KeyRange<String>,
) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
    // Keys and values are asked for at once (one round trip to the storage process, not two).
    let values = async {
        let store = tx.object_store(store_name).map_err(map_err)?;
        store
            .get_all::<JsValue>()
            .with_query::<String, _>(range.clone())
            .primitive()
            .map_err(map_err)?
            .await
            .map_err(map_err)?
            .collect::<Result<Vec<JsValue>, _>>()
            .map_err(map_err)
    };
    let (keys, values) = try_join(read_keys_in(tx, store_name, id, range.clone()), values).await?;
    if keys.len() != values.len() {
        return Err(StorageError::Other(
            "keys and values changed during a read".into(),
        ));
    }
    keys.into_iter()
        .zip(values)
        .map(|(k, v)| Ok((k, bytes_of(v)?)))
        .collect()
}
