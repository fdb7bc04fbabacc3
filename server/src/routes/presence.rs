//! Presence (`PUT …/presence`): who has the workspace open, kept in memory for a few seconds
//! and shared with the other server processes (`crate::presence`).

use super::*;

/// `PUT …/presence`: this device has the workspace open (any role). Shared with every process,
/// never stored; 429 when the workspace already shows the most devices it may.
pub(super) async fn put_presence(
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
