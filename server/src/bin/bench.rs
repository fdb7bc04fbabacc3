//! `hearth-bench`: push throughput and latency of `hearth-server` over loopback, against the raw
//! INSERT rate of the same rows on the same database in the same run. Prints a table.
//!
//! Usage: `hearth-bench [--pg postgres://…] [--pushes N]` (scripts/bench.sh starts a throwaway
//! Postgres and passes it). SQLite always runs, in a temp dir.

use anyhow::Context;
use hearth_server::Config;
use shared_schema::api::{CreatedWorkspace, PushReply};
use shared_schema::frame::{encode_push_batch, PushRecord};
use std::time::{Duration, Instant};

const UPDATE_SIZE: usize = 1024;

struct Row {
    backend: &'static str,
    clients: usize,
    pushes_per_sec: f64,
    p50: Duration,
    p99: Duration,
    raw_inserts_per_sec: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn push_run(url: &str, clients: usize, total: usize) -> anyhow::Result<(f64, Vec<Duration>)> {
    let client = reqwest::Client::new();
    let ws: CreatedWorkspace = client
        .post(format!("{url}/v1/workspaces"))
        .send()
        .await?
        .json()
        .await?;
    let per_client = total / clients;
    let started = Instant::now();
    let mut handles = Vec::new();
    for c in 0..clients {
        let client = client.clone();
        let url = format!("{url}/v1/workspaces/{}/updates", ws.workspace_id);
        let token = ws.master_token.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_client);
            for n in 0..per_client {
                let body = encode_push_batch(&[PushRecord {
                    key: format!("c{c}-{n}").into_bytes(),
                    bytes: vec![(n % 251) as u8; UPDATE_SIZE],
                }])?;
                let t = Instant::now();
                let res = client
                    .post(&url)
                    .bearer_auth(&token)
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(res.status() == 200, "push failed: {}", res.status());
                let _: PushReply = res.json().await?;
                lat.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    Ok((all.len() as f64 / secs, all))
}

/// The same rows inserted straight into `updates`, one transaction each, one connection.
async fn raw_inserts(db_url: &str, url: &str, total: usize) -> anyhow::Result<f64> {
    let client = reqwest::Client::new();
    let ws: CreatedWorkspace = client
        .post(format!("{url}/v1/workspaces"))
        .send()
        .await?
        .json()
        .await?;
    let pool = sqlx::AnyPool::connect(db_url).await?;
    let chain = vec![0u8; 32];
    let started = Instant::now();
    for n in 0..total {
        sqlx::query(
            "INSERT INTO updates (workspace_id, seq, bytes, size, idempotency_key, chain, token_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(ws.workspace_id.as_str())
        .bind(n as i64 + 1)
        .bind(vec![(n % 251) as u8; UPDATE_SIZE])
        .bind(UPDATE_SIZE as i32)
        .bind(format!("raw-{n}").into_bytes())
        .bind(chain.clone())
        .bind("bench")
        .bind(0i64)
        .execute(&pool)
        .await?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

async fn bench_backend(
    backend: &'static str,
    db_url: String,
    total: usize,
) -> anyhow::Result<Vec<Row>> {
    let dir = std::env::temp_dir().join(format!("hearth-bench-{}", uuid::Uuid::new_v4().simple()));
    let mut config = Config::for_tests(dir, Some(db_url.clone()));
    config.rate_limit_per_sec = 1_000_000;
    let running = hearth_server::app::start(config).await?;
    let url = format!("http://{}", running.addr);
    let handle = running.server.handle();
    tokio::spawn(running.server);
    let raw = raw_inserts(&db_url, &url, total)
        .await
        .context("raw inserts")?;
    let mut rows = Vec::new();
    for clients in [1usize, 8, 64] {
        let (rate, lat) = push_run(&url, clients, total).await?;
        rows.push(Row {
            backend,
            clients,
            pushes_per_sec: rate,
            p50: percentile(&lat, 0.50),
            p99: percentile(&lat, 0.99),
            raw_inserts_per_sec: raw,
        });
    }
    handle.stop(true).await;
    Ok(rows)
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let total: usize = arg("--pushes")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1920);
    let sqlite_dir =
        std::env::temp_dir().join(format!("hearth-bench-db-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&sqlite_dir)?;
    let sqlite_url = format!(
        "sqlite://{}?mode=rwc",
        sqlite_dir.join("bench.sqlite3").display()
    );
    let mut rows = bench_backend("sqlite", sqlite_url, total).await?;
    if let Some(pg) = arg("--pg") {
        rows.extend(bench_backend("postgres", pg, total).await?);
    }
    println!("push benchmark: {total} pushes of one {UPDATE_SIZE}-byte update per row, HTTP over loopback");
    println!("| backend  | clients | pushes/s | p50 ms | p99 ms | raw INSERT/s | pushes/s ÷ raw |");
    println!("|----------|--------:|---------:|-------:|-------:|-------------:|---------------:|");
    for r in rows {
        println!(
            "| {:<8} | {:>7} | {:>8.0} | {:>6.2} | {:>6.2} | {:>12.0} | {:>14.2} |",
            r.backend,
            r.clients,
            r.pushes_per_sec,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.raw_inserts_per_sec,
            r.pushes_per_sec / r.raw_inserts_per_sec
        );
    }
    Ok(())
}
