//! The log: push (`POST …/updates`; [`store_push`] is the push socket's path too), pull
//! (`GET …/updates`, pages the client verifies against its chain — with the `test-hooks` builds'
//! tamper and fork hooks) and the owner's compaction snapshot (`PUT …/snapshot`).

use super::*;

pub(super) async fn push(
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
pub(super) struct PullQuery {
    #[serde(default)]
    after: u64,
    limit_bytes: Option<usize>,
}

/// The `--test-tamper-pulls` hook (builds with the `test-hooks` feature only): the update with
/// its last byte flipped, so the chain no longer matches.
#[cfg(feature = "test-hooks")]
pub(super) fn tamper(
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
pub(super) async fn fork(
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

pub(super) async fn pull(
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
pub(super) struct SnapshotQuery {
    covers: u64,
}

pub(super) async fn put_snapshot(
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
