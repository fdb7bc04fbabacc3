//! Postgres storage (production). A push batch locks its workspace rows (`FOR UPDATE`, in id
//! order), so concurrent writers in any number of server processes get gap-free seqs without
//! deadlocks. Each group commit is five round trips on the writer's own connection whatever its
//! size (`BEGIN`, lock, key lookup, one writing statement, `COMMIT`; rows are sent as arrays and
//! expanded with `UNNEST`). A batch's records are announced to this process's live streams
//! before the first of them, planned from the rows as this writer last committed them
//! (`writer::Committed`), and again after the lock where the real plan differs. New heads are announced with
//! `pg_notify('hearth_updates', 'ws:seq:instance')` in the same transaction; every other process
//! `LISTEN`s and fans them out to its live clients (the writing process announces its own commits
//! itself, with inline records). Presence heartbeats (`hearth_presence`) and revocations
//! (`hearth_revocations`) cross processes the same way, never written to a table. Reads run at
//! REPEATABLE READ.

use super::sql::{chain_of, impl_store, size_of, to_i64, to_u64, Announcer, Backend, TotalQuota};
use super::writer::{
    announce_durable, announce_tentative, announce_tentative_after, plan, Committed, Committer,
    Plan, Row, Writer,
};
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
            conn: tokio::sync::Mutex::new(None),
            instance: instance.clone(),
            announcer: announcer.clone(),
            total: total.clone(),
            quota: options.workspace_quota,
            committed: std::sync::Mutex::new(Committed::default()),
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
        // One round trip: the isolation level goes with the BEGIN.
        Ok(self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?)
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
    /// The writer's own connection, kept between batches: a connection taken from the pool is
    /// pinged when taken and again when given back (sqlx's health checks), two round trips per
    /// batch. Given back to the pool (which checks it) after a failed batch; the next batch takes
    /// a checked one.
    conn: tokio::sync::Mutex<Option<sqlx::pool::PoolConnection<Db>>>,
    instance: String,
    announcer: Arc<Announcer>,
    total: Arc<TotalQuota>,
    quota: Option<i64>,
    /// The rows as this writer last committed them: a batch is planned from them and its records
    /// announced before the transaction's first round trip.
    committed: std::sync::Mutex<Committed>,
}

impl Committer for PgCommitter {
    async fn commit(
        &self,
        jobs: &[PushRequest],
    ) -> Result<Vec<Result<PushReply, StoreError>>, StoreError> {
        let mut held = self.conn.lock().await;
        let mut conn = match held.take() {
            Some(conn) => conn,
            None => self.pool.acquire().await?,
        };
        let result = self.run(&mut conn, jobs).await;
        if result.is_err() {
            if let Ok(mut committed) = self.committed.lock() {
                committed.failed(jobs);
            }
        }
        if result.is_ok() {
            *held = Some(conn);
        }
        result
    }
}

impl PgCommitter {
    /// One batch in one transaction on `conn`: announce what the rows this writer committed
    /// last say it will store ([`Committed`]), then lock the rows, look up the keys, [`plan`],
    /// announce tentatively what differs, [`write_plan`], commit, announce durable.
    async fn run(
        &self,
        conn: &mut sqlx::PgConnection,
        jobs: &[PushRequest],
    ) -> Result<Vec<Result<PushReply, StoreError>>, StoreError> {
        let early = self.committed.lock().ok().and_then(|c| {
            let rows = c.rows_for(jobs, |ws| self.announcer.head(ws));
            (!rows.is_empty()).then(|| plan(jobs, &rows, &HashMap::new(), self.quota))
        });
        if let Some(early) = &early {
            announce_tentative(&self.announcer, jobs, early);
        }
        let mut ids: Vec<String> = jobs.iter().map(|j| j.ws.clone()).collect();
        ids.sort();
        ids.dedup();
        let mut tx = sqlx::Connection::begin(conn).await?;
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
        announce_tentative_after(&self.announcer, jobs, &plan, early.as_ref());
        write_plan(&mut tx, jobs, &plan, &self.instance).await?;
        tx.commit().await?;
        if let Ok(mut committed) = self.committed.lock() {
            committed.committed(&rows, &plan);
        }
        for h in &plan.heads {
            let before = rows.get(&h.ws).map(|r| r.stored).unwrap_or(0);
            self.total.add(h.stored - before);
        }
        announce_durable(&self.announcer, &plan);
        Ok(plan.replies)
    }
}

/// Writes what a batch's [`Plan`] stores — its update rows, the moved heads, their NOTIFYs and
/// the audit rows — in **one** statement (data-modifying CTEs; each part is empty when the plan
/// has nothing for it): one round trip to Postgres instead of four. The reads before it (locked
/// rows, then stored keys) stay two statements: a key lookup in the locking statement would read
/// the snapshot taken before the lock was granted and miss keys another process just committed.
async fn write_plan(
    tx: &mut sqlx::PgConnection,
    jobs: &[PushRequest],
    plan: &Plan,
    instance: &str,
) -> Result<(), StoreError> {
    if plan.inserts.is_empty() && plan.heads.is_empty() && plan.audited.is_empty() {
        return Ok(());
    }
    let n = plan.inserts.len();
    let mut u = UpdateColumns {
        ws: Vec::with_capacity(n),
        seq: Vec::with_capacity(n),
        bytes: Vec::with_capacity(n),
        size: Vec::with_capacity(n),
        key: Vec::with_capacity(n),
        chain: Vec::with_capacity(n),
        token: Vec::with_capacity(n),
        at: Vec::with_capacity(n),
    };
    for i in &plan.inserts {
        let job = &jobs[i.job];
        let r = &job.records[i.record];
        u.ws.push(job.ws.as_str());
        u.seq.push(to_i64(i.seq)?);
        u.bytes.push(r.bytes.as_slice());
        u.size
            .push(i32::try_from(r.bytes.len()).unwrap_or(i32::MAX));
        u.key.push(r.key.as_slice());
        u.chain.push(i.chain.as_bytes().to_vec());
        u.token.push(job.token_id.as_str());
        u.at.push(job.now);
    }
    let head_ws: Vec<&str> = plan.heads.iter().map(|h| h.ws.as_str()).collect();
    let head: Vec<i64> = plan
        .heads
        .iter()
        .map(|h| to_i64(h.head))
        .collect::<Result<_, _>>()?;
    let head_chain: Vec<Vec<u8>> = plan
        .heads
        .iter()
        .map(|h| h.chain.as_bytes().to_vec())
        .collect();
    let stored: Vec<i64> = plan.heads.iter().map(|h| h.stored).collect();
    let notes: Vec<String> = plan
        .heads
        .iter()
        .map(|h| format!("{}:{}:{}", h.ws, h.head, instance))
        .collect();
    let audit_token: Vec<&str> = plan
        .audited
        .iter()
        .map(|&j| jobs[j].token_id.as_str())
        .collect();
    let audit_ws: Vec<&str> = plan.audited.iter().map(|&j| jobs[j].ws.as_str()).collect();
    let audit_bytes: Vec<i64> = plan.audited.iter().map(|&j| jobs[j].body_bytes).collect();
    let audit_at: Vec<i64> = plan.audited.iter().map(|&j| jobs[j].now).collect();
    // Data-modifying CTEs always run, referenced or not; the NOTIFYs are the statement's own
    // rows (a plain SELECT in a CTE would not run unreferenced), sent when the transaction commits.
    sqlx::query(
        "WITH ins AS ( \
           INSERT INTO updates (workspace_id, seq, bytes, size, idempotency_key, chain, token_id, created_at) \
           SELECT * FROM UNNEST($1::text[], $2::int8[], $3::bytea[], $4::int4[], $5::bytea[], $6::bytea[], $7::text[], $8::int8[])), \
         moved AS ( \
           UPDATE workspaces w SET head_seq = h.head, chain = h.chain, stored_bytes = h.stored \
           FROM UNNEST($9::text[], $10::int8[], $11::bytea[], $12::int8[]) AS h(id, head, chain, stored) \
           WHERE w.id = h.id), \
         audited AS ( \
           INSERT INTO audit_log (token_id, action, workspace_id, bytes, created_at) \
           SELECT t, 'push', w, b, a FROM UNNEST($13::text[], $14::text[], $15::int8[], $16::int8[]) AS x(t, w, b, a)) \
         SELECT pg_notify($17, n) FROM UNNEST($18::text[]) AS n",
    )
    .bind(&u.ws)
    .bind(&u.seq)
    .bind(&u.bytes)
    .bind(&u.size)
    .bind(&u.key)
    .bind(&u.chain)
    .bind(&u.token)
    .bind(&u.at)
    .bind(&head_ws)
    .bind(&head)
    .bind(&head_chain)
    .bind(&stored)
    .bind(&audit_token)
    .bind(&audit_ws)
    .bind(&audit_bytes)
    .bind(&audit_at)
    .bind(CHANNEL)
    .bind(&notes)
    .execute(tx)
    .await?;
    Ok(())
}

/// The columns of the update rows a batch inserts, one array each (bound to `UNNEST`).
struct UpdateColumns<'a> {
    ws: Vec<&'a str>,
    seq: Vec<i64>,
    bytes: Vec<&'a [u8]>,
    size: Vec<i32>,
    key: Vec<&'a [u8]>,
    chain: Vec<Vec<u8>>,
    token: Vec<&'a str>,
    at: Vec<i64>,
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
