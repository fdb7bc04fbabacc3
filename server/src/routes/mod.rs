//! The `/v1` routes (design §3–5). Each handler: parse the path, verify the token and its role,
//! read a bounded body, call storage, audit, reply. Errors are [`ApiError`]s.
//!
//! - here: [`configure`] (the route table) and what every handler shares — the workspace id of
//!   the path, the token check ([`authorize`]), rate limits, bounded bodies, the audit log, and
//!   revocations reaching live streams here and on the other processes ([`revoked`])
//! - `workspaces` — create, read, delete
//! - `updates` — push, pull, snapshots
//! - `tokens` — share links and the owner token
//! - `backups` — download and import
//! - `presence` — who has the workspace open

mod backups;
mod presence;
mod tokens;
mod updates;
mod workspaces;

use crate::app::AppState;
use crate::auth::{now_secs, require_master, require_write};
use crate::error::ApiError;
use crate::limits::{client_addr, too_many};
use crate::live;
use crate::store::{PushRequest, StoreError};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::Digest;
use shared_schema::api::{
    CreatedWorkspace, MintTokenRequest, MintedToken, PresenceRequest, PushReply, RotateRequest,
    SnapshotReply, TokenList, HEADER_HEAD_SEQ, HEADER_MORE, PRESENCE_MAX, PRESENCE_TTL_SECS,
};
use shared_schema::backup::{self, BackupHeader};
use shared_schema::frame;
use shared_schema::{Claims, ErrorCode, Role};
use std::sync::atomic::Ordering;

use backups::*;
use presence::*;
use tokens::*;
pub(crate) use updates::*;
pub use workspaces::*;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/workspaces", web::post().to(create_workspace))
        .route("/v1/workspaces/import", web::post().to(import_backup))
        .route("/v1/workspaces/{id}", web::get().to(workspace_info))
        .route("/v1/workspaces/{id}", web::delete().to(delete_workspace))
        .route("/v1/workspaces/{id}/updates", web::post().to(push))
        .route("/v1/workspaces/{id}/updates", web::get().to(pull))
        .route("/v1/workspaces/{id}/snapshot", web::put().to(put_snapshot))
        .route("/v1/workspaces/{id}/live", web::get().to(live::live))
        .route(
            "/v1/workspaces/{id}/socket",
            web::get().to(crate::socket::socket),
        )
        .route("/v1/workspaces/{id}/presence", web::put().to(put_presence))
        .route("/v1/workspaces/{id}/tokens", web::post().to(mint_token))
        .route("/v1/workspaces/{id}/tokens", web::get().to(list_tokens))
        .route(
            "/v1/workspaces/{id}/tokens/rotate",
            web::post().to(rotate_master),
        )
        .route(
            "/v1/workspaces/{id}/tokens/{jti}",
            web::delete().to(revoke_token),
        )
        .route(
            "/v1/workspaces/{id}/keys",
            web::put().to(crate::keys::put_keys),
        )
        .route("/v1/workspaces/{id}/backup", web::get().to(download_backup));
}

/// Parses a workspace id from the path (a UUID), else 404.
pub fn workspace_id(raw: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::new(ErrorCode::NotFound, "no such workspace"))
}

/// Verifies the request's bearer token for workspace `ws`.
pub async fn verify(state: &AppState, req: &HttpRequest, ws: &str) -> Result<Claims, ApiError> {
    let header = req
        .headers()
        .get("Authorization")
        .and_then(|h| h.to_str().ok());
    state.auth.verify(header, ws, state.store.as_ref()).await
}

/// What a route needs of the token.
#[derive(Clone, Copy)]
pub(crate) enum Need {
    Read,
    Write,
    Master,
}

/// Parses the workspace id of the path, verifies the token for it and checks its role.
pub(crate) async fn authorize(
    state: &AppState,
    req: &HttpRequest,
    raw: &str,
    need: Need,
) -> Result<(String, Claims), ApiError> {
    let ws = workspace_id(raw)?;
    let claims = verify(state, req, &ws).await?;
    rate_limit(state, req, &ws, &claims.sub)?;
    match need {
        Need::Read => {}
        Need::Write => require_write(&claims)?,
        Need::Master => require_master(&claims)?,
    }
    Ok((ws, claims))
}

/// After a revoke, rotation or deletion on this process: forgets the cached states of `tokens`
/// (every one when empty), has this process's live streams and push sockets of `ws` check their
/// token now, and tells the other processes on the database to do the same.
pub(crate) async fn revoked(state: &AppState, ws: &str, tokens: &[String]) {
    state.auth.invalidate(tokens);
    let _ = state.revocations.send(ws.to_owned());
    if let Err(e) = state.store.share_revocation(ws, tokens).await {
        tracing::warn!(error = %e, "could not tell the other server processes of a revocation; their live streams check at their next keepalive");
    }
}

/// Applies the revocations other processes share (see [`revoked`]) until the store stops.
pub async fn follow_revocations(
    state: web::Data<AppState>,
    mut shared: tokio::sync::broadcast::Receiver<crate::store::Revocation>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match shared.recv().await {
            Ok(r) => {
                state.auth.invalidate(&r.tokens);
                let _ = state.revocations.send(r.ws);
            }
            // Some were missed: no cached state can be trusted.
            Err(RecvError::Lagged(_)) => state.auth.invalidate(&[]),
            Err(RecvError::Closed) => return,
        }
    }
}

/// Largest JSON body of the small routes (create, mint, rotate).
pub(super) const SMALL_BODY: usize = 16 * 1024;

/// Charges an authenticated request to its token's, workspace's and address's rate limits.
pub fn rate_limit(
    state: &AppState,
    req: &HttpRequest,
    ws: &str,
    token: &str,
) -> Result<(), ApiError> {
    let addr = client_addr(req, state.config.trust_forwarded_for);
    charge(state, &addr, ws, token)
}

/// Charges one request from `addr` with `token` on `ws` to the three limits.
pub(crate) fn charge(state: &AppState, addr: &str, ws: &str, token: &str) -> Result<(), ApiError> {
    state
        .limits
        .token
        .check(token)
        .map_err(|s| too_many("for this token", s))?;
    state
        .limits
        .workspace
        .check(ws)
        .map_err(|s| too_many("for this workspace", s))?;
    state
        .limits
        .addr
        .check(addr)
        .map_err(|s| too_many("from this address", s))
}

/// Charges an anonymous request (create, import) to its address's limit.
pub(super) fn anonymous_limit(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let addr = client_addr(req, state.config.trust_forwarded_for);
    state
        .limits
        .anonymous
        .check(&addr)
        .map_err(|s| too_many("to create or import workspaces from this address", s))
}

/// Reads a body of at most `limit` bytes within the body deadline: 413 past the limit (checked
/// on `Content-Length` first, without reserving memory for it), 408 past the deadline.
pub(crate) async fn read_body(
    state: &AppState,
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get("Content-Length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    let deadline = std::time::Duration::from_secs(state.config.body_timeout_secs.max(1));
    let read = async {
        let mut body = Vec::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| ApiError::bad_request("the request body was cut off"))?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::too_large(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(deadline, read).await.map_err(|_| {
        ApiError::new(
            ErrorCode::RequestTimeout,
            format!(
                "the request body did not arrive within {} s; retry",
                deadline.as_secs()
            ),
        )
    })?
}

pub(crate) async fn audit(
    state: &AppState,
    token: Option<&str>,
    action: &str,
    ws: &str,
    bytes: usize,
) {
    if let Err(e) = state
        .store
        .audit(token, action, Some(ws), bytes as i64, now_secs())
        .await
    {
        tracing::warn!(error = %e, action, "audit log write failed");
    }
}
