//! History: every commit is a version (with its time and message); any version can be viewed
//! read-only, and restoring a note from one is a new edit that syncs like any other. Versions
//! are grouped into [`Session`]s — consecutive edits of one note by one engine session (a peer:
//! one tab on one device) with no pause longer than [`SESSION_GAP_SECS`] — and a session says
//! what it changed in its note ([`NoteChange`]).

use super::Engine;
use crate::error::EngineError;
use crate::storage::Store;
use loro::{ContainerID, Frontiers, Index, LoroDoc, ID};
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

/// Edits of one note further apart than this start a new session.
pub const SESSION_GAP_SECS: i64 = 5 * 60;

/// Consecutive edits of one note by one peer (one engine session: a tab on a device).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The note edited (None: the notebook itself — its name, a migration, or several notes).
    pub note: Option<String>,
    /// The peer that made the edits ([`Engine::own_peers`] tells this device's own).
    pub peer: u64,
    /// When the first and the last edit were made (seconds since the Unix epoch).
    pub started: i64,
    /// See `started`.
    pub ended: i64,
    /// The session's versions, newest first; the first one is the state after the session.
    pub versions: Vec<Version>,
    /// The version just before the session (several ids, comma-separated; empty: the start).
    pub before: String,
}

/// What a session did to its note, from the note before and after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteChange {
    /// The note after the session (None: purged).
    pub after: Option<Note>,
    /// The note did not exist before the session.
    pub created: bool,
    /// The title changed.
    pub title_changed: bool,
    /// Characters of the body added and removed.
    pub body_added: usize,
    /// See `body_added`.
    pub body_removed: usize,
    /// Tasks before and after.
    pub tasks: (usize, usize),
    /// Tags added and removed.
    pub tags_added: Vec<String>,
    /// See `tags_added`.
    pub tags_removed: Vec<String>,
}

fn parse_version(id: &str) -> Option<ID> {
    let (counter, peer) = id.split_once('@')?;
    Some(ID::new(peer.parse().ok()?, counter.parse().ok()?))
}

/// The note a change touched, from the paths of the containers it changed (`notes` → the
/// note's map under its id → …), or for the root maps (`notes`: a note created or purged;
/// `note_tags`: a tag set) from the keys the change wrote; None when it touched none or several.
fn note_of_change(doc: &LoroDoc, start: ID, len: usize) -> Option<String> {
    let mut notes = std::collections::BTreeSet::new();
    let mut roots = false;
    for cid in doc.get_changed_containers_in(start, len) {
        let Some(path) = doc.get_path_to_container(&cid) else {
            continue;
        };
        match path.as_slice() {
            [(ContainerID::Root { name, .. }, _), (_, Index::Key(note)), ..]
                if name.as_str() == model::NOTES =>
            {
                notes.insert(note.to_string());
            }
            [(ContainerID::Root { name, .. }, _)]
                if [model::NOTES, model::NOTE_TAGS].contains(&name.as_str()) =>
            {
                roots = true;
            }
            _ => {}
        }
    }
    if roots {
        let span = loro::IdSpan::new(start.peer, start.counter, start.counter + len as i32);
        for change in doc.export_json_in_id_span(span) {
            for op in change.ops {
                let loro::JsonOpContent::Map(m) = op.content else {
                    continue;
                };
                let key = match m {
                    loro::JsonMapOp::Insert { key, .. } | loro::JsonMapOp::Delete { key } => key,
                };
                let note = key.split(model::TAG_SEP).next().unwrap_or_default();
                let listed = matches!(&op.container, ContainerID::Root { name, .. }
                    if [model::NOTES, model::NOTE_TAGS].contains(&name.as_str()));
                if listed && !note.is_empty() {
                    notes.insert(note.to_owned());
                }
            }
        }
    }
    let mut it = notes.into_iter();
    match (it.next(), it.next()) {
        (Some(note), None) => Some(note),
        _ => None,
    }
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

    /// Versions grouped into sessions, newest first.
    pub fn sessions(&self) -> Vec<Session> {
        let doc = self.doc();
        let mut out: Vec<Session> = Vec::new();
        for v in self.history() {
            let Some(last) = parse_version(&v.id) else {
                continue;
            };
            let Some(change) = doc.get_change(last) else {
                continue;
            };
            let start = change.id;
            let note = note_of_change(&doc, start, change.len);
            let before = change
                .deps
                .iter()
                .map(|d| format!("{}@{}", d.counter, d.peer))
                .collect::<Vec<_>>()
                .join(",");
            match out.last_mut() {
                Some(s)
                    if s.peer == start.peer
                        && s.note == note
                        && s.started - change.timestamp <= SESSION_GAP_SECS =>
                {
                    s.started = change.timestamp;
                    s.before = before;
                    s.versions.push(v);
                }
                _ => out.push(Session {
                    note,
                    peer: start.peer,
                    started: change.timestamp,
                    ended: change.timestamp,
                    versions: vec![v],
                    before,
                }),
            }
        }
        out
    }

    /// What `session` changed in its note.
    pub fn session_change(&self, session: &Session) -> Result<Option<NoteChange>, EngineError> {
        let (Some(note), Some(last)) = (&session.note, session.versions.first()) else {
            return Ok(None);
        };
        let before = model::note(&self.fork_at_version(&session.before)?, note);
        let after = self.note_at(&last.id, note)?;
        let empty = Note {
            id: note.clone(),
            title: String::new(),
            body: String::new(),
            tasks: Vec::new(),
            tags: Vec::new(),
            pinned: false,
            trashed: false,
            created_at: 0,
            updated_at: 0,
        };
        let (b, a) = (
            before.clone().unwrap_or_else(|| empty.clone()),
            after.clone().unwrap_or(empty),
        );
        let (start, end, inserted) = shared_schema::text::diff(&b.body, &a.body);
        Ok(Some(NoteChange {
            created: before.is_none() && after.is_some(),
            title_changed: b.title != a.title,
            body_added: inserted.chars().count(),
            body_removed: end - start,
            tasks: (b.tasks.len(), a.tasks.len()),
            tags_added: a
                .tags
                .iter()
                .filter(|t| !b.tags.contains(t))
                .cloned()
                .collect(),
            tags_removed: b
                .tags
                .iter()
                .filter(|t| !a.tags.contains(t))
                .cloned()
                .collect(),
            after,
        }))
    }

    /// A version: one id, several comma-separated (a merge), or empty (the empty document).
    pub(super) fn fork_at_version(&self, version: &str) -> Result<LoroDoc, EngineError> {
        let doc = self.doc();
        if version.is_empty() {
            return Ok(LoroDoc::new());
        }
        let ids = version
            .split(',')
            .map(|v| parse_version(v).filter(|id| doc.oplog_vv().includes_id(*id)))
            .collect::<Option<Vec<ID>>>()
            .ok_or_else(|| EngineError::UnknownVersion(version.to_owned()))?;
        Ok(doc.fork_at(&Frontiers::from(ids))?)
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
