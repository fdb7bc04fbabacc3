//! Staying live (`hearth sync --watch`): a sync round, then the server's live channel
//! (`GET …/live`, server-sent events) — an event's inline record is verified by the sync core
//! and stored when its marker confirms it, exactly as in the browser's worker
//! ([`SyncCore::take_live`]); anything else is a pull. Pending updates (another `hearth` process may add some) are sent every
//! [`PUSH_EVERY`]. A dropped channel or an unreachable server is retried with backoff; a stop
//! reason (a revoked link, a forked server, …) ends the watch with its error.

use crate::{ReqwestHttp, SqliteStore};
use client_wasm::storage::Store;
use client_wasm::sync::http::api_error;
use client_wasm::sync::{Live, Round, SyncCore, SyncError, TransportError};
use shared_schema::api::LiveEvent;
use std::time::Duration;

/// How often pending updates are looked for while watching.
pub const PUSH_EVERY: Duration = Duration::from_secs(2);

/// What the watch reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    /// A round finished (at start, after a reconnect, a pull or a push).
    Synced(Round),
    /// A live record was verified and stored; the cursor is now `seq`.
    Received {
        /// Its seq.
        seq: u64,
    },
    /// The server cannot be reached; retrying after `retry_in`.
    Offline {
        /// Why.
        reason: String,
        /// The wait before the next try.
        retry_in: Duration,
    },
}

/// Syncs `ws` and stays live until a stop reason (returned as the error).
pub async fn watch(
    store: &SqliteStore,
    http: &ReqwestHttp,
    ws: &str,
    report: &mut dyn FnMut(Watched),
) -> Result<(), SyncError> {
    let core = SyncCore::new(store.clone(), http.clone());
    let mut backoff = Duration::from_millis(500);
    loop {
        match follow(&core, ws, report).await {
            Err(e) if e.stop_reason().is_some() || matches!(e, SyncError::LocalOnly) => {
                return Err(e)
            }
            Err(e) => {
                report(Watched::Offline {
                    reason: e.to_string(),
                    retry_in: backoff,
                });
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            Ok(()) => backoff = Duration::from_millis(500),
        }
    }
}

/// One connection: a round, then the live channel until it ends.
async fn follow(
    core: &SyncCore<SqliteStore, ReqwestHttp>,
    ws: &str,
    report: &mut dyn FnMut(Watched),
) -> Result<(), SyncError> {
    report(Watched::Synced(core.sync_once(ws, &|_, _| {}).await?));
    let record = core
        .store
        .get_workspace(ws)
        .await?
        .ok_or(SyncError::LocalOnly)?;
    let (Some(server), Some(token)) = (record.server_url, record.token) else {
        return Err(SyncError::LocalOnly);
    };
    let network =
        |e: reqwest::Error| SyncError::from(TransportError::Network(crate::http::chain(&e)));
    let mut response = core
        .transport
        .client()
        .get(format!("{server}/v1/workspaces/{ws}/live"))
        .bearer_auth(&token)
        .send()
        .await
        .map_err(network)?;
    if !response.status().is_success() {
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        return Err(api_error(status, &body).into());
    }
    // Bytes until a whole event ("\n\n") is in: a chunk may end inside a UTF-8 character.
    let mut text: Vec<u8> = Vec::new();
    let mut tick = tokio::time::interval(PUSH_EVERY);
    // This stream's tentative records; a new stream starts with none.
    let mut held = shared_schema::live::Held::default();
    loop {
        tokio::select! {
            chunk = response.chunk() => {
                let Some(chunk) = chunk.map_err(network)? else {
                    return Ok(());
                };
                text.extend_from_slice(&chunk);
                while let Some(end) = text.windows(2).position(|w| w == b"\n\n") {
                    let event: Vec<u8> = text.drain(..end + 2).collect();
                    let event = String::from_utf8_lossy(&event);
                    let Some(json) = event.trim().strip_prefix("data:") else {
                        continue;
                    };
                    // Presence events (`{"presence":…}`) are not read here.
                    let Ok(event) = serde_json::from_str::<LiveEvent>(json.trim()) else {
                        continue;
                    };
                    match core.take_live(ws, &event, &mut held, &|_| {}).await? {
                        Live::Stored(_) | Live::Echo => report(Watched::Received { seq: event.seq }),
                        Live::Current | Live::Held => {}
                        Live::Pull => report(Watched::Synced(core.sync_once(ws, &|_, _| {}).await?)),
                    }
                }
            }
            _ = tick.tick() => {
                if !core.store.pending(ws).await?.is_empty() {
                    report(Watched::Synced(core.sync_once(ws, &|_, _| {}).await?));
                }
            }
        }
    }
}
