//! SQLite storage, the embedded default for one box. Writes are serialised in-process (one
//! writer, like SQLite itself) and the database runs in WAL mode with `synchronous = FULL`
//! (every commit is on disk before the reply); live events fan out in-process. The file is
//! created with mode 0600.

use super::sql::{chain_of, impl_store, size_of, to_i64, to_u64, Announcer, Backend, TotalQuota};
use super::writer::{announce, plan, Committer, Row, Writer};
use super::{PullPage, PushRequest, StoreError, StoreOptions, TokenRow, TokenState};
use shared_schema::api::{PushReply, TokenInfo};
use shared_schema::backup::Backup;
use shared_schema::frame::{PullRecord, PullRecordKind};
use shared_schema::{Chain, Role};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard};

type Db = sqlx::Sqlite;

/// SQLite-backed storage.
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
    write: Arc<Mutex<()>>,
    announcer: Arc<Announcer>,
    total: Arc<TotalQuota>,
    writer: Writer,
}

impl SqliteStore {
    /// Opens (creating, mode 0600) the database and runs migrations.
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        create_private(connect.get_filename())?;
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.clamp(2, 64))
            .connect_with(connect)
            .await?;
        sqlx::migrate!("./migrations-sqlite").run(&pool).await?;
        let write = Arc::new(Mutex::new(()));
        let announcer = Arc::new(Announcer::default());
        let total = Arc::new(TotalQuota::new(options.total_quota));
        let writer = Writer::start(SqliteCommitter {
            pool: pool.clone(),
            write: write.clone(),
            announcer: announcer.clone(),
            total: total.clone(),
            quota: options.workspace_quota,
        });
        Ok(Self {
            pool,
            write,
            announcer,
            total,
            writer,
        })
    }
}

/// Creates the database file (and its folder) readable by its owner only, before SQLite opens it.
fn create_private(path: &std::path::Path) -> Result<(), StoreError> {
    let io = |e: std::io::Error| StoreError::Database(sqlx::Error::Io(e));
    if path.as_os_str().is_empty() || path.to_str().is_some_and(|p| p.contains(":memory:")) {
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path).map_err(io)?;
    Ok(())
}

impl Backend for SqliteStore {
    type Db = Db;
    type Guard<'a> = MutexGuard<'a, ()>;
    const LOCK: &'static str = "";

    fn pool(&self) -> &sqlx::Pool<Db> {
        &self.pool
    }

    async fn write_guard(&self) -> MutexGuard<'_, ()> {
        self.write.lock().await
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Db>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn begin_read(&self) -> Result<sqlx::Transaction<'static, Db>, StoreError> {
        // In WAL mode every read of one transaction sees the snapshot its first read saw.
        Ok(self.pool.begin().await?)
    }

    fn announcer(&self) -> &Announcer {
        &self.announcer
    }

    fn total_quota(&self) -> &TotalQuota {
        &self.total
    }
}

impl SqliteStore {
    /// One process: a heartbeat goes straight to this process's presence.
    async fn share_presence_impl(&self, json: &str) -> Result<(), StoreError> {
        self.announcer.presence(json);
        Ok(())
    }
}

struct SqliteCommitter {
    pool: sqlx::SqlitePool,
    write: Arc<Mutex<()>>,
    announcer: Arc<Announcer>,
    total: Arc<TotalQuota>,
    quota: Option<i64>,
}

impl Committer for SqliteCommitter {
    async fn commit(
        &self,
        jobs: &[PushRequest],
    ) -> Result<Vec<Result<PushReply, StoreError>>, StoreError> {
        let _guard = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut rows: HashMap<String, Row> = HashMap::new();
        for job in jobs {
            if rows.contains_key(&job.ws) {
                continue;
            }
            let row: Option<(i64, Vec<u8>, Option<i64>, i64)> = sqlx::query_as(
                "SELECT head_seq, chain, deleted_at, stored_bytes FROM workspaces WHERE id = $1",
            )
            .bind(&job.ws)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((head, chain, deleted, stored)) = row {
                rows.insert(
                    job.ws.clone(),
                    Row {
                        head: to_u64(head),
                        chain: chain_of(&chain)?,
                        deleted: deleted.is_some(),
                        stored,
                    },
                );
            }
        }
        let mut known: HashMap<(String, Vec<u8>), u64> = HashMap::new();
        for job in jobs {
            for r in &job.records {
                let id = (job.ws.clone(), r.key.clone());
                if known.contains_key(&id) {
                    continue;
                }
                let seq: Option<(i64,)> = sqlx::query_as(
                    "SELECT seq FROM updates WHERE workspace_id = $1 AND idempotency_key = $2 \
                     UNION ALL SELECT seq FROM retired_keys WHERE workspace_id = $1 AND idempotency_key = $2",
                )
                .bind(&job.ws)
                .bind(r.key.as_slice())
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((seq,)) = seq {
                    known.insert(id, to_u64(seq));
                }
            }
        }
        let plan = plan(jobs, &rows, &known, self.quota);
        for i in &plan.inserts {
            let job = &jobs[i.job];
            let r = &job.records[i.record];
            sqlx::query(
                "INSERT INTO updates (workspace_id, seq, bytes, size, idempotency_key, chain, token_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&job.ws)
            .bind(to_i64(i.seq)?)
            .bind(r.bytes.as_slice())
            .bind(i32::try_from(r.bytes.len()).unwrap_or(i32::MAX))
            .bind(r.key.as_slice())
            .bind(i.chain.as_bytes().to_vec())
            .bind(&job.token_id)
            .bind(job.now)
            .execute(&mut *tx)
            .await?;
        }
        for h in &plan.heads {
            sqlx::query(
                "UPDATE workspaces SET head_seq = $1, chain = $2, stored_bytes = $3 WHERE id = $4",
            )
            .bind(to_i64(h.head)?)
            .bind(h.chain.as_bytes().to_vec())
            .bind(h.stored)
            .bind(&h.ws)
            .execute(&mut *tx)
            .await?;
        }
        for &j in &plan.audited {
            let job = &jobs[j];
            sqlx::query("INSERT INTO audit_log (token_id, action, workspace_id, bytes, created_at) VALUES ($1, 'push', $2, $3, $4)")
                .bind(&job.token_id)
                .bind(&job.ws)
                .bind(job.body_bytes)
                .bind(job.now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        for h in &plan.heads {
            let before = rows.get(&h.ws).map(|r| r.stored).unwrap_or(0);
            self.total.add(h.stored - before);
        }
        announce(&self.announcer, jobs, &plan);
        Ok(plan.replies)
    }
}

impl_store!(SqliteStore, "sqlite");
