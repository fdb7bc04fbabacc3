//! The `wasm-bindgen` API for plain JavaScript (no Leptos needed). Every async method returns a
//! `Promise`; reads return JSON strings; errors reject with an `Error` whose message says what to do.
//!
//! ```js
//! import init, { HearthEngine } from "./client_wasm.js";
//! await init();
//! const ws = await HearthEngine.create("hearth", "My notes");
//! const id = await ws.createNote("Shopping");
//! await ws.spliceText(id, "body", 0, 0, "milk");
//! ws.subscribe(() => render(JSON.parse(ws.notesJson())));
//! ```
//!
//! Syncing (`join`, `connect`, `syncOnce`, `statusJson`, `shareLink`) is in `bindings/sync.rs`.

mod sync;

use crate::engine::{Engine, Origin};
use crate::error::EngineError;
use crate::storage::{IdbStore, Store};
use js_sys::{Function, Promise, Uint8Array};
use shared_schema::model::Field;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

fn js_err(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, JsValue> {
    serde_json::to_string(v).map_err(js_err)
}

fn field(name: &str) -> Result<Field, JsValue> {
    match name {
        "title" => Ok(Field::Title),
        "body" => Ok(Field::Body),
        other => Err(js_err(format!(
            "unknown field {other:?}: use \"title\" or \"body\""
        ))),
    }
}

/// An open workspace, for JavaScript.
#[wasm_bindgen]
pub struct HearthEngine {
    inner: Rc<Engine<IdbStore>>,
}

impl HearthEngine {
    /// The engine behind this handle (for the sync worker's page side, `worker::js`).
    pub fn engine(&self) -> Rc<Engine<IdbStore>> {
        self.inner.clone()
    }

    /// A handle on an open engine.
    pub fn from_engine(inner: Rc<Engine<IdbStore>>) -> Self {
        Self { inner }
    }
}

/// The ids and names of the workspaces stored in database `db_name`, as JSON.
#[wasm_bindgen(js_name = listWorkspaces)]
pub async fn list_workspaces(db_name: String) -> Result<String, JsValue> {
    let store = IdbStore::open(&db_name).await.map_err(js_err)?;
    let list = store.list_workspaces().await.map_err(js_err)?;
    let out: Vec<serde_json::Value> = list
        .into_iter()
        .map(|r| serde_json::json!({ "id": r.id, "name": r.name, "role": r.role }))
        .collect();
    json(&out)
}

#[wasm_bindgen]
impl HearthEngine {
    /// Creates a new workspace in the database `db_name`.
    pub async fn create(db_name: String, name: String) -> Result<HearthEngine, JsValue> {
        let store = IdbStore::open(&db_name).await.map_err(js_err)?;
        let engine = Engine::create(store, &name).await.map_err(js_err)?;
        Ok(Self {
            inner: Rc::new(engine),
        })
    }

    /// Opens a stored workspace.
    pub async fn open(db_name: String, id: String) -> Result<HearthEngine, JsValue> {
        let store = IdbStore::open(&db_name).await.map_err(js_err)?;
        let engine = Engine::open(store, &id).await.map_err(js_err)?;
        Ok(Self {
            inner: Rc::new(engine),
        })
    }

    /// Imports a backup file as a new workspace.
    #[wasm_bindgen(js_name = importBackup)]
    pub async fn import_backup(db_name: String, bytes: Vec<u8>) -> Result<HearthEngine, JsValue> {
        let store = IdbStore::open(&db_name).await.map_err(js_err)?;
        let engine = Engine::import_backup(store, &bytes, None)
            .await
            .map_err(js_err)?;
        Ok(Self {
            inner: Rc::new(engine),
        })
    }

    /// Workspace id.
    pub fn id(&self) -> String {
        self.inner.id()
    }

    /// Workspace name.
    pub fn name(&self) -> String {
        self.inner.name()
    }

    /// Notes as a JSON array, pinned first.
    #[wasm_bindgen(js_name = notesJson)]
    pub fn notes_json(&self) -> Result<String, JsValue> {
        json(&self.inner.notes())
    }

    /// One note as JSON (`null` if absent).
    #[wasm_bindgen(js_name = noteJson)]
    pub fn note_json(&self, id: &str) -> Result<String, JsValue> {
        json(&self.inner.note(id))
    }

    /// History (newest first) as JSON.
    #[wasm_bindgen(js_name = historyJson)]
    pub fn history_json(&self) -> Result<String, JsValue> {
        json(&self.inner.history())
    }

    /// Calls `callback(origin)` ("local" or "remote") after every change. Returns an id.
    pub fn subscribe(&self, callback: Function) -> f64 {
        self.inner.subscribe(move |origin| {
            let origin = match origin {
                Origin::Local => "local",
                Origin::Remote => "remote",
            };
            let _ = callback.call1(&JsValue::NULL, &JsValue::from_str(origin));
        }) as f64
    }

    /// Removes a subscription.
    pub fn unsubscribe(&self, id: f64) {
        self.inner.unsubscribe(id as u64);
    }

    /// Exports a backup file (bytes).
    #[wasm_bindgen(js_name = exportBackup)]
    pub fn export_backup(&self) -> Result<Uint8Array, JsValue> {
        let bytes = self.inner.export_backup().map_err(js_err)?;
        Ok(Uint8Array::from(bytes.as_slice()))
    }

    fn run<T, F>(&self, f: impl FnOnce(Rc<Engine<IdbStore>>) -> F + 'static) -> Promise
    where
        F: std::future::Future<Output = Result<T, EngineError>> + 'static,
        T: Into<JsValue>,
    {
        let inner = self.inner.clone();
        future_to_promise(async move { f(inner).await.map(Into::into).map_err(js_err) })
    }

    /// Creates a note; resolves to its id.
    #[wasm_bindgen(js_name = createNote)]
    pub fn create_note(&self, title: String) -> Promise {
        self.run(move |e| async move { e.create_note(&title).await })
    }

    /// Replaces characters `start..end` of `field` ("title" | "body") with `text`.
    #[wasm_bindgen(js_name = spliceText)]
    pub fn splice_text(
        &self,
        note: String,
        field_name: String,
        start: u32,
        end: u32,
        text: String,
    ) -> Result<Promise, JsValue> {
        let f = field(&field_name)?;
        Ok(self.run(move |e| async move {
            e.splice_text(&note, f, start as usize, end as usize, &text)
                .await
                .map(|()| JsValue::UNDEFINED)
        }))
    }

    /// Appends a task.
    #[wasm_bindgen(js_name = addTask)]
    pub fn add_task(&self, note: String, text: String) -> Promise {
        self.run(
            move |e| async move { e.add_task(&note, &text).await.map(|()| JsValue::UNDEFINED) },
        )
    }

    /// Sets a task's done flag.
    #[wasm_bindgen(js_name = setTaskDone)]
    pub fn set_task_done(&self, note: String, index: u32, done: bool) -> Promise {
        self.run(move |e| async move {
            e.set_task_done(&note, index as usize, done)
                .await
                .map(|()| JsValue::UNDEFINED)
        })
    }

    /// Adds (`on`) or removes a tag.
    #[wasm_bindgen(js_name = setTag)]
    pub fn set_tag(&self, note: String, tag: String, on: bool) -> Promise {
        self.run(move |e| async move {
            e.set_tag(&note, &tag, on)
                .await
                .map(|()| JsValue::UNDEFINED)
        })
    }

    /// Moves a note to the trash or back.
    #[wasm_bindgen(js_name = setTrashed)]
    pub fn set_trashed(&self, note: String, trashed: bool) -> Promise {
        self.run(move |e| async move {
            e.set_trashed(&note, trashed)
                .await
                .map(|()| JsValue::UNDEFINED)
        })
    }

    /// Pins a note (pinned notes sort first) or unpins it.
    #[wasm_bindgen(js_name = setPinned)]
    pub fn set_pinned(&self, note: String, pinned: bool) -> Promise {
        self.run(move |e| async move {
            e.set_pinned(&note, pinned)
                .await
                .map(|()| JsValue::UNDEFINED)
        })
    }

    /// Moves a task from position `from` to `to`.
    #[wasm_bindgen(js_name = moveTask)]
    pub fn move_task(&self, note: String, from: u32, to: u32) -> Promise {
        self.run(move |e| async move {
            e.move_task(&note, from as usize, to as usize)
                .await
                .map(|()| JsValue::UNDEFINED)
        })
    }

    /// Deletes a task.
    #[wasm_bindgen(js_name = deleteTask)]
    pub fn delete_task(&self, note: String, index: u32) -> Promise {
        self.run(move |e| async move {
            e.delete_task(&note, index as usize)
                .await
                .map(|()| JsValue::UNDEFINED)
        })
    }

    /// Deletes a note for good (on every device once synced); `setTrashed` is the undoable way.
    pub fn purge(&self, note: String) -> Promise {
        self.run(move |e| async move { e.purge(&note).await.map(|()| JsValue::UNDEFINED) })
    }

    /// Restores a note to how it was at `version` (an id from `historyJson()`), as a new edit.
    #[wasm_bindgen(js_name = restoreNote)]
    pub fn restore_note(&self, version: String, note: String) -> Promise {
        self.run(move |e| async move {
            e.restore_note(&version, &note)
                .await
                .map(|()| JsValue::UNDEFINED)
        })
    }

    /// Renames the notebook.
    pub fn rename(&self, name: String) -> Promise {
        self.run(move |e| async move { e.rename(&name).await.map(|()| JsValue::UNDEFINED) })
    }

    /// Re-reads storage after another tab or the worker wrote to it.
    pub fn refresh(&self) -> Promise {
        self.run(move |e| async move { e.refresh().await })
    }
}
