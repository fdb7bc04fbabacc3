//! In-memory [`Store`], the twin of the IndexedDB store for native tests and the fault simulation.
//! Clones share the same data, like tabs on one database. It can be told to fail writes with a full
//! quota, to test that errors surface and nothing is lost.

use super::{
    allocate_keys, apply_change, may_merge, Appended, Change, Compaction, LoadedState, Merge,
    OpenCache, Page, PendingUpdate, RemoteRecord, Since, Staged, StorageError, Store, ToPush,
    Updated, WorkspaceRecord,
};
use shared_schema::frame::PullRecordKind;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

#[derive(Default)]
struct Inner {
    workspaces: BTreeMap<String, WorkspaceRecord>,
    snapshots: BTreeMap<String, Vec<u8>>,
    pending: BTreeMap<(String, String), Vec<u8>>,
    received: BTreeMap<(String, u64), (PullRecordKind, Vec<u8>)>,
    quarantine: BTreeMap<(String, u64), Vec<u8>>,
    outbox: BTreeMap<String, (u64, Vec<u8>)>,
    open_cache: BTreeMap<String, OpenCache>,
}

/// An in-memory store. Clones share the same data, like two tabs on one database.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Rc<RefCell<Inner>>,
    full: Rc<Cell<bool>>,
    /// While set, appends to `pending` wait ([`MemoryStore::hold_appends`]).
    held: Rc<Cell<bool>>,
    /// Appends waiting for `held` to clear.
    holding: Rc<RefCell<Vec<std::task::Waker>>>,
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

    /// While `held`, an edit's write ([`Store::append_pending`]) waits before it runs, as an
    /// IndexedDB transaction waits for its flush: what an engine does while a write is in flight.
    pub fn hold_appends(&self, held: bool) {
        self.held.set(held);
        if !held {
            for w in self.holding.borrow_mut().drain(..) {
                w.wake();
            }
        }
    }

    /// Waits while appends are held.
    async fn released(&self) {
        std::future::poll_fn(|cx| {
            if self.held.get() {
                self.holding.borrow_mut().push(cx.waker().clone());
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await
    }

    /// Runs one write transaction. Each one checks everything that can fail before it changes
    /// anything, so an error leaves the store as it was.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        if self.full.get() {
            return Err(StorageError::QuotaExceeded);
        }
        f(&mut self.inner.borrow_mut())
    }
}

impl Store for MemoryStore {
    async fn create_workspace(&self, record: &WorkspaceRecord) -> Result<bool, StorageError> {
        self.write(|i| {
            if i.workspaces.contains_key(&record.id) {
                return Ok(false);
            }
            i.workspaces.insert(record.id.clone(), record.clone());
            Ok(true)
        })
    }

    async fn get_workspace(&self, id: &str) -> Result<Option<WorkspaceRecord>, StorageError> {
        Ok(self.inner.borrow().workspaces.get(id).cloned())
    }

    async fn list_workspaces(&self) -> Result<Vec<WorkspaceRecord>, StorageError> {
        Ok(self.inner.borrow().workspaces.values().cloned().collect())
    }

    async fn update_workspace(&self, id: &str, change: &Change) -> Result<Updated, StorageError> {
        let current = self.inner.borrow().workspaces.get(id).cloned();
        let Some(mut record) = current else {
            return Ok(Updated::Missing);
        };
        if !apply_change(&mut record, change) {
            return Ok(Updated::Unchanged(record));
        }
        self.write(|i| {
            i.workspaces.insert(id.to_owned(), record.clone());
            Ok(Updated::Changed(record))
        })
    }

    async fn delete_workspace(&self, id: &str) -> Result<(), StorageError> {
        let mut inner = self.inner.borrow_mut();
        inner.workspaces.remove(id);
        inner.snapshots.remove(id);
        inner.outbox.remove(id);
        inner.open_cache.remove(id);
        inner.pending.retain(|(ws, _), _| ws != id);
        inner.received.retain(|(ws, _), _| ws != id);
        inner.quarantine.retain(|(ws, _), _| ws != id);
        Ok(())
    }

    async fn load_since(
        &self,
        id: &str,
        since: &Since,
    ) -> Result<Option<LoadedState>, StorageError> {
        let inner = self.inner.borrow();
        let Some(record) = inner.workspaces.get(id).cloned() else {
            return Ok(None);
        };
        let snapshot = if since.snapshot_covers == Some(record.snapshot_covers) {
            None
        } else {
            inner.snapshots.get(id).cloned()
        };
        let mut pending = pending_of(&inner, id);
        if let Some(after) = &since.pending_after {
            pending.retain(|p| &p.key > after);
        }
        Ok(Some(LoadedState {
            record,
            snapshot,
            received: inner
                .received
                .range(
                    (id.to_owned(), since.received_after.saturating_add(1))
                        ..=(id.to_owned(), u64::MAX),
                )
                .map(|((_, seq), (kind, bytes))| RemoteRecord {
                    seq: *seq,
                    kind: *kind,
                    bytes: bytes.clone(),
                })
                .collect(),
            pending,
            quarantined: inner
                .quarantine
                .range((id.to_owned(), 0)..=(id.to_owned(), u64::MAX))
                .map(|((_, seq), _)| *seq)
                .collect(),
        }))
    }

    async fn append_pending(
        &self,
        id: &str,
        bytes: &[u8],
        merge: Option<Merge<'_>>,
        staged: Staged<'_>,
    ) -> Result<Appended, StorageError> {
        self.released().await;
        let ahead = staged.and_then(|s| s.ahead);
        self.write(|i| {
            let record = i
                .workspaces
                .get_mut(id)
                .ok_or_else(|| StorageError::Other(format!("workspace {id} is not stored")))?;
            let merge = merge.filter(|m| {
                let stored = i
                    .pending
                    .contains_key(&(id.to_owned(), m.replaces.to_owned()));
                ahead.is_none() && may_merge(record, m.replaces, stored)
            });
            let (key, next) = allocate_keys(record, ahead.map(|a| a.key), staged.is_some());
            let bytes = match merge {
                Some(m) => {
                    i.pending.remove(&(id.to_owned(), m.replaces.to_owned()));
                    m.bytes
                }
                None => bytes,
            };
            let update = PendingUpdate {
                key,
                bytes: bytes.to_vec(),
            };
            if let Some(stage) = staged {
                let after = match ahead {
                    Some(a) => a.after,
                    None => super::newest_other(
                        i.pending
                            .keys()
                            .filter(|(w, _)| w == id)
                            .map(|(_, k)| k.as_str()),
                        None,
                    ),
                };
                (stage.hand)(&update, after);
            }
            i.pending
                .insert((id.to_owned(), update.key.clone()), bytes.to_vec());
            Ok(Appended {
                update,
                merged: merge.is_some(),
                next,
            })
        })
    }

    async fn pending(&self, id: &str) -> Result<Vec<PendingUpdate>, StorageError> {
        Ok(pending_of(&self.inner.borrow(), id))
    }

    async fn pending_to_push(&self, id: &str) -> Result<ToPush, StorageError> {
        self.write(|i| {
            let pending = pending_of(i, id);
            if let (Some(last), Some(record)) = (pending.last(), i.workspaces.get_mut(id)) {
                record.pushed_upto = Some(last.key.clone());
            }
            Ok(ToPush {
                record: i.workspaces.get(id).cloned(),
                pending,
            })
        })
    }

    async fn acknowledge(&self, id: &str, acks: &[(String, u64)]) -> Result<(), StorageError> {
        self.write(|i| {
            let cursor = i.workspaces.get(id).map_or(0, |r| r.last_pulled_seq);
            for (key, seq) in acks {
                let Some(bytes) = i.pending.remove(&(id.to_owned(), key.clone())) else {
                    continue;
                };
                if *seq > cursor {
                    i.received
                        .entry((id.to_owned(), *seq))
                        .or_insert((PullRecordKind::Update, bytes));
                }
            }
            Ok(())
        })
    }

    async fn store_page(&self, id: &str, page: &Page) -> Result<bool, StorageError> {
        self.write(|i| {
            let Some(record) = i.workspaces.get_mut(id) else {
                return Ok(false);
            };
            if (record.last_pulled_seq, record.chain_head) != page.from {
                return Ok(false);
            }
            (record.last_pulled_seq, record.chain_head) = page.to;
            super::remember_chains(record, &page.chains);
            for r in &page.records {
                i.received
                    .insert((id.to_owned(), r.seq), (r.kind, r.bytes.clone()));
            }
            Ok(true)
        })
    }

    async fn received_len(&self, id: &str) -> Result<usize, StorageError> {
        Ok(self
            .inner
            .borrow()
            .received
            .range((id.to_owned(), 0)..=(id.to_owned(), u64::MAX))
            .count())
    }

    async fn save_open_cache(&self, id: &str, cache: &OpenCache) -> Result<(), StorageError> {
        self.write(|i| {
            if i.workspaces.contains_key(id) {
                i.open_cache.insert(id.to_owned(), cache.clone());
            }
            Ok(())
        })
    }

    async fn open_cache(&self, id: &str) -> Result<Option<OpenCache>, StorageError> {
        Ok(self.inner.borrow().open_cache.get(id).cloned())
    }

    async fn compact(&self, id: &str, c: &Compaction) -> Result<bool, StorageError> {
        self.write(|i| {
            let Some(record) = i.workspaces.get_mut(id) else {
                return Ok(false);
            };
            if c.covers < record.snapshot_covers || c.covers > record.last_pulled_seq {
                return Ok(false);
            }
            record.snapshot_covers = c.covers;
            i.snapshots.insert(id.to_owned(), c.snapshot.clone());
            i.received
                .retain(|(ws, seq), _| ws != id || *seq > c.covers);
            if let Some(upload) = &c.upload {
                i.outbox.insert(id.to_owned(), (c.covers, upload.clone()));
            }
            Ok(true)
        })
    }

    async fn quarantine(&self, id: &str, seqs: &[u64]) -> Result<(), StorageError> {
        self.write(|i| {
            for seq in seqs {
                if let Some((_, bytes)) = i.received.remove(&(id.to_owned(), *seq)) {
                    i.quarantine.insert((id.to_owned(), *seq), bytes);
                }
            }
            Ok(())
        })
    }

    async fn reseal_pending(
        &self,
        id: &str,
        sealed: &[PendingUpdate],
    ) -> Result<usize, StorageError> {
        self.write(|i| {
            let mut replaced = 0;
            for p in sealed {
                if let Some(bytes) = i.pending.get_mut(&(id.to_owned(), p.key.clone())) {
                    if !shared_schema::seal::is_sealed(bytes) {
                        bytes.clone_from(&p.bytes);
                        replaced += 1;
                    }
                }
            }
            Ok(replaced)
        })
    }

    async fn outbox(&self, id: &str) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        Ok(self.inner.borrow().outbox.get(id).cloned())
    }

    async fn clear_outbox(&self, id: &str, covers: u64) -> Result<(), StorageError> {
        self.write(|i| {
            if i.outbox.get(id).is_some_and(|(c, _)| *c == covers) {
                i.outbox.remove(id);
            }
            Ok(())
        })
    }
}

fn pending_of(inner: &Inner, id: &str) -> Vec<PendingUpdate> {
    inner
        .pending
        .range((id.to_owned(), String::new())..)
        .take_while(|((ws, _), _)| ws == id)
        .map(|((_, key), bytes)| PendingUpdate {
            key: key.clone(),
            bytes: bytes.clone(),
        })
        .collect()
}
