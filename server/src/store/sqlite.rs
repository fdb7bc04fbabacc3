//! SQLite storage, the embedded default for one box. Writes are serialised in-process (one
//! writer, like SQLite itself) and the database runs in WAL mode with `synchronous = FULL`
//! (every commit is on disk before the reply); live events fan out in-process. The file is
//! created with mode 0600. Reads and the other writes go through sqlx's pool; pushes are committed
//! by the group-commit writer's own thread on its own connection (`SqliteCommitter`).

use super::sql::{chain_of, impl_store, size_of, to_i64, to_u64, Announcer, Backend, TotalQuota};
use super::writer::{
    announce_durable, announce_tentative, plan, BlockingCommitter, Plan, Row, Writer,
};
use super::{PullPage, PushRequest, StoreError, StoreOptions, TokenRow, TokenState};
use rusqlite::OptionalExtension;
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
        let path = connect.get_filename().to_path_buf();
        create_private(&path)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.clamp(2, 64))
            .connect_with(connect)
            .await?;
        sqlx::migrate!("./migrations-sqlite").run(&pool).await?;
        let write = Arc::new(Mutex::new(()));
        let announcer = Arc::new(Announcer::default());
        let total = Arc::new(TotalQuota::new(options.total_quota));
        let writer = Writer::start_blocking(SqliteCommitter {
            conn: SqliteCommitter::open(&path)?,
            write: write.clone(),
            announcer: announcer.clone(),
            total: total.clone(),
            quota: options.workspace_quota,
        })?;
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

    /// One process: no other to tell of a revocation.
    async fn share_revocation_impl(&self, _ws: &str, _tokens: &[String]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The group-commit writer's own connection (rusqlite on the same SQLite library as sqlx): it runs
/// on the writer's thread and commits a whole batch in one call, where sqlx would hand each of a
/// push's seven statements to its connection thread and back (two context switches each).
struct SqliteCommitter {
    conn: rusqlite::Connection,
    write: Arc<Mutex<()>>,
    announcer: Arc<Announcer>,
    total: Arc<TotalQuota>,
    quota: Option<i64>,
}

impl SqliteCommitter {
    /// Opens the writer's connection with the pool's settings (WAL, `synchronous = FULL`).
    fn open(path: &std::path::Path) -> Result<rusqlite::Connection, StoreError> {
        if path.as_os_str().is_empty() || path.to_str().is_some_and(|p| p.contains(":memory:")) {
            return Err(StoreError::Corrupt(
                "an in-memory SQLite database cannot be shared with the writer: use a file".into(),
            ));
        }
        let conn = rusqlite::Connection::open(path).map_err(sqlite_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sqlite_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )
        .map_err(sqlite_err)?;
        reserve_wal(&conn, path);
        Ok(conn)
    }

    fn run(&mut self, jobs: &[PushRequest]) -> Result<(Plan, HashMap<String, Row>), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sqlite_err)?;
        let mut rows: HashMap<String, Row> = HashMap::new();
        {
            let mut select = tx
                .prepare_cached(
                    "SELECT head_seq, chain, deleted_at, stored_bytes FROM workspaces WHERE id = ?1",
                )
                .map_err(sqlite_err)?;
            for job in jobs {
                if rows.contains_key(&job.ws) {
                    continue;
                }
                let row = select
                    .query_row([&job.ws], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, Vec<u8>>(1)?,
                            r.get::<_, Option<i64>>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    })
                    .optional()
                    .map_err(sqlite_err)?;
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
        }
        let mut known: HashMap<(String, Vec<u8>), u64> = HashMap::new();
        {
            let mut select = tx
                .prepare_cached(
                    "SELECT seq FROM updates WHERE workspace_id = ?1 AND idempotency_key = ?2 \
                     UNION ALL SELECT seq FROM retired_keys WHERE workspace_id = ?1 AND idempotency_key = ?2",
                )
                .map_err(sqlite_err)?;
            for job in jobs {
                for r in &job.records {
                    let id = (job.ws.clone(), r.key.clone());
                    if known.contains_key(&id) {
                        continue;
                    }
                    let seq = select
                        .query_row(rusqlite::params![job.ws, r.key], |row| row.get::<_, i64>(0))
                        .optional()
                        .map_err(sqlite_err)?;
                    if let Some(seq) = seq {
                        known.insert(id, to_u64(seq));
                    }
                }
            }
        }
        let plan = plan(jobs, &rows, &known, self.quota);
        announce_tentative(&self.announcer, jobs, &plan);
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO updates (workspace_id, seq, bytes, size, idempotency_key, chain, token_id, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(sqlite_err)?;
            for i in &plan.inserts {
                let job = &jobs[i.job];
                let r = &job.records[i.record];
                insert
                    .execute(rusqlite::params![
                        job.ws,
                        to_i64(i.seq)?,
                        r.bytes,
                        i32::try_from(r.bytes.len()).unwrap_or(i32::MAX),
                        r.key,
                        i.chain.as_bytes().as_slice(),
                        job.token_id,
                        job.now,
                    ])
                    .map_err(sqlite_err)?;
            }
            let mut head = tx
                .prepare_cached(
                    "UPDATE workspaces SET head_seq = ?1, chain = ?2, stored_bytes = ?3 WHERE id = ?4",
                )
                .map_err(sqlite_err)?;
            for h in &plan.heads {
                head.execute(rusqlite::params![
                    to_i64(h.head)?,
                    h.chain.as_bytes().as_slice(),
                    h.stored,
                    h.ws,
                ])
                .map_err(sqlite_err)?;
            }
            let mut audit = tx
                .prepare_cached(
                    "INSERT INTO audit_log (token_id, action, workspace_id, bytes, created_at) \
                     VALUES (?1, 'push', ?2, ?3, ?4)",
                )
                .map_err(sqlite_err)?;
            for &j in &plan.audited {
                let job = &jobs[j];
                audit
                    .execute(rusqlite::params![
                        job.token_id,
                        job.ws,
                        job.body_bytes,
                        job.now
                    ])
                    .map_err(sqlite_err)?;
            }
        }
        tx.commit().map_err(sqlite_err)?;
        Ok((plan, rows))
    }
}

/// Size of the write-ahead log when SQLite checkpoints it and starts it again from its beginning:
/// 1,000 frames (its default) of a 4 KiB page and a 24-byte header.
const CHECKPOINT_LOG_BYTES: u64 = 1000 * (4096 + 24);

/// Grows the write-ahead log past [`CHECKPOINT_LOG_BYTES`] of written blocks, so that every commit
/// overwrites blocks the file already has. A commit that appends to the log needs the file system
/// to journal the new blocks and the new size before its flush returns; one that overwrites needs
/// only its pages flushed (with `fdatasync`: `.cargo/config.toml`). SQLite starts the log again at
/// its beginning after each complete checkpoint, so a server that has run a while is in that state
/// anyway; this puts a freshly started one there too (docs/live-path.md has the measurements).
///
/// How: a transaction with a tiny page cache writes a large blob, so SQLite spills its pages into
/// the log as frames without a commit frame, and is rolled back. The database does not change;
/// recovery never reads past the last commit frame, and the next commit writes over them. Best
/// effort: a failure (a full disk, say) is logged and the server starts as it would without.
fn reserve_wal(conn: &rusqlite::Connection, path: &std::path::Path) {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() >= CHECKPOINT_LOG_BYTES) {
        return;
    }
    let cache = conn
        .query_row("PRAGMA cache_size", [], |r| r.get::<_, i64>(0))
        .unwrap_or(-2000);
    let grown = conn.execute_batch(&format!(
        "PRAGMA cache_size = 16; BEGIN IMMEDIATE; \
         CREATE TABLE hearth_wal_reserve (b BLOB); \
         INSERT INTO hearth_wal_reserve VALUES (zeroblob({}));",
        CHECKPOINT_LOG_BYTES * 11 / 10
    ));
    let undone = conn.execute_batch(&format!(
        "{}PRAGMA cache_size = {cache};",
        if conn.is_autocommit() {
            ""
        } else {
            "ROLLBACK; "
        }
    ));
    if let Err(e) = grown.and(undone) {
        tracing::warn!(error = %e, "could not reserve the SQLite write-ahead log; commits may be slower");
    }
}

fn sqlite_err(e: rusqlite::Error) -> StoreError {
    StoreError::BatchFailed(format!("SQLite: {e}"))
}

impl BlockingCommitter for SqliteCommitter {
    fn commit(
        &mut self,
        jobs: &[PushRequest],
    ) -> Result<Vec<Result<PushReply, StoreError>>, StoreError> {
        // Writes through the pool (tokens, snapshots, deletes) take the same lock.
        let write = self.write.clone();
        let _guard = write.blocking_lock();
        let (plan, rows) = self.run(jobs)?;
        for h in &plan.heads {
            let before = rows.get(&h.ws).map(|r| r.stored).unwrap_or(0);
            self.total.add(h.stored - before);
        }
        announce_durable(&self.announcer, &plan);
        Ok(plan.replies)
    }
}

impl_store!(SqliteStore, "sqlite");

#[cfg(test)]
mod tests {
    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn temp_db(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hearth-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        dir.join("hearth.sqlite3")
    }

    fn wal_len(path: &std::path::Path) -> Result<u64, std::io::Error> {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(std::fs::metadata(wal)?.len())
    }

    #[test]
    fn the_writer_reserves_the_log_and_leaves_the_database_as_it_was() -> R {
        let path = temp_db("reserve");
        let conn = SqliteCommitter::open(&path).map_err(|e| e.to_string())?;
        let reserved = wal_len(&path)?;
        assert!(reserved >= CHECKPOINT_LOG_BYTES, "log of {reserved} bytes");
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        assert!(
            pages < 10,
            "the reserve blob was not committed ({pages} pages)"
        );
        let tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'hearth_wal_reserve'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(tables, 0);
        let cache: i64 = conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
        assert_ne!(cache, 16, "the page cache is set back");
        conn.execute_batch("CREATE TABLE t (n INTEGER, b BLOB)")?;
        for n in 0..200 {
            conn.execute("INSERT INTO t VALUES (?1, zeroblob(300))", [n])?;
        }
        assert_eq!(wal_len(&path)?, reserved, "commits wrote over the reserve");
        drop(conn);
        let conn = SqliteCommitter::open(&path).map_err(|e| e.to_string())?;
        let rows: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        assert_eq!((rows, check.as_str()), (200, "ok"));
        Ok(())
    }
}
