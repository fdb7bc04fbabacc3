//! # worker — Hearth's background sync worker
//!
//! A `gloo-worker` in a dedicated Web Worker, started by the web UI. The UI never talks to the
//! server; this worker does (design §6). It moves encoded Loro bytes between IndexedDB and the
//! server without decoding them, through the shared sync core ([`client_wasm::sync`]); this
//! crate does not depend on Loro. It runs inside the web app's own bundle (`web-ui` registers
//! [`SyncWorker`] when its `main` starts in a worker scope), so a first load ships one wasm.
//!
//! - [`protocol`] — page ↔ worker messages and the `hearth-sync` BroadcastChannel messages.
//! - [`sync`] — the per-workspace loop (rounds of the sync core, live channel, backoff, status).
//! - [`http`] — `fetch`: the browser's transport.
//! - [`tab`] (feature `tab`) — the page's half: what a tab does with a broadcast about the
//!   notebook it has open (the web app and the JavaScript package run it).
//! - [`js`] (feature `js`) — `HearthSync`, background sync for the JavaScript package, whose
//!   module is also the worker's.
//!
//! One worker syncs a workspace at a time across all tabs: each worker asks the Web Locks API for
//! `hearth-sync-{workspace}` and only the holder runs the loop; when its tab closes the lock passes
//! to a waiting worker.
#![warn(missing_docs)]

pub mod http;
#[cfg(feature = "js")]
pub mod js;
pub mod protocol;
pub mod sync;
#[cfg(feature = "tab")]
pub mod tab;

use client_wasm::storage::{IdbStore, Store};
use client_wasm::sync::{self as core, SyncCore, TransportError};
use futures::channel::mpsc::{unbounded, UnboundedSender};
use gloo_worker::{HandlerId, Worker, WorkerScope};
use http::FetchTransport;
use protocol::{Broadcast, Envelope, WorkerRequest, WorkerResponse, CHANNEL};
use shared_schema::api::{MintTokenRequest, TokenList};
use shared_schema::sync::Seen;
use shared_schema::sync::SyncStatus;
use shared_schema::Role;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::{BroadcastChannel, MessageEvent};

/// Sends a response to the page that started this worker.
type ToPage = Rc<dyn Fn(WorkerResponse)>;

/// State shared by the worker's tasks.
pub struct Ctx {
    pub(crate) core: SyncCore<IdbStore, FetchTransport>,
    /// The network is believed up.
    pub online: Cell<bool>,
    channel: BroadcastChannel,
    wakers: RefCell<HashMap<String, UnboundedSender<sync::Wake>>>,
    /// Workspaces whose live channel is open right now.
    live: RefCell<HashSet<String>>,
    generations: RefCell<HashMap<String, u64>>,
    requested: RefCell<HashSet<String>>,
    /// What this tab has open (workspace, tab id, note), for presence heartbeats.
    pub presence: RefCell<Option<(String, String, Option<String>)>>,
    presence_wake: RefCell<Option<UnboundedSender<sync::Wake>>>,
    /// The broadcasts this worker acted on (each may arrive twice).
    seen: RefCell<Seen>,
    /// Hands a message to this worker's own page.
    to_page: RefCell<Option<ToPage>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl Ctx {
    /// Posts a message on the BroadcastChannel (to every tab and worker of the origin) and hands
    /// it to this worker's own page directly (see [`protocol::Envelope`]).
    pub fn broadcast(&self, msg: &Broadcast) {
        if let Some(json) = Envelope::encode(msg) {
            if let Some(to_page) = self.to_page.borrow().as_ref() {
                to_page(WorkerResponse::Heard(json.clone()));
            }
            let _ = self.channel.post_message(&JsValue::from_str(&json));
        }
    }

    /// Acts on a broadcast from a tab (over the channel, or directly from this worker's page),
    /// once per message.
    fn heard(self: &Rc<Self>, text: &str) {
        if Envelope::is_shown(text) {
            return;
        }
        let Some(envelope) = Envelope::decode_first(text, &mut self.seen.borrow_mut()) else {
            return;
        };
        match envelope.msg {
            Broadcast::Staged {
                ws,
                key,
                update,
                after,
            } if self.is_syncing(&ws) => {
                let update = client_wasm::storage::PendingUpdate { key, bytes: update };
                self.core.stage(&ws, update, after);
                self.wake_for(&ws, sync::Wake::Edit);
            }
            // Stored: a staged edit was woken for already; anything else is read from storage.
            Broadcast::Local { ws, key, .. } if self.core.stored(&ws, key.as_deref()) => {
                self.wake_for(&ws, sync::Wake::Edit)
            }
            Broadcast::Keys { ws } => self.core.forget_record(&ws),
            Broadcast::Watch { ws } => watch(self, ws),
            _ => {}
        }
    }

    /// Broadcasts a workspace's status.
    pub fn status(&self, ws: &str, status: SyncStatus, pending: u64) {
        self.broadcast(&Broadcast::Status {
            ws: ws.to_owned(),
            status,
            pending,
        });
    }

    /// Wakes a workspace's loop for a full round (push and pull), if this worker runs it.
    pub fn wake(&self, ws: &str) {
        self.wake_for(ws, sync::Wake::Pull);
    }

    /// Wakes a workspace's loop, if this worker runs it, saying why.
    pub fn wake_for(&self, ws: &str, why: sync::Wake) {
        if let Some(w) = self.wakers.borrow().get(ws) {
            let _ = w.unbounded_send(why);
        }
    }

    /// True while the live channel of `ws` is open.
    pub fn is_live(&self, ws: &str) -> bool {
        self.live.borrow().contains(ws)
    }

    /// Records whether the live channel of `ws` is open.
    pub fn set_live(&self, ws: &str, up: bool) {
        let mut live = self.live.borrow_mut();
        if up {
            live.insert(ws.to_owned());
        } else {
            live.remove(ws);
        }
    }

    /// True while this worker runs the loop of `ws`.
    pub fn is_syncing(&self, ws: &str) -> bool {
        self.wakers.borrow().contains_key(ws)
    }

    /// True while loop number `generation` is the one running for `ws` (a loop that stopped
    /// and was started again has a new number).
    pub fn is_current(&self, ws: &str, generation: u64) -> bool {
        self.is_syncing(ws) && self.generations.borrow().get(ws) == Some(&generation)
    }

    /// Forgets the loop of `ws` (it stopped).
    pub fn stop(&self, ws: &str) {
        self.wakers.borrow_mut().remove(ws);
        self.requested.borrow_mut().remove(ws);
    }
}

/// Asks for the workspace's lock; the loop runs once this worker holds it.
fn watch(ctx: &Rc<Ctx>, ws: String) {
    if !ctx.requested.borrow_mut().insert(ws.clone()) {
        ctx.wake(&ws);
        return;
    }
    let ctx2 = ctx.clone();
    let ws2 = ws.clone();
    let on_lock = Closure::once_into_js(move |_lock: JsValue| -> js_sys::Promise {
        let (tx, rx) = unbounded();
        ctx2.wakers.borrow_mut().insert(ws2.clone(), tx);
        let generation = {
            let mut g = ctx2.generations.borrow_mut();
            let n = g.get(&ws2).map_or(0, |n| n + 1);
            g.insert(ws2.clone(), n);
            n
        };
        let mut rx = Some(rx);
        let done = js_sys::Promise::new(&mut |resolve, _| {
            let (ctx3, ws3) = (ctx2.clone(), ws2.clone());
            let Some(rx) = rx.take() else {
                return;
            };
            spawn_local(async move {
                let live = sync::live(ctx3.clone(), ws3.clone(), generation);
                spawn_local(live);
                sync::run(ctx3.clone(), ws3.clone(), rx).await;
                ctx3.stop(&ws3);
                let _ = resolve.call0(&JsValue::NULL);
            });
        });
        done
    });
    // navigator.locks.request(name, callback): web-sys keeps the Web Locks API behind an unstable
    // flag, so it is called through Reflect.
    let navigator = http::global().navigator();
    let requested = js_sys::Reflect::get(&navigator, &"locks".into())
        .ok()
        .filter(|l| !l.is_undefined())
        .and_then(|locks| {
            let request: js_sys::Function = js_sys::Reflect::get(&locks, &"request".into())
                .ok()?
                .dyn_into()
                .ok()?;
            request
                .call2(
                    &locks,
                    &JsValue::from_str(&format!("hearth-sync-{ws}")),
                    &on_lock,
                )
                .ok()
        });
    if requested.is_none() {
        // No Web Locks (old browser): sync here anyway.
        if let Ok(f) = on_lock.dyn_into::<js_sys::Function>() {
            let _ = f.call1(&JsValue::NULL, &JsValue::NULL);
        }
    }
}

/// The sync worker.
pub struct SyncWorker {
    ctx: Rc<RefCell<Option<Rc<Ctx>>>>,
}

impl Worker for SyncWorker {
    type Message = ();
    type Input = WorkerRequest;
    type Output = WorkerResponse;

    fn create(_scope: &WorkerScope<Self>) -> Self {
        Self {
            ctx: Rc::new(RefCell::new(None)),
        }
    }

    fn update(&mut self, _scope: &WorkerScope<Self>, _msg: Self::Message) {}

    fn received(&mut self, scope: &WorkerScope<Self>, msg: Self::Input, id: HandlerId) {
        let scope = scope.clone();
        let slot = self.ctx.clone();
        spawn_local(async move {
            let to_page: ToPage = {
                let scope = scope.clone();
                Rc::new(move |r| scope.respond(id, r))
            };
            if let Some(reply) = handle(slot, msg, to_page).await {
                scope.respond(id, reply);
            }
        });
    }
}

async fn start(slot: &Rc<RefCell<Option<Rc<Ctx>>>>, db_name: &str) -> Result<Rc<Ctx>, String> {
    if let Some(ctx) = slot.borrow().clone() {
        return Ok(ctx);
    }
    let store = IdbStore::open(db_name).await.map_err(|e| e.to_string())?;
    let channel = BroadcastChannel::new(CHANNEL).map_err(|_| "no BroadcastChannel".to_string())?;
    let weak: Rc<RefCell<Option<std::rc::Weak<Ctx>>>> = Rc::new(RefCell::new(None));
    let weak2 = weak.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        let Some(ctx) = weak2.borrow().as_ref().and_then(|w| w.upgrade()) else {
            return;
        };
        if let Some(text) = e.data().as_string() {
            ctx.heard(&text);
        }
    });
    channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let ctx = Rc::new(Ctx {
        core: SyncCore::new(store, FetchTransport),
        online: Cell::new(http::global().navigator().on_line()),
        channel,
        wakers: RefCell::new(HashMap::new()),
        live: RefCell::new(HashSet::new()),
        generations: RefCell::new(HashMap::new()),
        requested: RefCell::new(HashSet::new()),
        presence: RefCell::new(None),
        presence_wake: RefCell::new(None),
        seen: RefCell::new(Seen::default()),
        to_page: RefCell::new(None),
        _on_message: on_message,
    });
    *weak.borrow_mut() = Some(Rc::downgrade(&ctx));
    *slot.borrow_mut() = Some(ctx.clone());
    let records = ctx
        .core
        .store
        .list_workspaces()
        .await
        .map_err(|e| e.to_string())?;
    for r in records
        .into_iter()
        .filter(|r| r.server_url.is_some() && r.token.is_some())
    {
        watch(&ctx, r.id);
    }
    Ok(ctx)
}

async fn handle(
    slot: Rc<RefCell<Option<Rc<Ctx>>>>,
    msg: WorkerRequest,
    to_page: ToPage,
) -> Option<WorkerResponse> {
    let failed = |what: &str, message: String| {
        Some(WorkerResponse::Failed {
            what: what.into(),
            message,
        })
    };
    let ctx = slot.borrow().clone();
    match msg {
        WorkerRequest::Ping { nonce } => Some(WorkerResponse::Pong {
            nonce,
            version: env!("CARGO_PKG_VERSION").into(),
        }),
        WorkerRequest::Start { db_name } => match start(&slot, &db_name).await {
            Ok(ctx) => {
                *ctx.to_page.borrow_mut() = Some(to_page);
                None
            }
            Err(e) => failed("start", e),
        },
        other => {
            // Requests may arrive while `Start` is still opening IndexedDB: wait for it.
            let mut ctx = ctx;
            for _ in 0..600 {
                if ctx.is_some() {
                    break;
                }
                http::sleep_ms(25).await;
                ctx = slot.borrow().clone();
            }
            let Some(ctx) = ctx else {
                return failed(
                    "request",
                    "the sync worker did not start; reload the page".into(),
                );
            };
            match other {
                WorkerRequest::Watch { ws } => {
                    watch(&ctx, ws);
                    None
                }
                WorkerRequest::Tell(text) => {
                    ctx.heard(&text);
                    None
                }
                WorkerRequest::Presence { ws, device, note } => {
                    let now = Some((ws, device, note));
                    if *ctx.presence.borrow() != now {
                        *ctx.presence.borrow_mut() = now;
                        let mut wake = ctx.presence_wake.borrow_mut();
                        match wake.as_ref() {
                            Some(w) => {
                                let _ = w.unbounded_send(sync::Wake::Pull);
                            }
                            None => {
                                let (tx, rx) = unbounded();
                                *wake = Some(tx);
                                spawn_local(sync::heartbeats(ctx.clone(), rx));
                            }
                        }
                    }
                    None
                }
                WorkerRequest::Online(up) => {
                    ctx.online.set(up);
                    let all: Vec<String> = ctx.wakers.borrow().keys().cloned().collect();
                    for ws in all {
                        ctx.wake(&ws);
                    }
                    None
                }
                WorkerRequest::Connect { ws, server_url } => {
                    match core::connect(&ctx.core.store, &ctx.core.transport, &server_url, &ws)
                        .await
                    {
                        Ok(_) => {
                            watch(&ctx, ws.clone());
                            Some(WorkerResponse::Connected { ws })
                        }
                        Err(e) => failed("connect", e.to_string()),
                    }
                }
                WorkerRequest::Join {
                    ws,
                    server_url,
                    token,
                    key,
                    ring,
                } => match join(&ctx, &server_url, &ws, &token, key.as_deref(), ring).await {
                    Ok(record) => {
                        watch(&ctx, ws.clone());
                        Some(WorkerResponse::Joined {
                            ws,
                            role: record.role,
                        })
                    }
                    Err(e) => Some(WorkerResponse::JoinFailed {
                        ws,
                        message: join_message(&e),
                    }),
                },
                WorkerRequest::Mint {
                    ws,
                    role,
                    expires_in,
                    label,
                } => match mint(&ctx, &ws, role, expires_in, label).await {
                    Ok(shared) => Some(WorkerResponse::Minted {
                        ws,
                        id: shared.minted.id,
                        token: shared.minted.token,
                        key: shared.key.map(|k| k.to_text()),
                    }),
                    Err(e) => failed("share", e.to_string()),
                },
                WorkerRequest::Revoke { ws, token_id } => {
                    // A deny on the server and a new key for everyone else.
                    let done =
                        core::keys::revoke(&ctx.core.store, &ctx.core.transport, &ws, &token_id)
                            .await;
                    ctx.broadcast(&Broadcast::Keys { ws });
                    match done {
                        Ok(_) => Some(WorkerResponse::Revoked { token_id }),
                        Err(e) => failed("revoke", e.to_string()),
                    }
                }
                WorkerRequest::ListTokens { ws } => {
                    match master_call(&ctx, &ws, "GET", "/tokens", None).await {
                        Ok(reply) => match serde_json::from_slice::<TokenList>(&reply.body) {
                            Ok(list) => Some(WorkerResponse::Tokens {
                                ws,
                                tokens: list.tokens,
                            }),
                            Err(e) => failed("tokens", e.to_string()),
                        },
                        Err(e) => failed("tokens", e.to_string()),
                    }
                }
                WorkerRequest::Rotate { ws } => {
                    // A lost owner device had the notebook's key too: it is rotated with the
                    // token, so what is written from now on is sealed under one it never had.
                    let (store, transport) = (&ctx.core.store, &ctx.core.transport);
                    let done = match core::rotate(store, transport, &ws).await {
                        Ok(()) => core::keys::rotate_key(store, transport, &ws).await,
                        Err(e) => Err(e),
                    };
                    ctx.broadcast(&Broadcast::Keys { ws: ws.clone() });
                    match done {
                        Ok(_) => Some(WorkerResponse::Rotated { ws }),
                        Err(e) => failed("rotate", e.to_string()),
                    }
                }
                WorkerRequest::Encrypt { ws } => {
                    let done = core::keys::encrypt(&ctx.core, &ws).await;
                    ctx.broadcast(&Broadcast::Keys { ws: ws.clone() });
                    match done {
                        Ok(e) => Some(WorkerResponse::Encrypted {
                            ws,
                            revoked: e.revoked,
                            turned_on: e.turned_on,
                        }),
                        Err(e) => failed("encryption", e.to_string()),
                    }
                }
                WorkerRequest::Backup { ws } => {
                    match master_call(&ctx, &ws, "GET", "/backup", None).await {
                        Ok(reply) => Some(WorkerResponse::BackupFile {
                            ws,
                            bytes: reply.body,
                        }),
                        Err(e) => failed("backup", e.to_string()),
                    }
                }
                WorkerRequest::DeleteRemote { ws } => {
                    match master_call(&ctx, &ws, "DELETE", "", None).await {
                        Ok(_) => Some(WorkerResponse::DeletedRemote { ws }),
                        Err(e) => failed("delete", e.to_string()),
                    }
                }
                WorkerRequest::Ping { .. } | WorkerRequest::Start { .. } => None,
            }
        }
    }
}

/// One sentence for a join that failed; nothing was stored.
fn join_message(e: &core::SyncError) -> String {
    use shared_schema::sync::StopReason;
    match e.stop_reason() {
        Some(StopReason::TokenRevoked) => "This link was revoked by the notebook's owner.".into(),
        Some(StopReason::TokenExpired) => {
            "This link has expired; ask the owner for a new one.".into()
        }
        Some(StopReason::WorkspaceDeleted) => {
            "This notebook does not exist on the server (it may have been deleted).".into()
        }
        Some(StopReason::InvalidToken) | Some(StopReason::Forbidden) => {
            "This link is not valid for this server.".into()
        }
        _ => match e {
            core::SyncError::BadLink(m) => format!("This link is not a Hearth share link: {m}."),
            core::SyncError::Transport(TransportError::Network(_)) => {
                "The server cannot be reached; open the link again when you are online.".into()
            }
            other => format!("The link could not be opened: {other}."),
        },
    }
}

async fn master_call(
    ctx: &Ctx,
    ws: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Result<http::Reply, TransportError> {
    let record = ctx
        .core
        .store
        .get_workspace(ws)
        .await
        .map_err(|e| TransportError::Network(e.to_string()))?
        .ok_or_else(|| TransportError::Network("unknown workspace".into()))?;
    let (Some(url), Some(token)) = (record.server_url, record.token) else {
        return Err(TransportError::Network(
            "this workspace is not on a server yet".into(),
        ));
    };
    http::request(
        method,
        &format!("{url}/v1/workspaces/{ws}{path}"),
        Some(&token),
        body.map(|b| ("application/json", b)),
    )
    .await
}

/// A share link's token, with its keys stored on the server first (`sync::keys::share`).
async fn mint(
    ctx: &Ctx,
    ws: &str,
    role: Role,
    expires_in: Option<u64>,
    label: String,
) -> Result<core::keys::Shared, core::SyncError> {
    let request = MintTokenRequest {
        role,
        expires_in,
        label,
    };
    core::keys::share(&ctx.core.store, &ctx.core.transport, ws, &request).await
}

/// Joins with a link; `ring` (keys this device held before the browser deleted its storage) is
/// added once the join is stored.
async fn join(
    ctx: &Ctx,
    server_url: &str,
    ws: &str,
    token: &str,
    key: Option<&str>,
    ring: Option<shared_schema::seal::KeyRing>,
) -> Result<client_wasm::storage::WorkspaceRecord, core::SyncError> {
    let record = core::join(
        &ctx.core.store,
        &ctx.core.transport,
        server_url,
        ws,
        token,
        key,
    )
    .await?;
    let Some(ring) = ring else {
        return Ok(record);
    };
    match ctx
        .core
        .store
        .update_workspace(ws, &client_wasm::storage::Change::Keys(ring))
        .await?
    {
        client_wasm::storage::Updated::Changed(r) | client_wasm::storage::Updated::Unchanged(r) => {
            Ok(r)
        }
        client_wasm::storage::Updated::Missing => Ok(record),
    }
}
