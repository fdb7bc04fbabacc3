//! [`SqliteStore`]: the sync core's [`Store`] on one SQLite file — the native twin of the
//! browser's IndexedDB store, for the command line and the C API.
//!
//! The tables mirror IndexedDB's object stores: `workspaces` (the [`WorkspaceRecord`] as JSON),
//! `snapshots`, `open_cache`, `pending`, `received`, `quarantine`, `outbox`. Every method is one
//! transaction; the file is in WAL mode with `synchronous = FULL`, so a write is on disk before
//! the call returns (an edit is durable before it is acknowledged, as in the browser). Clones
//! share one connection, like tabs on one database. A full disk is
//! [`StorageError::QuotaExceeded`], like a full browser quota.

use client_wasm::storage::{
    allocate_keys, apply_change, may_merge, remember_chains, Appended, Change, Compaction,
    LoadedState, Merge, OpenCache, Page, PendingUpdate, RemoteRecord, Since, Staged, StorageError,
    Store, ToPush, Updated, WorkspaceRecord,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use shared_schema::frame::PullRecordKind;
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS workspaces (id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (ws TEXT PRIMARY KEY, bytes BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS open_cache (ws TEXT PRIMARY KEY, bytes BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS pending (ws TEXT NOT NULL, key TEXT NOT NULL, bytes BLOB NOT NULL,
    PRIMARY KEY (ws, key));
CREATE TABLE IF NOT EXISTS received (ws TEXT NOT NULL, seq INTEGER NOT NULL,
    kind INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (ws, seq));
CREATE TABLE IF NOT EXISTS quarantine (ws TEXT NOT NULL, seq INTEGER NOT NULL,
    bytes BLOB NOT NULL, PRIMARY KEY (ws, seq));
CREATE TABLE IF NOT EXISTS outbox (ws TEXT PRIMARY KEY, covers INTEGER NOT NULL,
    bytes BLOB NOT NULL);
";

/// The sync core's storage on a SQLite file. Clones share the connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Rc<RefCell<Connection>>,
}

fn sql(e: rusqlite::Error) -> StorageError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => StorageError::QuotaExceeded,
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StorageError::Blocked
        }
        _ => StorageError::Other(e.to_string()),
    }
}

fn to_i64(seq: u64) -> Result<i64, StorageError> {
    i64::try_from(seq).map_err(|_| StorageError::Other(format!("seq {seq} is out of range")))
}

fn to_u64(seq: i64) -> Result<u64, StorageError> {
    u64::try_from(seq).map_err(|_| StorageError::Corrupt(format!("a stored seq is {seq}")))
}

fn kind_of(k: i64) -> Result<PullRecordKind, StorageError> {
    match k {
        0 => Ok(PullRecordKind::Update),
        1 => Ok(PullRecordKind::Snapshot),
        other => Err(StorageError::Corrupt(format!("a record kind is {other}"))),
    }
}

fn get_record(tx: &Transaction<'_>, id: &str) -> Result<Option<WorkspaceRecord>, StorageError> {
    let json: Option<String> = tx
        .query_row(
            "SELECT record FROM workspaces WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql)?;
    json.map(|j| {
        serde_json::from_str(&j).map_err(|e| StorageError::Corrupt(format!("workspace {id}: {e}")))
    })
    .transpose()
}

fn put_record(tx: &Transaction<'_>, record: &WorkspaceRecord) -> Result<(), StorageError> {
    let json = serde_json::to_string(record).map_err(|e| StorageError::Other(e.to_string()))?;
    tx.execute(
        "INSERT OR REPLACE INTO workspaces (id, record) VALUES (?1, ?2)",
        params![record.id, json],
    )
    .map_err(sql)?;
    Ok(())
}

fn pending_of(
    tx: &Transaction<'_>,
    id: &str,
    after: Option<&str>,
) -> Result<Vec<PendingUpdate>, StorageError> {
    let mut stmt = tx
        .prepare_cached("SELECT key, bytes FROM pending WHERE ws = ?1 AND key > ?2 ORDER BY key")
        .map_err(sql)?;
    let rows = stmt
        .query_map(params![id, after.unwrap_or("")], |r| {
            Ok(PendingUpdate {
                key: r.get(0)?,
                bytes: r.get(1)?,
            })
        })
        .map_err(sql)?;
    rows.collect::<Result<_, _>>().map_err(sql)
}

fn pending_bytes(
    tx: &Transaction<'_>,
    id: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, StorageError> {
    tx.query_row(
        "SELECT bytes FROM pending WHERE ws = ?1 AND key = ?2",
        params![id, key],
        |r| r.get(0),
    )
    .optional()
    .map_err(sql)
}

impl SqliteStore {
    /// Opens (creating if needed) the store in the file at `path`.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let conn = Connection::open(path).map_err(|e| {
            StorageError::Unavailable(format!("cannot open {}: {e}", path.display()))
        })?;
        Self::with(conn)
    }

    /// A store that lives in memory only (tests).
    pub fn in_memory() -> Result<Self, StorageError> {
        Self::with(Connection::open_in_memory().map_err(sql)?)
    }

    fn with(conn: Connection) -> Result<Self, StorageError> {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        Ok(Self {
            conn: Rc::new(RefCell::new(conn)),
        })
    }

    /// Runs `f` in one transaction, committed when it returns `Ok`.
    fn tx<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut conn = self.conn.borrow_mut();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql)?;
        let out = f(&tx)?;
        tx.commit().map_err(sql)?;
        Ok(out)
    }
}

impl Store for SqliteStore {
    async fn create_workspace(&self, record: &WorkspaceRecord) -> Result<bool, StorageError> {
        self.tx(|tx| {
            if get_record(tx, &record.id)?.is_some() {
                return Ok(false);
            }
            put_record(tx, record)?;
            Ok(true)
        })
    }

    async fn get_workspace(&self, id: &str) -> Result<Option<WorkspaceRecord>, StorageError> {
        self.tx(|tx| get_record(tx, id))
    }

    async fn list_workspaces(&self) -> Result<Vec<WorkspaceRecord>, StorageError> {
        self.tx(|tx| {
            let mut stmt = tx
                .prepare("SELECT record FROM workspaces ORDER BY id")
                .map_err(sql)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(sql)?;
            rows.map(|j| {
                let j = j.map_err(sql)?;
                serde_json::from_str(&j).map_err(|e| StorageError::Corrupt(e.to_string()))
            })
            .collect()
        })
    }

    async fn update_workspace(&self, id: &str, change: &Change) -> Result<Updated, StorageError> {
        self.tx(|tx| {
            let Some(mut record) = get_record(tx, id)? else {
                return Ok(Updated::Missing);
            };
            if !apply_change(&mut record, change) {
                return Ok(Updated::Unchanged(record));
            }
            put_record(tx, &record)?;
            Ok(Updated::Changed(record))
        })
    }

    async fn delete_workspace(&self, id: &str) -> Result<(), StorageError> {
        self.tx(|tx| {
            tx.execute("DELETE FROM workspaces WHERE id = ?1", params![id])
                .map_err(sql)?;
            for table in [
                "snapshots",
                "open_cache",
                "pending",
                "received",
                "quarantine",
                "outbox",
            ] {
                tx.execute(&format!("DELETE FROM {table} WHERE ws = ?1"), params![id])
                    .map_err(sql)?;
            }
            Ok(())
        })
    }

    async fn load_since(
        &self,
        id: &str,
        since: &Since,
    ) -> Result<Option<LoadedState>, StorageError> {
        self.tx(|tx| {
            let Some(record) = get_record(tx, id)? else {
                return Ok(None);
            };
            let snapshot = if since.snapshot_covers == Some(record.snapshot_covers) {
                None
            } else {
                tx.query_row(
                    "SELECT bytes FROM snapshots WHERE ws = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql)?
            };
            let pending = pending_of(tx, id, since.pending_after.as_deref())?;
            let mut stmt = tx
                .prepare_cached(
                    "SELECT seq, kind, bytes FROM received WHERE ws = ?1 AND seq > ?2 ORDER BY seq",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![id, to_i64(since.received_after)?], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                    ))
                })
                .map_err(sql)?;
            let mut received = Vec::new();
            for row in rows {
                let (seq, kind, bytes) = row.map_err(sql)?;
                received.push(RemoteRecord {
                    seq: to_u64(seq)?,
                    kind: kind_of(kind)?,
                    bytes,
                });
            }
            let mut stmt = tx
                .prepare_cached("SELECT seq FROM quarantine WHERE ws = ?1 ORDER BY seq")
                .map_err(sql)?;
            let seqs = stmt
                .query_map(params![id], |r| r.get::<_, i64>(0))
                .map_err(sql)?;
            let mut quarantined = Vec::new();
            for seq in seqs {
                quarantined.push(to_u64(seq.map_err(sql)?)?);
            }
            Ok(Some(LoadedState {
                record,
                snapshot,
                received,
                pending,
                quarantined,
            }))
        })
    }

    async fn append_pending(
        &self,
        id: &str,
        bytes: &[u8],
        merge: Option<Merge<'_>>,
        staged: Staged<'_>,
    ) -> Result<Appended, StorageError> {
        let ahead = staged.and_then(|s| s.ahead);
        self.tx(|tx| {
            let mut record = get_record(tx, id)?
                .ok_or_else(|| StorageError::Other(format!("workspace {id} is not stored")))?;
            let merge = match merge.filter(|_| ahead.is_none()) {
                Some(m) => {
                    let stored = pending_bytes(tx, id, m.replaces)?.is_some();
                    may_merge(&record, m.replaces, stored).then_some(m)
                }
                None => None,
            };
            let (key, next) = allocate_keys(&mut record, ahead.map(|a| a.key), staged.is_some());
            put_record(tx, &record)?;
            let bytes = match &merge {
                Some(m) => {
                    tx.execute(
                        "DELETE FROM pending WHERE ws = ?1 AND key = ?2",
                        params![id, m.replaces],
                    )
                    .map_err(sql)?;
                    m.bytes
                }
                None => bytes,
            };
            tx.execute(
                "INSERT INTO pending (ws, key, bytes) VALUES (?1, ?2, ?3)",
                params![id, key, bytes],
            )
            .map_err(sql)?;
            let update = PendingUpdate {
                key,
                bytes: bytes.to_vec(),
            };
            if let Some(stage) = staged {
                let after: Option<String> = match ahead {
                    Some(a) => a.after.map(str::to_owned),
                    None => tx
                        .query_row(
                            "SELECT MAX(key) FROM pending WHERE ws = ?1 AND key <> ?2",
                            params![id, update.key],
                            |row| row.get(0),
                        )
                        .map_err(sql)?,
                };
                (stage.hand)(&update, after.as_deref());
            }
            Ok(Appended {
                update,
                merged: merge.is_some(),
                next,
            })
        })
    }

    async fn pending(&self, id: &str) -> Result<Vec<PendingUpdate>, StorageError> {
        self.tx(|tx| pending_of(tx, id, None))
    }

    async fn pending_to_push(&self, id: &str) -> Result<ToPush, StorageError> {
        self.tx(|tx| {
            let pending = pending_of(tx, id, None)?;
            let mut record = get_record(tx, id)?;
            if let (Some(last), Some(r)) = (pending.last(), record.as_mut()) {
                if r.pushed_upto.as_ref() != Some(&last.key) {
                    r.pushed_upto = Some(last.key.clone());
                    put_record(tx, r)?;
                }
            }
            Ok(ToPush { record, pending })
        })
    }

    async fn acknowledge(&self, id: &str, acks: &[(String, u64)]) -> Result<(), StorageError> {
        self.tx(|tx| {
            let cursor = get_record(tx, id)?.map_or(0, |r| r.last_pulled_seq);
            for (key, seq) in acks {
                let Some(bytes) = pending_bytes(tx, id, key)? else {
                    continue;
                };
                tx.execute(
                    "DELETE FROM pending WHERE ws = ?1 AND key = ?2",
                    params![id, key],
                )
                .map_err(sql)?;
                if *seq > cursor {
                    tx.execute(
                        "INSERT OR IGNORE INTO received (ws, seq, kind, bytes) VALUES (?1, ?2, 0, ?3)",
                        params![id, to_i64(*seq)?, bytes],
                    )
                    .map_err(sql)?;
                }
            }
            Ok(())
        })
    }

    async fn store_page(&self, id: &str, page: &Page) -> Result<bool, StorageError> {
        self.tx(|tx| {
            let Some(mut record) = get_record(tx, id)? else {
                return Ok(false);
            };
            if (record.last_pulled_seq, record.chain_head) != page.from {
                return Ok(false);
            }
            (record.last_pulled_seq, record.chain_head) = page.to;
            remember_chains(&mut record, &page.chains);
            put_record(tx, &record)?;
            for r in &page.records {
                tx.execute(
                    "INSERT OR REPLACE INTO received (ws, seq, kind, bytes) VALUES (?1, ?2, ?3, ?4)",
                    params![id, to_i64(r.seq)?, r.kind as i64, r.bytes],
                )
                .map_err(sql)?;
            }
            Ok(true)
        })
    }

    async fn received_len(&self, id: &str) -> Result<usize, StorageError> {
        self.tx(|tx| {
            let n: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM received WHERE ws = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            Ok(usize::try_from(n).unwrap_or(0))
        })
    }

    async fn compact(&self, id: &str, c: &Compaction) -> Result<bool, StorageError> {
        self.tx(|tx| {
            let Some(mut record) = get_record(tx, id)? else {
                return Ok(false);
            };
            if c.covers < record.snapshot_covers || c.covers > record.last_pulled_seq {
                return Ok(false);
            }
            record.snapshot_covers = c.covers;
            put_record(tx, &record)?;
            tx.execute(
                "INSERT OR REPLACE INTO snapshots (ws, bytes) VALUES (?1, ?2)",
                params![id, c.snapshot],
            )
            .map_err(sql)?;
            tx.execute(
                "DELETE FROM received WHERE ws = ?1 AND seq <= ?2",
                params![id, to_i64(c.covers)?],
            )
            .map_err(sql)?;
            if let Some(upload) = &c.upload {
                tx.execute(
                    "INSERT OR REPLACE INTO outbox (ws, covers, bytes) VALUES (?1, ?2, ?3)",
                    params![id, to_i64(c.covers)?, upload],
                )
                .map_err(sql)?;
            }
            Ok(true)
        })
    }

    async fn save_open_cache(&self, id: &str, cache: &OpenCache) -> Result<(), StorageError> {
        self.tx(|tx| {
            if get_record(tx, id)?.is_some() {
                tx.execute(
                    "INSERT OR REPLACE INTO open_cache (ws, bytes) VALUES (?1, ?2)",
                    params![id, cache.encode()],
                )
                .map_err(sql)?;
            }
            Ok(())
        })
    }

    async fn open_cache(&self, id: &str) -> Result<Option<OpenCache>, StorageError> {
        let bytes: Option<Vec<u8>> = self.tx(|tx| {
            tx.query_row(
                "SELECT bytes FROM open_cache WHERE ws = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)
        })?;
        bytes.map(|b| OpenCache::decode(&b)).transpose()
    }

    async fn quarantine(&self, id: &str, seqs: &[u64]) -> Result<(), StorageError> {
        self.tx(|tx| {
            for seq in seqs {
                let seq = to_i64(*seq)?;
                let bytes: Option<Vec<u8>> = tx
                    .query_row(
                        "SELECT bytes FROM received WHERE ws = ?1 AND seq = ?2",
                        params![id, seq],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(sql)?;
                if let Some(bytes) = bytes {
                    tx.execute(
                        "INSERT OR REPLACE INTO quarantine (ws, seq, bytes) VALUES (?1, ?2, ?3)",
                        params![id, seq, bytes],
                    )
                    .map_err(sql)?;
                    tx.execute(
                        "DELETE FROM received WHERE ws = ?1 AND seq = ?2",
                        params![id, seq],
                    )
                    .map_err(sql)?;
                }
            }
            Ok(())
        })
    }

    async fn reseal_pending(
        &self,
        id: &str,
        sealed: &[PendingUpdate],
    ) -> Result<usize, StorageError> {
        self.tx(|tx| {
            let mut replaced = 0;
            for p in sealed {
                let plain = pending_bytes(tx, id, &p.key)?
                    .is_some_and(|b| !shared_schema::seal::is_sealed(&b));
                if plain {
                    tx.execute(
                        "UPDATE pending SET bytes = ?3 WHERE ws = ?1 AND key = ?2",
                        params![id, p.key, p.bytes],
                    )
                    .map_err(sql)?;
                    replaced += 1;
                }
            }
            Ok(replaced)
        })
    }

    async fn outbox(&self, id: &str) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        let row: Option<(i64, Vec<u8>)> = self.tx(|tx| {
            tx.query_row(
                "SELECT covers, bytes FROM outbox WHERE ws = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sql)
        })?;
        row.map(|(covers, bytes)| Ok((to_u64(covers)?, bytes)))
            .transpose()
    }

    async fn clear_outbox(&self, id: &str, covers: u64) -> Result<(), StorageError> {
        self.tx(|tx| {
            tx.execute(
                "DELETE FROM outbox WHERE ws = ?1 AND covers = ?2",
                params![id, to_i64(covers)?],
            )
            .map_err(sql)?;
            Ok(())
        })
    }
}
