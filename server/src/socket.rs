//! The push socket: `GET /v1/workspaces/{id}/socket`, a WebSocket that carries pushes with the
//! same bodies, checks and replies as `POST …/updates` (frames: [`shared_schema::socket`];
//! `docs/protocol.md`, "Push socket"). It exists for latency: a browser worker's `fetch` spends
//! milliseconds before its request leaves, a message on an open socket well under one.
//!
//! What a hostile client gets: the upgrade needs a valid write token (offered as the
//! `hearth.bearer.<JWT>` subprotocol; a bad one gets the same HTTP error as a push, before any
//! socket exists) and a free slot of the token's capped sockets. Every push re-checks the token
//! (a revoked one gets `token_revoked` replies, and the socket is closed when this process
//! revokes it) and is charged to the same rate limits as an HTTP push. A frame larger than the
//! push body limit closes the socket; a text frame or an undecodable one closes it with a reason.
//! A socket that answers no ping within two keepalive intervals, or does not take a reply within
//! them, is closed, and every socket when
//! the server stops (after the push it is answering).

use crate::app::AppState;
use crate::auth::require_write;
use crate::error::ApiError;
use crate::limits::{client_addr, too_many, StreamSlot};
use crate::routes::{charge, store_push, workspace_id};
use actix_web::http::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use shared_schema::socket::{self, PROTOCOL};
use shared_schema::ErrorCode;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// Bytes a frame may hold past the push body limit (its id), and a margin so that a body a little
/// over the limit gets a `payload_too_large` reply rather than a closed socket.
const FRAME_SLACK: usize = 64 * 1024;

/// One open socket: whose it is and what it may do.
struct Conn {
    ws: String,
    header: String,
    addr: String,
    _slot: StreamSlot,
}

/// The upgrade handler.
pub async fn socket(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let ws = workspace_id(&path)?;
    let offer = req
        .headers()
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let header = socket::token_in_offer(offer).map(|t| format!("Bearer {t}"));
    let claims = state
        .auth
        .verify(header.as_deref(), &ws, state.store.as_ref())
        .await?;
    let addr = client_addr(&req, state.config.trust_forwarded_for);
    charge(&state, &addr, &ws, &claims.sub)?;
    require_write(&claims)?;
    let slot = state
        .sockets
        .open(&claims.sub, state.config.max_streams_per_token)
        .ok_or_else(|| too_many("(push sockets) for this token: close other tabs", 5))?;
    let (mut res, session, messages) = actix_ws::handle(&req, payload)
        .map_err(|_| ApiError::bad_request("expected a WebSocket upgrade"))?;
    res.headers_mut()
        .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(PROTOCOL));
    let max = state.config.max_update_bytes + 4 + FRAME_SLACK;
    let messages = messages
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    let conn = Conn {
        ws,
        header: header.unwrap_or_default(),
        addr,
        _slot: slot,
    };
    actix_web::rt::spawn(serve(state, conn, session, messages));
    Ok(res)
}

fn reason(code: CloseCode, text: &str) -> Option<CloseReason> {
    Some(CloseReason {
        code,
        description: Some(text.to_owned()),
    })
}

/// Answers the socket's pushes in order until it closes, its token is revoked, or it goes quiet.
async fn serve(
    state: web::Data<AppState>,
    conn: Conn,
    mut session: Session,
    mut messages: AggregatedMessageStream,
) {
    let keepalive = Duration::from_secs(state.config.live_keepalive_secs.max(1));
    let mut revocations = state.revocations.subscribe();
    let mut stopping = state.stopping.subscribe();
    let mut ticks = tokio::time::interval(keepalive);
    let mut heard = Instant::now();
    let close = loop {
        tokio::select! {
            msg = messages.recv() => {
                heard = Instant::now();
                match msg {
                    Some(Ok(AggregatedMessage::Binary(frame))) => {
                        let Some(reply) = answer(&state, &conn, &frame).await else {
                            break reason(CloseCode::Invalid, "a push frame needs a 4-byte id");
                        };
                        // A client that stops reading its replies loses its socket.
                        let sent = tokio::time::timeout(keepalive * 2, session.binary(reply)).await;
                        if !matches!(sent, Ok(Ok(()))) {
                            return;
                        }
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {}
                    Some(Ok(AggregatedMessage::Text(_))) => {
                        break reason(CloseCode::Unsupported, "hearth.v1 frames are binary");
                    }
                    Some(Ok(AggregatedMessage::Close(_))) | None => break None,
                    Some(Err(_)) => {
                        break reason(CloseCode::Size, "a frame was larger than a push may be");
                    }
                }
            }
            revoked = revocations.recv() => match revoked {
                Ok(w) if w != conn.ws => {}
                Err(RecvError::Closed) => break None,
                _ => {
                    let store = state.store.as_ref();
                    if state.auth.verify(Some(&conn.header), &conn.ws, store).await.is_err() {
                        break reason(CloseCode::Policy, "the token no longer opens this workspace");
                    }
                }
            },
            _ = stopping.wait_for(|s| *s) => {
                break reason(CloseCode::Away, "the server is stopping; reconnect");
            }
            _ = ticks.tick() => {
                if heard.elapsed() > keepalive * 2 {
                    break None;
                }
                if session.ping(b"").await.is_err() {
                    return;
                }
            }
        }
    };
    let _ = session.close(close).await;
}

/// The reply frame to one request frame; `None` when the frame has no id to answer.
async fn answer(state: &AppState, conn: &Conn, frame: &[u8]) -> Option<Vec<u8>> {
    let (id, body) = socket::decode_request(frame).ok()?;
    let reply = match push(state, conn, body).await {
        Ok(json) => socket::encode_reply(id, 200, &json),
        Err(e) => socket::encode_reply(id, e.status(), &e.body()),
    };
    Some(reply)
}

/// One push, checked as `POST …/updates` checks it.
async fn push(state: &AppState, conn: &Conn, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let store = state.store.as_ref();
    let claims = state
        .auth
        .verify(Some(&conn.header), &conn.ws, store)
        .await?;
    charge(state, &conn.addr, &conn.ws, &claims.sub)?;
    require_write(&claims)?;
    if body.len() > state.config.max_update_bytes {
        return Err(ApiError::too_large(state.config.max_update_bytes));
    }
    let _in_flight = state.metrics.push_started();
    let reply = store_push(state, conn.ws.clone(), claims, body).await?;
    serde_json::to_vec(&reply)
        .map_err(|_| ApiError::new(ErrorCode::StorageUnavailable, "could not encode the reply"))
}
