//! Whole-workspace backups: download (owner) and import as a new workspace (anonymous,
//! rate-limited per address).

use super::*;

pub(super) async fn download_backup(
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

pub(super) async fn import_backup(
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
