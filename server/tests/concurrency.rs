//! 50 concurrent pushers with retries on one workspace: seqs are gap-free, no update is stored
//! twice, and every acknowledged update is there with its bytes.

mod common;

use common::*;
use shared_schema::api::PushReply;
use shared_schema::Chain;
use std::collections::HashMap;

#[actix_web::test]
async fn fifty_concurrent_pushers_with_retries_get_gap_free_seqs_and_lose_nothing() -> R {
    let s = std::sync::Arc::new(start_with(|c| c.rate_limit_per_sec = 10_000).await?);
    let ws = s.create().await?;
    let mut tasks = Vec::new();
    for client in 0..50 {
        let s = s.clone();
        let (id, t) = (ws.workspace_id.clone(), ws.master_token.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let mut acked: Vec<(String, u64, Vec<u8>)> = Vec::new();
            for n in 0..4 {
                let key = format!("c{client}-u{n}");
                let bytes = format!("client {client} update {n}").into_bytes();
                // Every push is sent twice (a retry after a lost reply); the second must get
                // the same seq and store nothing.
                let mut seqs = Vec::new();
                for _attempt in 0..2 {
                    let mut tries = 0;
                    loop {
                        tries += 1;
                        let res = s.push(&id, &t, &[(&key, &bytes)]).await;
                        match res {
                            Ok(r) if r.status() == 200 => {
                                let reply: PushReply = r.json().await.map_err(|e| e.to_string())?;
                                seqs.push(reply.seqs[0]);
                                break;
                            }
                            Ok(r) if r.status().is_server_error() => {
                                return Err(format!(
                                    "server error {} under concurrency",
                                    r.status()
                                ));
                            }
                            _ if tries < 20 => {
                                actix_web::rt::time::sleep(std::time::Duration::from_millis(20))
                                    .await;
                            }
                            Ok(r) => return Err(format!("push kept failing: {}", r.status())),
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                }
                if seqs[0] != seqs[1] {
                    return Err(format!(
                        "retry of {key} got seq {} then {}",
                        seqs[0], seqs[1]
                    ));
                }
                acked.push((key, seqs[0], bytes));
            }
            Ok::<_, String>(acked)
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await??);
    }
    let all = s.pull_all(&ws.workspace_id, &ws.master_token).await?;
    assert_eq!(all.len(), 200, "one stored update per key");
    let mut chain = Chain::genesis();
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1, "gap-free seqs");
        chain = chain.verify_next(r.seq, &r.bytes, &r.chain)?;
    }
    let by_seq: HashMap<u64, &Vec<u8>> = all.iter().map(|r| (r.seq, &r.bytes)).collect();
    for (key, seq, bytes) in &acked {
        assert_eq!(by_seq.get(seq), Some(&bytes), "acknowledged {key} at {seq}");
    }
    Ok(())
}
