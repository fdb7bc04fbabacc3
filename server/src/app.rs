//! Building and running the HTTP server: shared state, middleware (metrics, logs, security
//! headers), the routes table, JSON errors for every refusal, health, metrics and the OpenAPI
//! document, and the checks made before serving (data dir, static dir, open-file limit).

use crate::auth::{self, Auth};
use crate::config::Config;
use crate::error::ApiError;
use crate::limits::{RateLimiter, StreamCounts};
use crate::metrics::Metrics;
use crate::routes;
use crate::store::{self, Storage, StoreError};
use actix_web::dev::Service;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, App, HttpResponse, HttpServer};
use shared_schema::api::Health;
use shared_schema::ErrorCode;
use std::net::SocketAddr;
use std::sync::Arc;
use thiserror::Error;

/// Shared state of every worker thread.
pub struct AppState {
    /// Storage.
    pub store: Arc<dyn Storage>,
    /// Tokens.
    pub auth: Auth,
    /// Configuration.
    pub config: Config,
    /// Metrics.
    pub metrics: Metrics,
    /// Rate limits.
    pub limits: Limits,
    /// Open live streams per token.
    pub streams: Arc<StreamCounts>,
    /// Open push sockets per token.
    pub sockets: Arc<StreamCounts>,
    /// Backups streaming at once.
    pub backups: Arc<tokio::sync::Semaphore>,
    /// Workspaces whose tokens changed on this process (revoke, rotate, delete): their live
    /// streams re-check their token at once.
    pub revocations: tokio::sync::broadcast::Sender<String>,
    /// Who has each workspace open (memory only).
    pub presence: Arc<crate::presence::Presence>,
    /// Set once the server is stopping: live streams and push sockets end at once instead of
    /// holding the graceful shutdown open ([`end_long_lived_on_signals`]).
    pub stopping: tokio::sync::watch::Sender<bool>,
}

/// The rate limits (token buckets).
pub struct Limits {
    /// Per token: the configured rate, bursts of 4×.
    pub token: RateLimiter,
    /// Per workspace (all its tokens): 4× the token rate.
    pub workspace: RateLimiter,
    /// Per client address, authenticated requests: 4× the token rate.
    pub addr: RateLimiter,
    /// Per client address, anonymous requests (create, import).
    pub anonymous: RateLimiter,
}

impl Limits {
    /// The limits of a config.
    pub fn new(config: &Config) -> Self {
        let rate = f64::from(config.rate_limit_per_sec.max(1));
        let anon = f64::from(config.anonymous_per_minute.max(1));
        Self {
            token: RateLimiter::new(rate, rate * 4.0),
            workspace: RateLimiter::new(rate * 4.0, rate * 16.0),
            addr: RateLimiter::new(rate * 4.0, rate * 16.0),
            anonymous: RateLimiter::new(anon / 60.0, (anon / 3.0).max(1.0)),
        }
    }
}

/// The server could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The database is unreachable or its migrations failed.
    #[error("cannot open the database: {0}")]
    Database(#[from] StoreError),
    /// The JWT secret cannot be read or created.
    #[error("cannot load the JWT secret: {0}")]
    Secret(std::io::Error),
    /// The configuration is unsafe or inconsistent.
    #[error("{0}")]
    Config(String),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A started server.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// The server future; await it to run until shutdown (SIGINT/SIGTERM finish in-flight requests).
    pub server: actix_web::dev::Server,
    /// The health listener (`--health-bind`): its address and its server future (spawn it; it
    /// stops on the same signals).
    pub health: Option<(SocketAddr, actix_web::dev::Server)>,
    /// The shared state.
    pub state: web::Data<AppState>,
}

/// Waits for SIGINT or SIGTERM — the signals actix-web stops on, finishing requests in flight —
/// and then ends the long-lived connections (live streams, push sockets), which would otherwise
/// keep the server up, and taking pushes, for the whole shutdown timeout.
pub async fn end_long_lived_on_signals(state: web::Data<AppState>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = state.stopping.send(true);
}

async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let health = |status: &str| Health {
        status: status.into(),
        database: state.store.backend().into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    // A database that is down makes the pool retry connecting until its acquire timeout: the
    // health check answers 503 after one second instead.
    match tokio::time::timeout(std::time::Duration::from_secs(1), state.store.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(health("ok")),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "health check failed");
            HttpResponse::ServiceUnavailable().json(health("database unavailable"))
        }
        Err(_) => {
            tracing::error!("health check: the database did not answer within 1 s");
            HttpResponse::ServiceUnavailable().json(health("database unavailable"))
        }
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let bytes = state.store.bytes_stored().await.unwrap_or(-1);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(bytes))
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(include_str!("openapi.json"))
}

/// Every refusal the framework makes itself (bad query, path, JSON or body) as the JSON error.
fn json_errors(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::QueryConfig::default().error_handler(|e, _| {
            ApiError::bad_request(format!("bad query parameters: {e}")).into()
        }),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|_, _| ApiError::new(ErrorCode::NotFound, "no such resource").into()),
    )
    .app_data(
        web::JsonConfig::default()
            .limit(64 * 1024)
            .error_handler(|e, _| ApiError::bad_request(format!("bad JSON body: {e}")).into()),
    )
    .app_data(web::PayloadConfig::default().limit(64 * 1024));
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::NotFound,
        "no such API route; see /v1/openapi.json",
    ))
}

/// The HTML pages served: `index.html` files of the static dir and its subfolders (two levels).
fn html_pages(dir: &std::path::Path, depth: usize) -> Vec<std::path::PathBuf> {
    let mut pages = vec![dir.join("index.html")];
    if depth > 0 {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    pages.extend(html_pages(&e.path(), depth - 1));
                }
            }
        }
    }
    pages
}

/// The Content-Security-Policy for the UI: scripts only from this origin, plus the inline
/// scripts of the served `index.html` pages by hash.
fn content_security_policy(static_dir: &std::path::Path) -> String {
    use base64::Engine;
    use sha2::Digest;
    let mut hashes = String::new();
    for page in html_pages(static_dir, 2) {
        let Ok(html) = std::fs::read_to_string(page) else {
            continue;
        };
        let mut rest = html.as_str();
        while let Some(start) = rest.find("<script") {
            rest = &rest[start..];
            let Some(open_end) = rest.find('>') else {
                break;
            };
            let tag = &rest[..open_end];
            let body_start = open_end + 1;
            let Some(close) = rest[body_start..].find("</script>") else {
                break;
            };
            if !tag.contains("src=") {
                let body = &rest[body_start..body_start + close];
                let digest = sha2::Sha256::digest(body.as_bytes());
                hashes.push_str(&format!(
                    " 'sha256-{}'",
                    base64::engine::general_purpose::STANDARD.encode(digest)
                ));
            }
            rest = &rest[body_start + close..];
        }
    }
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{hashes}; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; \
         worker-src 'self' blob:; manifest-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// Raises the open-file soft limit to the hard limit; returns the new soft limit.
fn raise_open_files() -> Option<u64> {
    #[cfg(unix)]
    {
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).ok()?;
        if soft < hard && rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard).is_ok() {
            tracing::info!(
                from = soft,
                to = hard,
                "raised the open-file limit to the hard limit"
            );
            return Some(hard);
        }
        Some(soft)
    }
    #[cfg(not(unix))]
    None
}

/// Refuses a static dir that contains the data dir (it would serve `jwt-secret`).
fn check_dirs(config: &Config) -> Result<(), StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        StartError::Config(format!(
            "cannot create the data dir {}: {e}",
            config.data_dir.display()
        ))
    })?;
    if config.static_dir.is_dir() {
        let data = std::fs::canonicalize(&config.data_dir).map_err(StartError::Secret)?;
        let web = std::fs::canonicalize(&config.static_dir).map_err(StartError::Secret)?;
        if data.starts_with(&web) {
            return Err(StartError::Config(format!(
                "the static dir {} contains the data dir {}: it would serve the JWT secret and \
                 the database. Move the data dir outside it.",
                web.display(),
                data.display()
            )));
        }
    }
    Ok(())
}

/// Opens storage and the secret, binds, and starts serving.
pub async fn start(config: Config) -> Result<Running, StartError> {
    check_dirs(&config)?;
    #[cfg(feature = "test-hooks")]
    if config.test_tamper_pulls {
        tracing::warn!(
            "TEST HOOK ON (--test-tamper-pulls): every pulled update is altered and every client \
             will stop with chain_mismatch. This build has the test-hooks feature; never run it \
             in production."
        );
    }
    #[cfg(feature = "test-hooks")]
    if let Some(seq) = config.test_fork_at_seq {
        tracing::warn!(
            "TEST HOOK ON (--test-fork-at-seq {seq}): members are shown a forked history. This \
             build has the test-hooks feature; never run it in production."
        );
    }
    let store = store::open(&config.database_url(), config.store_options()).await?;
    let secret = auth::load_secret(config.jwt_secret.as_deref(), &config.data_dir)
        .map_err(StartError::Secret)?;
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let open_files = raise_open_files();
    // Leave room for the database pool, the listener, log files and health checks.
    let connections = match open_files {
        Some(n) => config
            .max_connections
            .min((n as usize).saturating_sub(256).max(64)),
        None => config.max_connections,
    };
    if connections < config.max_connections {
        tracing::warn!(
            configured = config.max_connections,
            connections,
            "fewer connections than configured fit the open-file limit"
        );
    }
    let presence = crate::presence::Presence::standard();
    tokio::spawn(crate::presence::run(
        presence.clone(),
        store.presence_updates(),
    ));
    let state = web::Data::new(AppState {
        presence,
        store,
        auth: Auth::new(&secret),
        limits: Limits::new(&config),
        config: config.clone(),
        metrics: Metrics::default(),
        streams: Arc::new(StreamCounts::default()),
        sockets: Arc::new(StreamCounts::default()),
        backups: Arc::new(tokio::sync::Semaphore::new(2)),
        revocations: tokio::sync::broadcast::channel(1024).0,
        stopping: tokio::sync::watch::channel(false).0,
    });
    tokio::spawn(crate::routes::follow_revocations(
        state.clone(),
        state.store.revocation_updates(),
    ));
    let static_dir = config.static_dir.clone();
    let static_canonical = std::fs::canonicalize(&static_dir)
        .ok()
        .filter(|d| d.is_dir());
    let csp = content_security_policy(&static_dir);
    let data = state.clone();
    let server = HttpServer::new(move || {
        let data = data.clone();
        let metrics_state = data.clone();
        let mut app = App::new()
            .app_data(data)
            .configure(json_errors)
            .wrap(
                DefaultHeaders::new()
                    .add(("Content-Security-Policy", csp.as_str()))
                    .add(("X-Frame-Options", "DENY"))
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "no-referrer")),
            )
            .wrap_fn(move |req, srv| {
                let started = std::time::Instant::now();
                let method = req.method().clone();
                let path = req.path().to_owned();
                let state = metrics_state.clone();
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    let status = res.status().as_u16();
                    state.metrics.observe(status, started.elapsed());
                    tracing::info!(%method, %path, status, micros = started.elapsed().as_micros() as u64, "request");
                    Ok(res)
                }
            })
            .route("/healthz", web::get().to(healthz))
            .route("/metrics", web::get().to(metrics))
            .route("/v1/openapi.json", web::get().to(openapi))
            .configure(routes::configure)
            .service(web::scope("/v1").default_service(web::to(not_found)));
        if let Some(dir) = &static_canonical {
            app = app
                .app_data(web::Data::new(crate::static_files::StaticDir(dir.clone())))
                .route(
                    crate::static_files::PATTERN,
                    web::get().to(crate::static_files::serve),
                );
        }
        if static_dir.is_dir() {
            app = app.service(
                actix_files::Files::new("/", &static_dir)
                    .index_file("index.html")
                    .use_etag(true),
            );
        }
        app
    })
    .workers(workers)
    // Nagle off: a live event written while the previous one is unacknowledged would otherwise
    // wait for the client's delayed ACK (up to 40 ms on Linux); actix leaves it on by default.
    .tcp_nodelay(true)
    .max_connections((connections / workers).max(16))
    .client_request_timeout(std::time::Duration::from_secs(10))
    .shutdown_timeout(30)
    .bind(&config.bind)
    .map_err(|source| StartError::Bind {
        addr: config.bind.clone(),
        source,
    })?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| StartError::Bind {
            addr: config.bind.clone(),
            source: std::io::Error::other("no address bound"),
        })?;
    let health = match &config.health_bind {
        Some(bind) => Some(health_listener(bind, state.clone())?),
        None => None,
    };
    Ok(Running {
        addr,
        server: server.run(),
        health,
        state,
    })
}

/// The `--health-bind` listener: `/healthz` and `/metrics` only, one worker, its own connections.
fn health_listener(
    bind: &str,
    state: web::Data<AppState>,
) -> Result<(SocketAddr, actix_web::dev::Server), StartError> {
    let bound = |source| StartError::Bind {
        addr: bind.to_owned(),
        source,
    };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/healthz", web::get().to(healthz))
            .route("/metrics", web::get().to(metrics))
    })
    .workers(1)
    .max_connections(64)
    .client_request_timeout(std::time::Duration::from_secs(5))
    .shutdown_timeout(5)
    .bind(bind)
    .map_err(bound)?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| bound(std::io::Error::other("no address bound")))?;
    Ok((addr, server.run()))
}
