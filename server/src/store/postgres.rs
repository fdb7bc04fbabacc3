//! Postgres storage (production). Pushes lock the workspace row (`FOR UPDATE`), so concurrent
//! pushers from any number of server processes get gap-free seqs. New seqs are announced with
//! `pg_notify('hearth_updates', 'ws:seq')` in the same transaction; every process `LISTEN`s and
//! fans them out to its live clients.

use super::sql::{chain_of, impl_store, to_i64, to_u64};
use super::{PullPage, StoreError, TokenRow, TokenState};
use shared_schema::api::{PushReply, TokenInfo};
use shared_schema::backup::Backup;
use shared_schema::frame::{PullRecord, PullRecordKind, PushRecord};
use shared_schema::{Chain, Role};
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::broadcast;

type Db = sqlx::Postgres;

/// The NOTIFY channel.
pub const CHANNEL: &str = "hearth_updates";

/// Postgres-backed storage.
pub struct PgStore {
    pool: sqlx::PgPool,
    events: broadcast::Sender<(String, u64)>,
}

impl PgStore {
    /// Connects, runs migrations and starts the LISTEN task.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(32)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("../migrations").run(&pool).await?;
        let (events, _) = broadcast::channel(1024);
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let tx = events.clone();
        tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(n) => {
                        if let Some((ws, seq)) = n.payload().rsplit_once(':') {
                            if let Ok(seq) = seq.parse() {
                                let _ = tx.send((ws.to_owned(), seq));
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(Self { pool, events })
    }

    async fn write_guard(&self) {}

    async fn announce_in_tx(
        &self,
        tx: &mut sqlx::Transaction<'_, Db>,
        ws: &str,
        seq: u64,
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("{ws}:{seq}"))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    fn after_commit(&self, _ws: &str, _seq: u64) {}
}

impl_store!(PgStore, "postgres", " FOR UPDATE");
