//! Which notes a change touched, read from Loro's diff events, so a reader re-reads and re-renders
//! only those notes instead of the whole notebook.
//!
//! A diff's target is either a root map — `notes` (keys are note ids: a note created or purged),
//! `note_tags` (keys `"{note}\u{1f}{tag}"`), `meta` (name, schema) — or a container inside a note,
//! whose path starts at `notes`, then the note's map under the note's id.

use super::{META, NOTES, NOTE_TAGS, TAG_SEP};
use loro::event::{ContainerDiff, Diff, DiffEvent};
use loro::{ContainerID, Index};
use std::collections::BTreeSet;

/// What changed since a reader last looked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Everything may have changed (the document was replaced): re-read all notes.
    pub all: bool,
    /// Notes that changed (created, edited, tagged or purged).
    pub notes: BTreeSet<String>,
    /// Workspace metadata (name, schema version) changed.
    pub meta: bool,
}

impl Changes {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        !self.all && !self.meta && self.notes.is_empty()
    }

    /// Everything: a reader must re-read the whole notebook.
    pub fn everything() -> Self {
        Self {
            all: true,
            ..Self::default()
        }
    }

    /// Adds what one Loro event touched.
    pub fn record(&mut self, event: &DiffEvent<'_>) {
        for diff in &event.events {
            self.record_diff(diff);
        }
    }

    fn record_diff(&mut self, diff: &ContainerDiff<'_>) {
        // Each path step is (container, its index in its parent): [(notes, "notes"), (the
        // note's map, note id), …].
        if let [(ContainerID::Root { name, .. }, _), (_, Index::Key(note)), ..] = diff.path {
            if name.as_str() == NOTES {
                self.notes.insert(note.to_string());
                return;
            }
        }
        let ContainerID::Root { name, .. } = diff.target else {
            // A container outside the schema's layout: be safe and re-read everything.
            self.all = true;
            return;
        };
        match (name.as_str(), &diff.diff) {
            (NOTES, Diff::Map(m)) => self.notes.extend(m.updated.keys().map(|k| k.to_string())),
            (NOTE_TAGS, Diff::Map(m)) => self.notes.extend(
                m.updated
                    .keys()
                    .filter_map(|k| k.split_once(TAG_SEP).map(|(note, _)| note.to_owned())),
            ),
            (META, _) => self.meta = true,
            _ => self.all = true,
        }
    }
}
