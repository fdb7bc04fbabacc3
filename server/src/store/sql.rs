//! The SQL and logic shared by both backends, expanded once per backend by `impl_store!`.
//! Parameters are numbered `$1, $2, …` in order of appearance (valid in Postgres and SQLite).

use shared_schema::Chain;

use super::StoreError;

pub(crate) fn chain_of(bytes: &[u8]) -> Result<Chain, StoreError> {
    Chain::from_slice(bytes).ok_or_else(|| StoreError::Corrupt("chain is not 32 bytes".into()))
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Implements [`super::Storage`] for a store struct with fields `pool`, and methods
/// `write_guard()`, `announce_in_tx(&mut tx, ws, seq)` and `after_commit(ws, seq)`.
macro_rules! impl_store {
    ($store:ty, $backend:literal, $lock:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::Storage for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn create_workspace(&self, id: &str, master: &TokenRow, now: i64) -> Result<(), StoreError> {
                let _guard = self.write_guard().await;
                let mut tx = self.pool.begin().await?;
                sqlx::query("INSERT INTO workspaces (id, created_at, head_seq, chain) VALUES ($1, $2, 0, $3)")
                    .bind(id)
                    .bind(now)
                    .bind(Chain::genesis().as_bytes().to_vec())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| match e.as_database_error() {
                        Some(d) if d.is_unique_violation() => StoreError::Conflict("a workspace with this id already exists".into()),
                        _ => StoreError::Database(e),
                    })?;
                insert_token_tx(&mut tx, master).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn push(&self, ws: &str, token_id: &str, records: &[PushRecord], now: i64) -> Result<PushReply, StoreError> {
                let _guard = self.write_guard().await;
                let mut tx = self.pool.begin().await?;
                let (start_head, chain_bytes) = lock_workspace(&mut tx, ws).await?;
                let mut known: std::collections::HashMap<Vec<u8>, u64> = Default::default();
                for r in records {
                    if known.contains_key(&r.key) {
                        continue;
                    }
                    let existing: Option<(i64,)> = sqlx::query_as(
                        "SELECT seq FROM updates WHERE workspace_id = $1 AND idempotency_key = $2",
                    )
                    .bind(ws)
                    .bind(r.key.as_slice())
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some((seq,)) = existing {
                        known.insert(r.key.clone(), to_u64(seq));
                    }
                }
                let assigned = shared_schema::log::assign_batch(start_head, chain_of(&chain_bytes)?, records, &known)
                    .map_err(|e| StoreError::Conflict(e.to_string()))?;
                for f in &assigned.fresh {
                    let r = &records[f.index];
                    sqlx::query(
                        "INSERT INTO updates (workspace_id, seq, bytes, size, idempotency_key, chain, token_id, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(ws)
                    .bind(to_i64(f.seq))
                    .bind(r.bytes.as_slice())
                    .bind(i32::try_from(r.bytes.len()).unwrap_or(i32::MAX))
                    .bind(r.key.as_slice())
                    .bind(f.chain.as_bytes().to_vec())
                    .bind(token_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                let (head, chain, seqs) = (assigned.head, assigned.chain, assigned.seqs);
                if head != start_head {
                    sqlx::query("UPDATE workspaces SET head_seq = $1, chain = $2 WHERE id = $3")
                        .bind(to_i64(head))
                        .bind(chain.as_bytes().to_vec())
                        .bind(ws)
                        .execute(&mut *tx)
                        .await?;
                    self.announce_in_tx(&mut tx, ws, head).await?;
                }
                tx.commit().await?;
                if head != start_head {
                    self.after_commit(ws, head);
                }
                Ok(PushReply { seqs, head_seq: head, chain })
            }

            async fn pull(&self, ws: &str, after: u64, limit_bytes: usize) -> Result<PullPage, StoreError> {
                let (head, _chain, covers) = workspace_row(&self.pool, ws).await?;
                let mut records = Vec::new();
                let mut size = 0usize;
                let mut after = after;
                if after < covers {
                    let snap: Option<(i64, Vec<u8>, Vec<u8>)> = sqlx::query_as(
                        "SELECT covers, chain, bytes FROM snapshots WHERE workspace_id = $1",
                    )
                    .bind(ws)
                    .fetch_optional(&self.pool)
                    .await?;
                    if let Some((seq, chain, bytes)) = snap {
                        size += shared_schema::log::record_size(bytes.len());
                        records.push(PullRecord { kind: PullRecordKind::Snapshot, seq: to_u64(seq), chain: chain_of(&chain)?, bytes });
                        after = to_u64(seq);
                    }
                }
                let mut more = false;
                loop {
                    let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = sqlx::query_as(
                        "SELECT seq, chain, bytes FROM updates WHERE workspace_id = $1 AND seq > $2 ORDER BY seq LIMIT 256",
                    )
                    .bind(ws)
                    .bind(to_i64(after))
                    .fetch_all(&self.pool)
                    .await?;
                    let n = rows.len();
                    for (seq, chain, bytes) in rows {
                        if !shared_schema::log::page_admits(records.len(), size, bytes.len(), limit_bytes) {
                            more = true;
                            break;
                        }
                        size += shared_schema::log::record_size(bytes.len());
                        after = to_u64(seq);
                        records.push(PullRecord { kind: PullRecordKind::Update, seq: after, chain: chain_of(&chain)?, bytes });
                    }
                    if more || n < 256 {
                        break;
                    }
                }
                Ok(PullPage { records, head_seq: head, more })
            }

            async fn head(&self, ws: &str) -> Result<u64, StoreError> {
                Ok(workspace_row(&self.pool, ws).await?.0)
            }

            async fn put_snapshot(&self, ws: &str, covers: u64, bytes: &[u8], now: i64, retain_before: i64) -> Result<(), StoreError> {
                let _guard = self.write_guard().await;
                let mut tx = self.pool.begin().await?;
                let (head, _) = lock_workspace(&mut tx, ws).await?;
                let (old_covers,): (i64,) = sqlx::query_as("SELECT snapshot_covers FROM workspaces WHERE id = $1")
                    .bind(ws)
                    .fetch_one(&mut *tx)
                    .await?;
                shared_schema::log::check_covers(covers, head, to_u64(old_covers))
                    .map_err(|e| StoreError::Conflict(e.to_string()))?;
                let chain: Vec<u8> = if covers == 0 {
                    Chain::genesis().as_bytes().to_vec()
                } else {
                    let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT chain FROM updates WHERE workspace_id = $1 AND seq = $2")
                        .bind(ws)
                        .bind(to_i64(covers))
                        .fetch_optional(&mut *tx)
                        .await?;
                    match row {
                        Some((c,)) => c,
                        None => {
                            let snap: Option<(Vec<u8>,)> = sqlx::query_as("SELECT chain FROM snapshots WHERE workspace_id = $1 AND covers = $2")
                                .bind(ws)
                                .bind(to_i64(covers))
                                .fetch_optional(&mut *tx)
                                .await?;
                            snap.map(|(c,)| c).ok_or_else(|| StoreError::Conflict(format!("seq {covers} is no longer stored")))?
                        }
                    }
                };
                sqlx::query("DELETE FROM snapshots WHERE workspace_id = $1").bind(ws).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO snapshots (workspace_id, covers, chain, bytes, size, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(ws)
                    .bind(to_i64(covers))
                    .bind(chain)
                    .bind(bytes)
                    .bind(i32::try_from(bytes.len()).unwrap_or(i32::MAX))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE workspaces SET snapshot_covers = $1 WHERE id = $2")
                    .bind(to_i64(covers))
                    .bind(ws)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM updates WHERE workspace_id = $1 AND seq <= $2 AND created_at < $3")
                    .bind(ws)
                    .bind(to_i64(covers))
                    .bind(retain_before)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn insert_token(&self, token: &TokenRow) -> Result<(), StoreError> {
                let _guard = self.write_guard().await;
                let mut tx = self.pool.begin().await?;
                insert_token_tx(&mut tx, token).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_tokens(&self, ws: &str) -> Result<Vec<TokenInfo>, StoreError> {
                let rows: Vec<(String, String, String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT id, role, label, created_at, expires_at, revoked_at FROM tokens WHERE workspace_id = $1 ORDER BY created_at, id",
                )
                .bind(ws)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(id, role, label, created_at, expires_at, revoked_at)| {
                        Ok(TokenInfo {
                            id,
                            role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
                            label,
                            created_at: to_u64(created_at),
                            expires_at: expires_at.map(to_u64),
                            revoked_at: revoked_at.map(to_u64),
                        })
                    })
                    .collect()
            }

            async fn revoke_token(&self, ws: &str, id: &str, now: i64) -> Result<bool, StoreError> {
                let _guard = self.write_guard().await;
                let r = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE workspace_id = $2 AND id = $3 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(ws)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                if r.rows_affected() > 0 {
                    return Ok(true);
                }
                let exists: Option<(String,)> = sqlx::query_as("SELECT id FROM tokens WHERE workspace_id = $1 AND id = $2")
                    .bind(ws)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(exists.is_some())
            }

            async fn revoke_masters_except(&self, ws: &str, keep: &str, now: i64) -> Result<(), StoreError> {
                let _guard = self.write_guard().await;
                sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE workspace_id = $2 AND role = 'master' AND id <> $3 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(ws)
                    .bind(keep)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn get_token(&self, id: &str) -> Result<Option<TokenRow>, StoreError> {
                let row: Option<(String, String, String, String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT id, workspace_id, role, label, created_at, expires_at, revoked_at FROM tokens WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|(id, workspace_id, role, label, created_at, expires_at, revoked_at)| {
                    Ok(TokenRow {
                        id,
                        workspace_id,
                        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
                        label,
                        created_at,
                        expires_at,
                        revoked_at,
                    })
                })
                .transpose()
            }

            async fn token_state(&self, id: &str) -> Result<TokenState, StoreError> {
                let row: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT t.revoked_at, w.deleted_at FROM tokens t JOIN workspaces w ON w.id = t.workspace_id WHERE t.id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(match row {
                    None => TokenState::Unknown,
                    Some((_, Some(_))) => TokenState::WorkspaceDeleted,
                    Some((Some(_), None)) => TokenState::Revoked,
                    Some((None, None)) => TokenState::Active,
                })
            }

            async fn delete_workspace(&self, ws: &str, now: i64) -> Result<(), StoreError> {
                let _guard = self.write_guard().await;
                let mut tx = self.pool.begin().await?;
                lock_workspace(&mut tx, ws).await?;
                sqlx::query("DELETE FROM updates WHERE workspace_id = $1").bind(ws).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM snapshots WHERE workspace_id = $1").bind(ws).execute(&mut *tx).await?;
                sqlx::query("UPDATE workspaces SET deleted_at = $1 WHERE id = $2").bind(now).bind(ws).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn import(&self, ws: &str, master: &TokenRow, backup: &Backup, now: i64) -> Result<(), StoreError> {
                let _guard = self.write_guard().await;
                let mut tx = self.pool.begin().await?;
                let mut covers = 0u64;
                for r in &backup.records {
                    if r.kind == PullRecordKind::Snapshot {
                        covers = r.seq;
                    }
                }
                sqlx::query("INSERT INTO workspaces (id, created_at, head_seq, chain, snapshot_covers) VALUES ($1, $2, $3, $4, $5)")
                    .bind(ws)
                    .bind(now)
                    .bind(to_i64(backup.header.head_seq))
                    .bind(backup.header.chain_head.as_bytes().to_vec())
                    .bind(to_i64(covers))
                    .execute(&mut *tx)
                    .await?;
                for r in &backup.records {
                    match r.kind {
                        PullRecordKind::Snapshot => {
                            sqlx::query("INSERT INTO snapshots (workspace_id, covers, chain, bytes, size, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                                .bind(ws)
                                .bind(to_i64(r.seq))
                                .bind(r.chain.as_bytes().to_vec())
                                .bind(r.bytes.as_slice())
                                .bind(i32::try_from(r.bytes.len()).unwrap_or(i32::MAX))
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                        }
                        PullRecordKind::Update => {
                            sqlx::query(
                                "INSERT INTO updates (workspace_id, seq, bytes, size, idempotency_key, chain, token_id, created_at) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                            )
                            .bind(ws)
                            .bind(to_i64(r.seq))
                            .bind(r.bytes.as_slice())
                            .bind(i32::try_from(r.bytes.len()).unwrap_or(i32::MAX))
                            .bind(format!("import-{}", r.seq).into_bytes())
                            .bind(r.chain.as_bytes().to_vec())
                            .bind(master.id.as_str())
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                }
                insert_token_tx(&mut tx, master).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn audit(&self, token_id: Option<&str>, action: &str, ws: Option<&str>, bytes: i64, now: i64) -> Result<(), StoreError> {
                let _guard = self.write_guard().await;
                sqlx::query("INSERT INTO audit_log (token_id, action, workspace_id, bytes, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(token_id)
                    .bind(action)
                    .bind(ws)
                    .bind(bytes)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn bytes_stored(&self) -> Result<i64, StoreError> {
                let (u,): (Option<i64>,) = sqlx::query_as("SELECT CAST(SUM(size) AS BIGINT) FROM updates").fetch_one(&self.pool).await?;
                let (s,): (Option<i64>,) = sqlx::query_as("SELECT CAST(SUM(size) AS BIGINT) FROM snapshots").fetch_one(&self.pool).await?;
                Ok(u.unwrap_or(0) + s.unwrap_or(0))
            }

            fn subscribe(&self) -> tokio::sync::broadcast::Receiver<(String, u64)> {
                self.events.subscribe()
            }
        }

        async fn insert_token_tx(tx: &mut sqlx::Transaction<'_, Db>, t: &TokenRow) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO tokens (id, workspace_id, role, label, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(t.id.as_str())
                .bind(t.workspace_id.as_str())
                .bind(t.role.as_str())
                .bind(t.label.as_str())
                .bind(t.created_at)
                .bind(t.expires_at)
                .bind(t.revoked_at)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        /// Locks the workspace row for the transaction; returns (head_seq, chain).
        async fn lock_workspace(tx: &mut sqlx::Transaction<'_, Db>, ws: &str) -> Result<(u64, Vec<u8>), StoreError> {
            let row: Option<(i64, Vec<u8>, Option<i64>)> =
                sqlx::query_as(concat!("SELECT head_seq, chain, deleted_at FROM workspaces WHERE id = $1", $lock))
                    .bind(ws)
                    .fetch_optional(&mut **tx)
                    .await?;
            match row {
                None => Err(StoreError::NotFound),
                Some((_, _, Some(_))) => Err(StoreError::Deleted),
                Some((head, chain, None)) => Ok((to_u64(head), chain)),
            }
        }

        /// (head_seq, chain, snapshot_covers) of a live workspace.
        async fn workspace_row(pool: &sqlx::Pool<Db>, ws: &str) -> Result<(u64, Vec<u8>, u64), StoreError> {
            let row: Option<(i64, Vec<u8>, i64, Option<i64>)> =
                sqlx::query_as("SELECT head_seq, chain, snapshot_covers, deleted_at FROM workspaces WHERE id = $1")
                    .bind(ws)
                    .fetch_optional(pool)
                    .await?;
            match row {
                None => Err(StoreError::NotFound),
                Some((_, _, _, Some(_))) => Err(StoreError::Deleted),
                Some((head, chain, covers, None)) => Ok((to_u64(head), chain, to_u64(covers))),
            }
        }
    };
}

pub(crate) use impl_store;
