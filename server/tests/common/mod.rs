//! Test harness: a real server on 127.0.0.1:0 over SQLite (temp dir) or the Postgres in
//! `HEARTH_TEST_DATABASE_URL`, and a small client.
#![allow(dead_code)]

pub mod load;
pub mod proxy;

use hearth_server::Config;
use reqwest::{Client, Response};
use shared_schema::api::CreatedWorkspace;
use shared_schema::frame::{self, PullRecord, PushRecord};
use std::path::PathBuf;

pub type R = Result<(), Box<dyn std::error::Error>>;
pub type E = Box<dyn std::error::Error>;
pub const SECRET: &str = "test-secret-test-secret-test-secret";

pub fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("hearth-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The server binary as a command that does not inherit the test's `HEARTH_*` settings.
pub fn server_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hearth-server"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HEARTH_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

pub fn database_url() -> Option<String> {
    std::env::var("HEARTH_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

pub struct TestServer {
    pub url: String,
    pub client: Client,
}

pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Result<TestServer, E> {
    let mut config = Config::for_tests(temp_dir(), database_url());
    tweak(&mut config);
    let running = hearth_server::app::start(config).await?;
    let url = format!("http://{}", running.addr);
    actix_web::rt::spawn(running.server);
    if let Some((_, health)) = running.health {
        actix_web::rt::spawn(health);
    }
    Ok(TestServer {
        url,
        client: Client::new(),
    })
}

pub async fn start() -> Result<TestServer, E> {
    start_with(|_| {}).await
}

impl TestServer {
    pub fn ws_url(&self, ws: &str, rest: &str) -> String {
        format!("{}/v1/workspaces/{ws}{rest}", self.url)
    }

    pub async fn create(&self) -> Result<CreatedWorkspace, E> {
        let res = self
            .client
            .post(format!("{}/v1/workspaces", self.url))
            .send()
            .await?;
        assert_eq!(res.status(), 201);
        Ok(res.json().await?)
    }

    pub async fn push_raw(
        &self,
        ws: &str,
        token: &str,
        body: Vec<u8>,
    ) -> Result<Response, reqwest::Error> {
        self.client
            .post(self.ws_url(ws, "/updates"))
            .bearer_auth(token)
            .header("Content-Type", "application/octet-stream")
            .body(body)
            .send()
            .await
    }

    pub async fn push(
        &self,
        ws: &str,
        token: &str,
        records: &[(&str, &[u8])],
    ) -> Result<Response, E> {
        let recs: Vec<PushRecord> = records
            .iter()
            .map(|(k, b)| PushRecord {
                key: k.as_bytes().to_vec(),
                bytes: b.to_vec(),
            })
            .collect();
        Ok(self
            .push_raw(ws, token, frame::encode_push_batch(&recs)?)
            .await?)
    }

    /// One pull page after `after`: (records, head seq, more).
    pub async fn pull(
        &self,
        ws: &str,
        token: &str,
        after: u64,
        limit: Option<usize>,
    ) -> Result<(Vec<PullRecord>, u64, bool), E> {
        let limit = limit
            .map(|l| format!("&limit_bytes={l}"))
            .unwrap_or_default();
        let res = self
            .client
            .get(self.ws_url(ws, &format!("/updates?after={after}{limit}")))
            .bearer_auth(token)
            .send()
            .await?;
        assert_eq!(res.status(), 200, "pull failed");
        let head = res
            .headers()
            .get("Hearth-Head-Seq")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or("no Hearth-Head-Seq")?;
        let more = res.headers().get("Hearth-More").is_some();
        Ok((frame::decode_pull_stream(&res.bytes().await?)?, head, more))
    }

    /// Pulls every record from 0, following `Hearth-More`.
    pub async fn pull_all(&self, ws: &str, token: &str) -> Result<Vec<PullRecord>, E> {
        let mut out: Vec<PullRecord> = Vec::new();
        let mut after = 0;
        loop {
            let (page, _, more) = self.pull(ws, token, after, Some(65536)).await?;
            if let Some(last) = page.last() {
                after = last.seq;
            }
            out.extend(page);
            if !more {
                return Ok(out);
            }
        }
    }

    pub async fn head(&self, ws: &str, token: &str) -> Result<u64, E> {
        Ok(self.pull(ws, token, u64::MAX / 2, None).await?.1)
    }

    pub async fn mint(
        &self,
        ws: &str,
        master: &str,
        role: &str,
        expires_in: Option<u64>,
    ) -> Result<serde_json::Value, E> {
        let res = self
            .client
            .post(self.ws_url(ws, "/tokens"))
            .bearer_auth(master)
            .json(&serde_json::json!({ "role": role, "expires_in": expires_in, "label": "test" }))
            .send()
            .await?;
        assert_eq!(res.status(), 201);
        Ok(res.json().await?)
    }
}

/// Asserts status and error code of a response.
pub async fn expect_error(res: Response, status: u16, code: &str) -> R {
    assert_eq!(res.status().as_u16(), status, "status for expected {code}");
    let body: serde_json::Value = res.json().await?;
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    Ok(())
}

/// Reads a live stream until a `data:` event that parses as `T` and passes `want` (after what
/// `text` already holds), within 15 s.
pub async fn next_data<T: serde::de::DeserializeOwned>(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<actix_web::web::Bytes>> + Unpin),
    text: &mut String,
    want: impl Fn(&T) -> bool,
) -> Result<T, E> {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        while let Some(end) = text.find("\n\n") {
            let ev: String = text.drain(..end + 2).collect();
            if let Some(json) = ev.strip_prefix("data: ") {
                if let Ok(t) = serde_json::from_str::<T>(json.trim()) {
                    if want(&t) {
                        return Ok(t);
                    }
                }
            }
        }
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| "no such live event within 15 s")?
            .ok_or("live stream ended")??;
        text.push_str(std::str::from_utf8(&chunk)?);
    }
}
