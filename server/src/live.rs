//! The live channel: `GET /v1/workspaces/{id}/live` as Server-Sent Events. The first event carries
//! the current head. A push this process commits sends each of its updates of at most 16 KiB as
//! soon as the writer has planned it, `data: {"seq":N,"record":"<base64>","tentative":true}`, and
//! after the commit one marker `data: {"seq":HEAD,"chain":"<hex>"}` that confirms them
//! (`shared_schema::live`); larger updates and other processes' commits come as
//! `data: {"seq":N}` and the client pulls. A stream that falls behind a burst (more than
//! [`INLINE_BURST`] announcements waiting) sends the newest marker (or seq) only: a client then
//! pulls the burst as one page instead of importing records one by one. A comment every
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

/// `{"seq":N}`, or with the chain after it (a marker: durable up to `seq`).
fn head_event(seq: u64, chain: Option<shared_schema::Chain>) -> web::Bytes {
    encode(&LiveEvent {
        seq,
        chain,
        ..LiveEvent::default()
    })
}

fn encode(e: &LiveEvent) -> web::Bytes {
    let json = serde_json::to_string(e).unwrap_or_default();
    web::Bytes::from(format!("data: {json}\n\n"))
}

/// Most events a stream forwards at once (tentative records and markers); past that it is
/// behind a burst.
pub const INLINE_BURST: usize = 8;

/// The events for `first`, an announcement for this stream's workspace, and whatever else for the
/// workspace is already waiting: each record and marker in order while there are at most
/// [`INLINE_BURST`] (a push of a few records reads as a few tentative events and a marker, in one
/// write); past that, only the newest marker or seq (tentative records are dropped: nothing
/// confirms them then), so the client pulls the burst as one page. A batch's records arrive as one
/// announcement, so a large batch is one burst however the stream's task is scheduled. Without
/// `inline`, tentative records are not sent at all.
fn next_event(
    first: Announcement,
    events: &mut broadcast::Receiver<Announcement>,
    ws: &str,
    inline: bool,
) -> Option<web::Bytes> {
    let mut waiting = vec![first];
    while !events.is_empty() {
        match events.try_recv() {
            Ok(a) if a.ws == ws => waiting.push(a),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    if !inline {
        waiting.retain(|a| !a.is_tentative());
    }
    let count: usize = waiting.iter().map(|a| a.tentative.len().max(1)).sum();
    if count > INLINE_BURST {
        let newest = waiting.iter().rev().find(|a| !a.is_tentative())?;
        return Some(head_event(newest.seq, newest.chain));
    }
    if waiting.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for a in &waiting {
        if a.is_tentative() {
            for e in a.tentative.iter() {
                out.extend_from_slice(&encode(e));
            }
        } else {
            out.extend_from_slice(&head_event(a.seq, a.chain));
        }
    }
    Some(web::Bytes::from(out))
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
                        match next_event(a, &mut self.events, &conn.ws, inline) {
                            Some(e) => return Some(e),
                            None => continue,
                        }
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => {
                        // Missed events: tell the client to pull (it pulls from its own seq).
                        let head = conn.state.store.announced_head(&conn.ws).unwrap_or(0);
                        return Some(head_event(head, None));
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
    let mut first = vec![head_event(head, None)];
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
    use shared_schema::Chain;

    /// A batch's tentative records `seqs` of `ws`, as the writer announces them.
    fn batch(ws: &str, seqs: std::ops::RangeInclusive<u64>) -> Announcement {
        let records: Vec<LiveEvent> = seqs
            .map(|seq| LiveEvent {
                seq,
                record: Some("cmVjb3Jk".into()),
                tentative: true,
                ..LiveEvent::default()
            })
            .collect();
        Announcement {
            ws: ws.into(),
            seq: records.last().map_or(0, |e| e.seq),
            tentative: records.into(),
            chain: None,
        }
    }

    fn tentative(ws: &str, seq: u64) -> Announcement {
        batch(ws, seq..=seq)
    }

    fn marker(ws: &str, seq: u64) -> Announcement {
        Announcement {
            ws: ws.into(),
            seq,
            tentative: std::sync::Arc::from([]),
            chain: Some(Chain::genesis()),
        }
    }

    fn text(b: Option<web::Bytes>) -> String {
        String::from_utf8_lossy(&b.unwrap_or_default()).into_owned()
    }

    #[test]
    fn a_stream_that_keeps_up_sends_the_record_tentatively_then_its_marker() {
        let (tx, mut rx) = broadcast::channel(16);
        let _ = tx.send(tentative("other", 9));
        let _ = tx.send(marker("w", 3));
        let e = text(next_event(tentative("w", 3), &mut rx, "w", true));
        let chain = Chain::genesis().to_hex();
        assert_eq!(
            e,
            format!(
                "data: {{\"seq\":3,\"record\":\"cmVjb3Jk\",\"tentative\":true}}\n\n\
                 data: {{\"seq\":3,\"chain\":\"{chain}\"}}\n\n"
            )
        );
    }

    #[test]
    fn a_few_waiting_records_are_all_sent_in_order() {
        let (tx, mut rx) = broadcast::channel(16);
        for seq in 4..=5 {
            let _ = tx.send(tentative("w", seq));
        }
        let _ = tx.send(marker("w", 5));
        let e = text(next_event(tentative("w", 3), &mut rx, "w", true));
        assert_eq!(e.matches("\"tentative\":true").count(), 3);
        assert!(e.starts_with("data: {\"seq\":3,\"record\""));
        assert!(e.ends_with(&format!(
            "{{\"seq\":5,\"chain\":\"{}\"}}\n\n",
            Chain::genesis().to_hex()
        )));
    }

    #[test]
    fn a_stream_that_fell_behind_a_burst_sends_only_the_newest_marker() {
        let (tx, mut rx) = broadcast::channel(64);
        for seq in 4..=(3 + INLINE_BURST as u64) {
            let _ = tx.send(tentative("w", seq));
        }
        let newest = 3 + INLINE_BURST as u64;
        let _ = tx.send(marker("w", newest));
        let _ = tx.send(tentative("w", newest + 1));
        let _ = tx.send(tentative("other", 99));
        let e = text(next_event(tentative("w", 3), &mut rx, "w", true));
        assert_eq!(
            e,
            format!(
                "data: {{\"seq\":{newest},\"chain\":\"{}\"}}\n\n",
                Chain::genesis().to_hex()
            )
        );
        assert!(rx.is_empty(), "the burst was drained");
    }

    #[test]
    fn a_batch_of_the_burst_size_is_sent_whole_in_one_write() {
        let (_tx, mut rx) = broadcast::channel::<Announcement>(16);
        let last = 1 + INLINE_BURST as u64;
        let e = text(next_event(batch("w", 2..=last), &mut rx, "w", true));
        assert_eq!(e.matches("\"tentative\":true").count(), INLINE_BURST);
        assert!(e.starts_with("data: {\"seq\":2,\"record\""), "{e}");
    }

    #[test]
    fn a_batch_past_the_burst_is_dropped_whole_and_its_marker_sent_alone() {
        let (tx, mut rx) = broadcast::channel(16);
        let newest = 2 + INLINE_BURST as u64;
        assert_eq!(
            next_event(batch("w", 2..=newest), &mut rx, "w", true),
            None,
            "nothing would confirm part of a burst: the stream waits for the marker"
        );
        let _ = tx.send(batch("w", newest + 1..=newest + 1));
        let e = text(next_event(marker("w", newest), &mut rx, "w", true));
        assert!(
            e.starts_with(&format!(
                "data: {{\"seq\":{newest},\"chain\":\"{}\"}}\n\n",
                Chain::genesis().to_hex()
            )),
            "{e}"
        );
        assert_eq!(
            e.matches("\"tentative\":true").count(),
            1,
            "the next batch follows"
        );
    }

    #[test]
    fn without_inline_records_tentative_ones_are_not_sent() {
        let (tx, mut rx) = broadcast::channel(16);
        assert_eq!(next_event(tentative("w", 3), &mut rx, "w", false), None);
        let _ = tx.send(marker("w", 3));
        let e = text(next_event(tentative("w", 3), &mut rx, "w", false));
        assert!(e.starts_with("data: {\"seq\":3,\"chain\""), "{e}");
    }
}
