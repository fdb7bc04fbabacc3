//! In-memory [`Store`], the twin of the IndexedDB store for native tests. It can be told to fail
//! writes with a full quota, to test that errors surface and nothing is lost.

use super::{LoadedState, PendingUpdate, StorageError, Store, WorkspaceRecord};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

#[derive(Default)]
struct Inner {
    workspaces: BTreeMap<String, WorkspaceRecord>,
    snapshots: BTreeMap<String, Vec<u8>>,
    pending: BTreeMap<(String, String), Vec<u8>>,
    received: BTreeMap<(String, u64), Vec<u8>>,
}

/// An in-memory store. Clones share the same data, like two tabs on one database.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Rc<RefCell<Inner>>,
    full: Rc<Cell<bool>>,
}

impl MemoryStore {
    /// A new, empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// When `full`, every write fails with [`StorageError::QuotaExceeded`] and changes nothing.
    pub fn set_quota_full(&self, full: bool) {
        self.full.set(full);
    }

    fn write(&self) -> Result<std::cell::RefMut<'_, Inner>, StorageError> {
        if self.full.get() {
            return Err(StorageError::QuotaExceeded);
        }
        Ok(self.inner.borrow_mut())
    }
}

impl Store for MemoryStore {
    async fn put_workspace(&self, record: &WorkspaceRecord) -> Result<(), StorageError> {
        self.write()?
            .workspaces
            .insert(record.id.clone(), record.clone());
        Ok(())
    }

    async fn get_workspace(&self, id: &str) -> Result<Option<WorkspaceRecord>, StorageError> {
        Ok(self.inner.borrow().workspaces.get(id).cloned())
    }

    async fn list_workspaces(&self) -> Result<Vec<WorkspaceRecord>, StorageError> {
        Ok(self.inner.borrow().workspaces.values().cloned().collect())
    }

    async fn delete_workspace(&self, id: &str) -> Result<(), StorageError> {
        let mut inner = self.inner.borrow_mut();
        inner.workspaces.remove(id);
        inner.snapshots.remove(id);
        inner.pending.retain(|(ws, _), _| ws != id);
        inner.received.retain(|(ws, _), _| ws != id);
        Ok(())
    }

    async fn load(&self, id: &str) -> Result<Option<LoadedState>, StorageError> {
        let inner = self.inner.borrow();
        let Some(record) = inner.workspaces.get(id).cloned() else {
            return Ok(None);
        };
        Ok(Some(LoadedState {
            record,
            snapshot: inner.snapshots.get(id).cloned(),
            received: inner
                .received
                .iter()
                .filter(|((ws, _), _)| ws == id)
                .map(|((_, seq), b)| (*seq, b.clone()))
                .collect(),
            pending: pending_of(&inner, id),
        }))
    }

    async fn append_pending(&self, id: &str, update: &PendingUpdate) -> Result<(), StorageError> {
        self.write()?
            .pending
            .insert((id.to_owned(), update.key.clone()), update.bytes.clone());
        Ok(())
    }

    async fn pending(&self, id: &str) -> Result<Vec<PendingUpdate>, StorageError> {
        Ok(pending_of(&self.inner.borrow(), id))
    }

    async fn ack_pending(&self, id: &str, keys: &[String]) -> Result<(), StorageError> {
        let mut inner = self.inner.borrow_mut();
        for key in keys {
            inner.pending.remove(&(id.to_owned(), key.clone()));
        }
        Ok(())
    }

    async fn put_received(
        &self,
        record: &WorkspaceRecord,
        updates: &[(u64, Vec<u8>)],
    ) -> Result<(), StorageError> {
        let mut inner = self.write()?;
        for (seq, bytes) in updates {
            inner
                .received
                .insert((record.id.clone(), *seq), bytes.clone());
        }
        inner.workspaces.insert(record.id.clone(), record.clone());
        Ok(())
    }

    async fn received_len(&self, id: &str) -> Result<usize, StorageError> {
        Ok(self
            .inner
            .borrow()
            .received
            .keys()
            .filter(|(ws, _)| ws == id)
            .count())
    }

    async fn compact(&self, id: &str, snapshot: &[u8], covers: u64) -> Result<(), StorageError> {
        let mut inner = self.write()?;
        inner.snapshots.insert(id.to_owned(), snapshot.to_vec());
        inner
            .received
            .retain(|(ws, seq), _| ws != id || *seq > covers);
        Ok(())
    }
}

fn pending_of(inner: &Inner, id: &str) -> Vec<PendingUpdate> {
    inner
        .pending
        .iter()
        .filter(|((ws, _), _)| ws == id)
        .map(|((_, key), bytes)| PendingUpdate {
            key: key.clone(),
            bytes: bytes.clone(),
        })
        .collect()
}
