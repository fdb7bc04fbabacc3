//! The sync status in the header: the worker's [`SyncStatus`] in words a person uses, and the
//! engine's hand-off of edits (stager, preview) switched on only while the worker is live.

use super::*;

thread_local! {
    /// How many sync statuses this tab heard (an edit knows whether one came while it was stored).
    pub(super) static STATUSES: Cell<u64> = const { Cell::new(0) };
}

/// What the header says about sync: (words a person uses, a stable code, the technical detail
/// that goes behind a click). A server that cannot be reached reads like a browser that is offline:
/// either way the edits are kept here.
pub(super) fn status_words(status: &SyncStatus) -> (String, &'static str, Option<String>) {
    let kept = "Offline · edits are kept";
    match status {
        SyncStatus::LocalOnly => ("On this device only".into(), "local_only", None),
        SyncStatus::Offline => (
            kept.into(),
            "offline",
            Some("The browser is offline.".into()),
        ),
        SyncStatus::Connecting { reason: None } => ("Connecting…".into(), "connecting", None),
        SyncStatus::Connecting { reason: Some(r) } => (
            kept.into(),
            "unreachable",
            Some(format!(
                "Cannot sync with the server right now; retrying. ({r})"
            )),
        ),
        SyncStatus::Syncing { .. } => ("Syncing…".into(), "syncing", None),
        SyncStatus::UpToDate { .. } => ("Up to date".into(), "up_to_date", None),
        SyncStatus::Stopped { reason, message } => (
            reason.headline().into(),
            reason.as_str(),
            Some(message.clone()),
        ),
    }
}

/// The server answers again: an error banner about an earlier call to it is stale.
pub(super) fn clear_server_error(ui: Ui) {
    if let Some(text) = ui.server_error.get_untracked() {
        if ui.error.get_untracked().as_ref() == Some(&text) {
            ui.error.set(None);
        }
        ui.server_error.set(None);
    }
}

/// Shows a sync status in the header, and hands edits to the worker and the other tabs while
/// they are written (the engine's stager) only while the worker is connected to the server (up
/// to date, or pushing): then it pushes an edit during the local flush, and the other tabs show
/// it. Otherwise (offline) consecutive edits share one pending update.
pub(super) fn set_status(ui: Ui, status: &SyncStatus) {
    if let Some(e) = engine() {
        let live = matches!(
            status,
            SyncStatus::UpToDate { .. } | SyncStatus::Syncing { .. }
        );
        e.set_stager(live.then(|| {
            let ws = e.id();
            Rc::new(
                move |u: &client_wasm::storage::PendingUpdate, after: Option<&str>| {
                    // A large one is read from storage (after its `Local`), not copied into JSON.
                    if u.bytes.len() > worker::protocol::CARRY_MAX {
                        return;
                    }
                    broadcast(&Broadcast::Staged {
                        ws: ws.clone(),
                        key: u.key.clone(),
                        update: u.bytes.clone(),
                        after: after.map(str::to_owned),
                    })
                },
            ) as client_wasm::engine::Stager
        }));
        e.set_preview(live.then(|| {
            let ws = e.id();
            Rc::new(move |update: &[u8]| {
                if update.len() <= worker::protocol::CARRY_MAX {
                    broadcast_to_tabs(&Broadcast::Shown {
                        ws: ws.clone(),
                        update: update.to_vec(),
                    })
                }
            }) as client_wasm::engine::Preview
        }));
    }
    let (words, code, detail) = status_words(status);
    set_changed(ui.status, words);
    set_changed(ui.status_code, code);
    set_changed(ui.status_detail, detail);
}
