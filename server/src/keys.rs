//! Wrapped epoch keys of end-to-end encrypted notebooks (`docs/protocol.md` § Encryption). The
//! owner stores, per link (token id), each epoch key wrapped under that link's secret; the join
//! call (`GET /v1/workspaces/{id}`) returns the asking token's. The server never holds a key: a
//! wrapped key is an opaque [`WRAPPED_LEN`]-byte blob, checked for shape only.

use crate::app::AppState;
use crate::error::ApiError;
use crate::routes::{audit, authorize, read_body, Need};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use shared_schema::api::{PutKeys, WrappedKey, MAX_PUT_KEYS};
use shared_schema::seal::WRAPPED_LEN;

/// Largest body of `PUT …/keys`: [`MAX_PUT_KEYS`] keys of ~330 bytes of JSON each.
const KEYS_BODY: usize = 512 * 1024;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// `PUT /v1/workspaces/{id}/keys` (master): stores wrapped keys for this workspace's links.
pub async fn put_keys(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (ws, claims) = authorize(&state, &req, &path, Need::Master).await?;
    let body = read_body(&state, &req, payload, KEYS_BODY).await?;
    let request: PutKeys = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"keys\":[{{\"token_id\":ID,\"epoch\":N,\"wrapped\":BASE64}}]}}: {e}"
        ))
    })?;
    if request.keys.len() > MAX_PUT_KEYS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_PUT_KEYS} keys per request"
        )));
    }
    let mut rows = Vec::with_capacity(request.keys.len());
    for k in request.keys {
        if k.epoch == 0 || k.token_id.is_empty() || k.token_id.len() > 200 {
            return Err(ApiError::bad_request(
                "a key needs an epoch from 1 and the id of one of this workspace's tokens",
            ));
        }
        let wrapped = b64()
            .decode(&k.wrapped)
            .ok()
            .filter(|w| w.len() == WRAPPED_LEN)
            .ok_or_else(|| {
                ApiError::bad_request(format!("a wrapped key is {WRAPPED_LEN} bytes in base64"))
            })?;
        rows.push((k.token_id, k.epoch, wrapped));
    }
    state.store.put_keys(&ws, &rows).await?;
    audit(&state, Some(&claims.sub), "keys", &ws, rows.len()).await;
    Ok(HttpResponse::NoContent().finish())
}

/// The wrapped keys of `ws` for `token_id`, as the join call returns them.
pub async fn keys_for(
    state: &AppState,
    ws: &str,
    token_id: &str,
) -> Result<Vec<WrappedKey>, ApiError> {
    Ok(state
        .store
        .keys_for(ws, token_id)
        .await?
        .into_iter()
        .map(|(epoch, wrapped)| WrappedKey {
            token_id: token_id.to_owned(),
            epoch,
            wrapped: b64().encode(wrapped),
        })
        .collect())
}
