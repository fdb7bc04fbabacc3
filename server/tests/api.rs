//! The HTTP API end to end against a real database (SQLite, or Postgres with
//! `HEARTH_TEST_DATABASE_URL`): round trips, tokens, every bad input, the live channel.

mod common;

use base64::Engine as _;
use common::*;
use futures_util::StreamExt;
use shared_schema::backup;
use shared_schema::claims::{AUDIENCE, ISSUER};
use shared_schema::frame::PullRecordKind;
use shared_schema::{Chain, Claims, Role};

#[actix_web::test]
async fn health_metrics_and_openapi_answer() -> R {
    let s = start().await?;
    let h: serde_json::Value = s
        .client
        .get(format!("{}/healthz", s.url))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(h["status"], "ok");
    let m = s
        .client
        .get(format!("{}/metrics", s.url))
        .send()
        .await?
        .text()
        .await?;
    assert!(m.contains("hearth_requests_total"), "{m}");
    assert!(m.contains("hearth_live_connections"));
    let o: serde_json::Value = s
        .client
        .get(format!("{}/v1/openapi.json", s.url))
        .send()
        .await?
        .json()
        .await?;
    assert!(o["paths"]["/v1/workspaces/{id}/updates"].is_object());
    assert!(o["paths"]["/v1/workspaces/{id}/socket"].is_object());
    Ok(())
}

#[actix_web::test]
async fn a_client_may_choose_the_workspace_id_once() -> R {
    let s = start().await?;
    let id = uuid::Uuid::new_v4().to_string();
    let url = format!("{}/v1/workspaces", s.url);
    let res = s
        .client
        .post(&url)
        .json(&serde_json::json!({ "workspace_id": id }))
        .send()
        .await?;
    assert_eq!(res.status(), 201);
    let created: shared_schema::api::CreatedWorkspace = res.json().await?;
    assert_eq!(created.workspace_id, id);
    let res = s
        .client
        .post(&url)
        .json(&serde_json::json!({ "workspace_id": id }))
        .send()
        .await?;
    expect_error(res, 409, "conflict").await?;
    let res = s
        .client
        .post(&url)
        .json(&serde_json::json!({ "workspace_id": "nope" }))
        .send()
        .await?;
    expect_error(res, 400, "bad_request").await
}

#[actix_web::test]
async fn push_then_pull_round_trips_bytes_seqs_and_chain() -> R {
    let s = start().await?;
    let ws = s.create().await?;
    let (id, t) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    let res = s
        .push(
            id,
            t,
            &[
                ("k1", b"one"),
                ("k2", b"\x00\xffgarbage is stored opaquely"),
            ],
        )
        .await?;
    assert_eq!(res.status(), 200);
    let reply: shared_schema::api::PushReply = res.json().await?;
    assert_eq!(reply.seqs, vec![1, 2]);
    assert_eq!(reply.head_seq, 2);
    let expected = Chain::genesis()
        .next(b"one")
        .next(b"\x00\xffgarbage is stored opaquely");
    assert_eq!(reply.chain, expected);
    // Re-sending a stored key returns its seq and stores nothing.
    let again: shared_schema::api::PushReply = s
        .push(id, t, &[("k2", b"different"), ("k3", b"three")])
        .await?
        .json()
        .await?;
    assert_eq!(again.seqs, vec![2, 3]);
    let (records, head, more) = s.pull(id, t, 0, None).await?;
    assert_eq!((head, more), (3, false));
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(records[1].bytes, b"\x00\xffgarbage is stored opaquely");
    let mut chain = Chain::genesis();
    for r in &records {
        chain = chain.verify_next(r.seq, &r.bytes, &r.chain)?;
    }
    let (after2, _, _) = s.pull(id, t, 2, None).await?;
    assert_eq!(after2.len(), 1);
    // Pagination by size.
    let (page, _, more) = s.pull(id, t, 0, Some(1)).await?;
    assert_eq!((page.len(), more), (1, true));
    Ok(())
}

#[actix_web::test]
async fn snapshot_compaction_and_backup_import_keep_bytes_and_chain() -> R {
    let s = start_with(|c| c.retention_secs = 0).await?;
    let ws = s.create().await?;
    let (id, t) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    for i in 0..5 {
        let key = format!("k{i}");
        let body = format!("update {i}");
        assert_eq!(
            s.push(id, t, &[(&key, body.as_bytes())]).await?.status(),
            200
        );
    }
    let before = s.pull_all(id, t).await?;
    let chain_at_3 = before[2].chain;
    // covers beyond head is a conflict and changes nothing
    let res = s
        .client
        .put(s.ws_url(id, "/snapshot?covers=9"))
        .bearer_auth(t)
        .body("snap")
        .send()
        .await?;
    expect_error(res, 409, "conflict").await?;
    let res = s
        .client
        .put(s.ws_url(id, "/snapshot?covers=3"))
        .bearer_auth(t)
        .body("SNAPSHOT-3")
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    // Updates ≤ 3 were dropped (retention 0): a pull from 0 starts with the snapshot.
    let (records, _, _) = s.pull(id, t, 0, None).await?;
    assert_eq!(records[0].kind, PullRecordKind::Snapshot);
    assert_eq!((records[0].seq, records[0].chain), (3, chain_at_3));
    assert_eq!(records[0].bytes, b"SNAPSHOT-3");
    assert_eq!(
        records[1..].iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![4, 5]
    );
    assert_eq!(records[1..], before[3..]);
    // A cursor after the snapshot gets no snapshot.
    let (later, _, _) = s.pull(id, t, 4, None).await?;
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].kind, PullRecordKind::Update);
    // Backup → import: same records, same chain.
    let res = s
        .client
        .get(s.ws_url(id, "/backup"))
        .bearer_auth(t)
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let file = res.bytes().await?.to_vec();
    let parsed = backup::decode(&file)?;
    assert_eq!(parsed.header.head_seq, 5);
    let res = s
        .client
        .post(format!("{}/v1/workspaces/import", s.url))
        .body(file)
        .send()
        .await?;
    assert_eq!(res.status(), 201);
    let imported: shared_schema::api::CreatedWorkspace = res.json().await?;
    assert_ne!(imported.workspace_id, ws.workspace_id);
    let copy = s
        .pull_all(&imported.workspace_id, &imported.master_token)
        .await?;
    assert_eq!(copy, records);
    // The import continues the chain.
    let reply: shared_schema::api::PushReply = s
        .push(
            &imported.workspace_id,
            &imported.master_token,
            &[("new", b"six")],
        )
        .await?
        .json()
        .await?;
    assert_eq!(reply.seqs, vec![6]);
    assert_eq!(reply.chain, before[4].chain.next(b"six"));
    // A damaged backup is refused.
    let res = s
        .client
        .post(format!("{}/v1/workspaces/import", s.url))
        .body("HEARTHB1garbage")
        .send()
        .await?;
    expect_error(res, 400, "bad_request").await?;
    Ok(())
}

#[actix_web::test]
async fn tokens_are_minted_listed_revoked_and_rotated() -> R {
    let s = start().await?;
    let ws = s.create().await?;
    let (id, m) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    let write = s.mint(id, m, "write", Some(3600)).await?;
    let read = s.mint(id, m, "read", None).await?;
    let w = write["token"].as_str().ok_or("token")?;
    let r = read["token"].as_str().ok_or("token")?;
    assert_eq!(s.push(id, w, &[("a", b"x")]).await?.status(), 200);
    assert_eq!(s.pull(id, r, 0, None).await?.0.len(), 1);
    // Joining (workspace info) tells the role.
    let info: serde_json::Value = s
        .client
        .get(s.ws_url(id, ""))
        .bearer_auth(r)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(info["role"], "read");
    let list: serde_json::Value = s
        .client
        .get(s.ws_url(id, "/tokens"))
        .bearer_auth(m)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(list["tokens"].as_array().map(Vec::len), Some(3));
    // Revoke the write token: it stops at once.
    let jti = write["id"].as_str().ok_or("id")?;
    let res = s
        .client
        .delete(s.ws_url(id, &format!("/tokens/{jti}")))
        .bearer_auth(m)
        .send()
        .await?;
    assert_eq!(res.status(), 204);
    expect_error(s.push(id, w, &[("b", b"y")]).await?, 401, "token_revoked").await?;
    let res = s
        .client
        .delete(s.ws_url(id, "/tokens/nope"))
        .bearer_auth(m)
        .send()
        .await?;
    expect_error(res, 404, "not_found").await?;
    // Rotate the master: the old one stops, the new one works.
    let res = s
        .client
        .post(s.ws_url(id, "/tokens/rotate"))
        .bearer_auth(m)
        .send()
        .await?;
    assert_eq!(res.status(), 201);
    let new: serde_json::Value = res.json().await?;
    let nm = new["token"].as_str().ok_or("token")?;
    expect_error(
        s.client
            .get(s.ws_url(id, "/tokens"))
            .bearer_auth(m)
            .send()
            .await?,
        401,
        "token_revoked",
    )
    .await?;
    assert_eq!(
        s.client
            .get(s.ws_url(id, "/tokens"))
            .bearer_auth(nm)
            .send()
            .await?
            .status(),
        200
    );
    // An idempotent rotation: the reply is lost, the client repeats it with the (now revoked)
    // token it rotated and gets the same new token; another rotation id gets nothing.
    let rotate = |token: &str, rotation_id: &str| {
        s.client
            .post(s.ws_url(id, "/tokens/rotate"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "rotation_id": rotation_id }))
            .send()
    };
    let first: serde_json::Value = rotate(nm, "r-1").await?.json().await?;
    let again = rotate(nm, "r-1").await?;
    assert_eq!(again.status(), 201);
    let again: serde_json::Value = again.json().await?;
    assert_eq!(first["token"], again["token"]);
    expect_error(rotate(nm, "r-2").await?, 401, "token_revoked").await?;
    expect_error(rotate(m, "r-1").await?, 401, "token_revoked").await?;
    let nm = first["token"].as_str().ok_or("token")?;
    assert_eq!(
        s.client
            .get(s.ws_url(id, "/tokens"))
            .bearer_auth(nm)
            .send()
            .await?
            .status(),
        200
    );
    // Delete the workspace: every token now reports it deleted.
    let res = s
        .client
        .delete(s.ws_url(id, ""))
        .bearer_auth(r)
        .send()
        .await?;
    expect_error(res, 403, "forbidden").await?;
    assert_eq!(
        s.client
            .delete(s.ws_url(id, ""))
            .bearer_auth(nm)
            .send()
            .await?
            .status(),
        204
    );
    expect_error(
        s.client
            .get(s.ws_url(id, "/updates?after=0"))
            .bearer_auth(r)
            .send()
            .await?,
        404,
        "not_found",
    )
    .await?;
    Ok(())
}

fn sign(claims: &Claims, secret: &str) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
}

#[actix_web::test]
async fn wrapped_keys_are_stored_by_the_owner_and_returned_only_to_their_link() -> R {
    let s = start().await?;
    let created = s.create().await?;
    let (id, m) = (&created.workspace_id, &created.master_token);
    let minted = s.mint(id, m, "write", None).await?;
    let (w, w_id) = (
        minted["token"].as_str().ok_or("token")?,
        minted["id"].as_str().ok_or("id")?,
    );
    let read = s.mint(id, m, "read", None).await?;
    let r = read["token"].as_str().ok_or("token")?;
    let wrapped = base64::engine::general_purpose::STANDARD.encode([7u8; 72]);
    let put = |token: &str, body: serde_json::Value| {
        s.client
            .put(s.ws_url(id, "/keys"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let one = serde_json::json!({ "keys": [{ "token_id": w_id, "epoch": 1, "wrapped": wrapped }] });
    assert_eq!(put(m, one.clone()).await?.status(), 204);
    // A member cannot store keys.
    expect_error(put(w, one).await?, 403, "forbidden").await?;
    // Bad shapes: a short key, epoch 0, a token of another workspace, too many keys.
    let short = base64::engine::general_purpose::STANDARD.encode([7u8; 71]);
    let bad = serde_json::json!({ "keys": [{ "token_id": w_id, "epoch": 1, "wrapped": short }] });
    expect_error(put(m, bad).await?, 400, "bad_request").await?;
    let zero =
        serde_json::json!({ "keys": [{ "token_id": w_id, "epoch": 0, "wrapped": wrapped }] });
    expect_error(put(m, zero).await?, 400, "bad_request").await?;
    let other = s.create().await?;
    let foreign = s
        .mint(&other.workspace_id, &other.master_token, "write", None)
        .await?["id"]
        .clone();
    let foreign =
        serde_json::json!({ "keys": [{ "token_id": foreign, "epoch": 2, "wrapped": wrapped }] });
    expect_error(put(m, foreign).await?, 409, "conflict").await?;
    let many: Vec<_> = (1..=1001)
        .map(|e| serde_json::json!({ "token_id": w_id, "epoch": e, "wrapped": wrapped }))
        .collect();
    expect_error(
        put(m, serde_json::json!({ "keys": many })).await?,
        400,
        "bad_request",
    )
    .await?;
    // The join call returns a link's own keys, nothing to another link.
    let info = |token: &str| {
        let req = s.client.get(s.ws_url(id, "")).bearer_auth(token.to_owned());
        async move {
            req.send()
                .await?
                .json::<shared_schema::api::JoinInfo>()
                .await
        }
    };
    let mine = info(w).await?;
    assert_eq!(mine.token_id, w_id);
    assert_eq!(mine.keys.len(), 1);
    assert_eq!((mine.keys[0].epoch, &mine.keys[0].wrapped), (1, &wrapped));
    assert!(info(r).await?.keys.is_empty());
    Ok(())
}

#[actix_web::test]
async fn every_bad_input_gets_its_status_and_code_and_changes_nothing() -> R {
    let s = start_with(|c| c.max_update_bytes = 1024).await?;
    let ws = s.create().await?;
    let other = s.create().await?;
    let (id, m) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    assert_eq!(s.push(id, m, &[("seed", b"seed")]).await?.status(), 200);
    let read = s.mint(id, m, "read", None).await?;
    let r = read["token"].as_str().ok_or("token")?;
    let write = s.mint(id, m, "write", None).await?;
    let w = write["token"].as_str().ok_or("token")?;

    // Frames: truncated, empty, bad key length.
    expect_error(
        s.push_raw(id, m, vec![1, b'k', 0, 0, 0, 9, 1]).await?,
        400,
        "malformed_frame",
    )
    .await?;
    expect_error(s.push_raw(id, m, vec![]).await?, 400, "malformed_frame").await?;
    expect_error(
        s.push_raw(id, m, vec![0, 0, 0, 0, 0]).await?,
        400,
        "malformed_frame",
    )
    .await?;
    // Oversized body.
    let big = vec![7u8; 2048];
    expect_error(
        s.push(id, m, &[("big", &big)]).await?,
        413,
        "payload_too_large",
    )
    .await?;
    // Missing and invalid tokens.
    let res = s
        .client
        .post(s.ws_url(id, "/updates"))
        .body(vec![1u8, b'k', 0, 0, 0, 0])
        .send()
        .await?;
    expect_error(res, 401, "missing_token").await?;
    expect_error(
        s.push(id, "not-a-jwt", &[("x", b"x")]).await?,
        401,
        "invalid_token",
    )
    .await?;
    // alg: none.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = m.split('.').nth(1).ok_or("jwt")?;
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        payload
    );
    expect_error(
        s.push(id, &none, &[("x", b"x")]).await?,
        401,
        "invalid_token",
    )
    .await?;
    // Altered payload (role read → master) with the old signature.
    let mut claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(r.split('.').nth(1).ok_or("jwt")?)?)?;
    claims["role"] = "master".into();
    let parts: Vec<&str> = r.split('.').collect();
    let altered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(serde_json::to_vec(&claims)?),
        parts[2]
    );
    expect_error(
        s.client
            .get(s.ws_url(id, "/tokens"))
            .bearer_auth(&altered)
            .send()
            .await?,
        401,
        "invalid_token",
    )
    .await?;
    // Signed with another secret.
    let foreign_claims = Claims {
        sub: "x".into(),
        ws: id.into(),
        role: Role::Master,
        iat: 0,
        exp: None,
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
    };
    expect_error(
        s.push(
            id,
            &sign(&foreign_claims, "another-secret-another-secret")?,
            &[("x", b"x")],
        )
        .await?,
        401,
        "invalid_token",
    )
    .await?;
    // Expired (correctly signed, exp in the past).
    let jti = read["id"].as_str().ok_or("id")?;
    let expired = Claims {
        sub: jti.into(),
        ws: id.into(),
        role: Role::Read,
        iat: 1,
        exp: Some(2),
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
    };
    let res = s
        .client
        .get(s.ws_url(id, "/updates?after=0"))
        .bearer_auth(sign(&expired, SECRET)?)
        .send()
        .await?;
    expect_error(res, 401, "token_expired").await?;
    // Wrong audience.
    let wrong_aud = Claims {
        aud: "elsewhere".into(),
        ..foreign_claims.clone()
    };
    expect_error(
        s.push(id, &sign(&wrong_aud, SECRET)?, &[("x", b"x")])
            .await?,
        401,
        "invalid_token",
    )
    .await?;
    // Token of another workspace.
    expect_error(
        s.push(id, &other.master_token, &[("x", b"x")]).await?,
        403,
        "wrong_workspace",
    )
    .await?;
    // Read token pushing, write token minting.
    expect_error(s.push(id, r, &[("x", b"x")]).await?, 403, "forbidden").await?;
    let res = s
        .client
        .post(s.ws_url(id, "/tokens"))
        .bearer_auth(w)
        .json(&serde_json::json!({"role":"read"}))
        .send()
        .await?;
    expect_error(res, 403, "forbidden").await?;
    let res = s
        .client
        .put(s.ws_url(id, "/snapshot?covers=1"))
        .bearer_auth(r)
        .body("s")
        .send()
        .await?;
    expect_error(res, 403, "forbidden").await?;
    // A write token may not replace history for every new device with its own snapshot.
    let res = s
        .client
        .put(s.ws_url(id, "/snapshot?covers=0"))
        .bearer_auth(w)
        .body("garbage snapshot")
        .send()
        .await?;
    expect_error(res, 403, "forbidden").await?;
    let res = s
        .client
        .get(s.ws_url(id, "/backup"))
        .bearer_auth(w)
        .send()
        .await?;
    expect_error(res, 403, "forbidden").await?;
    // Bad mint body.
    let res = s
        .client
        .post(s.ws_url(id, "/tokens"))
        .bearer_auth(m)
        .body("{")
        .send()
        .await?;
    expect_error(res, 400, "bad_request").await?;
    // Unknown workspace (valid uuid, and not a uuid).
    let unknown = uuid::Uuid::new_v4().to_string();
    expect_error(
        s.push(&unknown, m, &[("x", b"x")]).await?,
        403,
        "wrong_workspace",
    )
    .await?;
    expect_error(
        s.push("not-a-uuid", m, &[("x", b"x")]).await?,
        404,
        "not_found",
    )
    .await?;
    // Every route that touches a workspace needs a token.
    for (method, path) in [
        ("GET", ""),
        ("DELETE", ""),
        ("GET", "/updates?after=0"),
        ("PUT", "/snapshot?covers=0"),
        ("GET", "/live"),
        ("GET", "/tokens"),
        ("POST", "/tokens"),
        ("POST", "/tokens/rotate"),
        ("DELETE", "/tokens/x"),
        ("GET", "/backup"),
        ("PUT", "/keys"),
    ] {
        let res = s
            .client
            .request(method.parse()?, s.ws_url(id, path))
            .send()
            .await?;
        expect_error(res, 401, "missing_token").await?;
    }
    // Nothing changed.
    let all = s.pull_all(id, m).await?;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].bytes, b"seed");
    Ok(())
}

#[actix_web::test]
async fn the_rate_limit_answers_429_with_retry_after() -> R {
    let s = start_with(|c| c.rate_limit_per_sec = 1).await?;
    let ws = s.create().await?;
    let mut limited = None;
    for _ in 0..10 {
        let res = s
            .client
            .get(s.ws_url(&ws.workspace_id, "/updates?after=0"))
            .bearer_auth(&ws.master_token)
            .send()
            .await?;
        if res.status() == 429 {
            limited = Some(res);
            break;
        }
    }
    let res = limited.ok_or("never rate limited")?;
    assert_eq!(
        res.headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    expect_error(res, 429, "rate_limited").await
}

#[actix_web::test]
async fn a_live_subscriber_gets_small_updates_tentatively_then_a_marker_with_their_chain() -> R {
    let s = start().await?;
    let ws = s.create().await?;
    let (id, t) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    let res = s
        .client
        .get(s.ws_url(id, "/live"))
        .bearer_auth(t)
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    let mut text = String::new();
    let first = stream.next().await.ok_or("stream ended")??;
    text.push_str(std::str::from_utf8(&first)?);
    assert!(text.contains(r#"{"seq":0}"#), "{text}");
    let pushed = s.push(id, t, &[("a", b"1"), ("b", b"2")]).await?;
    assert_eq!(pushed.status(), 200);
    let reply: shared_schema::api::PushReply = pushed.json().await?;
    // Each small update comes tentatively: exactly the record a pull returns, held from seq 0.
    let mut held = shared_schema::live::Held::default();
    for seq in 1..=2 {
        let event = next_live_event(&mut stream, &mut text).await?;
        assert_eq!((event.seq, event.tentative, event.chain), (seq, true, None));
        held.hold(&event, 0, Chain::genesis())?;
    }
    // Then the marker: the head and the chain after it, the push reply's, confirming both.
    let marker = next_live_event(&mut stream, &mut text).await?;
    assert_eq!(
        (marker.seq, marker.chain, marker.tentative),
        (2, Some(reply.chain), false)
    );
    let confirmed = held.confirm(&marker, 0, Chain::genesis());
    let (pulled, _, _) = s.pull(id, t, 0, None).await?;
    assert_eq!(confirmed, pulled);
    // A large one is announced by its marker only.
    let big = vec![7u8; shared_schema::live::INLINE_MAX + 1];
    assert_eq!(s.push(id, t, &[("c", &big)]).await?.status(), 200);
    let event = next_live_event(&mut stream, &mut text).await?;
    assert_eq!((event.seq, event.record, event.tentative), (3, None, false));
    assert!(event.chain.is_some());
    Ok(())
}

/// Reads the next `data:` event of a live stream (after what `text` already holds).
async fn next_live_event(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<actix_web::web::Bytes>> + Unpin),
    text: &mut String,
) -> Result<shared_schema::api::LiveEvent, Box<dyn std::error::Error>> {
    loop {
        while let Some(end) = text.find("\n\n") {
            let ev: String = text.drain(..end + 2).collect();
            if let Some(json) = ev.strip_prefix("data: ") {
                let e: shared_schema::api::LiveEvent = serde_json::from_str(json.trim())?;
                if e.seq > 0 {
                    return Ok(e);
                }
            }
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await?
            .ok_or("live stream ended")??;
        text.push_str(std::str::from_utf8(&chunk)?);
    }
}

#[actix_web::test]
async fn a_tampering_server_flag_changes_pulled_bytes_but_not_the_chain() -> R {
    let s = start_with(|c| c.test_tamper_pulls = true).await?;
    let ws = s.create().await?;
    assert_eq!(
        s.push(&ws.workspace_id, &ws.master_token, &[("a", b"hello")])
            .await?
            .status(),
        200
    );
    let (records, _, _) = s.pull(&ws.workspace_id, &ws.master_token, 0, None).await?;
    assert!(Chain::genesis()
        .verify_next(1, &records[0].bytes, &records[0].chain)
        .is_err());
    Ok(())
}
