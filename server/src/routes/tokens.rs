//! Share links and the owner token: mint, list and revoke links; rotate the owner token
//! (idempotent under the rotation's request id).

use super::*;

pub(super) async fn mint_token(
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

pub(super) async fn list_tokens(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (ws, _) = authorize(&state, &req, &path, Need::Master).await?;
    let tokens = state.store.list_tokens(&ws).await?;
    Ok(HttpResponse::Ok().json(TokenList { tokens }))
}

pub(super) async fn revoke_token(
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

pub(super) async fn rotate_master(
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
pub(super) async fn replay_rotation(
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
