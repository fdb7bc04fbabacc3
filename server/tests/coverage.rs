//! Behaviours no other test reached: a snapshot upload racing pushes and an older snapshot from
//! another device (409), the import size limit, the audit rows of every mutating call, the
//! generated JWT secret's file mode, rate limits per token (one token's flood does not limit
//! another), and a token that expires while its live stream is open.

mod common;

use common::*;
use futures_util::StreamExt;
use shared_schema::frame::PullRecordKind;
use std::time::{Duration, Instant};

async fn put_snapshot(
    s: &TestServer,
    ws: &str,
    token: &str,
    covers: u64,
    bytes: &[u8],
) -> Result<u16, E> {
    Ok(s.client
        .put(s.ws_url(ws, &format!("/snapshot?covers={covers}")))
        .bearer_auth(token)
        .body(bytes.to_vec())
        .send()
        .await?
        .status()
        .as_u16())
}

#[actix_web::test]
async fn snapshots_racing_pushes_keep_the_log_whole_and_an_older_snapshot_gets_409() -> R {
    let s = std::sync::Arc::new(start_with(|c| c.rate_limit_per_sec = 100_000).await?);
    let ws = s.create().await?;
    let (id, t) = (ws.workspace_id.clone(), ws.master_token.clone());
    // Four pushers and two "devices" uploading snapshots at the head they last saw, at once.
    let mut pushers = Vec::new();
    for p in 0..4 {
        let (s, id, t) = (s.clone(), id.clone(), t.clone());
        pushers.push(actix_web::rt::spawn(async move {
            for n in 0..40 {
                let key = format!("p{p}-{n}");
                let res = s.push(&id, &t, &[(&key, key.as_bytes())]).await?;
                if res.status() != 200 {
                    let status = res.status();
                    let body = res.text().await.unwrap_or_default();
                    return Err(format!("push answered {status}: {body}").into());
                }
            }
            Ok::<_, E>(())
        }));
    }
    let mut devices = Vec::new();
    for d in 0..2 {
        let (s, id, t) = (s.clone(), id.clone(), t.clone());
        devices.push(actix_web::rt::spawn(async move {
            let mut outcomes = Vec::new();
            for n in 0..15 {
                let head = s.head(&id, &t).await?;
                let bytes = format!("snapshot {d}/{n} at {head}");
                outcomes.push(put_snapshot(&s, &id, &t, head, bytes.as_bytes()).await?);
            }
            Ok::<_, E>(outcomes)
        }));
    }
    for p in pushers {
        p.await??;
    }
    let mut outcomes = Vec::new();
    for d in devices {
        outcomes.extend(d.await??);
    }
    assert!(
        outcomes.iter().all(|s| *s == 200 || *s == 409),
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&200), "some snapshot was accepted");
    // A pull from 0 is one snapshot and then every later update, chained from it.
    let records = s.pull_all(&id, &t).await?;
    assert_eq!(records[0].kind, PullRecordKind::Snapshot);
    let mut chain = records[0].chain;
    let mut seq = records[0].seq;
    for r in &records[1..] {
        assert_eq!(r.seq, seq + 1, "no gap after the snapshot");
        chain = chain.verify_next(r.seq, &r.bytes, &r.chain)?;
        seq = r.seq;
    }
    assert_eq!(seq, 160, "every push is covered or after the snapshot");
    // Another device uploads a snapshot older than the stored one: 409, and nothing changes.
    let stored = records[0].seq;
    if stored > 0 {
        expect_error(
            s.client
                .put(s.ws_url(&id, &format!("/snapshot?covers={}", stored - 1)))
                .bearer_auth(&t)
                .body(b"older".to_vec())
                .send()
                .await?,
            409,
            "conflict",
        )
        .await?;
    }
    expect_error(
        s.client
            .put(s.ws_url(&id, "/snapshot?covers=161"))
            .bearer_auth(&t)
            .body(b"future".to_vec())
            .send()
            .await?,
        409,
        "conflict",
    )
    .await?;
    let again = s.pull_all(&id, &t).await?;
    assert_eq!(
        again[0].bytes, records[0].bytes,
        "the stored snapshot stays"
    );
    Ok(())
}

#[actix_web::test]
async fn an_import_over_the_size_limit_is_refused_with_413() -> R {
    let s = start_with(|c| c.max_snapshot_bytes = 1024).await?;
    let res = s
        .client
        .post(format!("{}/v1/workspaces/import", s.url))
        .body(vec![0u8; 4096])
        .send()
        .await?;
    expect_error(res, 413, "payload_too_large").await
}

#[actix_web::test]
async fn every_mutating_call_writes_an_audit_row() -> R {
    let dir = temp_dir();
    let s = start_with(|c| c.data_dir = dir.clone()).await?;
    let url = database_url()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rw", dir.join("hearth.sqlite3").display()));
    let ws = s.create().await?;
    let (id, t) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    assert_eq!(s.push(id, t, &[("k", b"hello")]).await?.status(), 200);
    assert_eq!(put_snapshot(&s, id, t, 1, b"snap").await?, 200);
    let minted = s.mint(id, t, "read", None).await?;
    let jti = minted["id"].as_str().ok_or("id")?;
    let res = s
        .client
        .delete(s.ws_url(id, &format!("/tokens/{jti}")))
        .bearer_auth(t)
        .send()
        .await?;
    assert_eq!(res.status(), 204);
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await?;
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT action, bytes FROM audit_log WHERE workspace_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&pool)
            .await?;
    pool.close().await;
    let actions: Vec<&str> = rows.iter().map(|(a, _)| a.as_str()).collect();
    for expected in ["create", "push", "snapshot", "mint", "revoke"] {
        assert!(
            actions.iter().any(|a| a.contains(expected)),
            "no {expected} row in {actions:?}"
        );
    }
    let push_bytes = rows
        .iter()
        .find(|(a, _)| a.contains("push"))
        .map(|(_, b)| *b);
    assert!(
        push_bytes.is_some_and(|b| b > 5),
        "push row has the body size: {rows:?}"
    );
    Ok(())
}

#[actix_web::test]
async fn the_generated_jwt_secret_file_is_private_and_kept_across_restarts() -> R {
    let dir = temp_dir();
    let s = start_with(|c| {
        c.data_dir = dir.clone();
        c.jwt_secret = None;
    })
    .await?;
    let ws = s.create().await?;
    let path = dir.join("jwt-secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the secret file is private");
    }
    assert!(std::fs::metadata(&path)?.len() >= 32);
    // A second server on the same data dir accepts the first one's tokens.
    let again = start_with(|c| {
        c.data_dir = dir.clone();
        c.jwt_secret = None;
    })
    .await?;
    assert_eq!(again.head(&ws.workspace_id, &ws.master_token).await?, 0);
    Ok(())
}

#[actix_web::test]
async fn one_tokens_flood_is_rate_limited_without_limiting_another_token() -> R {
    let s = start_with(|c| c.rate_limit_per_sec = 2).await?;
    let a = s.create().await?;
    let b = s.create().await?;
    let pull = |ws: &str, t: &str| {
        s.client
            .get(s.ws_url(ws, "/updates?after=0"))
            .bearer_auth(t)
            .send()
    };
    let mut limited = 0;
    for _ in 0..50 {
        if pull(&a.workspace_id, &a.master_token).await?.status() == 429 {
            limited += 1;
        }
    }
    assert!(limited > 0, "the flooding token was limited");
    let res = pull(&b.workspace_id, &b.master_token).await?;
    assert_eq!(res.status(), 200, "another token is not");
    Ok(())
}

#[actix_web::test]
async fn a_token_that_expires_while_its_live_stream_is_open_is_cut_off() -> R {
    let s = start_with(|c| c.live_keepalive_secs = 1).await?;
    let ws = s.create().await?;
    let minted = s
        .mint(&ws.workspace_id, &ws.master_token, "read", Some(2))
        .await?;
    let token = minted["token"].as_str().ok_or("token")?;
    let res = s
        .client
        .get(s.ws_url(&ws.workspace_id, "/live"))
        .bearer_auth(token)
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let opened = Instant::now();
    let mut stream = res.bytes_stream();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await
    .is_ok();
    assert!(ended, "the stream was closed");
    assert!(
        opened.elapsed() >= Duration::from_millis(900),
        "not before the token expired ({:?})",
        opened.elapsed()
    );
    let res = s
        .client
        .get(s.ws_url(&ws.workspace_id, "/live"))
        .bearer_auth(token)
        .send()
        .await?;
    expect_error(res, 401, "token_expired").await
}
