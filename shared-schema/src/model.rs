//! The workspace schema: a notebook on one Loro document, and its versioned migrations.
//!
//! Layout (schema version 2):
//! - root map `meta`: `name` (string), `schema_version` (i64, the highest migration applied),
//!   `migration/vN` (i64 time it was applied) for each migration.
//! - root map `notes`: note id → map { `title`: text, `body`: text, `tasks`: movable list of
//!   maps { `text`, `done` }, `pinned`, `trashed`, `created_at`, `updated_at` (ms) }.
//! - root map `note_tags` (v2): key `"{note_id}\u{1f}{tag}"` → `true`. A flat root-level set, so
//!   two devices that add tags or migrate concurrently merge key by key and lose nothing.
//!
//! Version 1 kept tags in each note as one comma-separated string (`tags`). Migration 2 moves them
//! into `note_tags`. Migrations are pure functions of the document, idempotent, run on open in
//! order, and recorded in `meta`; because they write only deterministic values at fixed keys, two
//! offline devices that migrate at once converge to the same state.

pub mod changes;
mod update;

pub use changes::Changes;
pub use update::update_note;

use loro::{Container, LoroDoc, LoroMap, LoroMovableList, LoroText, LoroValue, ValueOrContainer};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 2;
/// Root map with workspace metadata.
pub const META: &str = "meta";
/// Root map of notes by id.
pub const NOTES: &str = "notes";
/// Root map: the tag set of every note (v2).
pub const NOTE_TAGS: &str = "note_tags";
/// Separates the note id from the tag in a `note_tags` key.
pub const TAG_SEP: char = '\u{1f}';

/// An operation on the model failed.
#[derive(Debug, Error)]
pub enum ModelError {
    /// Loro refused an operation.
    #[error("the document refused the edit: {0}")]
    Loro(#[from] loro::LoroError),
    /// A text could not be diffed against the wanted one.
    #[error("the text could not be compared with the new one: {0}")]
    Diff(String),
    /// No note with that id (or it was purged).
    #[error("no note with id {0:?}")]
    NoSuchNote(String),
    /// No task at that index.
    #[error("note {note:?} has no task at index {index}")]
    NoSuchTask {
        /// The note.
        note: String,
        /// The index asked for.
        index: usize,
    },
    /// A character range is outside the text.
    #[error("range {start}..{end} is outside a text of {len} characters")]
    BadRange {
        /// Start (characters).
        start: usize,
        /// End (characters).
        end: usize,
        /// Text length (characters).
        len: usize,
    },
    /// The document was written by a newer Hearth.
    #[error("this workspace uses schema version {found}; this app knows up to {SCHEMA_VERSION}: reload to update the app")]
    TooNew {
        /// The version in the document.
        found: i64,
    },
    /// A tag is empty or holds a control character.
    #[error("a tag must be non-empty text without control characters")]
    BadTag,
}

/// One checklist entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// What to do.
    pub text: String,
    /// Done or not.
    pub done: bool,
}

/// A note as the UI reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Stable id.
    pub id: String,
    /// Title text.
    pub title: String,
    /// Body text.
    pub body: String,
    /// Checklist, in order.
    pub tasks: Vec<Task>,
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// Pinned notes sort first.
    pub pinned: bool,
    /// In the trash.
    pub trashed: bool,
    /// Creation time, ms since the Unix epoch.
    pub created_at: i64,
    /// Last edit time, ms since the Unix epoch.
    pub updated_at: i64,
}

/// The schema version recorded in the document (0 for a new document).
pub fn schema_version(doc: &LoroDoc) -> i64 {
    match doc.get_map(META).get("schema_version") {
        Some(ValueOrContainer::Value(LoroValue::I64(v))) => v,
        _ => 0,
    }
}

/// Refuses a document written by a newer app (`TooNew`: reload to update).
pub fn check_schema(doc: &LoroDoc) -> Result<(), ModelError> {
    let found = schema_version(doc);
    if found > SCHEMA_VERSION {
        return Err(ModelError::TooNew { found });
    }
    Ok(())
}

/// A migration: its target version and the pure function that performs it.
pub struct Migration {
    /// The version the document has after it.
    pub version: i64,
    /// What it does, for the history view.
    pub description: &'static str,
    /// The step. Must be idempotent and deterministic.
    pub apply: fn(&LoroDoc) -> Result<(), ModelError>,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "notebook with notes, checklists and string tags",
        apply: |_doc| Ok(()),
    },
    Migration {
        version: 2,
        description: "tags move from a comma-separated string into a per-note set",
        apply: migrate_tags_to_set,
    },
];

fn migrate_tags_to_set(doc: &LoroDoc) -> Result<(), ModelError> {
    let notes = doc.get_map(NOTES);
    let tags = doc.get_map(NOTE_TAGS);
    let mut ids: Vec<String> = notes.keys().map(|k| k.to_string()).collect();
    ids.sort();
    for id in ids {
        let Some(note) = note_map(doc, &id) else {
            continue;
        };
        if let Some(ValueOrContainer::Value(LoroValue::String(s))) = note.get("tags") {
            for tag in s.split(',').map(str::trim).filter(|t| valid_tag(t)) {
                tags.insert(&tag_key(&id, tag), true)?;
            }
            note.delete("tags")?;
        }
    }
    Ok(())
}

/// Runs every migration newer than the document's version, in order, and records each in `meta`.
/// Returns the versions applied (empty when the document was current). Does not commit.
/// A document left with a v1 `tags` string by a concurrent v1 edit is swept again.
pub fn migrate(doc: &LoroDoc, now_ms: i64) -> Result<Vec<i64>, ModelError> {
    let found = schema_version(doc);
    if found > SCHEMA_VERSION {
        return Err(ModelError::TooNew { found });
    }
    let meta = doc.get_map(META);
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        (m.apply)(doc)?;
        meta.insert(&format!("migration/v{}", m.version), now_ms)?;
        meta.insert("schema_version", m.version)?;
        applied.push(m.version);
    }
    if applied.is_empty() && found >= 2 {
        migrate_tags_to_set(doc)?;
    }
    Ok(applied)
}

/// The workspace name.
pub fn name(doc: &LoroDoc) -> String {
    match doc.get_map(META).get("name") {
        Some(ValueOrContainer::Value(LoroValue::String(s))) => s.to_string(),
        _ => String::new(),
    }
}

/// Sets the workspace name.
pub fn set_name(doc: &LoroDoc, name: &str) -> Result<(), ModelError> {
    doc.get_map(META).insert("name", name)?;
    Ok(())
}

fn tag_key(note: &str, tag: &str) -> String {
    format!("{note}{TAG_SEP}{tag}")
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty() && !tag.chars().any(char::is_control)
}

fn note_map(doc: &LoroDoc, id: &str) -> Option<LoroMap> {
    match doc.get_map(NOTES).get(id) {
        Some(ValueOrContainer::Container(Container::Map(m))) => Some(m),
        _ => None,
    }
}

fn require_note(doc: &LoroDoc, id: &str) -> Result<LoroMap, ModelError> {
    note_map(doc, id).ok_or_else(|| ModelError::NoSuchNote(id.to_owned()))
}

fn child_text(note: &LoroMap, key: &str) -> Result<LoroText, ModelError> {
    match note.get(key) {
        Some(ValueOrContainer::Container(Container::Text(t))) => Ok(t),
        _ => Ok(note.ensure_mergeable_text(key)?),
    }
}

fn child_tasks(note: &LoroMap) -> Result<LoroMovableList, ModelError> {
    match note.get("tasks") {
        Some(ValueOrContainer::Container(Container::MovableList(l))) => Ok(l),
        _ => Ok(note.ensure_mergeable_movable_list("tasks")?),
    }
}

fn touch(note: &LoroMap, now_ms: i64) -> Result<(), ModelError> {
    note.insert("updated_at", now_ms)?;
    Ok(())
}

/// Creates a note and returns nothing; `id` must be unique (the engine makes a random one).
pub fn create_note(doc: &LoroDoc, id: &str, title: &str, now_ms: i64) -> Result<(), ModelError> {
    let note = doc.get_map(NOTES).insert_container(id, LoroMap::new())?;
    note.insert_container("title", LoroText::new())?
        .insert(0, title)?;
    note.insert_container("body", LoroText::new())?;
    note.insert_container("tasks", LoroMovableList::new())?;
    note.insert("pinned", false)?;
    note.insert("trashed", false)?;
    note.insert("created_at", now_ms)?;
    note.insert("updated_at", now_ms)?;
    Ok(())
}

/// Which text of a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The title.
    Title,
    /// The body.
    Body,
}

impl Field {
    fn key(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Body => "body",
        }
    }
}

/// Replaces characters `start..end` (Unicode scalar values) of a note's title or body with `insert`.
pub fn splice_text(
    doc: &LoroDoc,
    id: &str,
    field: Field,
    start: usize,
    end: usize,
    insert: &str,
    now_ms: i64,
) -> Result<(), ModelError> {
    let note = require_note(doc, id)?;
    let text = child_text(&note, field.key())?;
    let len = text.len_unicode();
    if start > end || end > len {
        return Err(ModelError::BadRange { start, end, len });
    }
    if end > start {
        text.delete(start, end - start)?;
    }
    if !insert.is_empty() {
        text.insert(start, insert)?;
    }
    touch(&note, now_ms)
}

/// Applies what a text field did — it held `base` and now holds `new` — to a note's title or
/// body as one splice ([`crate::text::diff`] of the two); false when they are equal. The splice is
/// placed against the text **as it is when the edit runs**: if that differs from `base` (a remote
/// edit arrived that the field had not shown yet), the splice is moved through that change
/// ([`crate::text::shift`]) instead of making the text equal to `new` — which would delete the
/// remote edit — and keystrokes queued behind a slow write are each applied once, in order.
pub fn set_text(
    doc: &LoroDoc,
    id: &str,
    field: Field,
    base: &str,
    new: &str,
    now_ms: i64,
) -> Result<bool, ModelError> {
    let note = require_note(doc, id)?;
    let current = child_text(&note, field.key())?.to_string();
    let (mut start, mut end, insert) = crate::text::diff(base, new);
    if start == end && insert.is_empty() {
        return Ok(false);
    }
    if current != base {
        let (cs, ce, changed) = crate::text::diff(base, &current);
        let n = changed.chars().count();
        start = crate::text::shift(start, cs, ce, n);
        end = crate::text::shift(end, cs, ce, n).max(start);
    }
    let len = current.chars().count();
    splice_text(
        doc,
        id,
        field,
        start.min(len),
        end.min(len),
        &insert,
        now_ms,
    )?;
    Ok(true)
}

/// Appends a task.
pub fn add_task(doc: &LoroDoc, id: &str, text: &str, now_ms: i64) -> Result<(), ModelError> {
    let note = require_note(doc, id)?;
    let tasks = child_tasks(&note)?;
    let task = tasks.insert_container(tasks.len(), LoroMap::new())?;
    task.insert("text", text)?;
    task.insert("done", false)?;
    touch(&note, now_ms)
}

fn task_at(doc: &LoroDoc, id: &str, index: usize) -> Result<(LoroMap, LoroMap), ModelError> {
    let note = require_note(doc, id)?;
    let tasks = child_tasks(&note)?;
    match tasks.get(index) {
        Some(ValueOrContainer::Container(Container::Map(task))) => Ok((note, task)),
        _ => Err(ModelError::NoSuchTask {
            note: id.to_owned(),
            index,
        }),
    }
}

/// Sets a task's done flag.
pub fn set_task_done(
    doc: &LoroDoc,
    id: &str,
    index: usize,
    done: bool,
    now_ms: i64,
) -> Result<(), ModelError> {
    let (note, task) = task_at(doc, id, index)?;
    task.insert("done", done)?;
    touch(&note, now_ms)
}

/// Moves a task from one index to another.
pub fn move_task(
    doc: &LoroDoc,
    id: &str,
    from: usize,
    to: usize,
    now_ms: i64,
) -> Result<(), ModelError> {
    let note = require_note(doc, id)?;
    let tasks = child_tasks(&note)?;
    let len = tasks.len();
    if from >= len || to >= len {
        return Err(ModelError::NoSuchTask {
            note: id.to_owned(),
            index: from.max(to),
        });
    }
    tasks.mov(from, to)?;
    touch(&note, now_ms)
}

/// Deletes a task.
pub fn delete_task(doc: &LoroDoc, id: &str, index: usize, now_ms: i64) -> Result<(), ModelError> {
    let (note, _) = task_at(doc, id, index)?;
    child_tasks(&note)?.delete(index, 1)?;
    touch(&note, now_ms)
}

/// Adds (`on = true`) or removes a tag.
pub fn set_tag(
    doc: &LoroDoc,
    id: &str,
    tag: &str,
    on: bool,
    now_ms: i64,
) -> Result<(), ModelError> {
    let tag = tag.trim();
    if !valid_tag(tag) {
        return Err(ModelError::BadTag);
    }
    let note = require_note(doc, id)?;
    let tags = doc.get_map(NOTE_TAGS);
    if on {
        tags.insert(&tag_key(id, tag), true)?;
    } else {
        tags.delete(&tag_key(id, tag))?;
    }
    touch(&note, now_ms)
}

/// Sets a boolean flag of a note: `pinned` or `trashed`.
pub fn set_flag(
    doc: &LoroDoc,
    id: &str,
    flag: Flag,
    value: bool,
    now_ms: i64,
) -> Result<(), ModelError> {
    let note = require_note(doc, id)?;
    note.insert(flag.key(), value)?;
    touch(&note, now_ms)
}

/// A boolean flag of a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Sorts first.
    Pinned,
    /// In the trash (restorable until purged).
    Trashed,
}

impl Flag {
    fn key(self) -> &'static str {
        match self {
            Flag::Pinned => "pinned",
            Flag::Trashed => "trashed",
        }
    }
}

/// Removes a note and its tags for good.
pub fn purge_note(doc: &LoroDoc, id: &str) -> Result<(), ModelError> {
    require_note(doc, id)?;
    doc.get_map(NOTES).delete(id)?;
    let tags = doc.get_map(NOTE_TAGS);
    let prefix = format!("{id}{TAG_SEP}");
    let keys: Vec<String> = tags
        .keys()
        .map(|k| k.to_string())
        .filter(|k| k.starts_with(&prefix))
        .collect();
    for k in keys {
        tags.delete(&k)?;
    }
    Ok(())
}

fn str_field(v: &LoroValue) -> String {
    match v {
        LoroValue::String(s) => s.to_string(),
        _ => String::new(),
    }
}

fn note_from_value(id: &str, value: &LoroValue, tags: Vec<String>) -> Note {
    let get = |k: &str| match value {
        LoroValue::Map(m) => m.get(k).cloned().unwrap_or(LoroValue::Null),
        _ => LoroValue::Null,
    };
    let bool_of = |k: &str| matches!(get(k), LoroValue::Bool(true));
    let int_of = |k: &str| match get(k) {
        LoroValue::I64(v) => v,
        LoroValue::Double(v) => v as i64,
        _ => 0,
    };
    let tasks = match get("tasks") {
        LoroValue::List(items) => items
            .iter()
            .map(|t| match t {
                LoroValue::Map(m) => Task {
                    text: m.get("text").map(str_field).unwrap_or_default(),
                    done: matches!(m.get("done"), Some(LoroValue::Bool(true))),
                },
                _ => Task {
                    text: String::new(),
                    done: false,
                },
            })
            .collect(),
        _ => Vec::new(),
    };
    Note {
        id: id.to_owned(),
        title: str_field(&get("title")),
        body: str_field(&get("body")),
        tasks,
        tags,
        pinned: bool_of("pinned"),
        trashed: bool_of("trashed"),
        created_at: int_of("created_at"),
        updated_at: int_of("updated_at"),
    }
}

fn tags_by_note(doc: &LoroDoc) -> std::collections::HashMap<String, Vec<String>> {
    let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
    for key in doc.get_map(NOTE_TAGS).keys() {
        if let Some((note, tag)) = key.split_once(TAG_SEP) {
            out.entry(note.to_owned()).or_default().push(tag.to_owned());
        }
    }
    for tags in out.values_mut() {
        tags.sort();
    }
    out
}

/// Every note (trashed included), pinned first, then most recently updated, then by id.
pub fn notes(doc: &LoroDoc) -> Vec<Note> {
    let mut tags = tags_by_note(doc);
    let mut out: Vec<Note> = match doc.get_map(NOTES).get_deep_value() {
        LoroValue::Map(m) => m
            .iter()
            .map(|(id, v)| note_from_value(id, v, tags.remove(id.as_str()).unwrap_or_default()))
            .collect(),
        _ => Vec::new(),
    };
    sort_notes(&mut out);
    out
}

/// The order of [`notes`]: pinned first, then most recently updated, then by id.
pub fn sort_notes(notes: &mut [Note]) {
    notes.sort_by(|a, b| {
        b.pinned
            .cmp(&a.pinned)
            .then(b.updated_at.cmp(&a.updated_at))
            .then(a.id.cmp(&b.id))
    });
}

/// One note.
pub fn note(doc: &LoroDoc, id: &str) -> Option<Note> {
    let map = note_map(doc, id)?;
    let tags = note_tags(doc, id);
    Some(note_from_value(id, &map.get_deep_value(), tags))
}

/// Makes a note equal to `old` (title, body, tasks, tags, flags), creating it again if it was
/// purged. Used to restore a version from the history.
pub fn overwrite_note(doc: &LoroDoc, old: &Note, now_ms: i64) -> Result<(), ModelError> {
    if note_map(doc, &old.id).is_none() {
        create_note(doc, &old.id, "", old.created_at)?;
    }
    let note = require_note(doc, &old.id)?;
    for (field, value) in [(Field::Title, &old.title), (Field::Body, &old.body)] {
        let text = child_text(&note, field.key())?;
        if text.to_string() != *value {
            let len = text.len_unicode();
            if len > 0 {
                text.delete(0, len)?;
            }
            text.insert(0, value)?;
        }
    }
    let tasks = child_tasks(&note)?;
    if !tasks.is_empty() {
        tasks.delete(0, tasks.len())?;
    }
    for t in &old.tasks {
        let task = tasks.insert_container(tasks.len(), LoroMap::new())?;
        task.insert("text", t.text.as_str())?;
        task.insert("done", t.done)?;
    }
    let current = note_tags(doc, &old.id);
    for tag in current.iter().filter(|t| !old.tags.contains(t)) {
        doc.get_map(NOTE_TAGS).delete(&tag_key(&old.id, tag))?;
    }
    for tag in old.tags.iter().filter(|t| !current.contains(t)) {
        doc.get_map(NOTE_TAGS)
            .insert(&tag_key(&old.id, tag), true)?;
    }
    note.insert("pinned", old.pinned)?;
    note.insert("trashed", old.trashed)?;
    touch(&note, now_ms)
}

/// One note's tags, sorted: the keys of the tag set are walked once, and only this note's are
/// kept (not a map of every note's tags, which a remote edit of one note used to build).
fn note_tags(doc: &LoroDoc, id: &str) -> Vec<String> {
    let mut tags: Vec<String> = doc
        .get_map(NOTE_TAGS)
        .keys()
        .filter_map(|key| match key.split_once(TAG_SEP) {
            Some((note, tag)) if note == id => Some(tag.to_owned()),
            _ => None,
        })
        .collect();
    tags.sort();
    tags
}

#[cfg(test)]
mod tests;
