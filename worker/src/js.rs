//! Background sync for the JavaScript package: [`HearthSync`] starts the sync worker — this same
//! module, loaded again in a module Web Worker, where it registers [`SyncWorker`] instead — and
//! attaches open engines to it. The worker is the app's own ([`crate`]): it pushes an attached
//! engine's edits as soon as they are stored, follows the server's live channel, pulls, verifies
//! and stores, and one worker per workspace syncs across tabs. The page side is the app's too
//! ([`crate::tab`]): a remote edit is imported and the engine's subscribers hear `"remote"`.
//!
//! ```js
//! import init, { HearthEngine, HearthSync } from "./pkg/hearth.js";
//! await init();
//! const sync = HearthSync.start(new URL("./pkg/hearth.js", import.meta.url).href, "my-db");
//! const ws = await HearthEngine.join("my-db", link);  // or create(…) then connect(server)
//! sync.attach(ws);                                     // edits go out, remote edits come in
//! sync.onStatus((s) => console.log(s.ws, s.state, s.pending));
//! ```

use crate::protocol::{Broadcast, Envelope, WorkerRequest, WorkerResponse, CARRY_MAX, CHANNEL};
use crate::{tab, SyncWorker};
use client_wasm::bindings::HearthEngine;
use client_wasm::storage::IdbStore;
use client_wasm::Engine;
use gloo_worker::{Registrable, Spawnable, WorkerBridge};
use js_sys::Function;
use shared_schema::sync::Seen;
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::{BroadcastChannel, MessageEvent};

/// In a worker scope this module is the sync worker: register it. On a page, nothing.
#[wasm_bindgen(start)]
fn run_in_worker() {
    if js_sys::global()
        .dyn_into::<web_sys::WorkerGlobalScope>()
        .is_ok()
    {
        SyncWorker::registrar().register();
    }
}

/// An engine attached to the worker, and its subscription that tells the worker of edits.
struct Attached {
    engine: Rc<Engine<IdbStore>>,
    subscription: u64,
}

struct Shared {
    bridge: RefCell<Option<WorkerBridge<SyncWorker>>>,
    channel: BroadcastChannel,
    attached: RefCell<Vec<Attached>>,
    on_status: RefCell<Option<Function>>,
    on_presence: RefCell<Option<Function>>,
    seen: RefCell<Seen>,
    /// This page's random id in presence lists.
    device: String,
}

impl Shared {
    fn send(&self, req: WorkerRequest) {
        if let Some(bridge) = self.bridge.borrow().as_ref() {
            bridge.send(req);
        }
    }

    /// Tells the worker directly and every other tab and worker over the channel.
    fn broadcast(&self, msg: &Broadcast) {
        if let Some(json) = Envelope::encode(msg) {
            self.send(WorkerRequest::Tell(json.clone()));
            let _ = self.channel.post_message(&JsValue::from_str(&json));
        }
    }

    fn engine(&self, ws: &str) -> Option<Rc<Engine<IdbStore>>> {
        self.attached
            .borrow()
            .iter()
            .find(|a| a.engine.id() == ws)
            .map(|a| a.engine.clone())
    }

    fn tell_status(&self, value: serde_json::Value) {
        call(&self.on_status, &value);
    }

    /// A broadcast from the worker or another tab, once per message.
    fn heard(self: &Rc<Self>, text: &str) {
        let Some(envelope) = Envelope::decode_first(text, &mut self.seen.borrow_mut()) else {
            return;
        };
        let msg = envelope.msg;
        if let Broadcast::Shown { ws, .. } = &msg {
            // Another tab's edit, about to be written: shown now, its `Local` follows.
            if let Some(engine) = self.engine(ws) {
                tab::preview(&engine, ws, &msg);
            }
            return;
        }
        if let Some(arrival) = tab::Arrival::of(&msg) {
            let Some(engine) = self.engine(&arrival.ws) else {
                return;
            };
            if tab::confirmed(&engine, &arrival) {
                return;
            }
            tab::show(&engine, &arrival);
            let shared = Rc::downgrade(self);
            spawn_local(async move {
                match tab::catch_up(&engine, &arrival, &|| {}).await {
                    Ok(true) => {
                        if let Some(shared) = shared.upgrade() {
                            shared.broadcast(&Broadcast::Local {
                                ws: engine.id(),
                                update: None,
                                key: None,
                            });
                        }
                    }
                    Ok(false) => {}
                    Err(e) => {
                        if let Some(shared) = shared.upgrade() {
                            shared.tell_status(serde_json::json!({
                                "ws": engine.id(), "state": "failed", "message": e.to_string(),
                            }));
                        }
                    }
                }
            });
            return;
        }
        if let Broadcast::Presence { ws, peers } = &msg {
            if self.engine(ws).is_some() {
                let others: Vec<_> = peers.iter().filter(|p| p.device != self.device).collect();
                call(
                    &self.on_presence,
                    &serde_json::json!({ "ws": ws, "peers": others }),
                );
            }
            return;
        }
        if let Broadcast::Status {
            ws,
            status,
            pending,
        } = msg
        {
            if self.engine(&ws).is_none() {
                return;
            }
            let mut value = status.to_json();
            if let Some(obj) = value.as_object_mut() {
                obj.insert("ws".into(), ws.into());
                obj.insert("pending".into(), pending.into());
            }
            self.tell_status(value);
        }
    }
}

/// Calls a JS callback, if set, with `value` as a JS object.
fn call(callback: &RefCell<Option<Function>>, value: &serde_json::Value) {
    let Some(f) = callback.borrow().clone() else {
        return;
    };
    if let Ok(v) = js_sys::JSON::parse(&value.to_string()) {
        let _ = f.call1(&JsValue::NULL, &v);
    }
}

/// The page's handle on the sync worker.
#[wasm_bindgen]
pub struct HearthSync {
    shared: Rc<Shared>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _online: Vec<Closure<dyn FnMut()>>,
}

#[wasm_bindgen]
impl HearthSync {
    /// Starts the sync worker for IndexedDB database `db_name`. `module_url` is the URL of this
    /// package's `hearth.js` (the worker loads it again); every notebook of the database that
    /// is on a server syncs in the background from now on.
    pub fn start(module_url: String, db_name: String) -> Result<HearthSync, JsValue> {
        let window = web_sys::window()
            .ok_or_else(|| JsError::new("HearthSync.start runs on a page, not in a worker"))?;
        web_sys::Url::new_with_base(&module_url, &window.location().href()?)
            .map_err(|_| JsError::new(&format!("{module_url:?} is not a URL")))?;
        let channel = BroadcastChannel::new(CHANNEL)?;
        let shared = Rc::new(Shared {
            bridge: RefCell::new(None),
            channel,
            attached: RefCell::new(Vec::new()),
            on_status: RefCell::new(None),
            on_presence: RefCell::new(None),
            seen: RefCell::new(Seen::default()),
            device: format!("{:012x}", client_wasm::ids::random_u64() & 0xffff_ffff_ffff),
        });
        let weak = Rc::downgrade(&shared);
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let (Some(shared), Some(text)) = (weak.upgrade(), e.data().as_string()) {
                shared.heard(&text);
            }
        });
        shared
            .channel
            .set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let weak = Rc::downgrade(&shared);
        let bridge = SyncWorker::spawner()
            .callback(move |resp| {
                let Some(shared) = weak.upgrade() else {
                    return;
                };
                match resp {
                    WorkerResponse::Heard(text) => shared.heard(&text),
                    WorkerResponse::Failed { what, message } => {
                        shared.tell_status(serde_json::json!({
                            "ws": null, "state": "failed", "what": what, "message": message,
                        }))
                    }
                    _ => {}
                }
            })
            .spawn(&module_url);
        bridge.send(WorkerRequest::Start { db_name });
        *shared.bridge.borrow_mut() = Some(bridge);
        let mut online = Vec::new();
        for (event, up) in [("online", true), ("offline", false)] {
            let weak = Rc::downgrade(&shared);
            let cb = Closure::<dyn FnMut()>::new(move || {
                if let Some(shared) = weak.upgrade() {
                    shared.send(WorkerRequest::Online(up));
                }
            });
            window.add_event_listener_with_callback(event, cb.as_ref().unchecked_ref())?;
            online.push(cb);
        }
        Ok(HearthSync {
            shared,
            _on_message: on_message,
            _online: online,
        })
    }

    /// Syncs `engine`'s notebook in the background: each edit is pushed as soon as it is
    /// stored, and edits from other devices and tabs reach the engine, whose subscribers hear
    /// `"remote"`. A notebook on this device only starts syncing when it is attached (again)
    /// after `connect`.
    pub fn attach(&self, engine: &HearthEngine) {
        let engine = engine.engine();
        let ws = engine.id();
        if self.shared.engine(&ws).is_some() {
            self.shared.send(WorkerRequest::Watch { ws });
            return;
        }
        let shared: Weak<Shared> = Rc::downgrade(&self.shared);
        let weak_engine = Rc::downgrade(&engine);
        let subscription = engine.subscribe(move |origin| {
            if origin != client_wasm::engine::Origin::Local {
                return;
            }
            if let (Some(shared), Some(engine)) = (shared.upgrade(), weak_engine.upgrade()) {
                let stored = engine.last_stored_update();
                shared.broadcast(&Broadcast::Local {
                    ws: engine.id(),
                    update: stored
                        .as_ref()
                        .map(|u| u.bytes.clone())
                        .filter(|b| b.len() <= CARRY_MAX),
                    key: stored.map(|u| u.key),
                });
            }
        });
        self.shared.attached.borrow_mut().push(Attached {
            engine: engine.clone(),
            subscription,
        });
        self.shared.send(WorkerRequest::Watch { ws });
        // What the worker stored before this engine was attached.
        spawn_local(async move {
            let _ = engine.refresh().await;
        });
    }

    /// Stops telling the worker about `engine`'s edits and delivering remote ones to it (the
    /// worker keeps syncing what is stored).
    pub fn detach(&self, engine: &HearthEngine) {
        let ws = engine.engine().id();
        self.shared.attached.borrow_mut().retain(|a| {
            let keep = a.engine.id() != ws;
            if !keep {
                a.engine.unsubscribe(a.subscription);
            }
            keep
        });
    }

    /// Calls `callback` with each sync status of an attached notebook: `{ ws, state, pending,
    /// … }` where `state` is `local_only`, `offline`, `connecting` (`reason`), `syncing`
    /// (`updates_left`, `bytes_left`), `up_to_date` (`seq`) or `stopped` (`reason`, `message`:
    /// sync waits for the user), and `failed` (`message`) when the worker could not do something.
    #[wasm_bindgen(js_name = onStatus)]
    pub fn on_status(&self, callback: Function) {
        *self.shared.on_status.borrow_mut() = Some(callback);
    }

    /// Says that this page has `engine`'s notebook open, in note `note` (or none): the worker
    /// sends presence heartbeats for it until told otherwise, and other devices see this page
    /// (read-only members too) within seconds; it is gone from their lists within 10 s of this
    /// page closing.
    pub fn present(&self, engine: &HearthEngine, note: Option<String>) {
        self.shared.send(WorkerRequest::Presence {
            ws: engine.engine().id(),
            device: self.shared.device.clone(),
            note,
        });
    }

    /// Calls `callback` with who else has an attached notebook open, whenever that changes:
    /// `{ ws, peers: [{ device, role, note }] }` (this page left out).
    #[wasm_bindgen(js_name = onPresence)]
    pub fn on_presence(&self, callback: Function) {
        *self.shared.on_presence.borrow_mut() = Some(callback);
    }

    /// Stops the worker of this page (another tab's worker takes over a workspace it synced).
    pub fn stop(self) {
        for a in self.shared.attached.borrow_mut().drain(..) {
            a.engine.unsubscribe(a.subscription);
        }
        self.shared.channel.set_onmessage(None);
        self.shared.channel.close();
        self.shared.bridge.borrow_mut().take();
    }
}
