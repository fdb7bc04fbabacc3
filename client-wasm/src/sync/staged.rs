//! Staged edits: what lets the sync core push an edit while the page's write of it is still
//! committing (IndexedDB's strict commit flushes to disk, the longest part of an edit), instead
//! of after it and after reading it back from storage.
//!
//! The page's engine hands each edit's pending update over once its key is allocated
//! ([`crate::storage::Store::append_pending`]'s `staged`), with the newest other pending key of
//! the workspace at that moment (`after`); the core queues it here ([`super::SyncCore::stage`])
//! and the next push round sends the queue **without reading storage** — but only when every
//! staged update's `after` is a key this core has had acknowledged (or none, or an update staged
//! before it in the same batch). Pushes go in key order and each acknowledged key's predecessors
//! were acknowledged before it, so the server's log keeps every record after the records of this
//! device it may depend on (an edit depends only on what its tab had: received records, and
//! pending ones stored before it).
//!
//! Whether storage may hold an unsent update nobody staged (a tab without a stager) is tracked
//! apart, to read it promptly: `marks` counts the times it may have happened (a `Local` broadcast
//! with a key that was not staged, a failed push, a fresh core), and a round that read storage
//! and pushed everything it found sets `clean` to the `marks` it started with; a mark made while
//! that round ran keeps the workspace dirty. The record the last read found is kept for the
//! staged push (where and as whom) while the workspace is clean.
//!
//! A staged update that the page then fails to store (a full disk) may be on the server already:
//! it comes back with the next pull, like an edit whose acknowledgement was lost. Nothing is
//! lost either way, and its ids are never reused (the engine moves to a new peer after a failed
//! write).

use crate::storage::{PendingUpdate, WorkspaceRecord};
use std::collections::{HashMap, VecDeque};

/// How many staged and acknowledged keys are remembered.
const KNOWN: usize = 1024;

/// A staged update and the newest other pending key when it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Staged {
    pub update: PendingUpdate,
    pub after: Option<String>,
}

/// The staging bookkeeping of one sync core (all workspaces).
#[derive(Debug, Default)]
pub(crate) struct Staging {
    queues: HashMap<String, Vec<Staged>>,
    /// Keys staged lately, oldest first (`(workspace, key)`).
    known: VecDeque<(String, String)>,
    /// Keys the server acknowledged to this core lately, oldest first.
    acked: VecDeque<(String, String)>,
    /// Per workspace: (marks, the marks the last clean round started with).
    dirt: HashMap<String, (u64, u64)>,
    /// The record the last storage read found, per workspace (where and as whom to push).
    records: HashMap<String, WorkspaceRecord>,
}

impl Staging {
    /// Queues a staged update.
    pub fn stage(&mut self, ws: &str, update: PendingUpdate, after: Option<String>) {
        remember(&mut self.known, ws, &update.key);
        self.queues
            .entry(ws.to_owned())
            .or_default()
            .push(Staged { update, after });
    }

    /// The server acknowledged these keys.
    pub fn acked<'a>(&mut self, ws: &str, keys: impl IntoIterator<Item = &'a str>) {
        for key in keys {
            remember(&mut self.acked, ws, key);
        }
    }

    /// The staged updates in key order, when each goes after a key the server acknowledged to
    /// this core, after one staged before it, or after nothing: pushing them keeps every record
    /// behind what it may depend on. Otherwise the same list back, for a push that reads
    /// storage first.
    pub fn in_order(
        &self,
        ws: &str,
        mut staged: Vec<Staged>,
    ) -> Result<Vec<PendingUpdate>, Vec<Staged>> {
        // One the server acknowledged already (a round that read storage sent it) is not sent
        // again.
        staged.retain(|s| {
            !self
                .acked
                .iter()
                .any(|(w, k)| w == ws && *k == s.update.key)
        });
        staged.sort_by(|a, b| a.update.key.cmp(&b.update.key));
        let ok = staged.iter().enumerate().all(|(i, s)| match &s.after {
            None => true,
            Some(after) => {
                staged[..i].iter().any(|e| &e.update.key == after)
                    || self.acked.iter().any(|(w, k)| w == ws && k == after)
            }
        });
        if ok {
            Ok(staged.into_iter().map(|s| s.update).collect())
        } else {
            Err(staged)
        }
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
    pub fn take(&mut self, ws: &str) -> Vec<Staged> {
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

    /// Forgets the record and the staged queue of `ws` (its keys or token changed): the next
    /// round reads storage, which holds the staged updates too (a write started before the
    /// read is ordered before it).
    pub fn forget(&mut self, ws: &str) {
        self.records.remove(ws);
        self.queues.remove(ws);
        self.mark(ws);
    }
}

fn remember(keys: &mut VecDeque<(String, String)>, ws: &str, key: &str) {
    if keys.len() == KNOWN {
        keys.pop_front();
    }
    keys.push_back((ws.to_owned(), key.to_owned()));
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
        s.stage("ws", update("d01"), None);
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
        s.stage("ws", update("d07"), None);
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

    fn staged(key: &str, after: Option<&str>) -> Staged {
        Staged {
            update: update(key),
            after: after.map(str::to_owned),
        }
    }

    #[test]
    fn staged_updates_go_without_a_storage_read_only_after_keys_known_to_be_on_the_server() {
        let mut s = Staging::default();
        let keys = |r: Result<Vec<PendingUpdate>, Vec<Staged>>| {
            r.map(|u| u.into_iter().map(|u| u.key).collect::<Vec<_>>())
        };
        // After nothing, or after one staged before it in the same batch (sorted by key).
        assert_eq!(
            keys(s.in_order("ws", vec![staged("d03", Some("d02")), staged("d02", None)])),
            Ok(vec!["d02".to_owned(), "d03".to_owned()])
        );
        // After a key nobody acknowledged to this core: storage is read instead.
        assert!(s.in_order("ws", vec![staged("d05", Some("d04"))]).is_err());
        s.acked("ws", ["d04"]);
        assert!(s.in_order("ws", vec![staged("d05", Some("d04"))]).is_ok());
        assert!(
            s.in_order("other", vec![staged("d05", Some("d04"))])
                .is_err(),
            "acknowledged keys are per workspace"
        );
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
