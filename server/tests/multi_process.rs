//! Several `hearth-server` processes on one Postgres: a push to one reaches the live subscribers
//! of every other through LISTEN/NOTIFY — two processes, and four processes with 2,500 live
//! subscribers each (`HEARTH_TEST_SUBSCRIBERS` per process), every subscriber getting every push;
//! presence and revocations cross processes too. Needs `HEARTH_TEST_DATABASE_URL` (scripts/test.sh starts one); on
//! SQLite there is nothing to fan out across processes: the tests are `#[ignore]`d (a reported
//! skip) and the Postgres run of `scripts/test.sh` runs them with `--include-ignored`.

mod common;

use common::*;
use futures_util::StreamExt;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_server(db: &str) -> Result<(Proc, String), E> {
    let mut child = server_command()
        .args([
            "--bind",
            "127.0.0.1:0",
            "--database-url",
            db,
            "--rate-limit-per-sec",
            "1000000",
            "--max-streams-per-token",
            "1000000",
        ])
        .env("HEARTH_JWT_SECRET", SECRET)
        .arg("--data-dir")
        .arg(temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let proc = Proc(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .ok_or_else(|| format!("no URL in {line:?}"))?
        .trim_end_matches('/')
        .to_owned();
    Ok((proc, url))
}

#[actix_web::test]
#[ignore = "needs Postgres; scripts/test.sh runs it (--include-ignored)"]
async fn a_push_to_one_process_reaches_a_live_subscriber_of_the_other() -> R {
    let Some(db) = database_url() else {
        return Err("needs HEARTH_TEST_DATABASE_URL (and HEARTH_TEST_PG_DATA for the restart): run scripts/test.sh, which starts a throwaway Postgres".into());
    };
    let (_a, url_a) = spawn_server(&db)?;
    let (_b, url_b) = spawn_server(&db)?;
    let client = reqwest::Client::new();
    let ws: shared_schema::api::CreatedWorkspace = client
        .post(format!("{url_a}/v1/workspaces"))
        .send()
        .await?
        .json()
        .await?;
    let live = client
        .get(format!("{url_b}/v1/workspaces/{}/live", ws.workspace_id))
        .bearer_auth(&ws.master_token)
        .send()
        .await?;
    assert_eq!(live.status(), 200);
    let mut stream = live.bytes_stream();
    let hello = stream.next().await.ok_or("ended")??;
    assert!(std::str::from_utf8(&hello)?.contains(r#"{"seq":0}"#));
    let a = TestServer {
        url: url_a,
        client: client.clone(),
    };
    assert_eq!(
        a.push(&ws.workspace_id, &ws.master_token, &[("k", b"via A")])
            .await?
            .status(),
        200
    );
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
        .await?
        .ok_or("ended")??;
    assert!(
        std::str::from_utf8(&event)?.contains(r#"{"seq":1}"#),
        "B announced A's push"
    );
    Ok(())
}

#[actix_web::test]
#[ignore = "needs Postgres; scripts/test.sh runs it (--include-ignored)"]
async fn four_processes_with_thousands_of_live_subscribers_each_deliver_every_push() -> R {
    let Some(db) = database_url() else {
        return Err("needs HEARTH_TEST_DATABASE_URL (and HEARTH_TEST_PG_DATA for the restart): run scripts/test.sh, which starts a throwaway Postgres".into());
    };
    let per_process: usize = std::env::var("HEARTH_TEST_SUBSCRIBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2500);
    const PUSHES: u64 = 4;
    // One socket per subscriber in this process: raise its open-file limit as the server does.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let mut procs = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..4 {
        let (p, url) = spawn_server(&db)?;
        procs.push(p);
        urls.push(url);
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let ws: shared_schema::api::CreatedWorkspace = client
        .post(format!("{}/v1/workspaces", urls[0]))
        .send()
        .await?
        .json()
        .await?;
    let started = std::time::Instant::now();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(per_process * 4);
    let mut subscribers = Vec::new();
    for i in 0..per_process * 4 {
        let url = format!("{}/v1/workspaces/{}/live", urls[i % 4], ws.workspace_id);
        let (client, token, ready) = (client.clone(), ws.master_token.clone(), ready_tx.clone());
        subscribers.push(tokio::spawn(async move {
            let res = client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if res.status() != 200 {
                return Err(format!("subscriber {i}: {}", res.status()));
            }
            let mut stream = res.bytes_stream();
            let mut text = String::new();
            let mut announced = false;
            loop {
                let chunk =
                    tokio::time::timeout(std::time::Duration::from_secs(120), stream.next())
                        .await
                        .map_err(|_| format!("subscriber {i} timed out with {text:?}"))?
                        .ok_or_else(|| format!("subscriber {i}: stream ended"))?
                        .map_err(|e| e.to_string())?;
                text.push_str(&String::from_utf8_lossy(&chunk));
                if !announced && text.contains(r#"{"seq":0}"#) {
                    announced = true;
                    let _ = ready.send(()).await;
                }
                // `{"seq":N}`, or `{"seq":N,"record":…}` from the process that stored it.
                let heard = |s: u64| {
                    text.contains(&format!(r#"{{"seq":{s}}}"#))
                        || text.contains(&format!(r#"{{"seq":{s},"#))
                };
                if heard(PUSHES) {
                    let seen: Vec<u64> = (1..=PUSHES).filter(|s| heard(*s)).collect();
                    return Ok(seen.len() as u64);
                }
            }
        }));
    }
    drop(ready_tx);
    for _ in 0..per_process * 4 {
        ready_rx
            .recv()
            .await
            .ok_or("a subscriber failed before its first event")?;
    }
    let connected = started.elapsed();
    for n in 1..=PUSHES {
        let s = TestServer {
            url: urls[n as usize % 4].clone(),
            client: client.clone(),
        };
        let key = format!("k{n}");
        assert_eq!(
            s.push(&ws.workspace_id, &ws.master_token, &[(&key, b"x")])
                .await?
                .status(),
            200
        );
    }
    let mut every = 0;
    for s in subscribers {
        if s.await.map_err(|e| e.to_string())?? == PUSHES {
            every += 1;
        }
    }
    println!(
        "LIVE 4 processes × {per_process} subscribers: connected in {connected:?}, {every} of {} got all {PUSHES} pushes, {:?} in all",
        per_process * 4,
        started.elapsed()
    );
    assert_eq!(every, per_process * 4, "every subscriber got every push");
    drop(procs);
    Ok(())
}

#[actix_web::test]
#[ignore = "needs Postgres; scripts/test.sh runs it (--include-ignored)"]
async fn presence_sent_to_one_process_shows_on_a_live_stream_of_the_other_and_goes() -> R {
    let Some(db) = database_url() else {
        return Err("needs HEARTH_TEST_DATABASE_URL: run scripts/test.sh".into());
    };
    let (_a, url_a) = spawn_server(&db)?;
    let (_b, url_b) = spawn_server(&db)?;
    let client = reqwest::Client::new();
    let ws: shared_schema::api::CreatedWorkspace = client
        .post(format!("{url_a}/v1/workspaces"))
        .send()
        .await?
        .json()
        .await?;
    let live = client
        .get(format!("{url_b}/v1/workspaces/{}/live", ws.workspace_id))
        .bearer_auth(&ws.master_token)
        .send()
        .await?;
    let mut stream = live.bytes_stream();
    let mut text = String::new();
    let res = client
        .put(format!(
            "{url_a}/v1/workspaces/{}/presence",
            ws.workspace_id
        ))
        .bearer_auth(&ws.master_token)
        .json(&serde_json::json!({"device": "on-a", "note": "n"}))
        .send()
        .await?;
    assert_eq!(res.status(), 204);
    let seen: shared_schema::api::PresenceEvent = next_data(
        &mut stream,
        &mut text,
        |e: &shared_schema::api::PresenceEvent| !e.presence.is_empty(),
    )
    .await?;
    assert_eq!(seen.presence[0].device, "on-a");
    let gone: shared_schema::api::PresenceEvent = next_data(
        &mut stream,
        &mut text,
        |e: &shared_schema::api::PresenceEvent| e.presence.is_empty(),
    )
    .await?;
    assert!(gone.presence.is_empty(), "gone on B too, with no heartbeat");
    Ok(())
}

#[actix_web::test]
#[ignore = "needs Postgres; scripts/test.sh runs it (--include-ignored)"]
async fn a_token_revoked_on_one_process_ends_its_live_stream_on_the_other_at_once_and_is_refused_there(
) -> R {
    let Some(db) = database_url() else {
        return Err("needs HEARTH_TEST_DATABASE_URL: run scripts/test.sh".into());
    };
    let (_a, url_a) = spawn_server(&db)?;
    let (_b, url_b) = spawn_server(&db)?;
    let client = reqwest::Client::new();
    let a = TestServer {
        url: url_a,
        client: client.clone(),
    };
    let b = TestServer {
        url: url_b,
        client: client.clone(),
    };
    let ws = a.create().await?;
    let id = &ws.workspace_id;
    let minted = a.mint(id, &ws.master_token, "write", None).await?;
    let jti = minted["id"].as_str().ok_or("id")?;
    let token = minted["token"].as_str().ok_or("token")?;
    // B has checked the token (and keeps it as valid for a few seconds): a live stream, a push.
    let live = client
        .get(b.ws_url(id, "/live"))
        .bearer_auth(token)
        .send()
        .await?;
    assert_eq!(live.status(), 200);
    let mut stream = live.bytes_stream();
    stream.next().await.ok_or("ended")??;
    assert_eq!(b.push(id, token, &[("k1", b"x")]).await?.status(), 200);
    // Revoked through A.
    let res = client
        .delete(a.ws_url(id, &format!("/tokens/{jti}")))
        .bearer_auth(&ws.master_token)
        .send()
        .await?;
    assert_eq!(res.status(), 204);
    // B's stream ends now, not at its keepalive (15 s), and B refuses the token at once.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "B's live stream ended within 5 s of the revocation on A"
    );
    expect_error(
        b.push(id, token, &[("k2", b"y")]).await?,
        401,
        "token_revoked",
    )
    .await?;
    Ok(())
}

/// Connections of the database waiting for a lock.
async fn lock_waiters(db: &mut sqlx::PgConnection) -> Result<i64, E> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
    )
    .fetch_one(db)
    .await?)
}

/// Waits until `n` connections wait for a lock (10 s at most).
async fn until_waiting(db: &mut sqlx::PgConnection, n: i64) -> R {
    for _ in 0..1000 {
        if lock_waiters(db).await? >= n {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Err(format!("{n} pushes never waited for the workspace lock").into())
}

#[actix_web::test]
#[ignore = "needs Postgres; scripts/test.sh runs it (--include-ignored)"]
async fn a_push_is_announced_before_its_transaction_and_corrected_when_another_process_took_its_seq(
) -> R {
    use shared_schema::api::LiveEvent;
    use sqlx::Connection;
    let Some(db) = database_url() else {
        return Err("needs HEARTH_TEST_DATABASE_URL: run scripts/test.sh".into());
    };
    let (_one, url_one) = spawn_server(&db)?;
    let (_two, url_two) = spawn_server(&db)?;
    let client = reqwest::Client::new();
    let one = TestServer {
        url: url_one,
        client: client.clone(),
    };
    let two = TestServer {
        url: url_two,
        client: client.clone(),
    };
    let ws = one.create().await?;
    let (id, t) = (ws.workspace_id.clone(), ws.master_token.clone());
    // Process one has committed seq 1: it knows the row.
    assert_eq!(one.push(&id, &t, &[("k1", b"first")]).await?.status(), 200);
    let live = client
        .get(one.ws_url(&id, "/live"))
        .bearer_auth(&t)
        .send()
        .await?;
    let mut stream = live.bytes_stream();
    let mut text = String::new();
    next_data::<LiveEvent>(&mut stream, &mut text, |e| e.seq == 1).await?;
    // The workspace row is locked: every push waits for it.
    let mut lock = sqlx::PgConnection::connect(&db).await?;
    let mut watch = sqlx::PgConnection::connect(&db).await?;
    sqlx::query("BEGIN").execute(&mut lock).await?;
    sqlx::query("SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE")
        .bind(&id)
        .execute(&mut lock)
        .await?;
    let (two_id, two_t) = (id.clone(), t.clone());
    let by_two = actix_web::rt::spawn(async move {
        let res = two.push(&two_id, &two_t, &[("k2", b"by two")]).await?;
        Ok::<_, E>(res.json::<shared_schema::api::PushReply>().await?)
    });
    until_waiting(&mut watch, 1).await?;
    let (one_id, one_t, one_url) = (id.clone(), t.clone(), one.url.clone());
    let by_one = actix_web::rt::spawn(async move {
        let one = TestServer {
            url: one_url,
            client: reqwest::Client::new(),
        };
        let res = one.push(&one_id, &one_t, &[("k3", b"by one")]).await?;
        Ok::<_, E>(res.json::<shared_schema::api::PushReply>().await?)
    });
    // Process one announces its push as seq 2 while the push still waits for the lock.
    let early = next_data::<LiveEvent>(&mut stream, &mut text, |e| e.tentative).await?;
    assert_eq!(early.seq, 2);
    until_waiting(&mut watch, 2).await?;
    assert!(!by_one.is_finished() && !by_two.is_finished());
    sqlx::query("ROLLBACK").execute(&mut lock).await?;
    // Process two was first in line: seq 2 is its push, and process one's is 3.
    assert_eq!(by_two.await??.seqs, vec![2]);
    let reply = by_one.await??;
    assert_eq!(reply.seqs, vec![3]);
    // Process one's streams get the right record (seq 3), then the marker that confirms it.
    let right = next_data::<LiveEvent>(&mut stream, &mut text, |e| e.tentative).await?;
    assert_eq!((right.seq, right.record.is_some()), (3, true));
    let marker = next_data::<LiveEvent>(&mut stream, &mut text, |e| e.chain.is_some()).await?;
    assert_eq!((marker.seq, marker.chain), (3, Some(reply.chain)));
    let stored = one.pull_all(&id, &t).await?;
    let bytes: Vec<&[u8]> = stored.iter().map(|r| r.bytes.as_slice()).collect();
    assert_eq!(bytes, vec![&b"first"[..], b"by two", b"by one"]);
    Ok(())
}
