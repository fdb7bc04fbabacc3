//! Two `hearth-server` processes on one Postgres: a push to one reaches a live subscriber of the
//! other through LISTEN/NOTIFY. Needs `HEARTH_TEST_DATABASE_URL` (scripts/test.sh starts one); on
//! SQLite there is nothing to fan out across processes and the test says so and passes.

mod common;

use common::*;
use futures_util::StreamExt;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_server(db: &str) -> Result<(Proc, String), E> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth-server"))
        .args([
            "--bind",
            "127.0.0.1:0",
            "--database-url",
            db,
            "--jwt-secret",
            SECRET,
        ])
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
async fn a_push_to_one_process_reaches_a_live_subscriber_of_the_other() -> R {
    let Some(db) = database_url() else {
        eprintln!("skipped: needs HEARTH_TEST_DATABASE_URL (Postgres); scripts/test.sh runs it");
        return Ok(());
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
