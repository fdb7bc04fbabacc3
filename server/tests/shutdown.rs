//! Graceful shutdown: SIGTERM lands while a push's body is still streaming in; the server lets
//! that push finish, answers it, exits cleanly, and after a restart the push is there, byte for
//! byte. Long-lived connections (push sockets, live streams) are closed at once on SIGTERM.

mod common;

use common::*;
use futures_util::StreamExt;
use shared_schema::frame::{encode_push_batch, PushRecord};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Starts the server binary on the data dir (and the test Postgres, if any); returns it and its URL.
fn spawn_server(dir: &Path) -> Result<(Child, String), E> {
    let mut args = vec![
        "--bind".to_string(),
        "127.0.0.1:0".into(),
        "--jwt-secret".into(),
        SECRET.into(),
    ];
    if let Some(db) = database_url() {
        args.extend(["--database-url".into(), db]);
    }
    let mut child = server_command()
        .args(&args)
        .arg("--data-dir")
        .arg(dir)
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

#[actix_web::test]
async fn sigterm_while_a_push_body_streams_in_finishes_and_stores_that_push() -> R {
    let dir = temp_dir();
    let (child, url) = spawn_server(&dir)?;
    let s = TestServer {
        url,
        client: reqwest::Client::new(),
    };
    let ws = s.create().await?;
    let bytes: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
    let body = encode_push_batch(&[PushRecord {
        key: b"in-flight".to_vec(),
        bytes: bytes.clone(),
    }])?;
    // The body goes out in 8 chunks. Before the second, the stream waits until the server
    // reports the push in flight (its handler is reading the body) and sends the signal itself:
    // it certainly lands while the server is still reading the body.
    let pid = child.id().to_string();
    let metrics = format!("{}/metrics", s.url);
    let signalled = Arc::new(AtomicBool::new(false));
    let chunks: Vec<(usize, Vec<u8>)> = body
        .chunks(8 * 1024)
        .map(<[u8]>::to_vec)
        .enumerate()
        .collect();
    let flag = signalled.clone();
    let stream = futures_util::stream::iter(chunks).then(move |(i, c)| {
        let (pid, flag, metrics) = (pid.clone(), flag.clone(), metrics.clone());
        async move {
            if i == 1 {
                let mut reading = false;
                for _ in 0..100 {
                    let text = match reqwest::get(&metrics).await {
                        Ok(r) => r.text().await.unwrap_or_default(),
                        Err(_) => String::new(),
                    };
                    if text.contains("hearth_pushes_in_flight 1\n") {
                        reading = true;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let ok = Command::new("kill")
                    .args(["-TERM", &pid])
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                flag.store(reading && ok, Ordering::SeqCst);
            }
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok::<_, std::io::Error>(c)
        }
    });
    let res = s
        .client
        .post(s.ws_url(&ws.workspace_id, "/updates"))
        .bearer_auth(&ws.master_token)
        .header("Content-Length", body.len().to_string())
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await?;
    assert!(
        signalled.load(Ordering::SeqCst),
        "SIGTERM was sent mid-body"
    );
    assert_eq!(res.status(), 200, "the in-flight push was finished");
    let reply: shared_schema::api::PushReply = res.json().await?;
    assert_eq!(reply.seqs, vec![1]);
    let mut child = child;
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    assert!(status.success(), "graceful exit, got {status:?}");
    // A new server on the same data: the push is stored with its exact bytes.
    let (mut again, url) = spawn_server(&dir)?;
    let s = TestServer {
        url,
        client: reqwest::Client::new(),
    };
    let stored = s.pull_all(&ws.workspace_id, &ws.master_token).await;
    let _ = again.kill();
    let _ = again.wait();
    let stored = stored?;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].seq, 1);
    assert!(
        stored[0].bytes == bytes,
        "the stored bytes are the pushed ones"
    );
    Ok(())
}

#[actix_web::test]
async fn sigterm_closes_push_sockets_and_live_streams_at_once_instead_of_holding_the_shutdown_open(
) -> R {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::Message;
    let dir = temp_dir();
    let (mut child, url) = spawn_server(&dir)?;
    let s = TestServer {
        url,
        client: reqwest::Client::new(),
    };
    let ws = s.create().await?;
    let (id, t) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    let mut req = s
        .ws_url(id, "/socket")
        .replacen("http://", "ws://", 1)
        .into_client_request()?;
    let offer = shared_schema::socket::offer(t).join(", ");
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(&offer)?);
    let (mut socket, _) = tokio_tungstenite::connect_async(req).await?;
    let live = s
        .client
        .get(s.ws_url(id, "/live"))
        .bearer_auth(t)
        .send()
        .await?;
    assert_eq!(live.status(), 200);
    let mut live = live.bytes_stream();
    let _ = live.next().await; // the head event
    let started = std::time::Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(killed.success());
    // The socket is closed with 1001 (going away), long before the 30 s shutdown timeout.
    let mut code = None;
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(10), socket.next()).await? {
        if let Message::Close(frame) = msg? {
            code = frame.map(|f| f.code);
            break;
        }
    }
    assert_eq!(code, Some(CloseCode::Away));
    let _ = socket.close(None).await;
    // The live stream ends too, and the process exits.
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), live.next()).await? {
        if chunk.is_err() {
            break;
        }
    }
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    assert!(status.success(), "graceful exit, got {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the shutdown did not wait for the long-lived connections ({:?})",
        started.elapsed()
    );
    Ok(())
}
