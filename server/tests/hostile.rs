//! Hostile inputs, each refused with a clear JSON error and nothing lost: anonymous floods,
//! quotas, slow bodies, oversized pages and batches, empty updates, live streams of revoked or
//! deleted workspaces, unsafe start-up configurations, framework-level errors, security headers,
//! clients holding every connection (health checks go on at the health address).

mod common;

use common::*;
use futures_util::StreamExt;
use shared_schema::frame::{encode_push_batch, PushRecord};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn records(n: usize, size: usize, prefix: &str) -> Vec<PushRecord> {
    (0..n)
        .map(|i| PushRecord {
            key: format!("{prefix}{i}").into_bytes(),
            bytes: vec![1u8; size],
        })
        .collect()
}

#[actix_web::test]
async fn anonymous_creates_are_rate_limited_per_address() -> R {
    let s = start_with(|c| c.anonymous_per_minute = 6).await?;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let res = s
            .client
            .post(format!("{}/v1/workspaces", s.url))
            .send()
            .await?;
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            assert!(res.headers().get("Retry-After").is_some());
            expect_error(res, 429, "rate_limited").await?;
            break;
        }
    }
    assert_eq!(statuses, vec![201, 201, 429], "a burst of 2, then 429");
    let res = s
        .client
        .post(format!("{}/v1/workspaces/import", s.url))
        .body("x")
        .send()
        .await?;
    expect_error(res, 429, "rate_limited").await
}

#[actix_web::test]
async fn workspace_and_server_quotas_answer_507_with_the_numbers() -> R {
    let s = start_with(|c| c.workspace_quota_bytes = 1000).await?;
    let ws = s.create().await?;
    let (id, t) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    let body = encode_push_batch(&records(1, 600, "a"))?;
    assert_eq!(s.push_raw(id, t, body.clone()).await?.status(), 200);
    // The same push again is a retry (known key): no new bytes, still 200.
    assert_eq!(s.push_raw(id, t, body).await?.status(), 200);
    let res = s
        .push_raw(id, t, encode_push_batch(&records(1, 600, "b"))?)
        .await?;
    assert_eq!(res.status(), 507);
    let err: serde_json::Value = res.json().await?;
    assert_eq!(err["error"]["code"], "quota_exceeded");
    let message = err["error"]["message"].as_str().ok_or("message")?;
    assert!(
        message.contains("1000") && message.contains("600"),
        "{message}"
    );
    let (page, head, _) = s.pull(id, t, 0, None).await?;
    assert_eq!(
        (page.len(), head),
        (1, 1),
        "nothing of the refused push was stored"
    );

    // The server-wide quota counts every workspace of the database: a fresh SQLite one here.
    let s = start_with(|c| {
        c.total_quota_bytes = 1500;
        c.database_url = None;
    })
    .await?;
    let a = s.create().await?;
    let b = s.create().await?;
    let push = |ws: &shared_schema::api::CreatedWorkspace, p: &str| {
        let body = encode_push_batch(&records(1, 1000, p));
        let (id, t) = (ws.workspace_id.clone(), ws.master_token.clone());
        let s = &s;
        async move { Ok::<_, E>(s.push_raw(&id, &t, body?).await?) }
    };
    assert_eq!(push(&a, "a").await?.status(), 200);
    expect_error(push(&b, "b").await?, 507, "quota_exceeded").await
}

#[actix_web::test]
async fn importing_can_require_the_operators_token() -> R {
    let s = start_with(|c| c.import_token = Some("operator-import-secret".into())).await?;
    let res = s
        .client
        .post(format!("{}/v1/workspaces/import", s.url))
        .body("not even a backup")
        .send()
        .await?;
    expect_error(res, 401, "missing_token").await?;
    let res = s
        .client
        .post(format!("{}/v1/workspaces/import", s.url))
        .bearer_auth("operator-import-secret")
        .body("not even a backup")
        .send()
        .await?;
    expect_error(res, 400, "bad_request").await
}

#[actix_web::test]
async fn a_body_slower_than_the_deadline_is_cut_off_with_408() -> R {
    let s = start_with(|c| c.body_timeout_secs = 1).await?;
    let ws = s.create().await?;
    let addr = s.url.trim_start_matches("http://").to_owned();
    let token = ws.master_token.clone();
    let path = format!("/v1/workspaces/{}/updates", ws.workspace_id);
    let started = Instant::now();
    let reply = tokio::task::spawn_blocking(move || -> Result<String, std::io::Error> {
        let mut conn = std::net::TcpStream::connect(addr)?;
        conn.set_read_timeout(Some(Duration::from_secs(20)))?;
        write!(
            conn,
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 100000000\r\n\r\n"
        )?;
        conn.write_all(&[0u8; 10])?;
        let mut buf = [0u8; 4096];
        let n = conn.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    })
    .await??;
    // 100 MB declared is over the 4 MiB limit: refused at once, without reserving memory.
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");

    let addr = s.url.trim_start_matches("http://").to_owned();
    let token = ws.master_token.clone();
    let path = format!("/v1/workspaces/{}/updates", ws.workspace_id);
    let reply = tokio::task::spawn_blocking(move || -> Result<String, std::io::Error> {
        let mut conn = std::net::TcpStream::connect(addr)?;
        conn.set_read_timeout(Some(Duration::from_secs(20)))?;
        write!(
            conn,
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 1000\r\n\r\n"
        )?;
        for _ in 0..3 {
            conn.write_all(&[0u8; 1])?;
            std::thread::sleep(Duration::from_millis(400));
        }
        let mut buf = [0u8; 4096];
        let n = conn.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    })
    .await??;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("request_timeout"), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(15));
    Ok(())
}

#[actix_web::test]
async fn pages_and_batches_are_capped_in_records_and_empty_updates_refused() -> R {
    let s = start_with(|c| c.rate_limit_per_sec = 10_000).await?;
    let ws = s.create().await?;
    let (id, t) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    let too_many = encode_push_batch(&records(shared_schema::log::MAX_BATCH_RECORDS + 1, 1, "x"))?;
    expect_error(s.push_raw(id, t, too_many).await?, 400, "malformed_frame").await?;
    let empty = encode_push_batch(&records(1, 0, "e"))?;
    expect_error(s.push_raw(id, t, empty).await?, 400, "malformed_frame").await?;
    for b in 0..5 {
        let body = encode_push_batch(&records(1000, 1, &format!("b{b}-")))?;
        assert_eq!(s.push_raw(id, t, body).await?.status(), 200);
    }
    let (page, head, more) = s.pull(id, t, 0, None).await?;
    assert_eq!(head, 5000);
    assert_eq!(page.len(), shared_schema::log::MAX_PAGE_RECORDS);
    assert!(more);
    // limit_bytes counts the 45-byte record header: a 1-byte limit gives one record.
    let (page, _, more) = s.pull(id, t, 0, Some(1)).await?;
    assert_eq!((page.len(), more), (1, true));
    let (page, _, _) = s.pull(id, t, 0, Some(46 * 10)).await?;
    assert_eq!(page.len(), 10);
    Ok(())
}

async fn open_live(s: &TestServer, ws: &str, token: &str) -> Result<reqwest::Response, E> {
    Ok(s.client
        .get(s.ws_url(ws, "/live"))
        .bearer_auth(token)
        .send()
        .await?)
}

/// Reads a live stream until it ends; true if it ended within `within`.
async fn ends_within(res: reqwest::Response, within: Duration) -> bool {
    let mut stream = res.bytes_stream();
    tokio::time::timeout(within, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await
    .is_ok()
}

#[actix_web::test]
async fn live_streams_close_on_revoke_and_delete_and_are_capped_per_token() -> R {
    let s = start_with(|c| {
        c.max_streams_per_token = 2;
        c.live_keepalive_secs = 1;
    })
    .await?;
    let ws = s.create().await?;
    let (id, t) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    let minted = s.mint(id, t, "write", None).await?;
    let member = minted["token"].as_str().ok_or("token")?;
    let jti = minted["id"].as_str().ok_or("id")?;
    let first = open_live(&s, id, member).await?;
    let second = open_live(&s, id, member).await?;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    expect_error(open_live(&s, id, member).await?, 429, "rate_limited").await?;
    drop(second);
    // The server notices a client that went away when a keepalive write fails (the first write
    // after the close may still be buffered): within a few keepalives of a second.
    let mut again = open_live(&s, id, member).await?;
    let waited = Instant::now();
    while again.status() == 429 && waited.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        again = open_live(&s, id, member).await?;
    }
    assert_eq!(again.status(), 200, "a closed stream frees its slot");
    let res = s
        .client
        .delete(s.ws_url(id, &format!("/tokens/{jti}")))
        .bearer_auth(t)
        .send()
        .await?;
    assert_eq!(res.status(), 204);
    assert!(
        ends_within(first, Duration::from_secs(5)).await,
        "revoked: closed"
    );
    assert!(
        ends_within(again, Duration::from_secs(5)).await,
        "revoked: closed"
    );

    let owner = open_live(&s, id, t).await?;
    assert_eq!(owner.status(), 200);
    let res = s
        .client
        .delete(s.ws_url(id, ""))
        .bearer_auth(t)
        .send()
        .await?;
    assert_eq!(res.status(), 204);
    assert!(
        ends_within(owner, Duration::from_secs(5)).await,
        "deleted: closed"
    );
    Ok(())
}

#[actix_web::test]
async fn unsafe_configurations_refuse_to_start_and_a_missing_data_dir_is_created() -> R {
    let web = temp_dir();
    let data = web.join("data");
    let err = start_with(|c| {
        c.static_dir = web.clone();
        c.data_dir = data.clone();
    })
    .await
    .err()
    .ok_or("started with the data dir inside the static dir")?;
    assert!(err.to_string().contains("JWT secret"), "{err}");

    let err = start_with(|c| c.jwt_secret = Some("too-short".into()))
        .await
        .err()
        .ok_or("started with a 9-byte secret")?;
    assert!(err.to_string().contains("at least 32"), "{err}");

    let fresh = temp_dir().join("not").join("yet");
    let s = start_with(|c| {
        c.data_dir = fresh.clone();
        c.database_url = None;
    })
    .await?;
    s.create().await?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(fresh.join("hearth.sqlite3"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the database is private");
    }
    Ok(())
}

#[actix_web::test]
async fn framework_errors_are_json_and_the_ui_is_served_with_security_headers() -> R {
    let web = temp_dir();
    std::fs::write(
        web.join("index.html"),
        "<html><script type=\"module\">boot()</script><script src=\"/a.js\"></script></html>",
    )?;
    let s = start_with(|c| c.static_dir = web.clone()).await?;
    let ws = s.create().await?;
    let res = s
        .client
        .get(s.ws_url(&ws.workspace_id, "/updates?after=abc"))
        .bearer_auth(&ws.master_token)
        .send()
        .await?;
    expect_error(res, 400, "bad_request").await?;
    let res = s
        .client
        .get(format!("{}/v1/nothing/here", s.url))
        .send()
        .await?;
    expect_error(res, 404, "not_found").await?;
    let res = s
        .client
        .post(s.ws_url(&ws.workspace_id, "/tokens"))
        .bearer_auth(&ws.master_token)
        .json(&serde_json::json!({ "role": "read", "expires_in": u64::MAX, "label": "x" }))
        .send()
        .await?;
    expect_error(res, 400, "bad_request").await?;
    let res = s
        .client
        .post(s.ws_url(&ws.workspace_id, "/tokens"))
        .bearer_auth(&ws.master_token)
        .body(vec![b' '; 200 * 1024])
        .send()
        .await?;
    assert_eq!(res.status(), 413);
    assert!(res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json")));

    let res = s.client.get(format!("{}/", s.url)).send().await?;
    assert_eq!(res.status(), 200);
    let h = |name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let csp = h("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("'sha256-"), "inline script hashed: {csp}");
    assert!(!csp.contains("'unsafe-eval'"), "{csp}");
    assert_eq!(h("x-frame-options"), "DENY");
    assert_eq!(h("x-content-type-options"), "nosniff");
    Ok(())
}

#[actix_web::test]
async fn clients_holding_every_connection_leave_health_checks_answered_at_the_health_address() -> R
{
    let mut config = hearth_server::Config::for_tests(temp_dir(), database_url());
    config.max_connections = 32;
    config.health_bind = Some("127.0.0.1:0".into());
    let running = hearth_server::app::start(config).await?;
    let (health_addr, health) = running.health.ok_or("no health listener")?;
    let main = running.addr;
    actix_web::rt::spawn(running.server);
    actix_web::rt::spawn(health);
    // Every worker takes at most (32 / workers).max(16) connections: hold all of them (and more),
    // each with half a request line, as a slow or hostile client would.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let slots = workers * (32 / workers).max(16);
    let mut held = Vec::new();
    for _ in 0..slots + 16 {
        let mut c = tokio::net::TcpStream::connect(main).await?;
        tokio::io::AsyncWriteExt::write_all(&mut c, b"GET /healthz HTTP/1.1\r\n").await?;
        held.push(c);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let blocked = client.get(format!("http://{main}/healthz")).send().await;
    assert!(
        blocked.is_err(),
        "the main address has no free connection (got {blocked:?})"
    );
    let started = Instant::now();
    let res = client
        .get(format!("http://{health_addr}/healthz"))
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await?;
    assert_eq!(body["status"], "ok", "{body}");
    assert!(started.elapsed() < Duration::from_secs(2));
    let metrics = client
        .get(format!("http://{health_addr}/metrics"))
        .send()
        .await?;
    assert_eq!(metrics.status(), 200);
    // Only health and metrics there: not the API.
    let api = client
        .post(format!("http://{health_addr}/v1/workspaces"))
        .send()
        .await?;
    assert_eq!(api.status(), 404);
    drop(held);
    Ok(())
}
