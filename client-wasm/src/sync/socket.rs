//! The push socket from a browser (wasm32 only; `docs/protocol.md`, "Push socket"): pushes of
//! [`super::fetch::FetchTransport`] go over an open WebSocket to the same server, workspace and
//! token instead of a new `fetch` each — the same body and the same reply, so everything above
//! ([`super::http`], the sync core) is unchanged. A `fetch` from a worker spends 2–4 ms in Chromium
//! before its request leaves; a message on an open socket well under one.
//!
//! The socket is opened when the worker's live channel connects ([`warm`], for a device that may
//! push) or else by the first push, which goes over `fetch` beside it; pushes use the socket while
//! it is open. A socket that closes fails the pushes waiting on it as a cut
//! request would (the sync core retries; pushes are idempotent) and is opened again at the next
//! push; one that could not open is not tried again for [`RETRY_MS`]; one that leaves a push
//! unanswered for [`REPLY_TIMEOUT_MS`] is closed. Sockets are kept per
//! JavaScript realm (a worker, a page), shared by every transport in it.

use super::TransportError;
use js_sys::{Array, Function, Promise, Uint8Array};
use shared_schema::socket;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{BinaryType, MessageEvent, WebSocket};

/// After a socket failed to open, pushes go over `fetch` for this long before it is tried again.
pub const RETRY_MS: f64 = 10_000.0;

/// A push whose reply has not come in this long fails as a cut request, and its socket is closed
/// (a server that stopped answering on an open socket must not stall sync).
pub const REPLY_TIMEOUT_MS: i32 = 30_000;

/// One socket and the pushes waiting for their replies.
struct Socket {
    ws: WebSocket,
    open: Cell<bool>,
    /// It was open once (a socket that never opened counts as a failed attempt).
    opened: Cell<bool>,
    next_id: Cell<u32>,
    /// `resolve`/`reject` of each waiting push, by request id.
    waiting: RefCell<HashMap<u32, (Function, Function)>>,
    _on: [Closure<dyn FnMut(JsValue)>; 3],
}

#[derive(Default)]
struct Sockets {
    by_key: HashMap<String, Rc<Socket>>,
    /// When a socket of that key last failed to open (`Date.now()`).
    failed: HashMap<String, f64>,
}

thread_local! {
    static SOCKETS: RefCell<Sockets> = RefCell::default();
}

/// Sends a push over the open socket for `url` and `token`: the reply's `(status, body)`, or
/// `None` when no socket is open yet (one is being opened; send this push over `fetch`).
pub async fn push(
    url: &str,
    token: &str,
    body: &[u8],
) -> Option<Result<(u16, Vec<u8>), TransportError>> {
    if body.len() > socket::SOCKET_MAX {
        return None;
    }
    let target = socket::url_for_push(url)?;
    let socket = ready(&target, token)?;
    Some(socket.send(body).await)
}

/// Starts opening the socket for pushes to `url` (a workspace's `POST …/updates` address) with
/// `token`, unless one is open, opening or waiting out [`RETRY_MS`]: the worker calls it when its
/// live channel connects (for a device that may push), so the first edit after the app opens finds
/// the socket ready instead of going over `fetch`.
pub fn warm(url: &str, token: &str) {
    if let Some(target) = socket::url_for_push(url) {
        let _ = ready(&target, token);
    }
}

/// The open socket for `target` and `token`, or `None` after starting to open one.
fn ready(target: &str, token: &str) -> Option<Rc<Socket>> {
    let key = format!("{target} {token}");
    SOCKETS.with(|s| {
        let mut s = s.borrow_mut();
        if let Some(socket) = s.by_key.get(&key) {
            return socket.open.get().then(|| socket.clone());
        }
        let now = js_sys::Date::now();
        if s.failed.get(&key).is_some_and(|at| now - at < RETRY_MS) {
            return None;
        }
        match Socket::open(target, token, key.clone()) {
            Some(socket) => {
                s.by_key.insert(key, socket);
            }
            None => {
                s.failed.insert(key, now);
            }
        }
        None
    })
}

/// Forgets the socket of `key` (it closed); remembers a failed open.
fn gone(key: &str, opened: bool) {
    SOCKETS.with(|s| {
        let mut s = s.borrow_mut();
        s.by_key.remove(key);
        if !opened {
            s.failed.insert(key.to_owned(), js_sys::Date::now());
        }
    });
}

impl Socket {
    fn open(target: &str, token: &str, key: String) -> Option<Rc<Self>> {
        let offer: Array = socket::offer(token).iter().map(JsValue::from).collect();
        let ws = WebSocket::new_with_str_sequence(target, &offer).ok()?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        Some(Rc::new_cyclic(|me: &Weak<Socket>| {
            let on_open = {
                let me = me.clone();
                Closure::<dyn FnMut(JsValue)>::new(move |_| {
                    if let Some(me) = me.upgrade() {
                        me.open.set(true);
                        me.opened.set(true);
                    }
                })
            };
            let on_message = {
                let me = me.clone();
                Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
                    if let (Some(me), Some(e)) = (me.upgrade(), e.dyn_ref::<MessageEvent>()) {
                        me.replied(&Uint8Array::new(&e.data()).to_vec());
                    }
                })
            };
            let on_close = {
                let me = me.clone();
                Closure::<dyn FnMut(JsValue)>::new(move |_| {
                    if let Some(me) = me.upgrade() {
                        me.fail_all();
                        // Forgotten after this handler returns: dropping the socket drops it.
                        let (key, opened) = (key.clone(), me.opened.get());
                        wasm_bindgen_futures::spawn_local(async move { gone(&key, opened) });
                    }
                })
            };
            ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
            ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
            Socket {
                ws,
                open: Cell::new(false),
                opened: Cell::new(false),
                next_id: Cell::new(1),
                waiting: RefCell::new(HashMap::new()),
                _on: [on_open, on_message, on_close],
            }
        }))
    }

    async fn send(&self, body: &[u8]) -> Result<(u16, Vec<u8>), TransportError> {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        let reply = Promise::new(&mut |resolve, reject| {
            super::fetch::set_timeout(&reject, REPLY_TIMEOUT_MS);
            self.waiting.borrow_mut().insert(id, (resolve, reject));
        });
        if self
            .ws
            .send_with_u8_array(&socket::encode_request(id, body))
            .is_err()
        {
            self.waiting.borrow_mut().remove(&id);
            return Err(TransportError::Network(
                "the push socket closed before the push was sent".into(),
            ));
        }
        let frame = JsFuture::from(reply).await.map_err(|_| {
            // Closed, or no reply in time: this socket is done either way.
            self.waiting.borrow_mut().remove(&id);
            let _ = self.ws.close();
            TransportError::Network("the connection dropped during the reply".into())
        })?;
        let frame = Uint8Array::new(&frame).to_vec();
        let (_, status, body) = socket::decode_reply(&frame)
            .map_err(|e| TransportError::Network(format!("an unexpected reply: {e}")))?;
        Ok((status, body.to_vec()))
    }

    /// A reply frame arrived: resolve the push it names (a frame naming none is dropped).
    fn replied(&self, frame: &[u8]) {
        let Ok((id, _, _)) = socket::decode_reply(frame) else {
            return;
        };
        if let Some((resolve, _)) = self.waiting.borrow_mut().remove(&id) {
            let _ = resolve.call1(&JsValue::NULL, &Uint8Array::from(frame));
        }
    }

    /// The socket closed: every waiting push fails as a cut request does.
    fn fail_all(&self) {
        self.open.set(false);
        for (_, (_, reject)) in self.waiting.borrow_mut().drain() {
            let _ = reject.call0(&JsValue::NULL);
        }
    }
}
