//! Building and running the HTTP server: shared state, middleware (metrics, logs), the routes table,
//! health, metrics and the OpenAPI document.

use crate::auth::{self, Auth};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::routes;
use crate::store::{self, Storage, StoreError};
use actix_web::dev::Service;
use actix_web::{web, App, HttpResponse, HttpServer};
use shared_schema::api::Health;
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
    /// The shared state.
    pub state: web::Data<AppState>,
}

async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let health = |status: &str| Health {
        status: status.into(),
        database: state.store.backend().into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(health("ok")),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
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

/// Opens storage and the secret, binds, and starts serving.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let store = store::open(&config.database_url()).await?;
    let secret = auth::load_secret(config.jwt_secret.as_deref(), &config.data_dir)
        .map_err(StartError::Secret)?;
    let state = web::Data::new(AppState {
        store,
        auth: Auth::new(&secret, config.rate_limit_per_sec),
        config: config.clone(),
        metrics: Metrics::default(),
    });
    let static_dir = config.static_dir.clone();
    let data = state.clone();
    let server = HttpServer::new(move || {
        let data = data.clone();
        let metrics_state = data.clone();
        let mut app = App::new()
            .app_data(data)
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
            .configure(routes::configure);
        if static_dir.is_dir() {
            app = app.service(
                actix_files::Files::new("/", &static_dir)
                    .index_file("index.html")
                    .use_etag(true),
            );
        }
        app
    })
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
    Ok(Running {
        addr,
        server: server.run(),
        state,
    })
}
