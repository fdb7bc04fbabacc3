//! Building and running the HTTP server.

use crate::config::Config;
use actix_web::{web, App, HttpResponse, HttpServer};
use shared_schema::api::Health;
use std::net::SocketAddr;

/// A started server.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// The server future; await it to run until shutdown.
    pub server: actix_web::dev::Server,
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
        database: "sqlite".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Binds and starts the server (it runs when `server` is awaited or spawned).
pub async fn start(config: Config) -> std::io::Result<Running> {
    let static_dir = config.static_dir.clone();
    let server = HttpServer::new(move || {
        let mut app = App::new().route("/healthz", web::get().to(healthz));
        if static_dir.is_dir() {
            app = app.service(actix_files::Files::new("/", &static_dir).index_file("index.html"));
        }
        app
    })
    .workers(2)
    .bind(&config.bind)?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("no address bound"))?;
    Ok(Running {
        addr,
        server: server.run(),
    })
}
