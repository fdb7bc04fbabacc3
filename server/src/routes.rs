//! The `/v1` routes (design §3–5). Each handler: parse the path, verify the token and its role,
//! read a bounded body, call storage, audit, reply. Errors are [`ApiError`]s.

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
const SMALL_BODY: usize = 16 * 1024;

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
fn anonymous_limit(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    /// A client-chosen id (the id of a workspace that already exists offline on the device).
    workspace_id: Option<String>,
    /// A client-chosen secret (16–128 characters) that makes the create idempotent: repeating
    /// it with the same id and secret returns the same master token.
    creation_secret: Option<String>,
}

/// The id of the master token a create with `secret` mints: only a holder of the secret can
/// derive it, so only they can claim the id again after a lost reply.
pub fn creation_token_id(ws: &str, secret: &str) -> String {
    let digest = sha2::Sha256::new()
        .chain_update(b"hearth-create\0")
        .chain_update(ws.as_bytes())
        .chain_update(b"\0")
        .chain_update(secret.as_bytes())
        .finalize();
    hex::encode(&digest[..16])
}

async fn create_workspace(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    anonymous_limit(&state, &req)?;
    let body = read_body(&state, &req, payload, SMALL_BODY).await?;
    let request: CreateRequest = if body.is_empty() {
        CreateRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "expected {{\"workspace_id\": UUID, \"creation_secret\": TEXT}} or no body: {e}"
            ))
        })?
    };
    let ws = match &request.workspace_id {
        Some(id) => uuid::Uuid::parse_str(id)
            .map_err(|_| ApiError::bad_request("workspace_id must be a UUID"))?
            .to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    if let Some(secret) = &request.creation_secret {
        if !(16..=128).contains(&secret.len()) {
            return Err(ApiError::bad_request(
                "creation_secret must be 16–128 characters",
            ));
        }
    }
    state.store.check_total_quota(1).await?;
    let (mut row, _) = state.auth.mint(&ws, Role::Master, None, "owner")?;
    if let Some(secret) = &request.creation_secret {
        row.id = creation_token_id(&ws, secret);
    }
    match state.store.create_workspace(&ws, &row, now_secs()).await {
        Ok(()) => {}
        // A retry after a lost reply: the same secret names the same master token.
        Err(StoreError::Conflict(m)) => {
            let again = match &request.creation_secret {
                Some(_) => state.store.get_token(&row.id).await?,
                None => None,
            };
            match again {
                Some(stored)
                    if stored.workspace_id == ws
                        && stored.role == Role::Master
                        && stored.revoked_at.is_none() =>
                {
                    row = stored
                }
                _ => return Err(ApiError::new(ErrorCode::Conflict, m)),
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(HttpResponse::Created().json(CreatedWorkspace {
        workspace_id: ws,
        master_token: state.auth.sign(&row)?,
    }))
}

async fn workspace_info(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (ws, claims) = authorize(&state, &req, &path, Need::Read).await?;
    let head = state.store.head(&ws).await?;
    let keys = crate::keys::keys_for(&state, &ws, &claims.sub).await?;
    Ok(HttpResponse::Ok().json(shared_schema::api::JoinInfo {
        workspace_id: ws,
        role: claims.role,
        head_seq: head,
        expires_at: claims.exp,
        token_id: claims.sub,
        keys,
    }))
}

async fn delete_workspace(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (ws, claims) = authorize(&state, &req, &path, Need::Master).await?;
    state.store.delete_workspace(&ws, now_secs()).await?;
    revoked(&state, &ws, &[]).await;
    audit(&state, Some(&claims.sub), "delete", &ws, 0).await;
    Ok(HttpResponse::NoContent().finish())
}

async fn push(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (ws, claims) = authorize(&state, &req, &path, Need::Write).await?;
    let _in_flight = state.metrics.push_started();
    let body = read_body(&state, &req, payload, state.config.max_update_bytes).await?;
    Ok(HttpResponse::Ok().json(store_push(&state, ws, claims, &body).await?))
}

/// Stores one push batch of a verified writer: decode, check, quota, store (durable before it
/// returns). `POST …/updates` and the push socket ([`crate::socket`]) both end here.
pub(crate) async fn store_push(
    state: &AppState,
    ws: String,
    claims: Claims,
    body: &[u8],
) -> Result<PushReply, ApiError> {
    let records = frame::decode_push_batch(body)
        .map_err(|e| ApiError::new(ErrorCode::MalformedFrame, e.to_string()))?;
    shared_schema::log::check_batch(&records)
        .map_err(|e| ApiError::new(ErrorCode::MalformedFrame, e.to_string()))?;
    state
        .store
        .check_total_quota(i64::try_from(body.len()).unwrap_or(i64::MAX))
        .await?;
    let n = records.len() as u64;
    let reply = state
        .store
        .push(PushRequest {
            ws,
            token_id: claims.sub,
            records,
            body_bytes: i64::try_from(body.len()).unwrap_or(i64::MAX),
            now: now_secs(),
        })
        .await?;
    state.metrics.updates_stored.fetch_add(n, Ordering::Relaxed);
    Ok(reply)
}

#[derive(Deserialize)]
struct PullQuery {
    #[serde(default)]
    after: u64,
    limit_bytes: Option<usize>,
}

/// The `--test-tamper-pulls` hook (builds with the `test-hooks` feature only): the update with
/// its last byte flipped, so the chain no longer matches.
#[cfg(feature = "test-hooks")]
fn tamper(
    config: &crate::config::Config,
    kind: frame::PullRecordKind,
    bytes: &[u8],
) -> Option<Vec<u8>> {
    if !config.test_tamper_pulls || kind != frame::PullRecordKind::Update {
        return None;
    }
    let mut out = bytes.to_vec();
    if let Some(b) = out.last_mut() {
        *b ^= 0x01;
    }
    Some(out)
}

/// The `--test-fork-at-seq` hook (builds with the `test-hooks` feature only): `records` as a
/// forked server shows them to members — the update at `at` replaced by a replay of the one
/// before, every chain value from there recomputed over the forked log.
#[cfg(feature = "test-hooks")]
async fn fork(
    state: &AppState,
    ws: &str,
    at: u64,
    records: &mut [shared_schema::frame::PullRecord],
) -> Result<(), ApiError> {
    let Some(last) = records.last().map(|r| r.seq).filter(|s| *s >= at) else {
        return Ok(());
    };
    let log = state
        .store
        .pull(ws, at - 2, 1 << 30, shared_schema::log::MAX_PAGE_RECORDS)
        .await?
        .records;
    let Some(before) = log.iter().find(|r| r.seq == at - 1) else {
        return Ok(());
    };
    let (mut chain, replay) = (before.chain, before.bytes.clone());
    let mut view = std::collections::HashMap::new();
    for r in log.iter().filter(|r| r.seq >= at && r.seq <= last) {
        let bytes = if r.seq == at {
            replay.clone()
        } else {
            r.bytes.clone()
        };
        chain = chain.next(&bytes);
        view.insert(r.seq, (chain, bytes));
    }
    for r in records.iter_mut() {
        if let Some((c, b)) = view.remove(&r.seq) {
            r.chain = c;
            r.bytes = b;
        }
    }
    Ok(())
}

async fn pull(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PullQuery>,
) -> Result<HttpResponse, ApiError> {
    let (ws, claims) = authorize(&state, &req, &path, Need::Read).await?;
    let limit = query
        .limit_bytes
        .unwrap_or(state.config.max_pull_bytes)
        .clamp(1, state.config.max_pull_bytes);
    #[cfg_attr(not(feature = "test-hooks"), allow(unused_mut))]
    let mut page = state
        .store
        .pull(
            &ws,
            query.after,
            limit,
            shared_schema::log::MAX_PAGE_RECORDS,
        )
        .await?;
    #[cfg(feature = "test-hooks")]
    if claims.role != Role::Master {
        if let Some(at) = state.config.test_fork_at_seq.filter(|at| *at >= 2) {
            fork(&state, &ws, at, &mut page.records).await?;
        }
    }
    #[cfg(not(feature = "test-hooks"))]
    let _ = claims;
    let mut body = Vec::new();
    for r in &page.records {
        #[cfg(feature = "test-hooks")]
        let tampered = tamper(&state.config, r.kind, &r.bytes);
        #[cfg(feature = "test-hooks")]
        let bytes = tampered.as_deref().unwrap_or(&r.bytes);
        #[cfg(not(feature = "test-hooks"))]
        let bytes = &r.bytes;
        frame::encode_pull_record(&mut body, r.kind, r.seq, &r.chain, bytes)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    }
    let mut res = HttpResponse::Ok();
    res.content_type("application/octet-stream")
        .insert_header((HEADER_HEAD_SEQ, page.head_seq.to_string()));
    if page.more {
        res.insert_header((HEADER_MORE, "1"));
    }
    Ok(res.body(body))
}

#[derive(Deserialize)]
struct SnapshotQuery {
    covers: u64,
}

async fn put_snapshot(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<SnapshotQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Only the owner's device may replace history for every new device (a write token could
    // otherwise upload a garbage snapshot that new members start from).
    let (ws, claims) = authorize(&state, &req, &path, Need::Master).await?;
    let body = read_body(&state, &req, payload, state.config.max_snapshot_bytes).await?;
    if body.is_empty() {
        return Err(ApiError::bad_request("the snapshot is empty"));
    }
    state
        .store
        .check_total_quota(i64::try_from(body.len()).unwrap_or(i64::MAX))
        .await?;
    let retain_before = now_secs() - i64::try_from(state.config.retention_secs).unwrap_or(0);
    state
        .store
        .put_snapshot(&ws, query.covers, &body, now_secs(), retain_before)
        .await?;
    audit(&state, Some(&claims.sub), "snapshot", &ws, body.len()).await;
    Ok(HttpResponse::Ok().json(SnapshotReply {
        covers: query.covers,
        size: body.len() as u64,
    }))
}

/// `PUT …/presence`: this device has the workspace open (any role). Shared with every process,
/// never stored; 429 when the workspace already shows the most devices it may.
async fn put_presence(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (ws, claims) = authorize(&state, &req, &path, Need::Read).await?;
    let body = read_body(&state, &req, payload, 1024).await?;
    let request: PresenceRequest = serde_json::from_slice(&body)
        .ok()
        .filter(PresenceRequest::is_valid)
        .ok_or_else(|| {
            ApiError::bad_request(
                "expected {\"device\":\"1-40 of [A-Za-z0-9-]\",\"note\":null|\"at most 64 bytes\"}",
            )
        })?;
    if !state.presence.has_room(&ws, &request.device) {
        return Err(too_many(
            &format!("(presence): this notebook already shows {PRESENCE_MAX} devices"),
            PRESENCE_TTL_SECS,
        ));
    }
    let beat = crate::presence::heartbeat(&ws, &request.device, claims.role, request.note);
    let json = serde_json::to_string(&beat)
        .map_err(|_| ApiError::bad_request("presence could not be encoded"))?;
    state.store.share_presence(&json).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn mint_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (ws, claims) = authorize(&state, &req, &path, Need::Master).await?;
    let body = read_body(&state, &req, payload, SMALL_BODY).await?;
    let request: MintTokenRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"role\":\"read\"|\"write\",\"expires_in\":SECONDS,\"label\":TEXT}}: {e}"
        ))
    })?;
    if request.role == Role::Master {
        return Err(ApiError::bad_request(
            "mint read or write tokens; use tokens/rotate for a new master token",
        ));
    }
    if request.label.len() > 200 {
        return Err(ApiError::bad_request("labels are at most 200 bytes"));
    }
    let (row, token) = state
        .auth
        .mint(&ws, request.role, request.expires_in, &request.label)?;
    state.store.insert_token(&row).await?;
    audit(&state, Some(&claims.sub), "mint", &ws, 0).await;
    Ok(HttpResponse::Created().json(MintedToken {
        id: row.id,
        token,
        role: row.role,
        expires_at: row.expires_at.map(|e| e as u64),
    }))
}

async fn list_tokens(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (ws, _) = authorize(&state, &req, &path, Need::Master).await?;
    let tokens = state.store.list_tokens(&ws).await?;
    Ok(HttpResponse::Ok().json(TokenList { tokens }))
}

async fn revoke_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (raw, jti) = path.into_inner();
    let (ws, claims) = authorize(&state, &req, &raw, Need::Master).await?;
    if !state.store.revoke_token(&ws, &jti, now_secs()).await? {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "no such token in this workspace",
        ));
    }
    revoked(&state, &ws, &[jti]).await;
    audit(&state, Some(&claims.sub), "revoke", &ws, 0).await;
    Ok(HttpResponse::NoContent().finish())
}

async fn rotate_master(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let ws = workspace_id(&path)?;
    let body = read_body(&state, &req, payload, SMALL_BODY).await?;
    let request: RotateRequest = if body.is_empty() {
        RotateRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|_| ApiError::bad_request("the body must be {\"rotation_id\": \"…\"}"))?
    };
    if let Some(id) = &request.rotation_id {
        if id.is_empty() || id.len() > 64 {
            return Err(ApiError::bad_request("rotation_id must be 1–64 characters"));
        }
    }
    let claims = match authorize(&state, &req, &path, Need::Master).await {
        Ok((_, claims)) => claims,
        Err(e) if e.code == ErrorCode::TokenRevoked => {
            return replay_rotation(&state, &req, &ws, &request, e).await
        }
        Err(e) => return Err(e),
    };
    let (mut row, _) = state.auth.mint(&ws, Role::Master, None, "owner")?;
    if let Some(rotation_id) = &request.rotation_id {
        row.id = shared_schema::claims::rotation_token_id(&claims.sub, rotation_id);
    }
    // One transaction checks the caller is still the master and swaps the tokens: of two
    // concurrent rotations, the second finds its token revoked by the first.
    match state.store.rotate(&ws, &claims.sub, &row, now_secs()).await {
        Ok(()) => {}
        Err(StoreError::Revoked) => {
            state.auth.invalidate(std::slice::from_ref(&claims.sub));
            let e = ApiError::from(StoreError::Revoked);
            return replay_rotation(&state, &req, &ws, &request, e).await;
        }
        Err(e) => return Err(e.into()),
    }
    revoked(&state, &ws, &[]).await;
    Ok(HttpResponse::Created().json(MintedToken {
        id: row.id.clone(),
        token: state.auth.sign(&row)?,
        role: Role::Master,
        expires_at: None,
    }))
}

/// A client that lost the reply repeats its rotation with the token it rotated (revoked by that
/// very rotation): it gets the same new token again, and nothing else.
async fn replay_rotation(
    state: &AppState,
    req: &HttpRequest,
    ws: &str,
    request: &RotateRequest,
    refused: ApiError,
) -> Result<HttpResponse, ApiError> {
    let Some(rotation_id) = &request.rotation_id else {
        return Err(refused);
    };
    let header = req
        .headers()
        .get("Authorization")
        .and_then(|h| h.to_str().ok());
    let old = state.auth.decode(header, ws)?;
    let id = shared_schema::claims::rotation_token_id(&old.sub, rotation_id);
    match state.store.get_token(&id).await? {
        Some(row)
            if old.role == Role::Master && row.workspace_id == ws && row.revoked_at.is_none() =>
        {
            Ok(HttpResponse::Created().json(MintedToken {
                id: row.id.clone(),
                token: state.auth.sign(&row)?,
                role: Role::Master,
                expires_at: None,
            }))
        }
        _ => Err(refused),
    }
}

async fn download_backup(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (ws, claims) = authorize(&state, &req, &path, Need::Master).await?;
    let permit = state.backups.clone().try_acquire_owned().map_err(|_| {
        let mut e = ApiError::new(
            ErrorCode::RateLimited,
            "the server is writing other backups; retry in a few seconds",
        );
        e.retry_after = Some(5);
        e
    })?;
    // One consistent read, streamed: memory stays at a few records whatever the size.
    let reader = state.store.backup(&ws).await?;
    let header = BackupHeader {
        workspace_id: ws.clone(),
        created_at: now_secs() as u64,
        head_seq: reader.head_seq,
        chain_head: reader.chain_head,
        source: "server".into(),
        keys: None,
    };
    let head = backup::encode(&header, &[])
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    audit(&state, Some(&claims.sub), "backup", &ws, 0).await;
    let records =
        futures_util::stream::unfold((reader.records, permit), |(mut rx, permit)| async move {
            let item = rx.recv().await?;
            let chunk = item.map_err(|e| {
                tracing::error!(error = %e, "backup read failed; the download is cut short");
                actix_web::error::ErrorInternalServerError("backup read failed")
            });
            let chunk = chunk.and_then(|r| {
                let mut out = Vec::with_capacity(frame::PULL_HEADER_LEN + r.bytes.len());
                frame::encode_pull_record(&mut out, r.kind, r.seq, &r.chain, &r.bytes)
                    .map_err(actix_web::error::ErrorInternalServerError)?;
                Ok(web::Bytes::from(out))
            });
            Some((chunk, (rx, permit)))
        });
    let body =
        futures_util::stream::once(
            async move { Ok::<_, actix_web::Error>(web::Bytes::from(head)) },
        )
        .chain(records);
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"hearth-{ws}.hearth\""),
        ))
        .streaming(body))
}

async fn import_backup(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    anonymous_limit(&state, &req)?;
    if let Some(expected) = &state.config.import_token {
        let sent = req
            .headers()
            .get("Authorization")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        let ok = sent.is_some_and(|t| {
            sha2::Sha256::digest(t.as_bytes()) == sha2::Sha256::digest(expected.as_bytes())
        });
        if !ok {
            return Err(ApiError::new(
                ErrorCode::MissingToken,
                "this server imports backups only with its import token: ask the operator",
            ));
        }
    }
    let body = read_body(&state, &req, payload, state.config.max_snapshot_bytes).await?;
    let parsed = backup::decode(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    state
        .store
        .check_total_quota(i64::try_from(body.len()).unwrap_or(i64::MAX))
        .await?;
    if let Some(limit) = state.config.store_options().workspace_quota {
        let size: i64 = parsed.records.iter().map(|r| r.bytes.len() as i64).sum();
        if size > limit {
            return Err(StoreError::Quota {
                scope: "workspace",
                used: 0,
                adding: size,
                limit,
            }
            .into());
        }
    }
    let ws = uuid::Uuid::new_v4().to_string();
    let (row, token) = state.auth.mint(&ws, Role::Master, None, "owner")?;
    state.store.import(&ws, &row, &parsed, now_secs()).await?;
    Ok(HttpResponse::Created().json(CreatedWorkspace {
        workspace_id: ws,
        master_token: token,
    }))
}
