//! `hearth-server`: see `hearth-server --help`.

use clap::Parser;
use hearth_server::Config;

#[actix_web::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("hearth-server: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let config = Config::parse();
    let running = hearth_server::app::start(config.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
    println!("Hearth is ready at http://{}/", running.addr);
    running.server.await?;
    Ok(())
}
