//! The open notebook's history: sessions, what each changed, notes as they were, restoring.

use super::*;

/// The history of the open workspace as sessions (edits of one note by one tab), newest first,
/// each with whether this device made it.
pub fn sessions() -> Vec<(client_wasm::engine::Session, bool)> {
    let Some(e) = engine() else {
        return Vec::new();
    };
    let own = crate::storage_health::own_peers(&e.own_peers());
    e.sessions()
        .into_iter()
        .map(|s| {
            let mine = own.contains(&s.peer);
            (s, mine)
        })
        .collect()
}

/// What a session changed in its note.
pub fn session_change(
    session: &client_wasm::engine::Session,
) -> Result<Option<client_wasm::engine::NoteChange>, String> {
    engine()
        .ok_or_else(|| "no notebook open".to_string())?
        .session_change(session)
        .map_err(|e| e.to_string())
}

/// Every note as it was at a version.
pub fn notes_at(version: &str) -> Result<Vec<Note>, String> {
    engine()
        .ok_or_else(|| "no notebook open".to_string())?
        .notes_at(version)
        .map_err(|e| e.to_string())
}

/// Restores a note from a version (a new edit).
pub async fn restore_note(ui: Ui, version: String, note: String) {
    edit(
        ui,
        move |e| async move { e.restore_note(&version, &note).await },
    )
    .await;
    ui.notice.set(Some(
        "Restored; the restore is a new edit and syncs like any other.".into(),
    ));
}
