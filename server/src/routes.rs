//! The `/v1` routes (design §3–5). Each handler: parse the path, verify the token and its role,
//! read a bounded body, call storage, audit, reply. Errors are [`ApiError`]s.

use crate::app::AppState;
use crate::auth::{now_secs, require_master, require_write};
use crate::error::ApiError;
use crate::live;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use shared_schema::api::{
    CreatedWorkspace, MintTokenRequest, MintedToken, RotateRequest, SnapshotReply, TokenList,
    HEADER_HEAD_SEQ, HEADER_MORE,
};
use shared_schema::backup::{self, BackupHeader};
use shared_schema::frame::{self, PullRecordKind};
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
enum Need {
    Read,
    Write,
    Master,
}

/// Parses the workspace id of the path, verifies the token for it and checks its role.
async fn authorize(
    state: &AppState,
    req: &HttpRequest,
    raw: &str,
    need: Need,
) -> Result<(String, Claims), ApiError> {
    let ws = workspace_id(raw)?;
    let claims = verify(state, req, &ws).await?;
    match need {
        Need::Read => {}
        Need::Write => require_write(&claims)?,
        Need::Master => require_master(&claims)?,
    }
    Ok((ws, claims))
}

/// Reads a body of at most `limit` bytes; 413 past it.
async fn read_body(
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
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::bad_request("the request body was cut off"))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn audit(state: &AppState, token: Option<&str>, action: &str, ws: &str, bytes: usize) {
    if let Err(e) = state
        .store
        .audit(token, action, Some(ws), bytes as i64, now_secs())
        .await
    {
        tracing::warn!(error = %e, action, "audit log write failed");
    }
}

#[derive(Deserialize, Default)]
struct CreateRequest {
    /// A client-chosen id (the id of a workspace that already exists offline on the device).
    workspace_id: Option<String>,
}

async fn create_workspace(
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: CreateRequest = if body.is_empty() {
        CreateRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "expected {{\"workspace_id\": UUID}} or no body: {e}"
            ))
        })?
    };
    let ws = match request.workspace_id {
        Some(id) => uuid::Uuid::parse_str(&id)
            .map_err(|_| ApiError::bad_request("workspace_id must be a UUID"))?
            .to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let (row, token) = state.auth.mint(&ws, Role::Master, None, "owner")?;
    state.store.create_workspace(&ws, &row, now_secs()).await?;
    audit(&state, Some(&row.id), "create", &ws, 0).await;
    Ok(HttpResponse::Created().json(CreatedWorkspace {
        workspace_id: ws,
        master_token: token,
    }))
}

async fn workspace_info(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (ws, claims) = authorize(&state, &req, &path, Need::Read).await?;
    let head = state.store.head(&ws).await?;
    Ok(HttpResponse::Ok().json(shared_schema::api::JoinInfo {
        workspace_id: ws,
        role: claims.role,
        head_seq: head,
        expires_at: claims.exp,
    }))
}

async fn delete_workspace(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (ws, claims) = authorize(&state, &req, &path, Need::Master).await?;
    state.store.delete_workspace(&ws, now_secs()).await?;
    state.auth.invalidate(&[]);
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
    let body = read_body(&req, payload, state.config.max_update_bytes).await?;
    let records = frame::decode_push_batch(&body)
        .map_err(|e| ApiError::new(ErrorCode::MalformedFrame, e.to_string()))?;
    let reply = state
        .store
        .push(&ws, &claims.sub, &records, now_secs())
        .await?;
    state
        .metrics
        .updates_stored
        .fetch_add(records.len() as u64, Ordering::Relaxed);
    audit(&state, Some(&claims.sub), "push", &ws, body.len()).await;
    Ok(HttpResponse::Ok().json(reply))
}

#[derive(Deserialize)]
struct PullQuery {
    #[serde(default)]
    after: u64,
    limit_bytes: Option<usize>,
}

async fn pull(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PullQuery>,
) -> Result<HttpResponse, ApiError> {
    let (ws, _) = authorize(&state, &req, &path, Need::Read).await?;
    let limit = query
        .limit_bytes
        .unwrap_or(state.config.max_pull_bytes)
        .clamp(1, state.config.max_pull_bytes);
    let page = state.store.pull(&ws, query.after, limit).await?;
    let mut body = Vec::new();
    for r in &page.records {
        let mut bytes = r.bytes.clone();
        if state.config.test_tamper_pulls && r.kind == PullRecordKind::Update {
            if let Some(b) = bytes.last_mut() {
                *b ^= 0x01;
            }
        }
        frame::encode_pull_record(&mut body, r.kind, r.seq, &r.chain, &bytes)
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
    let body = read_body(&req, payload, state.config.max_snapshot_bytes).await?;
    if body.is_empty() {
        return Err(ApiError::bad_request("the snapshot is empty"));
    }
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

async fn mint_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (ws, claims) = authorize(&state, &req, &path, Need::Master).await?;
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
    state.auth.invalidate(&[jti]);
    audit(&state, Some(&claims.sub), "revoke", &ws, 0).await;
    Ok(HttpResponse::NoContent().finish())
}

async fn rotate_master(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let ws = workspace_id(&path)?;
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
        // A client that lost the reply repeats its rotation with the token it rotated (revoked by
        // that very rotation): it gets the same new token again, and nothing else.
        Err(e) if e.code == ErrorCode::TokenRevoked => {
            let Some(rotation_id) = &request.rotation_id else {
                return Err(e);
            };
            let header = req
                .headers()
                .get("Authorization")
                .and_then(|h| h.to_str().ok());
            let old = state.auth.decode(header, &ws)?;
            let id = shared_schema::claims::rotation_token_id(&old.sub, rotation_id);
            return match state.store.get_token(&id).await? {
                Some(row)
                    if old.role == Role::Master
                        && row.workspace_id == ws
                        && row.revoked_at.is_none() =>
                {
                    let token = state.auth.sign(&row)?;
                    Ok(HttpResponse::Created().json(MintedToken {
                        id: row.id,
                        token,
                        role: Role::Master,
                        expires_at: None,
                    }))
                }
                _ => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    let (mut row, _) = state.auth.mint(&ws, Role::Master, None, "owner")?;
    if let Some(rotation_id) = &request.rotation_id {
        row.id = shared_schema::claims::rotation_token_id(&claims.sub, rotation_id);
    }
    let token = state.auth.sign(&row)?;
    state.store.insert_token(&row).await?;
    state
        .store
        .revoke_masters_except(&ws, &row.id, now_secs())
        .await?;
    state.auth.invalidate(&[]);
    audit(&state, Some(&claims.sub), "rotate", &ws, 0).await;
    Ok(HttpResponse::Created().json(MintedToken {
        id: row.id,
        token,
        role: Role::Master,
        expires_at: None,
    }))
}

async fn download_backup(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (ws, claims) = authorize(&state, &req, &path, Need::Master).await?;
    let page = state.store.pull(&ws, 0, usize::MAX).await?;
    let (head_seq, chain_head) = page
        .records
        .last()
        .map(|r| (r.seq, r.chain))
        .unwrap_or((0, shared_schema::Chain::genesis()));
    let header = BackupHeader {
        workspace_id: ws.clone(),
        created_at: now_secs() as u64,
        head_seq,
        chain_head,
        source: "server".into(),
    };
    let file = backup::encode(&header, &page.records)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    audit(&state, Some(&claims.sub), "backup", &ws, file.len()).await;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"hearth-{ws}.hearth\""),
        ))
        .body(file))
}

async fn import_backup(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, state.config.max_snapshot_bytes).await?;
    let parsed = backup::decode(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let ws = uuid::Uuid::new_v4().to_string();
    let (row, token) = state.auth.mint(&ws, Role::Master, None, "owner")?;
    state.store.import(&ws, &row, &parsed, now_secs()).await?;
    audit(&state, Some(&row.id), "import", &ws, body.len()).await;
    Ok(HttpResponse::Created().json(CreatedWorkspace {
        workspace_id: ws,
        master_token: token,
    }))
}
