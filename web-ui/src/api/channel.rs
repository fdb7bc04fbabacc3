//! The tabs' and workers' channel: every edit, arrival, status and presence message goes out
//! on the `hearth-sync` BroadcastChannel (and to this tab's own worker directly), and what comes
//! in is acted on once ([`heard`]).

use super::*;

thread_local! {
    static CHANNEL_TX: RefCell<Option<web_sys::BroadcastChannel>> = const { RefCell::new(None) };
    static SEEN: RefCell<shared_schema::sync::Seen> = RefCell::new(Default::default());
}

/// Tells every other tab and worker (BroadcastChannel), and this tab's own worker directly.
pub(super) fn broadcast(msg: &Broadcast) {
    if let Some(json) = Envelope::encode(msg) {
        send(WorkerRequest::Tell(json.clone()));
        post(&json);
    }
}

/// Posts on the BroadcastChannel only: a message for the other tabs (this tab's worker has no
/// use for it, and it is on the way of the push).
pub(super) fn broadcast_to_tabs(msg: &Broadcast) {
    if let Some(json) = Envelope::encode(msg) {
        post(&json);
    }
}

pub(super) fn post(json: &str) {
    CHANNEL_TX.with(|c| {
        if let Some(ch) = c.borrow().as_ref() {
            let _ = ch.post_message(&JsValue::from_str(json));
        }
    });
}

pub(super) fn start_channel(ui: Ui) {
    let Ok(channel) = web_sys::BroadcastChannel::new(CHANNEL) else {
        return;
    };
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            if let Some(text) = e.data().as_string() {
                heard(ui, &text);
            }
        });
    channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    CHANNEL_TX.with(|c| *c.borrow_mut() = Some(channel));
}

/// Acts on a broadcast — from another tab or worker over the channel, or from this tab's own
/// worker directly — once per message.
pub(super) fn heard(ui: Ui, text: &str) {
    let Some(envelope) = SEEN.with(|s| Envelope::decode_first(text, &mut s.borrow_mut())) else {
        return;
    };
    let msg = envelope.msg;
    let current = ui.ws.get_untracked();
    if matches!(msg, Broadcast::Shown { .. }) {
        // Another tab's edit, about to be written: shown now, its `Local` follows.
        if let Some(e) = engine() {
            if worker::tab::preview(&e, &current, &msg) {
                ui.refresh_from_engine();
            }
        }
        return;
    }
    if let Some(arrival) = worker::tab::Arrival::of(&msg).filter(|a| a.ws == current) {
        if engine().is_some_and(|e| worker::tab::confirmed(&e, &arrival)) {
            return;
        }
        // Show what was stored at once, then read storage (cursors, quarantine).
        let shown = engine().is_some_and(|e| worker::tab::show(&e, &arrival));
        if shown {
            ui.refresh_from_engine();
        }
        leptos::task::spawn_local(async move {
            if shown {
                // Render first: the reads' IndexedDB calls (~1 ms each on the main thread here)
                // would otherwise run in the same microtask checkpoint as the render.
                client_wasm::sync::fetch::sleep_ms(0).await;
            }
            if let Some(e) = engine() {
                match worker::tab::catch_up(&e, &arrival, &|| ui.refresh_from_engine()).await {
                    // Pulled records were folded into the local snapshot (on the owner's
                    // device, queued for upload): wake the worker.
                    Ok(true) => broadcast(&Broadcast::Local {
                        ws: e.id(),
                        update: None,
                        key: None,
                    }),
                    Ok(false) => {}
                    Err(err) => ui.error.set(Some(err.to_string())),
                }
            }
        });
        return;
    }
    match msg {
        Broadcast::Presence { ws, peers } if ws == current => {
            crate::presence::heard(ui, peers);
        }
        // Another tab's worker changed the keys: seal under the new ones from the next edit.
        Broadcast::Keys { ws } if ws == current => keys_changed(ui, false),
        Broadcast::Status {
            ws,
            status,
            pending,
        } if ws == current => {
            STATUSES.with(|n| n.set(n.get().wrapping_add(1)));
            set_status(ui, &status);
            set_changed(ui.pending, pending);
            if matches!(status, SyncStatus::UpToDate { .. }) {
                clear_server_error(ui);
            }
            match &status {
                SyncStatus::Syncing { updates_left, .. } => ui.progress.update(|p| {
                    let total = p.map(|(_, t)| t).unwrap_or(0).max(*updates_left);
                    *p = Some((total - updates_left, total));
                }),
                _ => set_changed(ui.progress, None),
            }
            set_changed(
                ui.stopped,
                match &status {
                    SyncStatus::Stopped { reason, message } => Some((*reason, message.clone())),
                    _ => None,
                },
            );
            if matches!(status, SyncStatus::UpToDate { .. }) {
                set_changed(ui.synced, true);
                // A notebook is on a server now: ask the browser to keep this site's data.
                leptos::task::spawn_local(crate::storage_health::ask_persist_once(ui));
            }
        }
        _ => {}
    }
}
