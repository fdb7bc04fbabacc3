//! History: every commit is a version (with its time and message); any version can be viewed
//! read-only, and restoring a note from one is a new edit that syncs like any other.

use super::Engine;
use crate::error::EngineError;
use crate::storage::Store;
use loro::{Frontiers, LoroDoc, ID};
use serde::{Deserialize, Serialize};
use shared_schema::model::{self, Note};

/// One past version of the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Opaque id (`{counter}@{peer}` of the change's last op).
    pub id: String,
    /// Seconds since the Unix epoch when the change was made (0 if not recorded).
    pub timestamp: i64,
    /// What the change did ("edit text", "create note", …).
    pub message: String,
    /// Lamport time, the order of the history.
    pub lamport: u32,
}

fn parse_version(id: &str) -> Option<ID> {
    let (counter, peer) = id.split_once('@')?;
    Some(ID::new(peer.parse().ok()?, counter.parse().ok()?))
}

impl<S: Store> Engine<S> {
    /// Every version, newest first.
    pub fn history(&self) -> Vec<Version> {
        let doc = self.doc();
        let mut out = Vec::new();
        for (peer, end) in doc.oplog_vv().iter() {
            let mut counter = 0;
            while counter < *end {
                let Some(change) = doc.get_change(ID::new(*peer, counter)) else {
                    break;
                };
                let last = change.id.counter + change.len as i32 - 1;
                out.push(Version {
                    id: format!("{last}@{peer}"),
                    timestamp: change.timestamp,
                    message: change.message.as_deref().unwrap_or("").to_owned(),
                    lamport: change.lamport + change.len as u32 - 1,
                });
                counter = last + 1;
            }
        }
        out.sort_by(|a, b| b.lamport.cmp(&a.lamport).then(b.id.cmp(&a.id)));
        out
    }

    fn fork_at_version(&self, version: &str) -> Result<LoroDoc, EngineError> {
        let id = parse_version(version)
            .filter(|id| self.doc().oplog_vv().includes_id(*id))
            .ok_or_else(|| EngineError::UnknownVersion(version.to_owned()))?;
        Ok(self.doc().fork_at(&Frontiers::from_id(id))?)
    }

    /// Every note as it was at `version` (read-only).
    pub fn notes_at(&self, version: &str) -> Result<Vec<Note>, EngineError> {
        Ok(model::notes(&self.fork_at_version(version)?))
    }

    /// One note as it was at `version` (read-only).
    pub fn note_at(&self, version: &str, note: &str) -> Result<Option<Note>, EngineError> {
        Ok(model::note(&self.fork_at_version(version)?, note))
    }

    /// Restores a note to its state at `version`, as a new edit.
    pub async fn restore_note(&self, version: &str, note: &str) -> Result<(), EngineError> {
        let old = self
            .note_at(version, note)?
            .ok_or_else(|| model::ModelError::NoSuchNote(note.to_owned()))?;
        self.edit("restore note", |d, now| model::overwrite_note(d, &old, now))
            .await
    }
}
