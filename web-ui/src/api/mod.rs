//! All I/O of the UI — the engine (client-wasm on IndexedDB), the sync worker, the
//! `hearth-sync` BroadcastChannel and browser events — behind the signals of [`Ui`]. Pages call
//! these functions and read the signals; nothing else touches the engine, the worker or the
//! network.
//!
//! - here: [`Ui`] (the signals), the open engine, [`boot`]
//! - [`edits`] — edits of the open notebook
//! - [`notebooks`] — the notebooks in this browser: open, create, rename, forget; join links
//! - [`sharing`] — connecting, links, the owner token, encryption, the server's copy
//! - [`history`] — sessions and restoring
//! - [`backups`] — backup files
//! - [`status`] — the sync status in the header
//! - [`channel`] — messages between tabs and workers
//! - [`sync_worker`] — this tab's sync worker
//! - [`browser`] — clipboard, QR codes, dates

mod backups;
mod browser;
mod channel;
mod edits;
mod history;
mod notebooks;
mod sharing;
mod status;
mod sync_worker;

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

pub use backups::*;
pub use browser::*;
use channel::*;
pub use edits::*;
pub use history::*;
pub use notebooks::*;
pub use sharing::*;
use status::*;
pub(crate) use sync_worker::*;

/// Name of the IndexedDB database of the app.
pub const DB_NAME: &str = "hearth";

thread_local! {
    static ENGINE: RefCell<Option<Rc<Engine<IdbStore>>>> = const { RefCell::new(None) };
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
    pub(super) fn refresh_from_engine(&self) {
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
pub(super) fn set_changed<T: PartialEq + Send + Sync + 'static>(signal: RwSignal<T>, value: T) {
    signal.maybe_update(|v| {
        let changed = *v != value;
        if changed {
            *v = value;
        }
        changed
    });
}

pub(super) fn engine() -> Option<Rc<Engine<IdbStore>>> {
    ENGINE.with(|e| e.borrow().clone())
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
