//! The live channel: `GET /v1/workspaces/{id}/live` as Server-Sent Events. The first event carries
//! the current head; each stored update sends `data: {"seq":N}`; a comment every 15 s keeps
//! proxies from closing the stream (`--live-keepalive-secs`). Readers use `fetch` with the bearer header (not EventSource),
//! so the token never goes into a URL.
//!
//! A stream needs no pooled database connection while it is open: the head comes from what this
//! process last saw announced (LISTEN/NOTIFY on Postgres). Its token is checked again on every
//! keepalive and at once when this process revokes a token or deletes the workspace; a revoked,
//! expired or deleted stream is closed. Each token may hold a capped number of streams.

use crate::app::AppState;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::limits::too_many;
use crate::routes::{rate_limit, verify, workspace_id};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::stream;
use shared_schema::api::LiveEvent;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

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

fn event(seq: u64) -> web::Bytes {
    let json = serde_json::to_string(&LiveEvent { seq }).unwrap_or_default();
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
    let events = state.store.subscribe();
    let revocations = state.revocations.subscribe();
    let head = match state.store.announced_head(&ws) {
        Some(head) => head,
        None => state.store.head(&ws).await?,
    };
    state
        .metrics
        .live_connections
        .fetch_add(1, Ordering::Relaxed);
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
    let first = Some(event(head));
    let body = stream::unfold(
        (events, revocations, first, conn),
        |(mut events, mut revocations, mut first, conn)| async move {
            if let Some(e) = first.take() {
                return Some((
                    Ok::<_, actix_web::Error>(e),
                    (events, revocations, first, conn),
                ));
            }
            loop {
                tokio::select! {
                    msg = events.recv() => match msg {
                        Ok((w, seq)) if w == conn.ws => {
                            return Some((Ok(event(seq)), (events, revocations, first, conn)))
                        }
                        Ok(_) => continue,
                        Err(RecvError::Lagged(_)) => {
                            // Missed events: tell the client to pull (it pulls from its own seq).
                            let head = conn.state.store.announced_head(&conn.ws).unwrap_or(0);
                            return Some((Ok(event(head)), (events, revocations, first, conn)));
                        }
                        Err(RecvError::Closed) => return None,
                    },
                    revoked = revocations.recv() => match revoked {
                        Ok(w) if w != conn.ws => continue,
                        Err(RecvError::Closed) => return None,
                        _ => {
                            if !conn.still_valid().await {
                                return None;
                            }
                        }
                    },
                    _ = tokio::time::sleep(Duration::from_secs(conn.state.config.live_keepalive_secs.max(1))) => {
                        if !conn.still_valid().await {
                            return None;
                        }
                        return Some((Ok(web::Bytes::from_static(b": keepalive\n\n")), (events, revocations, first, conn)));
                    }
                }
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
