//! Group commit. Every push of this process goes through one [`Writer`]: it takes the first
//! waiting push, gathers every other push already queued (to any workspace, up to
//! [`MAX_JOBS`] / [`MAX_BATCH_BYTES`]), and hands them to the backend's [`Committer`] (an async
//! task, Postgres) or [`BlockingCommitter`] (a thread of its own, SQLite), which runs
//! them in **one** transaction (workspace rows locked in id order, keys looked up, rows inserted,
//! heads moved, audit rows written) and commits once. Each caller is answered only after that
//! commit; if it fails, every caller of the batch gets an error and retries with the same keys.
//! Live streams get the batch's records as soon as it is planned, marked tentative, and a marker
//! after the commit ([`announce_tentative`], [`announce_durable`]).
//!
//! [`plan`] is the I/O-free part: given the locked rows and the keys already stored, it decides
//! each push's seqs and chain values (through [`shared_schema::log::assign_batch`]), its errors
//! (missing or deleted workspace, quota, seq overflow) and what to write. Pushes of one batch to
//! one workspace are applied in arrival order, exactly as if committed one by one.

use super::sql::Announcer;
use super::{PushRequest, StoreError};
use shared_schema::api::{LiveEvent, PushReply};
use shared_schema::Chain;
use shared_schema::{live, log};
use std::collections::HashMap;
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

/// Most pushes committed in one transaction.
pub const MAX_JOBS: usize = 256;
/// Most payload bytes committed in one transaction (a batch is cut after the push crossing it).
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// A workspace row as the batch's transaction locked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Head seq.
    pub head: u64,
    /// Chain at the head.
    pub chain: Chain,
    /// Deleted by its owner.
    pub deleted: bool,
    /// Bytes stored for it (updates + snapshot).
    pub stored: i64,
}

/// A record to insert: record `record` of push `job`, at `seq` with `chain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insert {
    /// Index of the push in the batch.
    pub job: usize,
    /// Index of the record in the push.
    pub record: usize,
    /// Its seq.
    pub seq: u64,
    /// Chain after it.
    pub chain: Chain,
}

/// A workspace whose head moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Workspace.
    pub ws: String,
    /// New head seq.
    pub head: u64,
    /// Chain at it.
    pub chain: Chain,
    /// Bytes stored after the batch.
    pub stored: i64,
}

/// What a batch does.
#[derive(Debug)]
pub struct Plan {
    /// One reply per push, in batch order.
    pub replies: Vec<Result<PushReply, StoreError>>,
    /// Rows to insert, in seq order per workspace.
    pub inserts: Vec<Insert>,
    /// Workspaces whose head moved, sorted by id.
    pub heads: Vec<Head>,
    /// Pushes that were stored or acknowledged (an audit row each).
    pub audited: Vec<usize>,
}

/// Announces every update a batch is about to store, as soon as it is planned and before the
/// commit is durable (`shared_schema::live`: tentative records), one announcement per workspace
/// with its records in seq order, so a live stream sees the batch whole (and coalesces a large
/// one into a pull): the other members see an edit one disk flush earlier, and store it only
/// after [`announce_durable`].
pub fn announce_tentative(announcer: &Announcer, jobs: &[PushRequest], plan: &Plan) {
    let mut by_ws: Vec<(&str, Vec<LiveEvent>)> = Vec::new();
    for i in &plan.inserts {
        let job = &jobs[i.job];
        let Some(e) = live::tentative(i.seq, &i.chain, &job.records[i.record].bytes) else {
            continue;
        };
        match by_ws.iter_mut().find(|(ws, _)| *ws == job.ws) {
            Some((_, records)) => records.push(e),
            None => by_ws.push((&job.ws, vec![e])),
        }
    }
    for (ws, records) in by_ws {
        announcer.announce_tentative(ws, records);
    }
}

/// Announces a batch's records as [`announce_tentative`] does, except those of workspaces for
/// which `early` (the plan made from [`Committed`] rows before the transaction) announced exactly
/// the same records: an early announcement that turned out right is not sent twice, and one that
/// turned out wrong (another process moved the head, a retried key) is followed by the right one:
/// a receiver holding the early record replaces it (same seq) or pulls (the right one does not
/// follow it; `shared_schema::live::Held`).
pub fn announce_tentative_after(
    announcer: &Announcer,
    jobs: &[PushRequest],
    plan: &Plan,
    early: Option<&Plan>,
) {
    let Some(early) = early else {
        return announce_tentative(announcer, jobs, plan);
    };
    let of = |p: &Plan, ws: &str| -> Vec<Insert> {
        p.inserts
            .iter()
            .filter(|i| jobs[i.job].ws == ws)
            .copied()
            .collect()
    };
    let mut differs: Vec<&str> = Vec::new();
    for i in &plan.inserts {
        let ws = jobs[i.job].ws.as_str();
        if !differs.contains(&ws) && of(plan, ws) != of(early, ws) {
            differs.push(ws);
        }
    }
    let inserts = plan
        .inserts
        .iter()
        .filter(|i| differs.contains(&jobs[i.job].ws.as_str()))
        .copied()
        .collect();
    let rest = Plan {
        replies: Vec::new(),
        inserts,
        heads: Vec::new(),
        audited: Vec::new(),
    };
    announce_tentative(announcer, jobs, &rest);
}

/// The workspace rows as this process's writer last committed them, to plan a batch before its
/// transaction has read them (Postgres: three round trips, ~0.7 ms in the browser benchmark) and
/// announce its records that early. A row is used only while the head this process last
/// announced for it is still the row's (another process's commit, heard through `NOTIFY`, makes
/// it stale); a failed commit forgets the batch's rows. An early plan may still be wrong (a
/// commit of another process not heard yet, a retried key, a snapshot that changed the stored
/// bytes): the real one, made under the lock, decides what is stored and is announced where it
/// differs; receivers never store a tentative record that no marker confirms.
#[derive(Debug, Default)]
pub struct Committed {
    rows: HashMap<String, Row>,
}

/// Most workspaces [`Committed`] remembers (then it starts again empty).
pub const COMMITTED_MAX: usize = 100_000;

impl Committed {
    /// The remembered rows of `jobs`' workspaces whose head is still `announced(ws)`.
    pub fn rows_for(
        &self,
        jobs: &[PushRequest],
        announced: impl Fn(&str) -> Option<u64>,
    ) -> HashMap<String, Row> {
        jobs.iter()
            .filter_map(|j| {
                let row = self.rows.get(&j.ws)?;
                (announced(&j.ws) == Some(row.head)).then(|| (j.ws.clone(), row.clone()))
            })
            .collect()
    }

    /// After a commit: the rows `locked` at its start, moved as `plan` moved them.
    pub fn committed(&mut self, locked: &HashMap<String, Row>, plan: &Plan) {
        if self.rows.len() + locked.len() > COMMITTED_MAX {
            self.rows.clear();
        }
        for (ws, row) in locked {
            let row = match plan.heads.iter().find(|h| &h.ws == ws) {
                Some(h) => Row {
                    head: h.head,
                    chain: h.chain,
                    deleted: row.deleted,
                    stored: h.stored,
                },
                None => row.clone(),
            };
            self.rows.insert(ws.clone(), row);
        }
    }

    /// After a failed commit: forgets the rows of `jobs`' workspaces.
    pub fn failed(&mut self, jobs: &[PushRequest]) {
        for j in jobs {
            self.rows.remove(&j.ws);
        }
    }
}

/// After the commit: one marker per workspace whose head moved (its seq and chain), which
/// confirms the tentative records; a failed commit sends none.
pub fn announce_durable(announcer: &Announcer, plan: &Plan) {
    for h in &plan.heads {
        announcer.announce_durable(&h.ws, h.head, h.chain);
    }
}

/// Plans a batch: `rows` are the locked workspace rows (absent = no such workspace), `known` the
/// stored seqs of the batch's keys, `quota` the per-workspace byte limit.
pub fn plan(
    jobs: &[PushRequest],
    rows: &HashMap<String, Row>,
    known: &HashMap<(String, Vec<u8>), u64>,
    quota: Option<i64>,
) -> Plan {
    let mut state: HashMap<&str, Row> = HashMap::new();
    let mut fresh_keys: HashMap<(&str, &[u8]), u64> = HashMap::new();
    let mut out = Plan {
        replies: Vec::with_capacity(jobs.len()),
        inserts: Vec::new(),
        heads: Vec::new(),
        audited: Vec::new(),
    };
    for (j, job) in jobs.iter().enumerate() {
        let Some(row) = state
            .get(job.ws.as_str())
            .cloned()
            .or_else(|| rows.get(&job.ws).cloned())
        else {
            out.replies.push(Err(StoreError::NotFound));
            continue;
        };
        if row.deleted {
            out.replies.push(Err(StoreError::Deleted));
            continue;
        }
        let mut job_known: HashMap<Vec<u8>, u64> = HashMap::new();
        for r in &job.records {
            let seq = fresh_keys
                .get(&(job.ws.as_str(), r.key.as_slice()))
                .copied()
                .or_else(|| known.get(&(job.ws.clone(), r.key.clone())).copied());
            if let Some(seq) = seq {
                job_known.insert(r.key.clone(), seq);
            }
        }
        let assigned = match log::assign_batch(row.head, row.chain, &job.records, &job_known) {
            Ok(a) => a,
            Err(e) => {
                out.replies.push(Err(StoreError::Conflict(e.to_string())));
                continue;
            }
        };
        let adding: i64 = assigned
            .fresh
            .iter()
            .map(|f| i64::try_from(job.records[f.index].bytes.len()).unwrap_or(i64::MAX))
            .fold(0i64, i64::saturating_add);
        if let Some(limit) = quota {
            if adding > 0 && row.stored.saturating_add(adding) > limit {
                out.replies.push(Err(StoreError::Quota {
                    scope: "workspace",
                    used: row.stored,
                    adding,
                    limit,
                }));
                continue;
            }
        }
        for f in &assigned.fresh {
            fresh_keys.insert(
                (job.ws.as_str(), job.records[f.index].key.as_slice()),
                f.seq,
            );
            out.inserts.push(Insert {
                job: j,
                record: f.index,
                seq: f.seq,
                chain: f.chain,
            });
        }
        state.insert(
            job.ws.as_str(),
            Row {
                head: assigned.head,
                chain: assigned.chain,
                deleted: false,
                stored: row.stored.saturating_add(adding),
            },
        );
        out.audited.push(j);
        out.replies.push(Ok(PushReply {
            seqs: assigned.seqs,
            head_seq: assigned.head,
            chain: assigned.chain,
        }));
    }
    let mut heads: Vec<Head> = state
        .into_iter()
        .filter(|(ws, row)| rows.get(*ws).is_some_and(|old| old.head != row.head))
        .map(|(ws, row)| Head {
            ws: ws.to_owned(),
            head: row.head,
            chain: row.chain,
            stored: row.stored,
        })
        .collect();
    heads.sort_by(|a, b| a.ws.cmp(&b.ws));
    out.heads = heads;
    out
}

/// A backend's batch commit: runs the pushes in one transaction (using [`plan`]) and returns one
/// reply per push; `Err` when the transaction failed as a whole.
pub trait Committer: Send + Sync + 'static {
    /// Commits a batch.
    fn commit(
        &self,
        jobs: &[PushRequest],
    ) -> impl Future<Output = Result<Vec<Result<PushReply, StoreError>>, StoreError>> + Send;
}

/// A backend that commits a batch synchronously on the writer's own thread (SQLite: one call
/// runs the whole transaction, so a push costs two thread hand-offs, not two per statement).
pub trait BlockingCommitter: Send + 'static {
    /// Commits a batch.
    fn commit(
        &mut self,
        jobs: &[PushRequest],
    ) -> Result<Vec<Result<PushReply, StoreError>>, StoreError>;
}

type Job = (PushRequest, oneshot::Sender<Result<PushReply, StoreError>>);
type Replies = Result<Vec<Result<PushReply, StoreError>>, StoreError>;

/// Takes every push already queued behind `first`, up to the batch limits.
fn gather(
    first: Job,
    rx: &mut mpsc::Receiver<Job>,
    jobs: &mut Vec<PushRequest>,
    waiting: &mut Vec<oneshot::Sender<Result<PushReply, StoreError>>>,
) {
    let (job, reply) = first;
    let mut bytes = job.body_bytes.max(0) as usize;
    jobs.push(job);
    waiting.push(reply);
    while jobs.len() < MAX_JOBS && bytes < MAX_BATCH_BYTES {
        let Ok((job, reply)) = rx.try_recv() else {
            break;
        };
        bytes += job.body_bytes.max(0) as usize;
        jobs.push(job);
        waiting.push(reply);
    }
}

/// Answers every caller of a batch, then empties it.
fn deliver(
    result: Replies,
    jobs: &mut Vec<PushRequest>,
    waiting: &mut Vec<oneshot::Sender<Result<PushReply, StoreError>>>,
) {
    match result {
        Ok(replies) => {
            for (reply, tx) in replies.into_iter().zip(waiting.drain(..)) {
                let _ = tx.send(reply);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, pushes = jobs.len(), "group commit failed");
            let message = e.to_string();
            for tx in waiting.drain(..) {
                let _ = tx.send(Err(StoreError::BatchFailed(message.clone())));
            }
        }
    }
    jobs.clear();
    waiting.clear();
}

/// The per-process group-commit writer (see the module header).
pub struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on the current Tokio runtime.
    pub fn start<C: Committer>(committer: C) -> Self {
        let (queue, mut rx) = mpsc::channel::<Job>(8192);
        tokio::spawn(async move {
            let mut jobs = Vec::new();
            let mut waiting = Vec::new();
            while let Some(first) = rx.recv().await {
                gather(first, &mut rx, &mut jobs, &mut waiting);
                let result = committer.commit(&jobs).await;
                deliver(result, &mut jobs, &mut waiting);
            }
        });
        Self { queue }
    }

    /// Starts the writer on a thread of its own that commits each batch with one blocking call.
    pub fn start_blocking<C: BlockingCommitter>(mut committer: C) -> Result<Self, StoreError> {
        let (queue, mut rx) = mpsc::channel::<Job>(8192);
        std::thread::Builder::new()
            .name("hearth-writer".into())
            .spawn(move || {
                let mut jobs = Vec::new();
                let mut waiting = Vec::new();
                while let Some(first) = rx.blocking_recv() {
                    gather(first, &mut rx, &mut jobs, &mut waiting);
                    let result = committer.commit(&jobs);
                    deliver(result, &mut jobs, &mut waiting);
                }
            })
            .map_err(|e| StoreError::BatchFailed(format!("cannot start the writer: {e}")))?;
        Ok(Self { queue })
    }

    /// Queues a push and waits for the commit of its batch.
    pub async fn push(&self, request: PushRequest) -> Result<PushReply, StoreError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || StoreError::BatchFailed("the writer has stopped".into());
        self.queue
            .send((request, tx))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_schema::frame::PushRecord;

    fn job(ws: &str, keys: &[&str]) -> PushRequest {
        PushRequest {
            ws: ws.into(),
            token_id: "t".into(),
            records: keys
                .iter()
                .map(|k| PushRecord {
                    key: k.as_bytes().to_vec(),
                    bytes: format!("bytes of {k}").into_bytes(),
                })
                .collect(),
            body_bytes: 10,
            now: 1,
        }
    }

    fn row(head: u64) -> Row {
        Row {
            head,
            chain: Chain::genesis(),
            deleted: false,
            stored: 0,
        }
    }

    /// Announcements waiting on `rx`: (workspace, seqs of its tentative records).
    fn tentative_sent(
        rx: &mut tokio::sync::broadcast::Receiver<crate::store::Announcement>,
    ) -> Vec<(String, Vec<u64>)> {
        let mut out = Vec::new();
        while let Ok(a) = rx.try_recv() {
            if a.is_tentative() {
                out.push((a.ws.clone(), a.tentative.iter().map(|e| e.seq).collect()));
            }
        }
        out
    }

    #[test]
    fn a_batch_planned_early_from_the_committed_rows_is_announced_once_when_it_was_right() {
        let announcer = Announcer::default();
        let mut rx = announcer.subscribe();
        let mut committed = Committed::default();
        let locked = HashMap::from([("a".to_string(), row(5))]);
        let first = plan(&[job("a", &["k1"])], &locked, &HashMap::new(), None);
        committed.committed(&locked, &first);
        announce_durable(&announcer, &first);
        // The next batch, planned before its transaction reads anything.
        let jobs = vec![job("a", &["k2", "k3"]), job("b", &["k1"])];
        let early_rows = committed.rows_for(&jobs, |ws| announcer.head(ws));
        assert_eq!(
            early_rows.keys().collect::<Vec<_>>(),
            vec!["a"],
            "b was never committed here"
        );
        let early = plan(&jobs, &early_rows, &HashMap::new(), None);
        announce_tentative(&announcer, &jobs, &early);
        // Under the lock the rows are what this process committed: the same plan for a.
        let mut real_rows = early_rows.clone();
        real_rows.insert("b".into(), row(0));
        let real = plan(&jobs, &real_rows, &HashMap::new(), None);
        announce_tentative_after(&announcer, &jobs, &real, Some(&early));
        assert_eq!(
            tentative_sent(&mut rx),
            vec![("a".into(), vec![7, 8]), ("b".into(), vec![1])],
            "a's records early and once; b's after the lock"
        );
    }

    #[test]
    fn an_early_plan_that_was_wrong_is_followed_by_the_right_records_and_stale_rows_are_not_used() {
        let announcer = Announcer::default();
        let mut rx = announcer.subscribe();
        let mut committed = Committed::default();
        let locked = HashMap::from([("a".to_string(), row(5))]);
        let first = plan(&[job("a", &["k1"])], &locked, &HashMap::new(), None);
        committed.committed(&locked, &first);
        announce_durable(&announcer, &first);
        let jobs = vec![job("a", &["k2"])];
        let early_rows = committed.rows_for(&jobs, |ws| announcer.head(ws));
        let early = plan(&jobs, &early_rows, &HashMap::new(), None);
        announce_tentative(&announcer, &jobs, &early);
        // Another process committed seq 7 before this batch took the lock.
        let mut moved = first.heads[0].clone();
        moved.head = 7;
        let real_rows = HashMap::from([(
            "a".to_string(),
            Row {
                head: 7,
                chain: Chain::genesis(),
                deleted: false,
                stored: 0,
            },
        )]);
        let real = plan(&jobs, &real_rows, &HashMap::new(), None);
        announce_tentative_after(&announcer, &jobs, &real, Some(&early));
        assert_eq!(
            tentative_sent(&mut rx),
            vec![("a".into(), vec![7]), ("a".into(), vec![8])],
            "the early record, then the right one"
        );
        // Once its commit is heard, the remembered row is stale: no early plan from it.
        announcer.announce(&moved.ws, moved.head);
        assert!(committed
            .rows_for(&jobs, |ws| announcer.head(ws))
            .is_empty());
        // A failed commit forgets the rows outright.
        committed.committed(&real_rows, &real);
        announcer.announce("a", 8);
        assert_eq!(committed.rows_for(&jobs, |ws| announcer.head(ws)).len(), 1);
        committed.failed(&jobs);
        assert!(committed
            .rows_for(&jobs, |ws| announcer.head(ws))
            .is_empty());
    }

    #[test]
    fn a_batch_gives_the_same_seqs_as_committing_each_push_alone() -> Result<(), StoreError> {
        let jobs = vec![
            job("a", &["k1", "k2"]),
            job("b", &["k1"]),
            job("a", &["k3", "k1"]),
            job("a", &["old"]),
        ];
        let rows = HashMap::from([("a".to_string(), row(5)), ("b".to_string(), row(0))]);
        let known = HashMap::from([(("a".to_string(), b"old".to_vec()), 2u64)]);
        let p = plan(&jobs, &rows, &known, None);
        let seqs: Vec<Vec<u64>> = p
            .replies
            .into_iter()
            .map(|r| r.map(|r| r.seqs))
            .collect::<Result<_, _>>()?;
        assert_eq!(seqs, vec![vec![6, 7], vec![1], vec![8, 6], vec![2]]);
        assert_eq!(p.inserts.len(), 4);
        let heads: Vec<(&str, u64)> = p.heads.iter().map(|h| (h.ws.as_str(), h.head)).collect();
        assert_eq!(heads, vec![("a", 8), ("b", 1)]);
        assert_eq!(p.audited, vec![0, 1, 2, 3]);
        // The chain of the batch equals pushing one by one.
        let one_by_one = log::assign_batch(
            5,
            Chain::genesis(),
            &job("a", &["k1", "k2", "k3"]).records,
            &HashMap::new(),
        )
        .map_err(|e| StoreError::Conflict(e.to_string()))?;
        assert_eq!(p.heads[0].chain, one_by_one.chain);
        Ok(())
    }

    #[test]
    fn missing_deleted_and_over_quota_pushes_fail_alone() {
        let jobs = vec![
            job("gone", &["k"]),
            job("del", &["k"]),
            job("full", &["k"]),
            job("ok", &["k"]),
        ];
        let mut deleted = row(1);
        deleted.deleted = true;
        let mut full = row(1);
        full.stored = 95;
        let rows = HashMap::from([
            ("del".to_string(), deleted),
            ("full".to_string(), full),
            ("ok".to_string(), row(0)),
        ]);
        let p = plan(&jobs, &rows, &HashMap::new(), Some(100));
        assert!(matches!(p.replies[0], Err(StoreError::NotFound)));
        assert!(matches!(p.replies[1], Err(StoreError::Deleted)));
        assert!(matches!(
            p.replies[2],
            Err(StoreError::Quota {
                used: 95,
                limit: 100,
                ..
            })
        ));
        assert!(p.replies[3].is_ok());
        assert_eq!(p.audited, vec![3]);
        assert_eq!(p.heads.len(), 1);
    }

    #[test]
    fn a_batch_at_the_largest_seq_is_refused_not_wrapped() {
        let p = plan(
            &[job("a", &["k"])],
            &HashMap::from([("a".to_string(), row(log::MAX_SEQ))]),
            &HashMap::new(),
            None,
        );
        assert!(matches!(p.replies[0], Err(StoreError::Conflict(_))));
        assert!(p.inserts.is_empty());
    }
}
