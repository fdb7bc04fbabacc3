//! The notebooks stored in this browser: which one is open, opening, creating, renaming and
//! forgetting them, and share links arriving in the URL.

use super::*;

/// `#/join/{ws}?t={token}[&k={key}]` → (ws, token, key).
pub(super) fn join_link() -> Option<(String, String, Option<String>)> {
    let hash = web_sys::window()?.location().hash().ok()?;
    let (ws, token) = shared_schema::link::parse_fragment(&hash)?;
    Some((ws, token, shared_schema::link::key_of(&hash)))
}

/// A share link opened in a tab already on Hearth changes only the URL's fragment (no reload):
/// take it then too.
pub(super) fn watch_join_links(ui: Ui) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let cb = Closure::<dyn FnMut()>::new(move || take_join_link(ui));
    let _ = window.add_event_listener_with_callback("hashchange", cb.as_ref().unchecked_ref());
    cb.forget();
}

/// After a failed join on a device with no notebook yet, start the usual first notebook.
pub(super) async fn ensure_open(ui: Ui) {
    if engine().is_none() {
        create_workspace(ui, "My notebook".into()).await;
    }
}

/// Hands a share link in the URL to the worker, which checks the token with the server before
/// anything is stored; the notebook opens when it answers `Joined`.
pub(super) fn take_join_link(ui: Ui) {
    let Some((ws, token, key)) = join_link() else {
        return;
    };
    if let Some(w) = web_sys::window() {
        let _ = w.location().set_hash("");
    }
    ui.notice.set(Some("Opening the shared notebook…".into()));
    send(WorkerRequest::Join {
        ws,
        server_url: origin(),
        token,
        key,
        ring: None,
    });
}

/// Re-reads the list of workspaces stored in this browser.
pub async fn refresh_workspaces(ui: Ui) {
    if let Ok(store) = IdbStore::open(DB_NAME).await {
        match store.list_workspaces().await {
            Ok(list) => {
                crate::storage_health::remember(&list);
                ui.workspaces.set(list);
            }
            Err(e) => ui.error.set(Some(e.to_string())),
        }
    }
}

pub(super) const LAST_OPENED: &str = "hearth.last-opened";

pub(super) fn last_opened() -> Option<String> {
    web_sys::window()?
        .local_storage()
        .ok()??
        .get_item(LAST_OPENED)
        .ok()?
}

pub(super) fn remember_opened(ws: &str) {
    if let Some(Ok(Some(storage))) = web_sys::window().map(|w| w.local_storage()) {
        let _ = storage.set_item(LAST_OPENED, ws);
    }
}

pub(super) fn install(ui: Ui, engine: Engine<IdbStore>) {
    let ws = engine.id();
    remember_opened(&ws);
    ENGINE.with(|e| *e.borrow_mut() = Some(Rc::new(engine)));
    ui.share_link.set(None);
    ui.tokens.set(Vec::new());
    set_status(ui, &SyncStatus::LocalOnly);
    ui.pending.set(0);
    ui.stopped.set(None);
    ui.progress.set(None);
    ui.refresh_from_engine();
    crate::presence::heard(ui, Vec::new());
    send(WorkerRequest::Watch { ws });
    crate::presence::set(ui, None);
    // The worker may have stored records after the engine read storage and before this tab
    // took the workspace as its own (its broadcast was not for this tab yet): read them now.
    leptos::task::spawn_local(async move {
        if let Some(e) = super::engine() {
            if let Ok(true) = e.refresh().await {
                ui.refresh_from_engine();
            }
        }
    });
}

/// Opens another stored workspace.
pub async fn open_workspace(ui: Ui, id: String) {
    let result = async {
        let store = IdbStore::open(DB_NAME).await?;
        Engine::open(store, &id).await
    }
    .await;
    match result {
        Ok(engine) => install(ui, engine),
        Err(e) => ui.error.set(Some(e.to_string())),
    }
}

/// Creates a new local workspace and opens it.
pub async fn create_workspace(ui: Ui, name: String) {
    let result = async {
        let store = IdbStore::open(DB_NAME).await?;
        Engine::create(store, &name).await
    }
    .await;
    match result {
        Ok(engine) => {
            install(ui, engine);
            refresh_workspaces(ui).await;
        }
        Err(e) => ui.error.set(Some(e.to_string())),
    }
}

/// Renames the open workspace.
pub async fn rename(ui: Ui, name: String) {
    edit(ui, move |e| async move { e.rename(&name).await }).await;
    refresh_workspaces(ui).await;
}

/// Edits of the open workspace that are not on the server yet.
pub async fn unsynced_edits() -> usize {
    match engine() {
        Some(e) => e.pending_updates().await.map(|p| p.len()).unwrap_or(0),
        None => 0,
    }
}

/// Forgets a workspace in this browser (the server copy, if any, stays).
pub async fn leave_workspace(ui: Ui, id: String) {
    let result = async {
        let store = IdbStore::open(DB_NAME).await?;
        // Off the marker first: a notebook forgotten on purpose is not "deleted by the browser".
        crate::storage_health::forget(&id);
        store.delete_workspace(&id).await?;
        let rest = store.list_workspaces().await?;
        let engine = match rest.first() {
            Some(r) => Engine::open(store, &r.id).await?,
            None => Engine::create(store, "My notebook").await?,
        };
        Ok::<_, EngineError>(engine)
    }
    .await;
    match result {
        Ok(engine) => {
            install(ui, engine);
            refresh_workspaces(ui).await;
        }
        Err(e) => ui.error.set(Some(e.to_string())),
    }
}
