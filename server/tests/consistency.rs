//! The log stays consistent under concurrency (SQLite, or Postgres with
//! `HEARTH_TEST_DATABASE_URL`): pulls during snapshot uploads never see a gap, concurrent
//! rotations leave exactly one working master token, retention counts from the snapshot and keys
//! outlive the updates they name, creates are idempotent, impossible seqs are refused.

mod common;

use common::*;
use hearth_server::store::{PushRequest, Storage, TokenRow};
use shared_schema::backup::{self, BackupHeader};
use shared_schema::frame::{PullRecord, PullRecordKind, PushRecord};
use shared_schema::{Chain, Role};
use std::sync::Arc;

/// Checks a pull page starting after `after`: an optional snapshot at or past `after`, then
/// consecutive updates; returns a description of the first gap.
fn gap_in(after: u64, page: &[PullRecord]) -> Option<String> {
    let mut seq = after;
    for (i, r) in page.iter().enumerate() {
        match r.kind {
            PullRecordKind::Snapshot if i == 0 && r.seq >= after => seq = r.seq,
            PullRecordKind::Snapshot => return Some(format!("snapshot at position {i}")),
            PullRecordKind::Update if r.seq == seq + 1 => seq = r.seq,
            PullRecordKind::Update => return Some(format!("seq {} after {seq}", r.seq)),
        }
    }
    None
}

#[actix_web::test]
async fn pulls_during_snapshot_uploads_with_retention_zero_never_see_a_gap() -> R {
    let s = Arc::new(
        start_with(|c| {
            c.retention_secs = 0;
            c.rate_limit_per_sec = 100_000;
        })
        .await?,
    );
    let ws = s.create().await?;
    let (id, t) = (ws.workspace_id.clone(), ws.master_token.clone());
    let writer = {
        let (s, id, t) = (s.clone(), id.clone(), t.clone());
        actix_web::rt::spawn(async move {
            for n in 0..300u64 {
                let key = format!("k{n}");
                let res = s
                    .push(&id, &t, &[(&key, &[(n % 250) as u8 + 1; 64])])
                    .await?;
                let seq = res.json::<shared_schema::api::PushReply>().await?.head_seq;
                if n % 2 == 1 {
                    let res = s
                        .client
                        .put(s.ws_url(&id, &format!("/snapshot?covers={seq}")))
                        .bearer_auth(&t)
                        .body(vec![9u8; 32])
                        .send()
                        .await?;
                    assert_eq!(res.status(), 200);
                }
            }
            Ok::<_, E>(())
        })
    };
    let mut readers = Vec::new();
    for r in 0..4u64 {
        let (s, id, t) = (s.clone(), id.clone(), t.clone());
        readers.push(actix_web::rt::spawn(async move {
            let mut pulls = 0;
            let mut gaps = Vec::new();
            let mut head = 0u64;
            while pulls < 300 {
                // Just behind the head, where a snapshot committing mid-read drops what the
                // page is about to read.
                let after = head.saturating_sub(1 + (pulls + r) % 3);
                let (page, h, _) = s.pull(&id, &t, after, Some(200 + 100 * r as usize)).await?;
                if let Some(g) = gap_in(after, &page) {
                    gaps.push(g);
                }
                head = h;
                pulls += 1;
            }
            Ok::<_, E>((pulls, gaps))
        }));
    }
    writer.await.map_err(|e| e.to_string())??;
    let mut total = 0;
    for r in readers {
        let (pulls, gaps) = r.await.map_err(|e| e.to_string())??;
        assert!(gaps.is_empty(), "gaps seen: {gaps:?}");
        total += pulls;
    }
    assert_eq!(total, 1200);
    Ok(())
}

#[actix_web::test]
async fn two_concurrent_rotations_leave_exactly_one_working_master_token() -> R {
    let s = start_with(|c| c.rate_limit_per_sec = 100_000).await?;
    for run in 0..10 {
        let ws = s.create().await?;
        let (id, t) = (ws.workspace_id.as_str(), ws.master_token.as_str());
        let rotate = |rid: String| {
            s.client
                .post(s.ws_url(id, "/tokens/rotate"))
                .bearer_auth(t)
                .json(&serde_json::json!({ "rotation_id": rid }))
                .send()
        };
        let (a, b) =
            futures_util::future::join(rotate(format!("a{run}")), rotate(format!("b{run}"))).await;
        let (a, b) = (a?, b?);
        let mut winners = Vec::new();
        for res in [a, b] {
            match res.status().as_u16() {
                201 => winners.push(res.json::<serde_json::Value>().await?),
                401 => expect_error(res, 401, "token_revoked").await?,
                other => return Err(format!("rotation answered {other}").into()),
            }
        }
        assert_eq!(winners.len(), 1, "run {run}: exactly one rotation wins");
        let new = winners[0]["token"].as_str().ok_or("no token")?;
        assert_eq!(s.push(id, new, &[("k", b"x")]).await?.status(), 200);
        expect_error(s.push(id, t, &[("k2", b"x")]).await?, 401, "token_revoked").await?;
        let res = s
            .client
            .get(s.ws_url(id, "/tokens"))
            .bearer_auth(new)
            .send()
            .await?;
        let list: serde_json::Value = res.json().await?;
        let live_masters = list["tokens"]
            .as_array()
            .ok_or("no tokens")?
            .iter()
            .filter(|t| t["role"] == "master" && t["revoked_at"].is_null())
            .count();
        assert_eq!(live_masters, 1, "run {run}");
    }
    Ok(())
}

async fn open_store() -> Result<Arc<dyn Storage>, E> {
    let url = database_url().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            temp_dir().join("retention.sqlite3").display()
        )
    });
    Ok(hearth_server::store::open(&url, Default::default()).await?)
}

fn push_at(ws: &str, key: &str, bytes: &[u8], now: i64) -> PushRequest {
    PushRequest {
        ws: ws.into(),
        token_id: "t".into(),
        records: vec![PushRecord {
            key: key.as_bytes().to_vec(),
            bytes: bytes.to_vec(),
        }],
        body_bytes: bytes.len() as i64,
        now,
    }
}

#[actix_web::test]
async fn retention_counts_from_the_snapshot_and_keys_outlive_the_updates_they_name() -> R {
    const WINDOW: i64 = 600;
    let store = open_store().await?;
    let ws = uuid::Uuid::new_v4().to_string();
    let master = TokenRow {
        id: uuid::Uuid::new_v4().simple().to_string(),
        workspace_id: ws.clone(),
        role: Role::Master,
        label: "owner".into(),
        created_at: 0,
        expires_at: None,
        revoked_at: None,
    };
    store.create_workspace(&ws, &master, 0).await?;
    // Updates written long ago…
    for k in ["k1", "k2", "k3"] {
        store.push(push_at(&ws, k, &[1u8; 100], 0)).await?;
    }
    // …and a snapshot of them taken now: they stay for the window (counted from the snapshot).
    store
        .put_snapshot(&ws, 3, &[2u8; 10], 1000, 1000 - WINDOW)
        .await?;
    assert_eq!(
        store.workspace_bytes(&ws).await?,
        310,
        "no update was dropped yet"
    );
    store.push(push_at(&ws, "k4", &[1u8; 100], 1700)).await?;
    // A later snapshot, once the first is older than the window: updates 1–3 are dropped.
    store
        .put_snapshot(&ws, 4, &[2u8; 10], 1700, 1700 - WINDOW)
        .await?;
    assert_eq!(store.workspace_bytes(&ws).await?, 100 + 10);
    // A retry of k1 within the window of its drop is still not stored twice.
    let again = store.push(push_at(&ws, "k1", &[1u8; 100], 1800)).await?;
    assert_eq!((again.seqs.clone(), again.head_seq), (vec![1], 4));
    // Past that window its key is forgotten.
    store
        .put_snapshot(&ws, 4, &[2u8; 10], 2400, 2400 - WINDOW)
        .await?;
    let late = store.push(push_at(&ws, "k1", &[1u8; 100], 2400)).await?;
    assert_eq!(late.seqs, vec![5]);
    Ok(())
}

#[actix_web::test]
async fn a_create_repeated_with_its_secret_returns_the_same_master_token() -> R {
    let s = start().await?;
    let id = uuid::Uuid::new_v4().to_string();
    let create = |secret: Option<&str>| {
        let mut body = serde_json::json!({ "workspace_id": id });
        if let Some(secret) = secret {
            body["creation_secret"] = secret.into();
        }
        s.client
            .post(format!("{}/v1/workspaces", s.url))
            .json(&body)
            .send()
    };
    let secret = "a-secret-of-this-device-0123456789";
    let (a, b) = futures_util::future::join(create(Some(secret)), create(Some(secret))).await;
    let (a, b) = (a?, b?);
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (201, 201));
    let a: serde_json::Value = a.json().await?;
    let b: serde_json::Value = b.json().await?;
    assert_eq!(
        a["master_token"], b["master_token"],
        "the same token both times"
    );
    let token = a["master_token"].as_str().ok_or("token")?;
    assert_eq!(s.push(&id, token, &[("k", b"x")]).await?.status(), 200);
    expect_error(
        create(Some("another-secret-0123456789")).await?,
        409,
        "conflict",
    )
    .await?;
    expect_error(create(None).await?, 409, "conflict").await?;
    expect_error(create(Some("short")).await?, 400, "bad_request").await?;
    Ok(())
}

#[actix_web::test]
async fn a_backup_with_seqs_past_i64_max_is_refused_with_400() -> R {
    let s = start().await?;
    for seq in [u64::MAX, (1u64 << 63) + 5] {
        let chain = Chain::genesis().next(b"snap");
        let records = vec![PullRecord {
            kind: PullRecordKind::Snapshot,
            seq,
            chain,
            bytes: b"snap".to_vec(),
        }];
        let header = BackupHeader {
            workspace_id: "x".into(),
            created_at: 0,
            head_seq: seq,
            chain_head: chain,
            source: "client".into(),
            keys: None,
        };
        let res = s
            .client
            .post(format!("{}/v1/workspaces/import", s.url))
            .body(backup::encode(&header, &records)?)
            .send()
            .await?;
        expect_error(res, 400, "bad_request").await?;
    }
    let res = s.client.get(format!("{}/healthz", s.url)).send().await?;
    assert_eq!(res.status(), 200, "the server is still well");
    Ok(())
}
