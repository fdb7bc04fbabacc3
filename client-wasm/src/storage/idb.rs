//! The IndexedDB [`Store`] (wasm32 only), on `indexed_db_futures`.
//!
//! One database per origin (default name `hearth`), version 1, four object stores with string
//! keys: `workspaces` (`{id}` → JSON), `snapshots` (`{id}` → bytes), `pending`
//! (`{id}/{key}` → bytes) and `received` (`{id}/{seq:020}` → bytes). Every method runs in one
//! transaction that is committed explicitly (indexed_db_futures rolls back by default).

use super::{LoadedState, PendingUpdate, StorageError, Store, WorkspaceRecord};
use indexed_db_futures::database::Database;
use indexed_db_futures::prelude::*;
use indexed_db_futures::transaction::TransactionMode;
use indexed_db_futures::KeyRange;
use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};

const WORKSPACES: &str = "workspaces";
const SNAPSHOTS: &str = "snapshots";
const PENDING: &str = "pending";
const RECEIVED: &str = "received";
const ALL: [&str; 4] = [WORKSPACES, SNAPSHOTS, PENDING, RECEIVED];
const DB_VERSION: u32 = 1;

/// IndexedDB-backed store. Cheap to clone (one connection).
#[derive(Clone)]
pub struct IdbStore {
    db: std::rc::Rc<Database>,
}

/// Classifies an IndexedDB error: `QuotaExceededError` becomes [`StorageError::QuotaExceeded`].
pub fn map_err(e: indexed_db_futures::error::Error) -> StorageError {
    use indexed_db_futures::error::{DomException, Error};
    match e {
        Error::DomException(DomException::Other(ex))
        | Error::DomException(DomException::AbortError(ex))
            if ex.name() == "QuotaExceededError" =>
        {
            StorageError::QuotaExceeded
        }
        Error::DomException(ex) => {
            let sys: web_sys::DomException = ex.into();
            if sys.name() == "QuotaExceededError" {
                StorageError::QuotaExceeded
            } else {
                StorageError::Other(format!("{}: {}", sys.name(), sys.message()))
            }
        }
        other => StorageError::Other(other.to_string()),
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
        let blocked = std::rc::Rc::new(std::cell::Cell::new(false));
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
        Ok(Self {
            db: std::rc::Rc::new(db),
        })
    }

    /// Deletes the database `name` (tests and "forget everything").
    pub async fn delete_database(name: &str) -> Result<(), StorageError> {
        Database::delete_by_name(name)
            .map_err(map_open_err)?
            .await
            .map_err(map_err)
    }

    fn tx(
        &self,
        stores: &[&str],
        mode: TransactionMode,
    ) -> Result<indexed_db_futures::transaction::Transaction<'_>, StorageError> {
        self.db
            .transaction(stores)
            .with_mode(mode)
            .build()
            .map_err(map_err)
    }
}

impl Store for IdbStore {
    async fn put_workspace(&self, record: &WorkspaceRecord) -> Result<(), StorageError> {
        let tx = self.tx(&[WORKSPACES], TransactionMode::Readwrite)?;
        let store = tx.object_store(WORKSPACES).map_err(map_err)?;
        store
            .put(record_js(record)?)
            .with_key(record.id.clone())
            .primitive()
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_workspace(&self, id: &str) -> Result<Option<WorkspaceRecord>, StorageError> {
        let tx = self.tx(&[WORKSPACES], TransactionMode::Readonly)?;
        let store = tx.object_store(WORKSPACES).map_err(map_err)?;
        let v: Option<JsValue> = store
            .get(id.to_owned())
            .primitive()
            .map_err(map_err)?
            .await
            .map_err(map_err)?;
        v.map(record_from).transpose()
    }

    async fn list_workspaces(&self) -> Result<Vec<WorkspaceRecord>, StorageError> {
        let tx = self.tx(&[WORKSPACES], TransactionMode::Readonly)?;
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

    async fn delete_workspace(&self, id: &str) -> Result<(), StorageError> {
        let tx = self.tx(&ALL, TransactionMode::Readwrite)?;
        for name in [WORKSPACES, SNAPSHOTS] {
            let store = tx.object_store(name).map_err(map_err)?;
            store.delete(id.to_owned()).primitive().map_err(map_err)?;
        }
        for name in [PENDING, RECEIVED] {
            let store = tx.object_store(name).map_err(map_err)?;
            store
                .delete::<String, _>(prefix_range(id))
                .primitive()
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn load(&self, id: &str) -> Result<Option<LoadedState>, StorageError> {
        let tx = self.tx(&ALL, TransactionMode::Readonly)?;
        let ws = tx.object_store(WORKSPACES).map_err(map_err)?;
        let Some(record) = ws
            .get(id.to_owned())
            .primitive()
            .map_err(map_err)?
            .await
            .map_err(map_err)?
        else {
            return Ok(None);
        };
        let record = record_from(record)?;
        let snaps = tx.object_store(SNAPSHOTS).map_err(map_err)?;
        let snapshot: Option<JsValue> = snaps
            .get(id.to_owned())
            .primitive()
            .map_err(map_err)?
            .await
            .map_err(map_err)?;
        let snapshot = snapshot.map(bytes_of).transpose()?;
        let received = read_range(&tx, RECEIVED, id)
            .await?
            .into_iter()
            .map(|(k, v)| {
                k.parse::<u64>()
                    .map(|seq| (seq, v))
                    .map_err(|_| StorageError::Corrupt(format!("bad received key {k}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pending = read_range(&tx, PENDING, id)
            .await?
            .into_iter()
            .map(|(key, bytes)| PendingUpdate { key, bytes })
            .collect();
        Ok(Some(LoadedState {
            record,
            snapshot,
            received,
            pending,
        }))
    }

    async fn append_pending(&self, id: &str, update: &PendingUpdate) -> Result<(), StorageError> {
        let tx = self.tx(&[PENDING], TransactionMode::Readwrite)?;
        let store = tx.object_store(PENDING).map_err(map_err)?;
        store
            .put(js_bytes(&update.bytes))
            .with_key(format!("{id}/{}", update.key))
            .primitive()
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn pending(&self, id: &str) -> Result<Vec<PendingUpdate>, StorageError> {
        let tx = self.tx(&[PENDING], TransactionMode::Readonly)?;
        Ok(read_range(&tx, PENDING, id)
            .await?
            .into_iter()
            .map(|(key, bytes)| PendingUpdate { key, bytes })
            .collect())
    }

    async fn ack_pending(&self, id: &str, keys: &[String]) -> Result<(), StorageError> {
        let tx = self.tx(&[PENDING], TransactionMode::Readwrite)?;
        let store = tx.object_store(PENDING).map_err(map_err)?;
        for key in keys {
            store
                .delete(format!("{id}/{key}"))
                .primitive()
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn put_received(
        &self,
        record: &WorkspaceRecord,
        updates: &[(u64, Vec<u8>)],
    ) -> Result<(), StorageError> {
        let tx = self.tx(&[WORKSPACES, RECEIVED], TransactionMode::Readwrite)?;
        let store = tx.object_store(RECEIVED).map_err(map_err)?;
        for (seq, bytes) in updates {
            store
                .put(js_bytes(bytes))
                .with_key(format!("{}/{seq:020}", record.id))
                .primitive()
                .map_err(map_err)?;
        }
        let ws = tx.object_store(WORKSPACES).map_err(map_err)?;
        ws.put(record_js(record)?)
            .with_key(record.id.clone())
            .primitive()
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn received_len(&self, id: &str) -> Result<usize, StorageError> {
        let tx = self.tx(&[RECEIVED], TransactionMode::Readonly)?;
        let store = tx.object_store(RECEIVED).map_err(map_err)?;
        let n: u32 = store
            .count()
            .with_query::<String, _>(prefix_range(id))
            .primitive()
            .map_err(map_err)?
            .await
            .map_err(map_err)?;
        Ok(n as usize)
    }

    async fn compact(&self, id: &str, snapshot: &[u8], covers: u64) -> Result<(), StorageError> {
        let tx = self.tx(&[SNAPSHOTS, RECEIVED], TransactionMode::Readwrite)?;
        let snaps = tx.object_store(SNAPSHOTS).map_err(map_err)?;
        snaps
            .put(js_bytes(snapshot))
            .with_key(id.to_owned())
            .primitive()
            .map_err(map_err)?;
        let received = tx.object_store(RECEIVED).map_err(map_err)?;
        received
            .delete::<String, _>(KeyRange::Bound(
                format!("{id}/"),
                false,
                format!("{id}/{covers:020}"),
                false,
            ))
            .primitive()
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
}

/// Reads `(key without the "{id}/" prefix, bytes)` of every record under a workspace.
async fn read_range(
    tx: &indexed_db_futures::transaction::Transaction<'_>,
    store_name: &str,
    id: &str,
) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
    let store = tx.object_store(store_name).map_err(map_err)?;
    let keys: Vec<String> = store
        .get_all_keys::<String>()
        .with_query::<String, _>(prefix_range(id))
        .primitive()
        .map_err(map_err)?
        .await
        .map_err(map_err)?
        .collect::<Result<Vec<String>, _>>()
        .map_err(map_err)?;
    let values: Vec<JsValue> = store
        .get_all::<JsValue>()
        .with_query::<String, _>(prefix_range(id))
        .primitive()
        .map_err(map_err)?
        .await
        .map_err(map_err)?
        .collect::<Result<Vec<JsValue>, _>>()
        .map_err(map_err)?;
    if keys.len() != values.len() {
        return Err(StorageError::Other(
            "keys and values changed during a read".into(),
        ));
    }
    let prefix = format!("{id}/");
    keys.into_iter()
        .zip(values)
        .map(|(k, v)| {
            let short = k.strip_prefix(&prefix).unwrap_or(&k).to_owned();
            Ok((short, bytes_of(v)?))
        })
        .collect()
}
