//! Server configuration from flags and environment (flags win), design §8.

use clap::Parser;
use std::path::PathBuf;

/// `hearth-server` options.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "hearth-server",
    version,
    about = "Hearth sync server: an opaque workspace store behind JWTs"
)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "HEARTH_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Database URL: `sqlite://PATH` or `postgres://…`. Default: SQLite in the data dir.
    #[arg(long, env = "HEARTH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Folder for the SQLite file and the generated JWT secret.
    #[arg(long, env = "HEARTH_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// HS256 secret for tokens. Default: generated on first start, kept in DATA_DIR/jwt-secret (0600).
    #[arg(long, env = "HEARTH_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Folder of the built web UI (served at `/`).
    #[arg(long, env = "HEARTH_STATIC_DIR", default_value = "./dist")]
    pub static_dir: PathBuf,
    /// Largest accepted push body (one batch), bytes.
    #[arg(long, env = "HEARTH_MAX_UPDATE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_update_bytes: usize,
    /// Largest accepted snapshot or backup upload, bytes.
    #[arg(long, env = "HEARTH_MAX_SNAPSHOT_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_snapshot_bytes: usize,
    /// Requests per second allowed per token (burst = 4×).
    #[arg(long, env = "HEARTH_RATE_LIMIT", default_value_t = 50)]
    pub rate_limit_per_sec: u32,
    /// Seconds to keep updates that a snapshot covers before they may be dropped.
    #[arg(long, env = "HEARTH_RETENTION_SECS", default_value_t = 7 * 24 * 3600)]
    pub retention_secs: u64,
    /// Largest pull page, bytes.
    #[arg(long, env = "HEARTH_MAX_PULL_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_pull_bytes: usize,
    /// Test only: flip one byte of every pulled update (to test tamper detection). Never in production.
    #[arg(
        long,
        env = "HEARTH_TEST_TAMPER_PULLS",
        hide = true,
        default_value_t = false
    )]
    pub test_tamper_pulls: bool,
}

impl Config {
    /// The database URL to use: the configured one or SQLite under the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("hearth.sqlite3").display()
            ),
        }
    }

    /// A config for tests: free port, given data dir, no static files.
    pub fn for_tests(data_dir: PathBuf, database_url: Option<String>) -> Self {
        let mut c = Config::parse_from(["hearth-server"]);
        c.bind = "127.0.0.1:0".into();
        c.data_dir = data_dir;
        c.database_url = database_url;
        c.static_dir = PathBuf::from("/nonexistent");
        c.jwt_secret = Some("test-secret-test-secret-test-secret".into());
        c
    }
}
