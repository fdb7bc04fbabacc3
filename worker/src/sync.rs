//! The sync loop of one workspace: push pending (batched, idempotent keys, acknowledged only after
//! the server stored them), pull after `last_pulled_seq` (chain verified before anything is
//! stored), tell every tab, then wait for a wake-up (local edit, live event, `online`) or the slow
//! poll. Failures back off with jitter; errors the user must act on stop the loop.

use crate::http::{self, sleep_ms};
use crate::protocol::Broadcast;
use crate::{Ctx, SyncError};
use client_wasm::storage::{Store, WorkspaceRecord};
use futures::channel::mpsc::UnboundedReceiver;
use futures::{FutureExt, StreamExt};
use shared_schema::frame::{self, PullRecordKind, PushRecord};
use shared_schema::sync::{batch_len, verify_page, Backoff, PageError, SyncStatus};
use std::rc::Rc;

/// Largest push batch, bytes.
const MAX_BATCH: usize = 1024 * 1024;
/// Poll interval when the live channel is quiet or down.
const POLL_MS: u64 = 30_000;
/// Pulled updates kept before the syncing worker compacts: a local snapshot, uploaded to the
/// server with `covers = last_pulled_seq` so the server can drop what it covers.
pub const COMPACT_AFTER: usize = 200;

async fn record(ctx: &Ctx, ws: &str) -> Result<(WorkspaceRecord, String, String), SyncError> {
    let record = ctx.store.get_workspace(ws).await?.ok_or_else(|| {
        SyncError::Stop(SyncStatus::Stopped {
            code: "forgotten".into(),
            message: "this workspace was removed from this browser".into(),
        })
    })?;
    let (Some(url), Some(token)) = (record.server_url.clone(), record.token.clone()) else {
        return Err(SyncError::Stop(SyncStatus::LocalOnly));
    };
    Ok((record, url, token))
}

/// One full round: push everything pending, pull everything new. Returns the last pulled seq.
pub async fn sync_once(ctx: &Ctx, ws: &str) -> Result<u64, SyncError> {
    let (rec, url, token) = record(ctx, ws).await?;
    let base = format!("{}/v1/workspaces/{ws}", url.trim_end_matches('/'));
    if !rec.role.can_write() {
        // Read-only members never push; their local edits are refused by the engine.
    } else {
        loop {
            let pending = ctx.store.pending(ws).await?;
            if pending.is_empty() {
                break;
            }
            let bytes_left: usize = pending.iter().map(|p| p.bytes.len()).sum();
            ctx.status(
                ws,
                SyncStatus::Syncing {
                    updates_left: pending.len() as u64,
                    bytes_left: bytes_left as u64,
                },
                pending.len() as u64,
            );
            let sizes: Vec<(usize, usize)> = pending
                .iter()
                .map(|p| (p.key.len(), p.bytes.len()))
                .collect();
            let n = batch_len(&sizes, MAX_BATCH);
            let records: Vec<PushRecord> = pending[..n]
                .iter()
                .map(|p| PushRecord {
                    key: p.key.as_bytes().to_vec(),
                    bytes: p.bytes.clone(),
                })
                .collect();
            let body = frame::encode_push_batch(&records)
                .map_err(|e| SyncError::Network(e.to_string()))?;
            http::request(
                "POST",
                &format!("{base}/updates"),
                Some(&token),
                Some(("application/octet-stream", &body)),
            )
            .await?;
            let keys: Vec<String> = pending[..n].iter().map(|p| p.key.clone()).collect();
            ctx.store.ack_pending(ws, &keys).await?;
        }
    }
    let mut rec = rec;
    loop {
        let reply = http::request(
            "GET",
            &format!("{base}/updates?after={}", rec.last_pulled_seq),
            Some(&token),
            None,
        )
        .await?;
        let more = reply.headers.get("Hearth-More").ok().flatten().is_some();
        let records = frame::decode_pull_stream(&reply.body)
            .map_err(|e| SyncError::Network(format!("damaged pull: {e}")))?;
        let page = verify_page(rec.last_pulled_seq, rec.chain_head, &records).map_err(|e| {
            let message = match e {
                PageError::Chain(c) => c.to_string(),
                PageError::OutOfOrder { expected, got } => {
                    format!("the server skipped from {expected} to {got}")
                }
            };
            SyncError::Stop(SyncStatus::Stopped {
                code: "chain_mismatch".into(),
                message: format!(
                    "{message}. Sync stopped; your local data is kept. Tell the server's operator."
                ),
            })
        })?;
        if page.seq == rec.last_pulled_seq {
            break;
        }
        let updates: Vec<(u64, Vec<u8>)> = page
            .updates
            .iter()
            .map(|r| (r.seq, r.bytes.clone()))
            .collect();
        let snapshot = page.snapshot.filter(|s| s.kind == PullRecordKind::Snapshot);
        // Re-read the record so a token rotated meanwhile is not overwritten.
        let (fresh, _, _) = record(ctx, ws).await?;
        rec = WorkspaceRecord {
            last_pulled_seq: page.seq,
            chain_head: page.chain,
            ..fresh
        };
        if let Some(s) = snapshot {
            ctx.store.compact(ws, &s.bytes, s.seq).await?;
        }
        ctx.store.put_received(&rec, &updates).await?;
        ctx.broadcast(&Broadcast::Received {
            ws: ws.to_owned(),
            seq: rec.last_pulled_seq,
        });
        if !more {
            break;
        }
    }
    if rec.role.can_write() && ctx.store.received_len(ws).await? >= COMPACT_AFTER {
        compact(ctx, ws, &base, &token).await?;
    }
    Ok(rec.last_pulled_seq)
}

/// Builds a snapshot of everything stored locally, keeps it as the local snapshot (clearing
/// `received`), and uploads it with `covers` = the last pulled seq.
async fn compact(ctx: &Ctx, ws: &str, base: &str, token: &str) -> Result<(), SyncError> {
    let engine = client_wasm::Engine::open(ctx.store.clone(), ws)
        .await
        .map_err(|e| SyncError::Network(format!("compaction: {e}")))?;
    engine
        .compact()
        .await
        .map_err(|e| SyncError::Network(format!("compaction: {e}")))?;
    let snapshot = engine
        .snapshot()
        .map_err(|e| SyncError::Network(format!("compaction: {e}")))?;
    let covers = engine.record().last_pulled_seq;
    match http::request(
        "PUT",
        &format!("{base}/snapshot?covers={covers}"),
        Some(token),
        Some(("application/octet-stream", &snapshot)),
    )
    .await
    {
        // Another device uploaded a newer snapshot meanwhile: nothing to do.
        Err(SyncError::Api {
            code: shared_schema::ErrorCode::Conflict,
            ..
        }) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Waits for a wake-up or `ms`, whichever comes first. Returns false when the wake channel closed.
async fn wait(wake: &mut UnboundedReceiver<()>, ms: u64) -> bool {
    let mut sleep = Box::pin(sleep_ms(ms).fuse());
    futures::select! {
        w = wake.next() => w.is_some(),
        _ = sleep => true,
    }
}

/// Runs the loop of one workspace until the user must act or the workspace is gone.
pub async fn run(ctx: Rc<Ctx>, ws: String, mut wake: UnboundedReceiver<()>) {
    let mut backoff = Backoff::default();
    loop {
        let pending = ctx
            .store
            .pending(&ws)
            .await
            .map(|p| p.len() as u64)
            .unwrap_or(0);
        if !ctx.online.get() {
            ctx.status(&ws, SyncStatus::Offline, pending);
            if !wait(&mut wake, POLL_MS).await {
                return;
            }
            continue;
        }
        match sync_once(&ctx, &ws).await {
            Ok(seq) => {
                backoff.reset();
                let pending = ctx
                    .store
                    .pending(&ws)
                    .await
                    .map(|p| p.len() as u64)
                    .unwrap_or(0);
                ctx.status(&ws, SyncStatus::UpToDate { seq }, pending);
                if !wait(&mut wake, POLL_MS).await {
                    return;
                }
            }
            Err(e) => {
                if let Some(stop) = e.stop_status() {
                    ctx.status(&ws, stop, pending);
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
                if !wait(&mut wake, delay).await {
                    return;
                }
            }
        }
    }
}

/// Follows the live channel and wakes the loop on every announced seq; reconnects with backoff.
pub async fn live(ctx: Rc<Ctx>, ws: String) {
    let mut backoff = Backoff::default();
    while ctx.is_syncing(&ws) {
        if ctx.online.get() {
            match follow(&ctx, &ws).await {
                Ok(()) => backoff.reset(),
                Err(e) if e.stop_status().is_some() => return,
                Err(_) => {}
            }
        }
        sleep_ms(backoff.next_delay_ms(js_sys::Math::random()).max(1000)).await;
    }
}

async fn follow(ctx: &Ctx, ws: &str) -> Result<(), SyncError> {
    let (_, url, token) = record(ctx, ws).await?;
    let res = http::send(
        "GET",
        &format!("{}/v1/workspaces/{ws}/live", url.trim_end_matches('/')),
        Some(&token),
        None,
    )
    .await?;
    if res.status() != 200 {
        return Err(http::api_error(res.status(), &[]));
    }
    let body = res
        .body()
        .ok_or_else(|| SyncError::Network("no live body".into()))?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut text = String::new();
    loop {
        let chunk = wasm_bindgen_futures::JsFuture::from(reader.read())
            .await
            .map_err(|_| SyncError::Network("live channel closed".into()))?;
        let done = js_sys::Reflect::get(&chunk, &"done".into())
            .map(|v| v.is_truthy())
            .unwrap_or(true);
        if done || !ctx.is_syncing(ws) {
            return Ok(());
        }
        let value = js_sys::Reflect::get(&chunk, &"value".into()).unwrap_or_default();
        let bytes = js_sys::Uint8Array::new(&value).to_vec();
        text.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            if event.starts_with("data:") {
                ctx.wake(ws);
            }
        }
    }
}

use wasm_bindgen::JsCast;
