//! Graceful shutdown: SIGTERM while a push is in flight lets that push finish and be stored.

mod common;

use common::*;
use shared_schema::frame::{encode_push_batch, PushRecord};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[actix_web::test]
async fn sigterm_during_a_push_finishes_the_push_before_exiting() -> R {
    let dir = temp_dir();
    let mut args = vec![
        "--bind".to_string(),
        "127.0.0.1:0".into(),
        "--jwt-secret".into(),
        SECRET.into(),
    ];
    if let Some(db) = database_url() {
        args.extend(["--database-url".into(), db]);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth-server"))
        .args(&args)
        .arg("--data-dir")
        .arg(&dir)
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
    let s = TestServer {
        url: url.clone(),
        client: reqwest::Client::new(),
    };
    let ws = s.create().await?;
    let body = encode_push_batch(&[PushRecord {
        key: b"slow".to_vec(),
        bytes: vec![7u8; 64 * 1024],
    }])?;
    // Send the body in slow chunks so the request is still being read when SIGTERM arrives.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(8 * 1024).map(|c| Ok(c.to_vec())).collect();
    let stream = futures_util::stream::iter(chunks).then(|c| async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        c
    });
    let push = s
        .client
        .post(s.ws_url(&ws.workspace_id, "/updates"))
        .bearer_auth(&ws.master_token)
        .header("Content-Length", body.len().to_string())
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let pid = child.id().to_string();
    let killer = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Command::new("kill").args(["-TERM", &pid]).status()
    };
    let (res, killed) = futures_util::join!(push, killer);
    assert!(killed?.success());
    let res = res?;
    assert_eq!(res.status(), 200, "the in-flight push was finished");
    let reply: shared_schema::api::PushReply = res.json().await?;
    assert_eq!(reply.seqs, vec![1]);
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    assert!(status.success(), "graceful exit, got {status:?}");
    Ok(())
}

use futures_util::StreamExt;
