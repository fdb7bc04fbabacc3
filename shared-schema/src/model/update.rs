//! Bringing a note to a wanted state with the smallest edits ([`update_note`]): the text by a
//! character diff (several hunks, not one replacement), the checklist by matching tasks on
//! their text, tags and the pin one by one. Run on a document forked at the version the wanted
//! state was derived from (a Markdown file exported earlier), the edits merge with whatever
//! other devices did since, as edits typed on that version would.

use super::{
    child_tasks, child_text, note_map, note_tags, tag_key, touch, valid_tag, ModelError, Note,
    NOTE_TAGS,
};
use loro::{LoroMap, LoroValue, ValueOrContainer};

/// Makes note `wanted.id` read as `wanted` (title, body, tasks, tags, pinned; not trashed or
/// times). Returns whether anything changed. The note must exist.
pub fn update_note(doc: &loro::LoroDoc, wanted: &Note, now_ms: i64) -> Result<bool, ModelError> {
    let note =
        note_map(doc, &wanted.id).ok_or_else(|| ModelError::NoSuchNote(wanted.id.clone()))?;
    let mut changed = false;
    for (key, value) in [("title", &wanted.title), ("body", &wanted.body)] {
        let text = child_text(&note, key)?;
        if text.to_string() != *value {
            text.update(value, Default::default())
                .map_err(|e| ModelError::Diff(e.to_string()))?;
            changed = true;
        }
    }
    changed |= update_tasks(&note, wanted)?;
    let current = note_tags(doc, &wanted.id);
    for tag in current.iter().filter(|t| !wanted.tags.contains(t)) {
        doc.get_map(NOTE_TAGS).delete(&tag_key(&wanted.id, tag))?;
        changed = true;
    }
    for tag in wanted.tags.iter().filter(|t| !current.contains(t)) {
        if valid_tag(tag) {
            doc.get_map(NOTE_TAGS)
                .insert(&tag_key(&wanted.id, tag), true)?;
            changed = true;
        }
    }
    let pinned = matches!(
        note.get("pinned"),
        Some(ValueOrContainer::Value(LoroValue::Bool(true)))
    );
    if pinned != wanted.pinned {
        note.insert("pinned", wanted.pinned)?;
        changed = true;
    }
    if changed {
        touch(&note, now_ms)?;
    }
    Ok(changed)
}

/// The checklist: tasks kept in order are matched by text (longest common subsequence); the
/// others are deleted or inserted where `wanted` has them; a matched task's `done` is set.
fn update_tasks(note: &LoroMap, wanted: &Note) -> Result<bool, ModelError> {
    let tasks = child_tasks(note)?;
    let current: Vec<(String, bool, Option<LoroMap>)> = (0..tasks.len())
        .map(|i| {
            let map = match tasks.get(i) {
                Some(ValueOrContainer::Container(loro::Container::Map(m))) => Some(m),
                _ => None,
            };
            let text = map
                .as_ref()
                .and_then(|m| match m.get("text") {
                    Some(ValueOrContainer::Value(LoroValue::String(s))) => Some(s.to_string()),
                    _ => None,
                })
                .unwrap_or_default();
            let done = map.as_ref().is_some_and(|m| {
                matches!(
                    m.get("done"),
                    Some(ValueOrContainer::Value(LoroValue::Bool(true)))
                )
            });
            (text, done, map)
        })
        .collect();
    let (n, m) = (current.len(), wanted.tasks.len());
    // lcs[i][j]: the longest common run of texts of current[i..] and wanted[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if current[i].0 == wanted.tasks[j].text {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut kept = vec![false; n];
    let mut matched = vec![None; m];
    while i < n && j < m {
        if current[i].0 == wanted.tasks[j].text {
            kept[i] = true;
            matched[j] = Some(i);
            i += 1;
            j += 1;
        } else if lcs[i + 1][j] >= lcs[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    let mut changed = false;
    for (j, want) in wanted.tasks.iter().enumerate() {
        if let Some(i) = matched[j] {
            if current[i].1 != want.done {
                if let Some(map) = &current[i].2 {
                    map.insert("done", want.done)?;
                    changed = true;
                }
            }
        }
    }
    for i in (0..n).rev().filter(|i| !kept[*i]) {
        tasks.delete(i, 1)?;
        changed = true;
    }
    // The list now holds the kept tasks in `wanted`'s order; the others go in at their places.
    for (j, want) in wanted.tasks.iter().enumerate() {
        if matched[j].is_none() {
            let task = tasks.insert_container(j, LoroMap::new())?;
            task.insert("text", want.text.as_str())?;
            task.insert("done", want.done)?;
            changed = true;
        }
    }
    Ok(changed)
}
