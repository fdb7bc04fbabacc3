//! Staged edits: what lets the sync core push an edit while the page's write of it is still
//! committing (IndexedDB's strict commit flushes to disk, the longest part of an edit), instead
//! of after it and after reading it back from storage.
//!
//! The page's engine hands each edit's pending update over once its key is allocated
//! ([`crate::storage::Store::append_pending`]'s `staged`); the core queues it here
//! ([`super::SyncCore::stage`]) and the next push round sends the queue **without reading
//! storage** — but only while storage is known to hold nothing unsent before it, so the server's
//! log keeps the order edits were made in (a record after one it depends on). That knowledge is
//! a pair of counters per workspace: `marks` counts the times something unstaged may have been
//! stored (a tab's edit made without staging, a failed push, a fresh core), and a round that read
//! storage and pushed everything it found sets `clean` to the `marks` it started with. A mark
//! made while that round ran keeps the workspace dirty, so the next round reads storage.
//!
//! A staged update that the page then fails to store (a full disk) may be on the server already:
//! it comes back with the next pull, like an edit whose acknowledgement was lost. Nothing is
//! lost either way, and its ids are never reused (the engine moves to a new peer after a failed
//! write).

use crate::storage::{PendingUpdate, WorkspaceRecord};
use std::collections::{HashMap, VecDeque};

/// How many staged keys are remembered to recognise the stored broadcast of each.
const KNOWN: usize = 1024;

/// The staging bookkeeping of one sync core (all workspaces).
#[derive(Debug, Default)]
pub(crate) struct Staging {
    queues: HashMap<String, Vec<PendingUpdate>>,
    /// Keys staged lately, oldest first (`(workspace, key)`).
    known: VecDeque<(String, String)>,
    /// Per workspace: (marks, the marks the last clean round started with).
    dirt: HashMap<String, (u64, u64)>,
    /// The record the last storage read found, per workspace (where and as whom to push).
    records: HashMap<String, WorkspaceRecord>,
}

impl Staging {
    /// Queues a staged update.
    pub fn stage(&mut self, ws: &str, update: PendingUpdate) {
        if self.known.len() == KNOWN {
            self.known.pop_front();
        }
        self.known.push_back((ws.to_owned(), update.key.clone()));
        self.queues.entry(ws.to_owned()).or_default().push(update);
    }

    /// A tab stored an update (under `key`, when it said): true when storage may now hold
    /// something unsent that was not staged, which the next round must read.
    pub fn stored(&mut self, ws: &str, key: Option<&str>) -> bool {
        let staged = key.is_some_and(|k| self.known.iter().any(|(w, s)| w == ws && s == k));
        if !staged {
            self.mark(ws);
        }
        !staged
    }

    /// Storage may hold something unsent that no round has read.
    pub fn mark(&mut self, ws: &str) {
        let dirt = self.dirt.entry(ws.to_owned()).or_insert((1, 0));
        dirt.0 += 1;
    }

    /// The marks as a round that reads storage starts (pass to [`Self::cleaned`]).
    pub fn marks(&self, ws: &str) -> u64 {
        self.dirt.get(ws).map_or(1, |d| d.0)
    }

    /// A round that started at `marks` read storage and the server acknowledged all it found.
    pub fn cleaned(&mut self, ws: &str, marks: u64, record: &WorkspaceRecord) {
        let dirt = self.dirt.entry(ws.to_owned()).or_insert((1, 0));
        dirt.1 = marks;
        self.records.insert(ws.to_owned(), record.clone());
    }

    /// Takes the queue of `ws`.
    pub fn take(&mut self, ws: &str) -> Vec<PendingUpdate> {
        self.queues.remove(ws).unwrap_or_default()
    }

    /// The record to push `ws`'s queue with, without reading storage: only while nothing
    /// unstaged is known to wait and the last record read may write.
    pub fn fast(&self, ws: &str) -> Option<&WorkspaceRecord> {
        let clean = self
            .dirt
            .get(ws)
            .is_some_and(|(marks, clean)| marks == clean);
        self.records.get(ws).filter(|r| clean && r.role.can_write())
    }

    /// Forgets the record of `ws` (its keys or token changed): the next round reads storage.
    pub fn forget(&mut self, ws: &str) {
        self.records.remove(ws);
        self.mark(ws);
    }
}

/// `a` and `b` as one list in key order (the order edits were made), each key once.
pub(crate) fn merged(a: Vec<PendingUpdate>, b: Vec<PendingUpdate>) -> Vec<PendingUpdate> {
    let mut all: Vec<PendingUpdate> = a.into_iter().chain(b).collect();
    all.sort_by(|x, y| x.key.cmp(&y.key));
    all.dedup_by(|x, y| x.key == y.key);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_schema::Role;

    fn update(key: &str) -> PendingUpdate {
        PendingUpdate {
            key: key.into(),
            bytes: key.as_bytes().to_vec(),
        }
    }

    fn writer() -> WorkspaceRecord {
        WorkspaceRecord {
            role: Role::Write,
            ..WorkspaceRecord::new_local("ws", "n")
        }
    }

    #[test]
    fn a_new_core_reads_storage_before_it_pushes_a_staged_edit() {
        let mut s = Staging::default();
        s.stage("ws", update("d01"));
        assert!(s.fast("ws").is_none());
        let marks = s.marks("ws");
        s.cleaned("ws", marks, &writer());
        assert!(s.fast("ws").is_some());
    }

    #[test]
    fn an_unstaged_edit_stored_meanwhile_keeps_the_workspace_dirty() {
        let mut s = Staging::default();
        let marks = s.marks("ws");
        // The round is reading storage when a tab says it stored an edit it had not staged.
        assert!(s.stored("ws", Some("d05")));
        s.cleaned("ws", marks, &writer());
        assert!(s.fast("ws").is_none(), "the next round reads storage");
        let marks = s.marks("ws");
        s.cleaned("ws", marks, &writer());
        assert!(s.fast("ws").is_some());
    }

    #[test]
    fn a_staged_edit_stored_afterwards_needs_no_storage_read() {
        let mut s = Staging::default();
        let marks = s.marks("ws");
        s.cleaned("ws", marks, &writer());
        s.stage("ws", update("d07"));
        assert!(!s.stored("ws", Some("d07")));
        assert!(s.stored("other", Some("d07")), "keys are per workspace");
        assert!(s.stored("ws", None), "a broadcast without a key is unknown");
        assert!(s.fast("ws").is_none());
    }

    #[test]
    fn a_reader_or_a_forgotten_record_never_takes_the_fast_path() {
        let mut s = Staging::default();
        let reader = WorkspaceRecord {
            role: Role::Read,
            ..writer()
        };
        let marks = s.marks("ws");
        s.cleaned("ws", marks, &reader);
        assert!(s.fast("ws").is_none());
        s.cleaned("ws", marks, &writer());
        s.forget("ws");
        assert!(s.fast("ws").is_none());
    }

    #[test]
    fn staged_and_stored_updates_merge_in_key_order_once_each() {
        let all = merged(
            vec![update("d02"), update("d03")],
            vec![update("d03"), update("d04"), update("d01")],
        );
        let keys: Vec<&str> = all.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(keys, ["d01", "d02", "d03", "d04"]);
    }
}
