//! The sync loop of one workspace around the shared [`client_wasm::sync::SyncCore`]: run a round
//! (push, pull, upload), tell every tab, then wait for a wake-up (local edit, live event, `online`)
//! or the slow poll. Failures back off with jitter; errors the user must act on stop the loop.
//! This file holds only the loop, the live channel, backoff and status — no sync rules.

use crate::http::{self, sleep_ms};
use crate::protocol::{Broadcast, CARRY_MAX};
use crate::Ctx;
use client_wasm::storage::Store;
use client_wasm::sync::{Live, Remote, SyncError, TransportError};
use futures::channel::mpsc::UnboundedReceiver;
use futures::future::Either;
use futures::{FutureExt, StreamExt};
use shared_schema::api::{LiveEvent, PresenceEvent, PresenceRequest, PRESENCE_HEARTBEAT_SECS};
use shared_schema::sync::{Backoff, SyncStatus};
use std::rc::Rc;
use wasm_bindgen::JsCast;

/// Poll interval when the live channel is quiet or down.
const POLL_MS: u64 = 30_000;

/// The least time between two presence heartbeats. A tab that moves through notes quickly (each
/// note it creates opens) sends one request per this, not one per note — each is a request to the
/// server and an event to every device with the notebook open, on the cores and the connection
/// the edits use — and the others still see the note it is in within this. (Liveblocks throttles
/// presence to 100 ms by default, too.)
const PRESENCE_GAP_MS: f64 = 100.0;

/// Why a workspace's loop was woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A tab stored a local edit: push it (a pull is not needed while the live channel is up).
    Edit,
    /// Run a full round: the live channel asked for a pull, the network came back, a request.
    Pull,
}

/// Waits for a wake-up or `ms`, whichever comes first, and takes every wake-up already queued.
/// `None` when the wake channel closed; `Some(true)` when the next round needs a pull (a reason
/// that asks for one, or the timer — the slow poll is a full round).
async fn wait(wake: &mut UnboundedReceiver<Wake>, ms: u64) -> Option<bool> {
    let mut sleep = Box::pin(sleep_ms(ms).fuse());
    let first = futures::select! {
        w = wake.next() => w?,
        _ = sleep => Wake::Pull,
    };
    let mut pull = first == Wake::Pull;
    while let Ok(w) = wake.try_recv() {
        pull |= w == Wake::Pull;
    }
    Some(pull)
}

async fn pending_len(ctx: &Ctx, ws: &str) -> u64 {
    ctx.core
        .store
        .pending_len(ws)
        .await
        .map(|n| n as u64)
        .unwrap_or(0)
}

/// What a round leaves to do after it: store the acknowledgement of staged pushes, upload a
/// waiting snapshot, tell the status ([`SyncCore::settle`](client_wasm::sync::SyncCore::settle)).
type Settling = std::pin::Pin<Box<dyn futures::Future<Output = ()>>>;

/// Runs the loop of one workspace until the user must act or the workspace is gone.
///
/// After a successful round its bookkeeping ([`Settling`]) runs while the loop already waits:
/// it is made of IndexedDB transactions that wait behind the page's write of the next edit, and
/// that edit, staged meanwhile, is pushed at once — the bookkeeping runs beside its round.
pub async fn run(ctx: Rc<Ctx>, ws: String, mut wake: UnboundedReceiver<Wake>) {
    let mut backoff = Backoff::default();
    let mut pull = true;
    let mut settling: Option<Settling> = None;
    loop {
        if !ctx.online.get() {
            if let Some(s) = settling.take() {
                s.await;
            }
            ctx.status(&ws, SyncStatus::Offline, pending_len(&ctx, &ws).await);
            if wait(&mut wake, POLL_MS).await.is_none() {
                return;
            }
            pull = true;
            continue;
        }
        let progress = |left: u64, bytes: u64| {
            ctx.status(
                &ws,
                SyncStatus::Syncing {
                    updates_left: left,
                    bytes_left: bytes,
                },
                left,
            );
        };
        let round = async {
            if pull || !ctx.is_live(&ws) {
                ctx.core.sync_once(&ws, &progress).await
            } else {
                ctx.core.push_round(&ws, &progress).await
            }
        };
        let result = match settling.take() {
            Some(s) => futures::join!(s, round).1,
            None => round.await,
        };
        match result {
            Ok(round) => {
                backoff.reset();
                if round.pulled > 0 {
                    ctx.broadcast(&Broadcast::Received {
                        ws: ws.clone(),
                        seq: round.seq,
                        update: None,
                        held: false,
                    });
                }
                let settle: Settling = Box::pin(settle_round(ctx.clone(), ws.clone(), round.seq));
                let woken = Box::pin(wait(&mut wake, POLL_MS));
                let woken = match futures::future::select(settle, woken).await {
                    Either::Left(((), woken)) => woken.await,
                    Either::Right((woken, settle)) => {
                        settling = Some(settle);
                        woken
                    }
                };
                match woken {
                    Some(p) => pull = p,
                    None => return,
                }
            }
            Err(SyncError::LocalOnly) => {
                ctx.status(&ws, SyncStatus::LocalOnly, pending_len(&ctx, &ws).await);
                ctx.stop(&ws);
                return;
            }
            Err(e) => {
                let pending = pending_len(&ctx, &ws).await;
                if let Some(reason) = e.stop_reason() {
                    ctx.status(
                        &ws,
                        SyncStatus::Stopped {
                            reason,
                            message: e.to_string(),
                        },
                        pending,
                    );
                    ctx.stop(&ws);
                    return;
                }
                ctx.status(
                    &ws,
                    SyncStatus::Connecting {
                        reason: Some(e.to_string()),
                    },
                    pending,
                );
                let delay = backoff.next_delay_ms(js_sys::Math::random());
                if wait(&mut wake, delay).await.is_none() {
                    return;
                }
                pull = true;
            }
        }
    }
}

/// A successful round's bookkeeping: what the server acknowledged is stored, a waiting snapshot
/// uploaded, and the tabs told the status with what is still pending. If storing failed, the
/// next round reads storage (and is woken for it).
async fn settle_round(ctx: Rc<Ctx>, ws: String, seq: u64) {
    if ctx.core.settle(&ws).await.is_err() {
        ctx.wake(&ws);
    }
    let pending = pending_len(&ctx, &ws).await;
    ctx.status(&ws, SyncStatus::UpToDate { seq }, pending);
}

/// One live event: a tentative record that verifies as the next one is shown by the tabs at once
/// and stored through the sync core when its marker confirms it (no pull); anything else wakes
/// the loop, which pulls.
async fn take(ctx: &Ctx, ws: &str, json: &str, held: &mut shared_schema::live::Held) {
    if let Ok(p) = serde_json::from_str::<PresenceEvent>(json) {
        ctx.broadcast(&Broadcast::Presence {
            ws: ws.to_owned(),
            peers: p.presence,
        });
        return;
    }
    let Ok(event) = serde_json::from_str::<LiveEvent>(json) else {
        ctx.wake(ws);
        return;
    };
    // The tabs show a verified record while the worker holds it (see `take_live`), and read
    // storage once it is stored.
    let show = |bytes: &[u8]| {
        ctx.broadcast(&Broadcast::Received {
            ws: ws.to_owned(),
            seq: event.seq,
            update: Some(bytes.to_vec()).filter(|b| b.len() <= CARRY_MAX),
            held: true,
        });
    };
    match ctx.core.take_live(ws, &event, held, &show).await {
        Ok(Live::Current | Live::Held) => {}
        Ok(Live::Stored(_)) => {
            ctx.broadcast(&Broadcast::Received {
                ws: ws.to_owned(),
                seq: event.seq,
                update: None,
                held: false,
            });
            let pending = pending_len(ctx, ws).await;
            ctx.status(ws, SyncStatus::UpToDate { seq: event.seq }, pending);
        }
        // This device's own edit coming back: the tabs have it, and the push round that sent it
        // reports the status. Now and then they are still told, so they read storage and
        // compact the records their own edits piled up.
        Ok(Live::Echo) => {
            if event.seq % crate::protocol::READ_EVERY == 0 {
                ctx.broadcast(&Broadcast::Received {
                    ws: ws.to_owned(),
                    seq: event.seq,
                    update: None,
                    held: false,
                });
            }
        }
        Ok(Live::Pull) | Err(_) => ctx.wake(ws),
    }
}

/// Follows the live channel and wakes the loop on every announced seq; reconnects with backoff.
/// Ends when the loop it belongs to (`generation`) ends.
pub async fn live(ctx: Rc<Ctx>, ws: String, generation: u64) {
    let mut backoff = Backoff::default();
    while ctx.is_current(&ws, generation) {
        if ctx.online.get() {
            let followed = follow(&ctx, &ws, generation).await;
            ctx.set_live(&ws, false);
            match followed {
                Ok(()) => backoff.reset(),
                // The server closes the channel when the link is revoked; the reconnect is refused.
                // A round now reports it (stopped, edits off) instead of the next push or poll.
                Err(TransportError::Api { code, .. })
                    if shared_schema::sync::StopReason::for_error_code(code).is_some() =>
                {
                    ctx.wake(&ws);
                    return;
                }
                Err(_) => {}
            }
        }
        sleep_ms(backoff.next_delay_ms(js_sys::Math::random()).max(1000)).await;
    }
}

async fn follow(ctx: &Ctx, ws: &str, generation: u64) -> Result<(), TransportError> {
    let record = ctx
        .core
        .store
        .get_workspace(ws)
        .await
        .map_err(|e| TransportError::Network(e.to_string()))?;
    let Some((Some(server_url), Some(token), role)) =
        record.map(|r| (r.server_url, r.token, r.role))
    else {
        return Err(TransportError::Network("not syncing".into()));
    };
    let remote = Remote {
        server_url,
        ws: ws.to_owned(),
        token,
    };
    let res = http::send("GET", &remote.url("/live"), Some(&remote.token), None).await?;
    if res.status() != 200 {
        // The error body names the reason (a revoked link is `token_revoked`, not "401").
        let body = match res.array_buffer() {
            Ok(p) => wasm_bindgen_futures::JsFuture::from(p)
                .await
                .map(|b| js_sys::Uint8Array::new(&b).to_vec())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        return Err(http::api_error(res.status(), &body));
    }
    ctx.set_live(ws, true);
    if role.can_write() {
        client_wasm::sync::warm_push_socket(&remote.url("/updates"), &remote.token);
    }
    let body = res
        .body()
        .ok_or_else(|| TransportError::Network("no live body".into()))?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut text = String::new();
    // This stream's tentative records; a new stream starts with none.
    let mut held = shared_schema::live::Held::default();
    loop {
        let chunk = wasm_bindgen_futures::JsFuture::from(reader.read())
            .await
            .map_err(|_| TransportError::Network("live channel closed".into()))?;
        let done = js_sys::Reflect::get(&chunk, &"done".into())
            .map(|v| v.is_truthy())
            .unwrap_or(true);
        if done || !ctx.is_current(ws, generation) {
            return Ok(());
        }
        let value = js_sys::Reflect::get(&chunk, &"value".into()).unwrap_or_default();
        let bytes = js_sys::Uint8Array::new(&value).to_vec();
        text.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            if let Some(json) = event.strip_prefix("data:") {
                take(ctx, ws, json.trim(), &mut held).await;
            }
        }
    }
}

/// This tab's presence heartbeats: when `ctx.presence` changes (the loop is woken) and every few
/// seconds while it is set; the server forgets the tab soon after they stop. A change less than
/// [`PRESENCE_GAP_MS`] after the last heartbeat waits out the rest, and the changes made
/// meanwhile go as one heartbeat with the newest.
pub async fn heartbeats(ctx: Rc<Ctx>, mut wake: UnboundedReceiver<Wake>) {
    loop {
        let current = ctx.presence.borrow().clone();
        let sent = js_sys::Date::now();
        if let (Some((ws, device, note)), true) = (current, ctx.online.get()) {
            let _ = beat(&ctx, &ws, PresenceRequest { device, note }).await;
        }
        if wait(&mut wake, PRESENCE_HEARTBEAT_SECS * 1000)
            .await
            .is_none()
        {
            return;
        }
        let since = js_sys::Date::now() - sent;
        if since < PRESENCE_GAP_MS {
            sleep_ms((PRESENCE_GAP_MS - since).ceil() as u64).await;
            // The heartbeat below carries every change made meanwhile.
            while wake.try_recv().is_ok() {}
        }
    }
}

async fn beat(ctx: &Ctx, ws: &str, body: PresenceRequest) -> Result<(), TransportError> {
    let record = ctx
        .core
        .store
        .get_workspace(ws)
        .await
        .map_err(|e| TransportError::Network(e.to_string()))?;
    let Some((Some(url), Some(token))) = record.map(|r| (r.server_url, r.token)) else {
        return Ok(()); // local only: nobody to be present to
    };
    let json = serde_json::to_vec(&body).map_err(|e| TransportError::Network(e.to_string()))?;
    http::send(
        "PUT",
        &format!("{url}/v1/workspaces/{ws}/presence"),
        Some(&token),
        Some(("application/json", &json)),
    )
    .await?;
    Ok(())
}
