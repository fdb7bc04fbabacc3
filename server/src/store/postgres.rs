//! Postgres storage (production). A push batch locks its workspace rows (`FOR UPDATE`, in id
//! order), so concurrent writers in any number of server processes get gap-free seqs without
//! deadlocks. Each group commit runs a fixed number of statements whatever its size (rows are
//! sent as arrays and expanded with `UNNEST`). New heads are announced with
//! `pg_notify('hearth_updates', 'ws:seq:instance')` in the same transaction; every other process
//! `LISTEN`s and fans them out to its live clients (the writing process announces its own commits
//! itself, with inline records). Presence heartbeats (`hearth_presence`) and revocations
//! (`hearth_revocations`) cross processes the same way, never written to a table. Reads run at
//! REPEATABLE READ.

use super::sql::{chain_of, impl_store, size_of, to_i64, to_u64, Announcer, Backend, TotalQuota};
use super::writer::{announce, plan, Committer, Row, Writer};
use super::{PullPage, PushRequest, Revocation, StoreError, StoreOptions, TokenRow, TokenState};
use shared_schema::api::{PushReply, TokenInfo};
use shared_schema::backup::Backup;
use shared_schema::frame::{PullRecord, PullRecordKind};
use shared_schema::{Chain, Role};
use sqlx::postgres::{PgListener, PgPoolOptions};
use std::collections::HashMap;
use std::sync::Arc;

type Db = sqlx::Postgres;

/// A locked workspace row: id, head, chain, deleted_at, stored_bytes.
type LockedRow = (String, i64, Vec<u8>, Option<i64>, i64);

/// The NOTIFY channel.
pub const CHANNEL: &str = "hearth_updates";

/// Postgres-backed storage.
pub struct PgStore {
    pool: sqlx::PgPool,
    /// This process's id in notifications (its own are skipped when they come back).
    instance: String,
    announcer: Arc<Announcer>,
    total: Arc<TotalQuota>,
    writer: Writer,
}

impl PgStore {
    /// Connects, runs migrations and starts the LISTEN task. The pool holds at most
    /// `options.max_connections` connections (keep the sum over all processes below Postgres's
    /// `max_connections`).
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("../migrations").run(&pool).await?;
        let announcer = Arc::new(Announcer::default());
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen_all(CHANNELS).await?;
        // Notifications carry this process's id: its own commits are announced by the writer
        // (with inline records) and skipped when they come back through LISTEN, which can
        // deliver them before the writer's announcement.
        let instance = uuid::Uuid::new_v4().simple().to_string();
        tokio::spawn(listen(
            listener,
            pool.clone(),
            announcer.clone(),
            instance.clone(),
        ));
        let total = Arc::new(TotalQuota::new(options.total_quota));
        let writer = Writer::start(PgCommitter {
            pool: pool.clone(),
            instance: instance.clone(),
            announcer: announcer.clone(),
            total: total.clone(),
            quota: options.workspace_quota,
        });
        Ok(Self {
            pool,
            instance,
            announcer,
            total,
            writer,
        })
    }
}

/// Fans NOTIFYs out to this process's live streams. Notifications sent while the LISTEN
/// connection is down are lost (Postgres does not queue them), so after each reconnect the heads
/// of every workspace this process knows are read once and whatever moved is announced. A lost
/// connection is replaced by a new listener: sqlx keeps a connection that died with a server error
/// (e.g. `57P01` at a Postgres shutdown) and would fail on it forever.
async fn listen(
    mut listener: PgListener,
    pool: sqlx::PgPool,
    announcer: Arc<Announcer>,
    instance: String,
) {
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) if n.channel() == PRESENCE_CHANNEL => {
                announcer.presence(n.payload());
                continue;
            }
            Ok(Some(n)) if n.channel() == REVOCATION_CHANNEL => {
                if let Some((from, revocation)) = parse_revocation(n.payload()) {
                    if from != instance {
                        announcer.revoked(revocation);
                    }
                }
                continue;
            }
            Ok(Some(n)) => {
                // `ws:seq:instance`. This process announced its own commits already (with
                // inline records); of another's, only a head it has not seen is news.
                let mut parts = n.payload().splitn(3, ':');
                let (ws, seq, from) = (parts.next(), parts.next(), parts.next());
                if let (Some(ws), Some(Ok(seq))) = (ws, seq.map(str::parse::<u64>)) {
                    if from != Some(instance.as_str()) {
                        announcer.catch_up(ws, seq);
                    }
                }
                continue;
            }
            Ok(None) => tracing::warn!("LISTEN connection lost; reconnecting"),
            Err(e) => tracing::warn!(error = %e, "LISTEN connection lost; reconnecting"),
        }
        let mut wait = std::time::Duration::from_millis(100);
        listener = loop {
            let fresh = async {
                let mut l = PgListener::connect_with(&pool).await?;
                l.listen_all(CHANNELS).await?;
                Ok::<_, sqlx::Error>(l)
            };
            match fresh.await {
                Ok(l) => break l,
                Err(e) => {
                    tracing::debug!(error = %e, "LISTEN reconnect failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(2));
                }
            }
        };
        let known = announcer.known();
        let heads: Result<Vec<(String, i64)>, _> =
            sqlx::query_as("SELECT id, head_seq FROM workspaces WHERE id = ANY($1)")
                .bind(&known)
                .fetch_all(&pool)
                .await;
        match heads {
            Ok(heads) => {
                for (ws, head) in heads {
                    announcer.catch_up(&ws, u64::try_from(head).unwrap_or(0));
                }
                tracing::info!(
                    workspaces = known.len(),
                    "LISTEN reconnected; live streams caught up"
                );
            }
            Err(e) => tracing::warn!(error = %e, "LISTEN reconnected; catch-up read failed"),
        }
    }
}

impl Backend for PgStore {
    type Db = Db;
    type Guard<'a> = ();
    const LOCK: &'static str = " FOR UPDATE";

    fn pool(&self) -> &sqlx::Pool<Db> {
        &self.pool
    }

    async fn write_guard(&self) {}

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Db>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    async fn begin_read(&self) -> Result<sqlx::Transaction<'static, Db>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    fn announcer(&self) -> &Announcer {
        &self.announcer
    }

    fn total_quota(&self) -> &TotalQuota {
        &self.total
    }
}

/// The NOTIFY channel of presence heartbeats (ephemeral: never written to a table).
const PRESENCE_CHANNEL: &str = "hearth_presence";

/// The NOTIFY channel of revocations: `instance:ws:token,token` (no tokens: every token of `ws`).
const REVOCATION_CHANNEL: &str = "hearth_revocations";

/// Every channel a process listens on.
const CHANNELS: [&str; 3] = [CHANNEL, PRESENCE_CHANNEL, REVOCATION_CHANNEL];

/// The payload of a revocation from `instance` (ids are UUIDs or hex: no `:` or `,`).
fn revocation_payload(instance: &str, ws: &str, tokens: &[String]) -> String {
    format!("{instance}:{ws}:{}", tokens.join(","))
}

/// The sending instance and the revocation of a payload; `None` for one this version cannot read.
fn parse_revocation(payload: &str) -> Option<(&str, Revocation)> {
    let mut parts = payload.splitn(3, ':');
    let (from, ws, tokens) = (parts.next()?, parts.next()?, parts.next()?);
    if ws.is_empty() {
        return None;
    }
    let tokens = tokens
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    Some((
        from,
        Revocation {
            ws: ws.to_owned(),
            tokens,
        },
    ))
}

impl PgStore {
    /// Every process (this one too, through its own LISTEN) hears the heartbeat.
    async fn share_presence_impl(&self, json: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(PRESENCE_CHANNEL)
            .bind(json)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The other processes hear of the revocation (this one skips its own).
    async fn share_revocation_impl(&self, ws: &str, tokens: &[String]) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(REVOCATION_CHANNEL)
            .bind(revocation_payload(&self.instance, ws, tokens))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

struct PgCommitter {
    pool: sqlx::PgPool,
    instance: String,
    announcer: Arc<Announcer>,
    total: Arc<TotalQuota>,
    quota: Option<i64>,
}

impl Committer for PgCommitter {
    async fn commit(
        &self,
        jobs: &[PushRequest],
    ) -> Result<Vec<Result<PushReply, StoreError>>, StoreError> {
        let mut ids: Vec<String> = jobs.iter().map(|j| j.ws.clone()).collect();
        ids.sort();
        ids.dedup();
        let mut tx = self.pool.begin().await?;
        let locked: Vec<LockedRow> = sqlx::query_as(
            "SELECT id, head_seq, chain, deleted_at, stored_bytes FROM workspaces \
             WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let mut rows: HashMap<String, Row> = HashMap::new();
        for (id, head, chain, deleted, stored) in locked {
            rows.insert(
                id,
                Row {
                    head: to_u64(head),
                    chain: chain_of(&chain)?,
                    deleted: deleted.is_some(),
                    stored,
                },
            );
        }
        let (key_ws, keys): (Vec<String>, Vec<Vec<u8>>) = jobs
            .iter()
            .filter(|j| rows.get(&j.ws).is_some_and(|r| !r.deleted))
            .flat_map(|j| j.records.iter().map(|r| (j.ws.clone(), r.key.clone())))
            .unzip();
        let mut known: HashMap<(String, Vec<u8>), u64> = HashMap::new();
        if !keys.is_empty() {
            let found: Vec<(String, Vec<u8>, i64)> = sqlx::query_as(
                "WITH k(ws, key) AS (SELECT * FROM UNNEST($1::text[], $2::bytea[])) \
                 SELECT u.workspace_id, u.idempotency_key, u.seq FROM updates u JOIN k \
                   ON u.workspace_id = k.ws AND u.idempotency_key = k.key \
                 UNION ALL \
                 SELECT r.workspace_id, r.idempotency_key, r.seq FROM retired_keys r JOIN k \
                   ON r.workspace_id = k.ws AND r.idempotency_key = k.key",
            )
            .bind(&key_ws)
            .bind(&keys)
            .fetch_all(&mut *tx)
            .await?;
            for (ws, key, seq) in found {
                known.insert((ws, key), to_u64(seq));
            }
        }
        let plan = plan(jobs, &rows, &known, self.quota);
        if !plan.inserts.is_empty() {
            let n = plan.inserts.len();
            let (mut ws, mut seq, mut bytes, mut size, mut key, mut chain, mut token, mut at) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for i in &plan.inserts {
                let job = &jobs[i.job];
                let r = &job.records[i.record];
                ws.push(job.ws.as_str());
                seq.push(to_i64(i.seq)?);
                bytes.push(r.bytes.as_slice());
                size.push(i32::try_from(r.bytes.len()).unwrap_or(i32::MAX));
                key.push(r.key.as_slice());
                chain.push(i.chain.as_bytes().to_vec());
                token.push(job.token_id.as_str());
                at.push(job.now);
            }
            sqlx::query(
                "INSERT INTO updates (workspace_id, seq, bytes, size, idempotency_key, chain, token_id, created_at) \
                 SELECT * FROM UNNEST($1::text[], $2::int8[], $3::bytea[], $4::int4[], $5::bytea[], $6::bytea[], $7::text[], $8::int8[])",
            )
            .bind(&ws)
            .bind(&seq)
            .bind(&bytes)
            .bind(&size)
            .bind(&key)
            .bind(&chain)
            .bind(&token)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        if !plan.heads.is_empty() {
            let ws: Vec<&str> = plan.heads.iter().map(|h| h.ws.as_str()).collect();
            let head: Vec<i64> = plan
                .heads
                .iter()
                .map(|h| to_i64(h.head))
                .collect::<Result<_, _>>()?;
            let chain: Vec<Vec<u8>> = plan
                .heads
                .iter()
                .map(|h| h.chain.as_bytes().to_vec())
                .collect();
            let stored: Vec<i64> = plan.heads.iter().map(|h| h.stored).collect();
            let notes: Vec<String> = plan
                .heads
                .iter()
                .map(|h| format!("{}:{}:{}", h.ws, h.head, self.instance))
                .collect();
            sqlx::query(
                "UPDATE workspaces w SET head_seq = u.head, chain = u.chain, stored_bytes = u.stored \
                 FROM UNNEST($1::text[], $2::int8[], $3::bytea[], $4::int8[]) AS u(id, head, chain, stored) \
                 WHERE w.id = u.id",
            )
            .bind(&ws)
            .bind(&head)
            .bind(&chain)
            .bind(&stored)
            .execute(&mut *tx)
            .await?;
            sqlx::query("SELECT pg_notify($1, n) FROM UNNEST($2::text[]) AS n")
                .bind(CHANNEL)
                .bind(&notes)
                .execute(&mut *tx)
                .await?;
        }
        if !plan.audited.is_empty() {
            let token: Vec<&str> = plan
                .audited
                .iter()
                .map(|&j| jobs[j].token_id.as_str())
                .collect();
            let ws: Vec<&str> = plan.audited.iter().map(|&j| jobs[j].ws.as_str()).collect();
            let bytes: Vec<i64> = plan.audited.iter().map(|&j| jobs[j].body_bytes).collect();
            let at: Vec<i64> = plan.audited.iter().map(|&j| jobs[j].now).collect();
            sqlx::query(
                "INSERT INTO audit_log (token_id, action, workspace_id, bytes, created_at) \
                 SELECT t, 'push', w, b, a FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[]) AS x(t, w, b, a)",
            )
            .bind(&token)
            .bind(&ws)
            .bind(&bytes)
            .bind(&at)
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

impl_store!(PgStore, "postgres");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_payload_reads_back_as_sent() {
        let tokens = vec!["3f2a".to_owned(), "b71c".to_owned()];
        let payload = revocation_payload("me", "ws-1", &tokens);
        assert_eq!(
            parse_revocation(&payload),
            Some((
                "me",
                Revocation {
                    ws: "ws-1".into(),
                    tokens
                }
            ))
        );
    }

    #[test]
    fn a_revocation_of_every_token_has_none_and_a_payload_without_a_workspace_is_ignored() {
        let every = revocation_payload("me", "ws-1", &[]);
        assert_eq!(
            parse_revocation(&every).map(|(_, r)| r.tokens),
            Some(Vec::new())
        );
        assert_eq!(parse_revocation("me::a"), None);
        assert_eq!(parse_revocation("me"), None);
    }
}
