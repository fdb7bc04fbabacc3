//! SQLite storage, the embedded default for one box. Writes are serialised in-process (one
//! writer, like SQLite itself) and the database runs in WAL mode; live events fan out in-process.

use super::sql::{chain_of, impl_store, to_i64, to_u64};
use super::{PullPage, StoreError, TokenRow, TokenState};
use shared_schema::api::{PushReply, TokenInfo};
use shared_schema::backup::Backup;
use shared_schema::frame::{PullRecord, PullRecordKind, PushRecord};
use shared_schema::{Chain, Role};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use std::str::FromStr;
use tokio::sync::{broadcast, Mutex, MutexGuard};

type Db = sqlx::Sqlite;

/// SQLite-backed storage.
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
    write: Mutex<()>,
    events: broadcast::Sender<(String, u64)>,
}

impl SqliteStore {
    /// Opens (creating) the database and runs migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations-sqlite").run(&pool).await?;
        let (events, _) = broadcast::channel(1024);
        Ok(Self {
            pool,
            write: Mutex::new(()),
            events,
        })
    }

    async fn write_guard(&self) -> MutexGuard<'_, ()> {
        self.write.lock().await
    }

    async fn announce_in_tx(
        &self,
        _tx: &mut sqlx::Transaction<'_, Db>,
        _ws: &str,
        _seq: u64,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    fn after_commit(&self, ws: &str, seq: u64) {
        let _ = self.events.send((ws.to_owned(), seq));
    }
}

impl_store!(SqliteStore, "sqlite", "");
