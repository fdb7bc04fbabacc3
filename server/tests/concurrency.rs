//! Concurrent pushers with retries on one workspace: a push raced with its own retry, and a push
//! whose reply was lost after the server committed (cut by a proxy) — seqs are gap-free, no update
//! is stored twice, every acknowledged update is there with its bytes, and a 4xx is never retried.

mod common;

use common::proxy::reply_losing_proxy;
use common::*;
use shared_schema::api::PushReply;
use shared_schema::Chain;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// Checks the stored log: gap-free seqs, a valid chain, one record per key, and each
/// acknowledged `(key, seq, bytes)` stored at its seq.
async fn check_log(s: &TestServer, ws: &str, token: &str, acked: &[(String, u64, Vec<u8>)]) -> R {
    let all = s.pull_all(ws, token).await?;
    assert_eq!(all.len(), acked.len(), "one stored update per key");
    let mut chain = Chain::genesis();
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1, "gap-free seqs");
        chain = chain.verify_next(r.seq, &r.bytes, &r.chain)?;
    }
    let by_seq: HashMap<u64, &Vec<u8>> = all.iter().map(|r| (r.seq, &r.bytes)).collect();
    for (key, seq, bytes) in acked {
        assert_eq!(by_seq.get(seq), Some(&bytes), "acknowledged {key} at {seq}");
    }
    Ok(())
}

/// One push attempt: the seq on 200; `Ok(None)` for a lost connection (retry); an error for any
/// other answer — a 4xx is final and must not be retried.
async fn push_once(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    key: &str,
    bytes: &[u8],
) -> Result<Option<u64>, String> {
    let body = shared_schema::frame::encode_push_batch(&[shared_schema::frame::PushRecord {
        key: key.as_bytes().to_vec(),
        bytes: bytes.to_vec(),
    }])
    .map_err(|e| e.to_string())?;
    match client.post(url).bearer_auth(token).body(body).send().await {
        Ok(r) if r.status() == 200 => {
            let reply: PushReply = r.json().await.map_err(|e| e.to_string())?;
            Ok(Some(reply.seqs[0]))
        }
        Ok(r) => Err(format!("push of {key} answered {}", r.status())),
        Err(_) => Ok(None),
    }
}

#[actix_web::test]
async fn fifty_pushers_each_racing_a_push_with_its_retry_get_one_seq_per_key() -> R {
    let s = std::sync::Arc::new(start_with(|c| c.rate_limit_per_sec = 10_000).await?);
    let ws = s.create().await?;
    let url = s.ws_url(&ws.workspace_id, "/updates");
    let mut tasks = Vec::new();
    for client in 0..50 {
        let (s, url, t) = (s.clone(), url.clone(), ws.master_token.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let mut acked = Vec::new();
            for n in 0..4 {
                let key = format!("c{client}-u{n}");
                let bytes = format!("client {client} update {n}").into_bytes();
                // The push and its retry are in flight at the same time (the first reply has
                // not arrived when the retry is sent): both get the same seq, one is stored.
                let (a, b) = futures_util::join!(
                    push_once(&s.client, &url, &t, &key, &bytes),
                    push_once(&s.client, &url, &t, &key, &bytes)
                );
                let (Some(a), Some(b)) = (a?, b?) else {
                    return Err(format!("a push of {key} lost its connection"));
                };
                if a != b {
                    return Err(format!("push and retry of {key} got seqs {a} and {b}"));
                }
                acked.push((key, a, bytes));
            }
            Ok::<_, String>(acked)
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await??);
    }
    check_log(&s, &ws.workspace_id, &ws.master_token, &acked).await
}

#[actix_web::test]
async fn pushes_whose_replies_were_lost_after_the_commit_are_retried_and_stored_once() -> R {
    let s = start_with(|c| c.rate_limit_per_sec = 10_000).await?;
    let ws = s.create().await?;
    let clients = 10;
    let proxy = reply_losing_proxy(&s.url, clients).await?;
    let url = format!("{}/v1/workspaces/{}/updates", proxy.url, ws.workspace_id);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (url, t) = (url.clone(), ws.master_token.clone());
        tasks.push(actix_web::rt::spawn(async move {
            // Each client has its own connection pool, like a separate device.
            let client = reqwest::Client::new();
            let key = format!("device-{c}");
            let bytes = format!("update of device {c}").into_bytes();
            let mut attempts = 0;
            loop {
                attempts += 1;
                if let Some(seq) = push_once(&client, &url, &t, &key, &bytes).await? {
                    return Ok::<_, String>((key, seq, bytes, attempts));
                }
                if attempts > 20 {
                    return Err(format!("{key}: no reply after {attempts} attempts"));
                }
            }
        }));
    }
    let mut acked = Vec::new();
    let mut retried = 0;
    for t in tasks {
        let (key, seq, bytes, attempts) = t.await??;
        retried += usize::from(attempts > 1);
        acked.push((key, seq, bytes));
    }
    assert_eq!(
        proxy.dropped.load(Ordering::SeqCst),
        clients,
        "replies lost"
    );
    assert!(
        retried > 0,
        "some push was retried after its reply was lost"
    );
    check_log(&s, &ws.workspace_id, &ws.master_token, &acked).await
}
