//! Edits of the open notebook: each runs on the engine, is told to the worker and the other
//! tabs, and counts in the "not yet on the server" status until the worker says otherwise.

use super::*;

thread_local! {
    /// The last peer id recorded as this device's ([`crate::storage_health::own_peers`]).
    static RECORDED_PEER: Cell<u64> = const { Cell::new(0) };
}

/// An edit for [`edit`]: what to run on the open engine.
pub(super) type EditFn = Box<
    dyn FnOnce(
        Rc<Engine<IdbStore>>,
    )
        -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), EngineError>>>>,
>;

/// Runs an edit on the engine, then refreshes the UI and tells the syncing worker. A thin generic
/// shim over [`run_edit`], so the bookkeeping is compiled once, not once per kind of edit (each
/// copy was ~2 KB of the first load).
pub(super) async fn edit<F, Fut>(ui: Ui, f: F)
where
    F: FnOnce(Rc<Engine<IdbStore>>) -> Fut + 'static,
    Fut: std::future::Future<Output = Result<(), EngineError>> + 'static,
{
    run_edit(ui, Box::new(move |e| Box::pin(f(e)))).await
}

/// [`edit`]'s body.
pub(super) async fn run_edit(ui: Ui, f: EditFn) {
    let Some(e) = engine() else {
        ui.error.set(Some(
            "the notebook is still opening; try again in a moment".into(),
        ));
        return;
    };
    // Until it is stored, the status does not say everything is on the server; and it is not on
    // the server until the worker says so. Counted now, not once stored: a staged push can be
    // acknowledged, and the worker's status arrive, before the write commits — that status is
    // the last word (counting after it left the status at "not yet on the server" for good).
    ui.saving.update(|n| *n += 1);
    let pending_before = ui.pending.get_untracked();
    let statuses = STATUSES.with(Cell::get);
    set_changed(ui.pending, pending_before.max(1));
    let before = e.version();
    let result = f(e.clone()).await;
    ui.saving.update(|n| *n = n.saturating_sub(1));
    if (result.is_err() || e.version() == before) && STATUSES.with(Cell::get) == statuses {
        set_changed(ui.pending, pending_before);
    }
    match result {
        Ok(()) => {
            // Tell the worker and the other tabs first: rendering here need not delay them.
            let stored = e.last_stored_update();
            broadcast(&Broadcast::Local {
                ws: e.id(),
                update: stored
                    .as_ref()
                    .map(|u| u.bytes.clone())
                    .filter(|b| b.len() <= worker::protocol::CARRY_MAX),
                key: stored.map(|u| u.key),
            });
            ui.refresh_from_engine();
            ui.error.set(None);
            remember_peer(&e);
        }
        Err(err) => ui.error.set(Some(err.to_string())),
    }
}

/// Records the engine's peer as this device's once per peer (History tells sessions apart).
pub(super) fn remember_peer(e: &Engine<IdbStore>) {
    let peer = e.doc().peer_id();
    if RECORDED_PEER.with(|r| r.replace(peer)) != peer {
        crate::storage_health::own_peers(&e.own_peers());
    }
}

/// Creates a note; its id once it is stored.
pub async fn create_note(ui: Ui, title: String) -> Option<String> {
    let created = Rc::new(RefCell::new(None));
    let slot = created.clone();
    edit(ui, move |e| async move {
        *slot.borrow_mut() = Some(e.create_note(&title).await?);
        Ok(())
    })
    .await;
    created.take()
}

/// Applies a text field's change (it held `base`, now `new`) to a note's title or body; the
/// engine places it against its text when the edit runs.
pub async fn set_text(ui: Ui, note: String, field: Field, base: String, new: String) {
    edit(ui, move |e| async move {
        e.set_text(&note, field, &base, &new).await
    })
    .await
}

/// Adds a task.
pub async fn add_task(ui: Ui, note: String, text: String) {
    edit(ui, move |e| async move { e.add_task(&note, &text).await }).await
}

/// Toggles a task.
pub async fn toggle_task(ui: Ui, note: String, index: usize, done: bool) {
    edit(ui, move |e| async move {
        e.set_task_done(&note, index, done).await
    })
    .await
}

/// Pins or unpins a note.
pub async fn set_pinned(ui: Ui, note: String, on: bool) {
    edit(ui, move |e| async move { e.set_pinned(&note, on).await }).await
}

/// Trashes or restores a note.
pub async fn set_trashed(ui: Ui, note: String, on: bool) {
    edit(ui, move |e| async move { e.set_trashed(&note, on).await }).await
}

/// Deletes a note for good.
pub async fn purge(ui: Ui, note: String) {
    edit(ui, move |e| async move { e.purge(&note).await }).await
}

/// Moves a task.
pub async fn move_task(ui: Ui, note: String, from: usize, to: usize) {
    edit(
        ui,
        move |e| async move { e.move_task(&note, from, to).await },
    )
    .await
}

/// Deletes a task.
pub async fn delete_task(ui: Ui, note: String, index: usize) {
    edit(
        ui,
        move |e| async move { e.delete_task(&note, index).await },
    )
    .await
}

/// Adds or removes a tag.
pub async fn set_tag(ui: Ui, note: String, tag: String, on: bool) {
    edit(ui, move |e| async move { e.set_tag(&note, &tag, on).await }).await
}
