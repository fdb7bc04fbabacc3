//! The server process killed with SIGKILL under a steady push load and started again: every push
//! answered 200 is stored afterwards, none twice (SQLite, or Postgres with
//! `HEARTH_TEST_DATABASE_URL`).

mod common;

use common::load::*;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[actix_web::test]
async fn a_server_killed_under_load_loses_no_acknowledged_push() -> R {
    let dir = temp_dir();
    let (mut child, first_url) = spawn_server(&dir)?;
    let s = TestServer {
        url: first_url.clone(),
        client: reqwest::Client::new(),
    };
    let ws = s.create().await?;
    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Acked::default());
    let url = Arc::new(Mutex::new(first_url));
    let tasks = pushers(
        url.clone(),
        ws.workspace_id.clone(),
        ws.master_token.clone(),
        16,
        stop.clone(),
        acked.clone(),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = acked.lock().map_err(|e| e.to_string())?.len();
    // SIGKILL, pushes in flight, and the server started again — off this (single-threaded)
    // runtime, so the pushers keep running meanwhile: a kill that blocked them could land when
    // every reply had just arrived and none was in flight, and nothing would be interrupted.
    let restart = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || -> Result<_, String> {
            child.kill().map_err(|e| e.to_string())?;
            child.wait().map_err(|e| e.to_string())?;
            spawn_server(&dir).map_err(|e| e.to_string())
        })
    };
    let (mut child, second_url) = restart.await.map_err(|e| e.to_string())??;
    *url.lock().map_err(|e| e.to_string())? = second_url.clone();
    let restarted = Instant::now();
    while acked.lock().map_err(|e| e.to_string())?.len() < before + 200
        && restarted.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut retries = 0;
    for t in tasks {
        retries += t.await.map_err(|e| e.to_string())??;
    }
    let s = TestServer {
        url: second_url,
        client: reqwest::Client::new(),
    };
    let (answered, found, duplicates) =
        check_every_ack_stored_once(&s, &ws.workspace_id, &ws.master_token, &acked).await?;
    assert!(
        retries > 0,
        "pushes failed around the kill and were retried"
    );
    assert!(answered > before, "pushes were answered after the restart");
    println!(
        "FAULT kill-9: pushes answered 200 = {answered} ({before} before the kill), found = {found}, duplicates = {duplicates}, retried = {retries}"
    );
    child.kill()?;
    child.wait()?;
    Ok(())
}
