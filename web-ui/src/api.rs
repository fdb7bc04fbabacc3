//! All I/O of the UI: the engine (client-wasm on IndexedDB), the sync worker, the
//! `hearth-sync` BroadcastChannel and browser events. Pages call these functions and read the
//! signals in [`Ui`]; nothing else touches the engine, the worker or the network.

use client_wasm::storage::{IdbStore, Store, WorkspaceRecord};
use client_wasm::{Engine, EngineError};
use gloo_worker::{Spawnable, WorkerBridge};
use leptos::prelude::*;
use shared_schema::api::TokenInfo;
use shared_schema::model::{Field, Note};
use shared_schema::sync::{StopReason, SyncStatus};
use shared_schema::Role;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use worker::protocol::{Broadcast, Envelope, WorkerRequest, WorkerResponse, CHANNEL};
use worker::SyncWorker;

/// Name of the IndexedDB database of the app.
pub const DB_NAME: &str = "hearth";

thread_local! {
    static ENGINE: RefCell<Option<Rc<Engine<IdbStore>>>> = const { RefCell::new(None) };
    static WORKER: RefCell<Option<WorkerBridge<SyncWorker>>> = const { RefCell::new(None) };
    static CHANNEL_TX: RefCell<Option<web_sys::BroadcastChannel>> = const { RefCell::new(None) };
    static SEEN: RefCell<shared_schema::sync::Seen> = RefCell::new(Default::default());
}

/// The reactive state pages read.
#[derive(Clone, Copy)]
pub struct Ui {
    /// Workspace name.
    pub name: RwSignal<String>,
    /// Workspace id.
    pub ws: RwSignal<String>,
    /// Notes of the open workspace.
    pub notes: RwSignal<Vec<Note>>,
    /// Sync status in words a person uses.
    pub status: RwSignal<String>,
    /// The status as a stable code (`up_to_date`, `offline`, `token_revoked`, …) for styling.
    pub status_code: RwSignal<&'static str>,
    /// The technical detail behind the status (an error's text), shown on request.
    pub status_detail: RwSignal<Option<String>>,
    /// Edits not yet on the server.
    pub pending: RwSignal<u64>,
    /// Edits of this tab still being stored (queued keystrokes included).
    pub saving: RwSignal<u32>,
    /// While syncing: (updates sent so far, updates in this round), for the progress bar.
    pub progress: RwSignal<Option<(u64, u64)>>,
    /// Sync stopped and the user must act: (reason, details).
    pub stopped: RwSignal<Option<(StopReason, String)>>,
    /// Seqs of updates from the server that could not be read (quarantined).
    pub quarantined: RwSignal<Vec<u64>>,
    /// The workspace is shared with us read-only.
    pub read_only: RwSignal<bool>,
    /// The workspace syncs with a server.
    pub synced: RwSignal<bool>,
    /// This device owns the workspace (may share).
    pub master: RwSignal<bool>,
    /// Worker version once it answered.
    pub worker: RwSignal<String>,
    /// Last share link minted.
    pub share_link: RwSignal<Option<String>>,
    /// What the last link asked for: its access and when it expires (seconds since the epoch).
    pub share_info: RwSignal<Option<(Role, Option<u64>)>>,
    /// Last error for the user.
    pub error: RwSignal<Option<String>>,
    /// The text of the last error from a call to the server (sharing, links, tokens): cleared,
    /// with the banner still showing it, once a sync round succeeds again.
    pub server_error: RwSignal<Option<String>>,
    /// Share links (tokens) of the workspace, when the owner asked for them.
    pub tokens: RwSignal<Vec<TokenInfo>>,
    /// Workspaces stored in this browser.
    pub workspaces: RwSignal<Vec<WorkspaceRecord>>,
    /// A transient message ("Backup downloaded", "Token rotated").
    pub notice: RwSignal<Option<String>>,
    /// Other tabs and devices that have the notebook open.
    pub peers: RwSignal<Vec<shared_schema::api::Peer>>,
    /// This site's storage usage and quota, once read.
    pub storage: RwSignal<Option<crate::storage_health::Usage>>,
    /// Storage trouble the user must know of: the quota is near, or the browser deleted data.
    pub storage_warning: RwSignal<Option<String>>,
}

impl Ui {
    /// Whether this tab offers edits: not a read-only link, and sync has not stopped for a reason
    /// that means edits could never reach the server again (a revoked or expired link, …).
    pub fn can_edit(&self) -> bool {
        !self.read_only.get()
            && !self
                .stopped
                .with(|s| s.as_ref().is_some_and(|(reason, _)| reason.blocks_edits()))
    }

    /// Fresh state.
    pub fn new() -> Self {
        Self {
            name: RwSignal::new("…".into()),
            ws: RwSignal::new(String::new()),
            notes: RwSignal::new(Vec::new()),
            status: RwSignal::new("On this device only".into()),
            status_code: RwSignal::new("local_only"),
            status_detail: RwSignal::new(None),
            pending: RwSignal::new(0),
            saving: RwSignal::new(0),
            progress: RwSignal::new(None),
            stopped: RwSignal::new(None),
            quarantined: RwSignal::new(Vec::new()),
            read_only: RwSignal::new(false),
            synced: RwSignal::new(false),
            master: RwSignal::new(false),
            worker: RwSignal::new("starting".into()),
            share_link: RwSignal::new(None),
            share_info: RwSignal::new(None),
            error: RwSignal::new(None),
            server_error: RwSignal::new(None),
            tokens: RwSignal::new(Vec::new()),
            workspaces: RwSignal::new(Vec::new()),
            notice: RwSignal::new(None),
            peers: RwSignal::new(Vec::new()),
            storage: RwSignal::new(None),
            storage_warning: RwSignal::new(None),
        }
    }

    /// Brings the signals up to date with the engine. Only the notes Loro's events named are
    /// re-read and replaced, so a keystroke in one note re-renders that note alone; everything is
    /// re-read only when the engine says so (a newly opened or rolled-back document).
    fn refresh_from_engine(&self) {
        if let Some(e) = engine() {
            let changes = e.take_changes();
            if changes.all {
                self.notes.set(e.notes());
            } else if !changes.notes.is_empty() {
                self.notes.update(|notes| {
                    for id in &changes.notes {
                        let at = notes.iter().position(|n| &n.id == id);
                        match (e.note(id), at) {
                            (Some(note), Some(i)) => notes[i] = note,
                            (Some(note), None) => notes.push(note),
                            (None, Some(i)) => {
                                notes.remove(i);
                            }
                            (None, None) => {}
                        }
                    }
                    shared_schema::model::sort_notes(notes);
                });
            }
            // Set only what changed: a remote keystroke must not re-render the header.
            set_changed(self.name, e.name());
            set_changed(self.ws, e.id());
            let record = e.record();
            set_changed(self.read_only, e.is_read_only());
            set_changed(self.synced, record.server_url.is_some());
            set_changed(self.master, record.role == Role::Master);
            set_changed(self.quarantined, e.quarantined());
        }
    }
}

/// Sets `signal` to `value` only when it differs, so what reads it is not run again for nothing.
fn set_changed<T: PartialEq + Send + Sync + 'static>(signal: RwSignal<T>, value: T) {
    signal.maybe_update(|v| {
        let changed = *v != value;
        if changed {
            *v = value;
        }
        changed
    });
}

fn engine() -> Option<Rc<Engine<IdbStore>>> {
    ENGINE.with(|e| e.borrow().clone())
}

/// Sends a request to this tab's sync worker.
pub(crate) fn send(req: WorkerRequest) {
    WORKER.with(|w| {
        if let Some(bridge) = w.borrow().as_ref() {
            bridge.send(req);
        }
    });
}

/// Tells every other tab and worker (BroadcastChannel), and this tab's own worker directly.
fn broadcast(msg: &Broadcast) {
    if let Some(json) = Envelope::encode(msg) {
        send(WorkerRequest::Tell(json.clone()));
        post(&json);
    }
}

/// Posts on the BroadcastChannel only: a message for the other tabs (this tab's worker has no
/// use for it, and it is on the way of the push).
fn broadcast_to_tabs(msg: &Broadcast) {
    if let Some(json) = Envelope::encode(msg) {
        post(&json);
    }
}

fn post(json: &str) {
    CHANNEL_TX.with(|c| {
        if let Some(ch) = c.borrow().as_ref() {
            let _ = ch.post_message(&JsValue::from_str(json));
        }
    });
}

fn origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}

/// `#/join/{ws}?t={token}[&k={key}]` → (ws, token, key).
fn join_link() -> Option<(String, String, Option<String>)> {
    let hash = web_sys::window()?.location().hash().ok()?;
    let (ws, token) = shared_schema::link::parse_fragment(&hash)?;
    Some((ws, token, shared_schema::link::key_of(&hash)))
}

/// What the header says about sync: (words a person uses, a stable code, the technical detail
/// that goes behind a click). A server that cannot be reached reads like a browser that is offline:
/// either way the edits are kept here.
fn status_words(status: &SyncStatus) -> (String, &'static str, Option<String>) {
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
fn clear_server_error(ui: Ui) {
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
fn set_status(ui: Ui, status: &SyncStatus) {
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

/// Opens the workspace of a join link, else the first stored one, else creates "My notebook";
/// starts the worker and the BroadcastChannel listener.
pub async fn boot(ui: Ui) -> Result<(), EngineError> {
    let store = IdbStore::open(DB_NAME).await?;
    let existing = store.list_workspaces().await?;
    let last = last_opened();
    let pick = existing
        .iter()
        .find(|r| Some(&r.id) == last.as_ref())
        .or(existing.first());
    let joining = join_link().is_some();
    // Notebooks this device had that storage no longer holds: the browser deleted them.
    let (evicted, rejoin) =
        crate::storage_health::recovery_plan(&crate::storage_health::missing(&existing));
    let recovering = !rejoin.is_empty();
    if evicted.is_some() {
        ui.storage_warning.set(evicted);
    }
    start_channel(ui);
    start_worker(ui);
    send(WorkerRequest::Start {
        db_name: DB_NAME.into(),
    });
    watch_online();
    for kept in rejoin {
        let key = kept
            .keys
            .as_ref()
            .and_then(|r| r.link_secret.as_ref())
            .map(|s| s.to_text());
        if let (Some(server_url), Some(token)) = (kept.server_url, kept.token) {
            send(WorkerRequest::Join {
                ws: kept.id,
                server_url,
                token,
                key,
                ring: kept.keys,
            });
        }
    }
    match pick {
        Some(record) => install(ui, Engine::open(store, &record.id).await?),
        // A first visit through a share link (or notebooks coming back from the server) opens
        // those, nothing else.
        None if joining || recovering => {}
        None => install(ui, Engine::create(store, "My notebook").await?),
    }
    refresh_workspaces(ui).await;
    take_join_link(ui);
    watch_join_links(ui);
    crate::storage_health::check(ui).await;
    Ok(())
}

/// A share link opened in a tab already on Hearth changes only the URL's fragment (no reload):
/// take it then too.
fn watch_join_links(ui: Ui) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let cb = Closure::<dyn FnMut()>::new(move || take_join_link(ui));
    let _ = window.add_event_listener_with_callback("hashchange", cb.as_ref().unchecked_ref());
    cb.forget();
}

/// After a failed join on a device with no notebook yet, start the usual first notebook.
async fn ensure_open(ui: Ui) {
    if engine().is_none() {
        create_workspace(ui, "My notebook".into()).await;
    }
}

/// Hands a share link in the URL to the worker, which checks the token with the server before
/// anything is stored; the notebook opens when it answers `Joined`.
fn take_join_link(ui: Ui) {
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

fn start_channel(ui: Ui) {
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
fn heard(ui: Ui, text: &str) {
    let Some(envelope) = Envelope::decode(text) else {
        return;
    };
    if !SEEN.with(|s| s.borrow_mut().first(envelope.id)) {
        return;
    }
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

/// A module-worker loader for this page's own bundle: it imports the app's JS and starts it with
/// the app's wasm (both named by the `modulepreload`/`preload` links Trunk writes into the page),
/// so the sync worker ships no second wasm — one copy of the code on a first load.
fn worker_loader() -> Result<String, String> {
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let base = document.url().map_err(|_| "no page URL")?;
    let link = |selector: &str| {
        document
            .query_selector(selector)
            .ok()
            .flatten()
            .and_then(|e| e.get_attribute("href"))
            .and_then(|href| web_sys::Url::new_with_base(&href, &base).ok())
            .map(|u| u.href())
            .ok_or_else(|| format!("the page names no {selector}"))
    };
    let js = link(r#"link[rel="modulepreload"][href$=".js"]"#)?;
    let wasm = link(r#"link[rel="preload"][href$=".wasm"]"#)?;
    let shim = format!("import init from {js:?}; await init({{ module_or_path: {wasm:?} }});");
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("application/javascript");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(
        &js_sys::Array::of1(&JsValue::from_str(&shim)),
        &opts,
    )
    .map_err(|_| "could not build the worker loader")?;
    web_sys::Url::create_object_url_with_blob(&blob)
        .map_err(|_| "could not build the worker loader".into())
}

fn start_worker(ui: Ui) {
    let loader = match worker_loader() {
        Ok(url) => url,
        Err(e) => {
            ui.worker.set(format!("not started: {e}"));
            return;
        }
    };
    let bridge = SyncWorker::spawner()
        .callback(move |resp| match resp {
            WorkerResponse::Pong { version, .. } => {
                ui.worker.set(format!("ready (version {version})"))
            }
            WorkerResponse::Connected { .. } => {
                leptos::task::spawn_local(async move {
                    if let Some(e) = engine() {
                        let _ = e.refresh().await;
                        ui.refresh_from_engine();
                    }
                    // The marker learns the server and token (see `storage_health`).
                    refresh_workspaces(ui).await;
                });
            }
            WorkerResponse::Joined { ws, .. } => {
                ui.notice.set(None);
                leptos::task::spawn_local(async move {
                    open_workspace(ui, ws).await;
                    refresh_workspaces(ui).await;
                });
            }
            WorkerResponse::JoinFailed { message, .. } => {
                ui.notice.set(None);
                ui.error.set(Some(message));
                leptos::task::spawn_local(ensure_open(ui));
            }
            WorkerResponse::Minted { ws, token, key, .. } => {
                ui.share_link.set(Some(shared_schema::link::format(
                    &origin(),
                    &ws,
                    &token,
                    key.as_deref(),
                )));
                list_tokens(ui);
            }
            WorkerResponse::Tokens { tokens, .. } => ui.tokens.set(tokens),
            WorkerResponse::Rotated { .. } => {
                ui.notice.set(Some(
                    "The owner token was rotated; the old one no longer works.".into(),
                ));
                list_tokens(ui);
                // An encrypted notebook's key was rotated with it.
                keys_changed(ui, true);
            }
            WorkerResponse::BackupFile { ws, bytes } => {
                download(&format!("hearth-{ws}-server.hearth"), &bytes);
                ui.notice.set(Some("Server backup downloaded.".into()));
            }
            WorkerResponse::DeletedRemote { ws } => {
                leptos::task::spawn_local(async move { leave_workspace(ui, ws).await });
            }
            WorkerResponse::Revoked { .. } => {
                list_tokens(ui);
                // The worker rotated the notebook's key: this tab seals under the new one from
                // now on, and a snapshot under it goes to the server.
                keys_changed(ui, true);
            }
            WorkerResponse::Encrypted {
                revoked, turned_on, ..
            } => {
                list_tokens(ui);
                ui.notice.set(Some(if turned_on {
                    format!(
                        "End-to-end encryption is on. {revoked} link(s) stopped working: make new links to share."
                    )
                } else {
                    "This notebook was already encrypted.".into()
                }));
                keys_changed(ui, true);
            }
            WorkerResponse::Heard(text) => heard(ui, &text),
            WorkerResponse::Failed { what, message } => {
                let text = format!("{what}: {message}");
                ui.server_error.set(Some(text.clone()));
                ui.error.set(Some(text));
            }
        })
        .with_loader(true)
        .spawn(&loader);
    bridge.send(WorkerRequest::Ping { nonce: 1 });
    WORKER.with(|w| *w.borrow_mut() = Some(bridge));
}

fn watch_online() {
    let Some(window) = web_sys::window() else {
        return;
    };
    for (event, up) in [("online", true), ("offline", false)] {
        let cb = Closure::<dyn FnMut()>::new(move || send(WorkerRequest::Online(up)));
        let _ = window.add_event_listener_with_callback(event, cb.as_ref().unchecked_ref());
        cb.forget();
    }
}

/// An edit for [`edit`]: what to run on the open engine.
type EditFn = Box<
    dyn FnOnce(
        Rc<Engine<IdbStore>>,
    )
        -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), EngineError>>>>,
>;

/// Runs an edit on the engine, then refreshes the UI and tells the syncing worker. A thin generic
/// shim over [`run_edit`], so the bookkeeping is compiled once, not once per kind of edit (each
/// copy was ~2 KB of the first load).
async fn edit<F, Fut>(ui: Ui, f: F)
where
    F: FnOnce(Rc<Engine<IdbStore>>) -> Fut + 'static,
    Fut: std::future::Future<Output = Result<(), EngineError>> + 'static,
{
    run_edit(ui, Box::new(move |e| Box::pin(f(e)))).await
}

/// [`edit`]'s body.
async fn run_edit(ui: Ui, f: EditFn) {
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

thread_local! {
    /// How many sync statuses this tab heard (an edit knows whether one came while it was stored).
    static STATUSES: Cell<u64> = const { Cell::new(0) };
    /// The last peer id recorded as this device's ([`crate::storage_health::own_peers`]).
    static RECORDED_PEER: Cell<u64> = const { Cell::new(0) };
}

/// Records the engine's peer as this device's once per peer (History tells sessions apart).
fn remember_peer(e: &Engine<IdbStore>) {
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

/// Registers the open workspace on this server and starts syncing it.
pub fn connect(ui: Ui) {
    set_status(ui, &SyncStatus::Connecting { reason: None });
    send(WorkerRequest::Connect {
        ws: ui.ws.get_untracked(),
        server_url: origin(),
    });
}

/// Asks for the list of share links (tokens).
pub fn list_tokens(ui: Ui) {
    send(WorkerRequest::ListTokens {
        ws: ui.ws.get_untracked(),
    });
}

/// Revokes a share link.
pub fn revoke(ui: Ui, token_id: String) {
    send(WorkerRequest::Revoke {
        ws: ui.ws.get_untracked(),
        token_id,
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

const LAST_OPENED: &str = "hearth.last-opened";

fn last_opened() -> Option<String> {
    web_sys::window()?
        .local_storage()
        .ok()??
        .get_item(LAST_OPENED)
        .ok()?
}

fn remember_opened(ws: &str) {
    if let Some(Ok(Some(storage))) = web_sys::window().map(|w| w.local_storage()) {
        let _ = storage.set_item(LAST_OPENED, ws);
    }
}

fn install(ui: Ui, engine: Engine<IdbStore>) {
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
    ui.peers.set(Vec::new());
    send(WorkerRequest::Watch { ws });
    crate::presence::set(ui, None);
    // The worker may have stored records after the engine read storage and before this tab
    // took the workspace as its own (its broadcast was not for this tab yet): read them now.
    leptos::task::spawn_local(async move {
        if let Some(e) = self::engine() {
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

/// Deletes the open workspace on the server (master), then forgets it here.
pub fn delete_remote(ui: Ui) {
    send(WorkerRequest::DeleteRemote {
        ws: ui.ws.get_untracked(),
    });
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

/// Offers bytes as a file download.
pub fn download(name: &str, bytes: &[u8]) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("application/octet-stream");
    let Ok(blob) = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &opts) else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    if let Ok(a) = document.create_element("a") {
        let _ = a.set_attribute("href", &url);
        let _ = a.set_attribute("download", name);
        if let Ok(a) = a.dyn_into::<web_sys::HtmlElement>() {
            a.click();
        }
    }
    let _ = web_sys::Url::revoke_object_url(&url);
}

/// Downloads a backup of the local copy (works offline, no server needed); with a passphrase,
/// encrypted and carrying its keys behind it.
pub fn download_local_backup(ui: Ui, passphrase: Option<String>) {
    if let Some(e) = engine() {
        match e.export_backup_as(passphrase.as_deref()) {
            Ok(bytes) => {
                download(&format!("hearth-{}.hearth", e.id()), &bytes);
                ui.notice.set(Some(match passphrase {
                    Some(_) => "Encrypted backup downloaded: it opens with its passphrase.".into(),
                    None => "Backup of this device's copy downloaded.".into(),
                }));
            }
            Err(err) => ui.error.set(Some(err.to_string())),
        }
    }
}

/// Asks the worker for the server's backup (master).
pub fn download_server_backup(ui: Ui) {
    send(WorkerRequest::Backup {
        ws: ui.ws.get_untracked(),
    });
}

/// Restores a backup file into a new local workspace and opens it.
pub async fn restore_backup(ui: Ui, file: web_sys::File, passphrase: Option<String>) {
    let result = async {
        let buf = wasm_bindgen_futures::JsFuture::from(file.array_buffer())
            .await
            .map_err(|_| "could not read the file".to_string())?;
        let bytes = js_sys::Uint8Array::new(&buf).to_vec();
        let store = IdbStore::open(DB_NAME).await.map_err(|e| e.to_string())?;
        Engine::import_backup_with(store, &bytes, None, passphrase.as_deref())
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(engine) => {
            install(ui, engine);
            refresh_workspaces(ui).await;
            // An earlier attempt's error (a wrong passphrase) no longer applies.
            ui.error.set(None);
            ui.notice.set(Some(
                "Backup restored as a new notebook on this device.".into(),
            ));
        }
        Err(e) => ui.error.set(Some(format!("restore failed: {e}"))),
    }
}

/// Mints a share link with a role, lifetime and label.
pub fn mint(ui: Ui, role: Role, expires_in: Option<u64>, label: String) {
    let now = (js_sys::Date::now() / 1000.0) as u64;
    ui.share_info
        .set(Some((role, expires_in.map(|s| now.saturating_add(s)))));
    send(WorkerRequest::Mint {
        ws: ui.ws.get_untracked(),
        role,
        expires_in,
        label,
    });
}

/// Rotates the master token.
pub fn rotate(ui: Ui) {
    send(WorkerRequest::Rotate {
        ws: ui.ws.get_untracked(),
    });
}

/// Turns end-to-end encryption on for the open notebook (owner; one-way).
pub fn encrypt(ui: Ui) {
    ui.notice.set(Some("Encrypting this notebook…".into()));
    send(WorkerRequest::Encrypt {
        ws: ui.ws.get_untracked(),
    });
}

/// Re-reads the open notebook's record (its keys changed: a rotation, encryption turned on) and,
/// where this device is the owner, compacts: the snapshot it uploads is sealed under the newest
/// key.
fn keys_changed(ui: Ui, compact: bool) {
    if let Some(e) = engine() {
        leptos::task::spawn_local(async move {
            if e.refresh().await.is_ok() && compact {
                let _ = e.compact().await;
            }
            refresh_workspaces(ui).await;
        });
    }
}

/// Copies text to the clipboard.
pub fn copy(text: &str) {
    let Some(nav) = web_sys::window().map(|w| w.navigator()) else {
        return;
    };
    if let Ok(clipboard) = js_sys::Reflect::get(&nav, &"clipboard".into()) {
        if let Ok(f) = js_sys::Reflect::get(&clipboard, &"writeText".into()) {
            if let Ok(f) = f.dyn_into::<js_sys::Function>() {
                let _ = f.call1(&clipboard, &JsValue::from_str(text));
            }
        }
    }
}

/// The QR code of `text` as an SVG document.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(180, 180)
            .build(),
    )
}

/// A date (YYYY-MM-DD HH:MM, local time) from seconds since the Unix epoch.
pub fn format_time(secs: u64) -> String {
    let d = js_sys::Date::new(&JsValue::from_f64(secs as f64 * 1000.0));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date(),
        d.get_hours(),
        d.get_minutes()
    )
}
