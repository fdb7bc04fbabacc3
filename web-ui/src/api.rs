//! All I/O of the UI: the engine (client-wasm on IndexedDB) and the sync worker. The engine is not
//! `Send`, so it lives in a thread-local of this (single-threaded) page.

use client_wasm::engine::random_peer_id;
use client_wasm::storage::{IdbStore, Store};
use client_wasm::{Engine, EngineError};
use gloo_worker::{Spawnable, WorkerBridge};
use shared_schema::model::Note;
use std::cell::RefCell;
use std::rc::Rc;
use worker::protocol::{WorkerRequest, WorkerResponse};
use worker::SyncWorker;

/// Name of the IndexedDB database of the app.
pub const DB_NAME: &str = "hearth";

thread_local! {
    static ENGINE: RefCell<Option<Rc<Engine<IdbStore>>>> = const { RefCell::new(None) };
    static WORKER: RefCell<Option<WorkerBridge<SyncWorker>>> = const { RefCell::new(None) };
}

fn engine() -> Option<Rc<Engine<IdbStore>>> {
    ENGINE.with(|e| e.borrow().clone())
}

/// Opens the first stored workspace, or creates "My notebook". Returns its name.
pub async fn open_default() -> Result<String, EngineError> {
    let store = IdbStore::open(DB_NAME).await?;
    let existing = store.list_workspaces().await?;
    let engine = match existing.first() {
        Some(record) => Engine::open(store, &record.id).await?,
        None => Engine::create(store, "My notebook", random_peer_id()).await?,
    };
    let name = engine.name();
    ENGINE.with(|e| *e.borrow_mut() = Some(Rc::new(engine)));
    Ok(name)
}

/// The notes of the open workspace.
pub fn notes() -> Vec<Note> {
    engine().map(|e| e.notes()).unwrap_or_default()
}

/// Creates a note in the open workspace.
pub async fn create_note(title: String) -> Result<(), EngineError> {
    if let Some(e) = engine() {
        e.create_note(&title).await?;
    }
    Ok(())
}

/// Starts the sync worker and pings it; `on_pong` gets the worker's version.
pub fn start_worker(on_pong: impl Fn(String) + 'static) {
    let bridge = SyncWorker::spawner()
        .callback(move |resp| match resp {
            WorkerResponse::Pong { version, .. } => on_pong(version),
        })
        .spawn("./worker.js");
    bridge.send(WorkerRequest::Ping { nonce: 1 });
    WORKER.with(|w| *w.borrow_mut() = Some(bridge));
}
