//! `hearth-server`: see `hearth-server --help`.

use clap::Parser;
use hearth_server::Config;

#[actix_web::main]
async fn main() {
    if let Err(e) = run().await {
        // Each error's own text already names its cause; `{:#}` would print the cause twice.
        eprintln!("hearth-server: {e}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,hearth_server=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let running = hearth_server::app::start(config).await?;
    println!(
        "Hearth is ready at http://{}/ (database: {})",
        running.addr,
        running.state.store.backend()
    );
    if let Some((addr, health)) = running.health {
        println!("Health checks also at http://{addr}/healthz (and /metrics)");
        actix_web::rt::spawn(health);
    }
    actix_web::rt::spawn(hearth_server::app::end_long_lived_on_signals(
        running.state.clone(),
    ));
    running.server.await?;
    Ok(())
}
