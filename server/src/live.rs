//! The live channel: `GET /v1/workspaces/{id}/live` as Server-Sent Events. The first event carries
//! the current head; each stored update sends `data: {"seq":N}`; a comment every 15 s keeps
//! proxies from closing the stream. Readers use `fetch` with the bearer header (not EventSource),
//! so the token never goes into a URL.

use crate::app::AppState;
use crate::error::ApiError;
use crate::routes::{verify, workspace_id};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::stream;
use shared_schema::api::LiveEvent;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

struct Conn {
    state: web::Data<AppState>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.state
            .metrics
            .live_connections
            .fetch_sub(1, Ordering::Relaxed);
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
    verify(&state, &req, &ws).await?;
    let rx = state.store.subscribe();
    let head = state.store.head(&ws).await?;
    state
        .metrics
        .live_connections
        .fetch_add(1, Ordering::Relaxed);
    let conn = Conn {
        state: state.clone(),
    };
    let first = Some(event(head));
    let body = stream::unfold(
        (rx, first, conn, ws),
        |(mut rx, mut first, conn, ws)| async move {
            if let Some(e) = first.take() {
                return Some((Ok::<_, actix_web::Error>(e), (rx, first, conn, ws)));
            }
            loop {
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Ok((w, seq)) if w == ws => return Some((Ok(event(seq)), (rx, first, conn, ws))),
                        Ok(_) => continue,
                        Err(RecvError::Lagged(_)) => {
                            // Missed events: tell the client to pull (it pulls from its own seq).
                            let head = conn.state.store.head(&ws).await.unwrap_or(0);
                            return Some((Ok(event(head)), (rx, first, conn, ws)));
                        }
                        Err(RecvError::Closed) => return None,
                    },
                    _ = tokio::time::sleep(Duration::from_secs(15)) => {
                        return Some((Ok(web::Bytes::from_static(b": keepalive\n\n")), (rx, first, conn, ws)));
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
