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
    /// HS256 secret for tokens, at least 32 bytes. Prefer the environment variable: a flag shows in
    /// `ps`. Default: generated on first start, kept in DATA_DIR/jwt-secret (0600).
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
    /// Most pooled database connections of this process. Keep the sum over all server processes
    /// below Postgres's `max_connections` (default 100), or put PgBouncer in front.
    #[arg(long, env = "HEARTH_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
    /// Bytes one workspace may store (updates + snapshot); 0 = no limit. Over it: 507 quota_exceeded.
    #[arg(long, env = "HEARTH_WORKSPACE_QUOTA_BYTES", default_value_t = 1 << 30)]
    pub workspace_quota_bytes: u64,
    /// Bytes all workspaces together may store; 0 = no limit. Over it: 507 quota_exceeded.
    #[arg(long, env = "HEARTH_TOTAL_QUOTA_BYTES", default_value_t = 0)]
    pub total_quota_bytes: u64,
    /// Anonymous requests (create a workspace, import a backup) per minute per client address.
    #[arg(long, env = "HEARTH_ANONYMOUS_PER_MINUTE", default_value_t = 30)]
    pub anonymous_per_minute: u32,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy that sets it).
    #[arg(long, env = "HEARTH_TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,
    /// When set, importing a backup needs `Authorization: Bearer <this secret>`.
    #[arg(long, env = "HEARTH_IMPORT_TOKEN", hide_env_values = true)]
    pub import_token: Option<String>,
    /// Seconds a request body may take to arrive before the request is refused (408).
    #[arg(long, env = "HEARTH_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,
    /// Most open client connections; more wait in the listen backlog. Lowered at start to fit the
    /// open-file limit (which the server raises to its hard limit).
    #[arg(long, env = "HEARTH_MAX_CONNECTIONS", default_value_t = 16_384)]
    pub max_connections: usize,
    /// A second address serving only `/healthz` and `/metrics`, with connections of its own:
    /// probes there are answered even while slow or hostile clients hold every connection of the
    /// main address (`127.0.0.1:9090`, say; off when unset).
    #[arg(long, env = "HEARTH_HEALTH_BIND")]
    pub health_bind: Option<String>,
    /// Seconds between live-stream keepalives; each also re-checks the stream's token, and a
    /// stream whose client went away is noticed (and its slot freed) at the latest then.
    #[arg(long, env = "HEARTH_LIVE_KEEPALIVE_SECS", default_value_t = 15)]
    pub live_keepalive_secs: u64,
    /// Most open live streams per token.
    #[arg(long, env = "HEARTH_MAX_STREAMS_PER_TOKEN", default_value_t = 16)]
    pub max_streams_per_token: usize,
    /// Test hook, only in builds with the `test-hooks` cargo feature (never the release build):
    /// flip one byte of every pulled update, so tests can see clients detect tampering. Logged
    /// loudly at start; no environment variable switches it on.
    #[cfg(feature = "test-hooks")]
    #[arg(long, default_value_t = false)]
    pub test_tamper_pulls: bool,
    /// Test hook, only in builds with the `test-hooks` cargo feature: fork every workspace at
    /// this seq (at least 2) — pulls with a non-master token see the update at it replaced by a
    /// replay of the one before, with chain values recomputed from there, so each view verifies on
    /// its own and only members' sealed witnesses can tell. Live events carry no records.
    #[cfg(feature = "test-hooks")]
    #[arg(long)]
    pub test_fork_at_seq: Option<u64>,
}

impl Config {
    /// The defaults, ignoring the environment.
    pub fn defaults() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let mut cmd = Config::command();
        for arg in cmd.get_arguments().cloned().collect::<Vec<_>>() {
            let id = arg.get_id().clone();
            cmd = cmd.mut_arg(id, |a| a.env(None::<&str>));
        }
        let matches = cmd.get_matches_from(["hearth-server"]);
        match Config::from_arg_matches(&matches) {
            Ok(c) => c,
            Err(e) => e.exit(),
        }
    }

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

    /// The store options of this config.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        let quota = |q: u64| (q > 0).then(|| i64::try_from(q).unwrap_or(i64::MAX));
        crate::store::StoreOptions {
            max_connections: self.db_max_connections,
            workspace_quota: quota(self.workspace_quota_bytes),
            total_quota: quota(self.total_quota_bytes),
        }
    }

    /// A config for tests: free port, given data dir, no static files, defaults only (no
    /// `HEARTH_*` variable of the environment is read).
    pub fn for_tests(data_dir: PathBuf, database_url: Option<String>) -> Self {
        let mut c = Config::defaults();
        c.bind = "127.0.0.1:0".into();
        c.data_dir = data_dir;
        c.database_url = database_url;
        c.static_dir = PathBuf::from("/nonexistent");
        c.jwt_secret = Some("test-secret-test-secret-test-secret".into());
        c
    }
}
