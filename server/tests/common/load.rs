//! A steady push load for the fault tests, and the check that every acknowledged push is
//! stored exactly once.

use super::*;
use shared_schema::api::PushReply;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the pushers saw: each acknowledged key with its bytes and seq.
pub type Acked = Arc<Mutex<Vec<(String, Vec<u8>, u64)>>>;

/// Starts `clients` pushers against the URL in `url`; each retries a push (same key) until it
/// is answered 200, then moves to the next, until `stop`.
pub fn pushers(
    url: Arc<Mutex<String>>,
    ws: String,
    token: String,
    clients: usize,
    stop: Arc<AtomicBool>,
    acked: Acked,
) -> Vec<tokio::task::JoinHandle<Result<usize, String>>> {
    (0..clients)
        .map(|c| {
            let (url, ws, token, stop, acked) = (
                url.clone(),
                ws.clone(),
                token.clone(),
                stop.clone(),
                acked.clone(),
            );
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(15))
                    .build()
                    .map_err(|e| e.to_string())?;
                let mut failures = 0;
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("c{c}-{n}");
                    let bytes = format!("client {c} push {n}").into_bytes();
                    let body = shared_schema::frame::encode_push_batch(&[
                        shared_schema::frame::PushRecord {
                            key: key.clone().into_bytes(),
                            bytes: bytes.clone(),
                        },
                    ])
                    .map_err(|e| e.to_string())?;
                    loop {
                        let base = url.lock().map_err(|e| e.to_string())?.clone();
                        let res = client
                            .post(format!("{base}/v1/workspaces/{ws}/updates"))
                            .bearer_auth(&token)
                            .body(body.clone())
                            .send()
                            .await;
                        match res {
                            Ok(r) if r.status() == 200 => {
                                let reply: PushReply = r.json().await.map_err(|e| e.to_string())?;
                                acked.lock().map_err(|e| e.to_string())?.push((
                                    key.clone(),
                                    bytes.clone(),
                                    reply.seqs[0],
                                ));
                                break;
                            }
                            Ok(r) if r.status().is_client_error() && r.status() != 429 => {
                                return Err(format!("push refused: {}", r.status()));
                            }
                            _ => {
                                failures += 1;
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    }
                    n += 1;
                }
                Ok(failures)
            })
        })
        .collect()
}

/// Pulls everything and checks each acknowledged push is stored exactly once with its seq.
pub async fn check_every_ack_stored_once(
    s: &TestServer,
    ws: &str,
    token: &str,
    acked: &Acked,
) -> Result<(usize, usize, usize), E> {
    let records = s.pull_all(ws, token).await?;
    let mut by_bytes: HashMap<Vec<u8>, Vec<u64>> = HashMap::new();
    for r in &records {
        by_bytes.entry(r.bytes.clone()).or_default().push(r.seq);
    }
    let duplicates = by_bytes.values().filter(|seqs| seqs.len() > 1).count();
    let acked = acked.lock().map_err(|e| e.to_string())?.clone();
    let mut found = 0;
    for (key, bytes, seq) in &acked {
        match by_bytes.get(bytes) {
            Some(seqs) if seqs == &vec![*seq] => found += 1,
            other => return Err(format!("{key} (seq {seq}) is stored as {other:?}").into()),
        }
    }
    assert_eq!(duplicates, 0, "no push is stored twice");
    Ok((acked.len(), found, duplicates))
}

/// Starts the server binary on `dir` (and the test database); returns it and its URL.
pub fn spawn_server(dir: &std::path::Path) -> Result<(Child, String), E> {
    let mut args = vec![
        "--bind".to_string(),
        "127.0.0.1:0".into(),
        "--rate-limit-per-sec".into(),
        "100000".into(),
    ];
    if let Some(db) = database_url() {
        args.extend(["--database-url".into(), db]);
    }
    let mut child = server_command()
        .args(&args)
        .arg("--data-dir")
        .arg(dir)
        .env("HEARTH_JWT_SECRET", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("stdout")?).read_line(&mut line)?;
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .ok_or("no url")?
        .trim_end_matches('/')
        .to_owned();
    Ok((child, url))
}
