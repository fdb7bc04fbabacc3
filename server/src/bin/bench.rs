//! `hearth-bench`: push throughput and latency of `hearth-server` over loopback, against the
//! same-run baseline of single-row autocommit INSERTs of the same rows straight into the database
//! (pgbench-style), measured for each row at that row's concurrency (as many connections as
//! clients) right before its pushes, so baseline and pushes see the same machine state.
//! Prints a table, with the database's durability setting (`fsync` / `synchronous`).
//!
//! Usage: `hearth-bench [--pg postgres://…] [--pushes N]` (scripts/bench.sh starts a throwaway
//! Postgres with `fsync=on` and passes it). SQLite always runs, in a temp dir.

use anyhow::Context;
use hearth_server::Config;
use shared_schema::api::{CreatedWorkspace, PushReply};
use shared_schema::frame::{encode_push_batch, PushRecord};
use std::time::{Duration, Instant};

const UPDATE_SIZE: usize = 1024;

struct Row {
    backend: &'static str,
    clients: usize,
    workspaces: usize,
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

async fn push_run(
    url: &str,
    clients: usize,
    workspaces: usize,
    total: usize,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    let client = reqwest::Client::new();
    let mut spaces: Vec<CreatedWorkspace> = Vec::new();
    for _ in 0..workspaces {
        spaces.push(
            client
                .post(format!("{url}/v1/workspaces"))
                .send()
                .await?
                .json()
                .await?,
        );
    }
    let per_client = total / clients;
    let started = Instant::now();
    let mut handles = Vec::new();
    for c in 0..clients {
        let ws = &spaces[c % workspaces];
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

/// The same rows inserted straight into `updates`, one autocommit INSERT each, from
/// `connections` connections at once.
async fn raw_inserts(
    db_url: &str,
    url: &str,
    total: usize,
    connections: usize,
) -> anyhow::Result<f64> {
    let client = reqwest::Client::new();
    let ws: CreatedWorkspace = client
        .post(format!("{url}/v1/workspaces"))
        .send()
        .await?
        .json()
        .await?;
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(connections as u32)
        .min_connections(connections as u32)
        .connect(db_url)
        .await?;
    let chain = vec![0u8; 32];
    let per = total / connections;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (pool, ws, chain) = (pool.clone(), ws.workspace_id.clone(), chain.clone());
        tasks.push(tokio::spawn(async move {
            for n in c * per..(c + 1) * per {
                sqlx::query(
                    "INSERT INTO updates (workspace_id, seq, bytes, size, idempotency_key, chain, token_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(ws.as_str())
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
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((per * connections) as f64 / started.elapsed().as_secs_f64())
}

/// The database's durability setting, as the table shows it.
async fn durability(db_url: &str) -> anyhow::Result<String> {
    let pool = sqlx::AnyPool::connect(db_url).await?;
    Ok(if db_url.starts_with("postgres") {
        let (v,): (String,) = sqlx::query_as("SHOW fsync").fetch_one(&pool).await?;
        format!("fsync={v}")
    } else {
        "synchronous=FULL".into()
    })
}

async fn bench_backend(
    backend: &'static str,
    db_url: String,
    total: usize,
) -> anyhow::Result<Vec<Row>> {
    let dir = std::env::temp_dir().join(format!("hearth-bench-{}", uuid::Uuid::new_v4().simple()));
    let mut config = Config::for_tests(dir, Some(db_url.clone()));
    config.rate_limit_per_sec = 1_000_000;
    config.anonymous_per_minute = 1_000_000;
    let running = hearth_server::app::start(config).await?;
    let url = format!("http://{}", running.addr);
    let handle = running.server.handle();
    tokio::spawn(running.server);
    let mut rows = Vec::new();
    for (clients, workspaces) in [(1usize, 1usize), (16, 1), (64, 1), (64, 64)] {
        let raw = raw_inserts(&db_url, &url, total, clients)
            .await
            .context("raw inserts")?;
        let (rate, lat) = push_run(&url, clients, workspaces, total).await?;
        rows.push(Row {
            backend,
            clients,
            workspaces,
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
        .unwrap_or(6400);
    let sqlite_dir =
        std::env::temp_dir().join(format!("hearth-bench-db-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&sqlite_dir)?;
    let sqlite_url = format!(
        "sqlite://{}?mode=rwc",
        sqlite_dir.join("bench.sqlite3").display()
    );
    let mut settings = vec![("sqlite", durability(&sqlite_url).await?)];
    let mut rows = bench_backend("sqlite", sqlite_url, total).await?;
    if let Some(pg) = arg("--pg") {
        settings.push(("postgres", durability(&pg).await?));
        rows.extend(bench_backend("postgres", pg, total).await?);
    }
    println!(
        "push benchmark ({} build): {total} pushes of one {UPDATE_SIZE}-byte update each, HTTP over loopback",
        if cfg!(debug_assertions) { "DEBUG" } else { "release" }
    );
    for (backend, setting) in &settings {
        println!("  {backend}: {setting}");
    }
    println!("  baseline (raw INSERT/s): single-row autocommit INSERTs of the same rows, as many connections as the row has clients, run right before that row's pushes");
    println!("| backend  | clients | workspaces | pushes/s | p50 ms | p99 ms | raw INSERT/s | pushes/s ÷ raw |");
    println!("|----------|--------:|-----------:|---------:|-------:|-------:|-------------:|---------------:|");
    for r in rows {
        println!(
            "| {:<8} | {:>7} | {:>10} | {:>8.0} | {:>6.2} | {:>6.2} | {:>12.0} | {:>14.2} |",
            r.backend,
            r.clients,
            r.workspaces,
            r.pushes_per_sec,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.raw_inserts_per_sec,
            r.pushes_per_sec / r.raw_inserts_per_sec
        );
    }
    Ok(())
}
