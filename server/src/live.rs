//! The live channel: `GET /v1/workspaces/{id}/live` as Server-Sent Events. The first event carries
//! the current head; each stored update sends `data: {"seq":N,"record":"<base64>"}` — the record
//! inline when the update is at most 16 KiB and this process stored it (`shared_schema::live`),
//! else `data: {"seq":N}` and the client pulls. A stream that falls behind a burst (more than
//! [`INLINE_BURST`] announcements waiting) sends one seq-only event for the newest of them: a
//! client then pulls the burst as one page instead of importing records one by one. A comment every
//! 15 s keeps proxies from closing the stream (`--live-keepalive-secs`). Readers use `fetch` with
//! the bearer header (not EventSource), so the token never goes into a URL.
//!
//! A stream needs no pooled database connection while it is open: the head comes from what this
//! process last saw announced (LISTEN/NOTIFY on Postgres). Its token is checked again on every
//! keepalive and at once when this process revokes a token or deletes the workspace; a revoked,
//! expired or deleted stream is closed, and every stream when the server stops. Each token may hold a capped number of streams.
//!
//! Presence rides on the same stream: `data: {"presence":[…]}` with everyone who has the
//! workspace open, at the start (when anyone is) and whenever the list changes
//! ([`crate::presence`]).

use crate::app::AppState;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::limits::too_many;
use crate::routes::{rate_limit, verify, workspace_id};
use crate::store::Announcement;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::stream;
use shared_schema::api::{LiveEvent, Peer, PresenceEvent};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};

struct Conn {
    state: web::Data<AppState>,
    ws: String,
    header: Option<String>,
    _slot: crate::limits::StreamSlot,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.state
            .metrics
            .live_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl Conn {
    /// Whether the stream's token still opens its workspace.
    async fn still_valid(&self) -> bool {
        let auth: &Auth = &self.state.auth;
        auth.verify(self.header.as_deref(), &self.ws, self.state.store.as_ref())
            .await
            .is_ok()
    }
}

fn event(seq: u64, record: Option<&str>) -> web::Bytes {
    let json = serde_json::to_string(&LiveEvent {
        seq,
        record: record.map(str::to_owned),
    })
    .unwrap_or_default();
    web::Bytes::from(format!("data: {json}\n\n"))
}

/// Most announcements a stream forwards inline at once; past that it is behind a burst.
pub const INLINE_BURST: usize = 8;

/// The events for `first`, an announcement for this stream's workspace, and whatever else for the
/// workspace is already waiting: each inline while at most [`INLINE_BURST`] are waiting (a push
/// of a few records reads as a few inline events); past that, one seq-only event for the newest,
/// so the client pulls the burst as one page.
fn next_event(
    first: Announcement,
    events: &mut broadcast::Receiver<Announcement>,
    ws: &str,
    inline: bool,
) -> web::Bytes {
    let mut waiting = vec![first];
    while !events.is_empty() {
        match events.try_recv() {
            Ok(a) if a.ws == ws => waiting.push(a),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let newest = waiting.last().map(|a| a.seq).unwrap_or(0);
    if !inline || waiting.len() > INLINE_BURST {
        return event(newest, None);
    }
    let mut out = Vec::new();
    for a in &waiting {
        out.extend_from_slice(&event(a.seq, a.record.as_deref()));
    }
    web::Bytes::from(out)
}

/// Whether live events may carry records. The `--test-tamper-pulls` and `--test-fork-at-seq` hooks
/// (test builds only) turn them off, so their clients pull the altered view as their tests expect.
fn inline_allowed(config: &crate::config::Config) -> bool {
    #[cfg(feature = "test-hooks")]
    {
        !config.test_tamper_pulls && config.test_fork_at_seq.is_none()
    }
    #[cfg(not(feature = "test-hooks"))]
    {
        let _ = config;
        true
    }
}

/// What a live stream listens to.
struct Receivers {
    events: broadcast::Receiver<Announcement>,
    revocations: broadcast::Receiver<String>,
    presence: broadcast::Receiver<String>,
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl Receivers {
    /// The stream's next event; `None` ends it (token no longer valid, server stopping).
    async fn next(&mut self, conn: &Conn) -> Option<web::Bytes> {
        let keepalive = Duration::from_secs(conn.state.config.live_keepalive_secs.max(1));
        loop {
            tokio::select! {
                msg = self.events.recv() => match msg {
                    Ok(a) if a.ws == conn.ws => {
                        let inline = inline_allowed(&conn.state.config);
                        return Some(next_event(a, &mut self.events, &conn.ws, inline));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => {
                        // Missed events: tell the client to pull (it pulls from its own seq).
                        let head = conn.state.store.announced_head(&conn.ws).unwrap_or(0);
                        return Some(event(head, None));
                    }
                    Err(RecvError::Closed) => return None,
                },
                changed = self.presence.recv() => match changed {
                    Ok(w) if w != conn.ws => continue,
                    Err(RecvError::Closed) => return None,
                    // Changed, or changes missed: send the list as it is now.
                    _ => return Some(presence_event(conn.state.presence.list(&conn.ws))),
                },
                revoked = self.revocations.recv() => match revoked {
                    Ok(w) if w != conn.ws => continue,
                    Err(RecvError::Closed) => return None,
                    _ => {
                        if !conn.still_valid().await {
                            return None;
                        }
                    }
                },
                _ = self.stopping.wait_for(|s| *s) => return None,
                _ = tokio::time::sleep(keepalive) => {
                    if !conn.still_valid().await {
                        return None;
                    }
                    return Some(web::Bytes::from_static(b": keepalive\n\n"));
                }
            }
        }
    }
}

fn presence_event(presence: Vec<Peer>) -> web::Bytes {
    let json = serde_json::to_string(&PresenceEvent { presence }).unwrap_or_default();
    web::Bytes::from(format!("data: {json}\n\n"))
}

/// The SSE handler.
pub async fn live(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ws = workspace_id(&path)?;
    let claims = verify(&state, &req, &ws).await?;
    rate_limit(&state, &req, &ws, &claims.sub)?;
    let slot = state
        .streams
        .open(&claims.sub, state.config.max_streams_per_token)
        .ok_or_else(|| too_many("(live streams) for this token: close other tabs", 5))?;
    let rx = Receivers {
        events: state.store.subscribe(),
        revocations: state.revocations.subscribe(),
        presence: state.presence.subscribe(),
        stopping: state.stopping.subscribe(),
    };
    let head = match state.store.announced_head(&ws) {
        Some(head) => head,
        None => state.store.head(&ws).await?,
    };
    state
        .metrics
        .live_connections
        .fetch_add(1, Ordering::Relaxed);
    let mut first = vec![event(head, None)];
    let present = state.presence.list(&ws);
    if !present.is_empty() {
        first.push(presence_event(present));
    }
    first.reverse();
    let conn = Conn {
        state: state.clone(),
        ws,
        header: req
            .headers()
            .get("Authorization")
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned),
        _slot: slot,
    };
    let body = stream::unfold((rx, first, conn), |(mut rx, mut first, conn)| async move {
        if let Some(e) = first.pop() {
            return Some((Ok::<_, actix_web::Error>(e), (rx, first, conn)));
        }
        let e = rx.next(&conn).await?;
        Some((Ok(e), (rx, first, conn)))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announcement(ws: &str, seq: u64) -> Announcement {
        Announcement {
            ws: ws.into(),
            seq,
            record: Some("cmVjb3Jk".into()),
        }
    }

    fn text(b: web::Bytes) -> String {
        String::from_utf8_lossy(&b).into_owned()
    }

    #[test]
    fn a_stream_that_keeps_up_sends_the_record_inline() {
        let (tx, mut rx) = broadcast::channel(16);
        let _ = tx.send(announcement("other", 9));
        let e = text(next_event(announcement("w", 3), &mut rx, "w", true));
        assert_eq!(e, "data: {\"seq\":3,\"record\":\"cmVjb3Jk\"}\n\n");
    }

    #[test]
    fn a_few_waiting_records_are_all_sent_inline_in_order() {
        let (tx, mut rx) = broadcast::channel(16);
        for seq in 4..=5 {
            let _ = tx.send(announcement("w", seq));
        }
        let e = text(next_event(announcement("w", 3), &mut rx, "w", true));
        let seqs: Vec<&str> = e.matches("\"seq\":").collect();
        assert_eq!(seqs.len(), 3);
        assert!(e.starts_with("data: {\"seq\":3,\"record\""));
        assert!(e.contains("data: {\"seq\":5,\"record\""));
    }

    #[test]
    fn a_stream_that_fell_behind_a_burst_sends_one_seq_only_event_for_the_newest() {
        let (tx, mut rx) = broadcast::channel(64);
        for seq in 4..=(3 + INLINE_BURST as u64) {
            let _ = tx.send(announcement("w", seq));
        }
        let _ = tx.send(announcement("other", 99));
        let e = text(next_event(announcement("w", 3), &mut rx, "w", true));
        assert_eq!(e, format!("data: {{\"seq\":{}}}\n\n", 3 + INLINE_BURST));
        assert!(rx.is_empty(), "the burst was drained");
    }
}
