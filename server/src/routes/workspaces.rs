//! Workspaces: create (`POST /v1/workspaces`, idempotent under the client's creation secret),
//! read the head (`GET /v1/workspaces/{id}`) and delete (`DELETE`, owner).

use super::*;

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

pub(super) async fn create_workspace(
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

pub(super) async fn workspace_info(
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

pub(super) async fn delete_workspace(
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
